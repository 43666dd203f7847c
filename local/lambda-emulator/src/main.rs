//! `turbulence-lambda-emulator [--port N] [--python PATH] [--node PATH --node-ric PATH]
//!   [--log-dir DIR] [--env KEY=VALUE]... [--max-environments N] [--region R]`
//!
//! Serves Lambda's Invoke API on 127.0.0.1 for the local stack and runs
//! each function's runtime process against a Runtime API of its own (see
//! the library docs). `--port` defaults to `TURBULENCE_EMULATOR_PORT`, else
//! 9150; `--port 0` picks a free one. The first line on stdout is always
//! `listening on 127.0.0.1:PORT`. SIGTERM or SIGINT stops every
//! environment, then the emulator.

use std::io::Write as _;
use std::process::ExitCode;

use lambda_emulator::{front, Emulator, Runtimes, Settings};

const USAGE: &str = "usage: turbulence-lambda-emulator [--port N] [--python PATH] \
    [--node PATH --node-ric PATH] [--log-dir DIR] [--env KEY=VALUE]... \
    [--max-environments N] [--region R]";
/// The emulator's default port: TURBULENCE_EMULATOR_PORT overrides it.
const DEFAULT_PORT: u16 = 9150;

fn main() -> ExitCode {
    let mut port = std::env::var("TURBULENCE_EMULATOR_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(DEFAULT_PORT);
    let mut settings = Settings::default();
    let (mut node, mut ric) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        let parsed = match (arg.as_str(), value) {
            ("--port", Some(v)) => v.parse().map(|p| port = p).is_ok(),
            ("--python", Some(v)) => {
                settings.runtimes.python = Some(v.into());
                true
            }
            ("--node", Some(v)) => {
                node = Some(v.into());
                true
            }
            ("--node-ric", Some(v)) => {
                ric = Some(v.into());
                true
            }
            ("--log-dir", Some(v)) => {
                settings.log_dir = Some(v.into());
                true
            }
            ("--env", Some(v)) => match v.split_once('=') {
                Some((k, v)) => {
                    settings.environment.push((k.into(), v.into()));
                    true
                }
                None => false,
            },
            ("--max-environments", Some(v)) => {
                v.parse().map(|n| settings.max_environments = n).is_ok()
            }
            ("--region", Some(v)) => {
                settings.region = v;
                true
            }
            _ => false,
        };
        if !parsed {
            eprintln!("bad argument near {arg}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    settings.runtimes = Runtimes {
        node: node.zip(ric),
        ..settings.runtimes
    };
    tracing_subscriber::fmt().with_ansi(false).init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("cannot listen on 127.0.0.1:{port}: {e}");
                return ExitCode::from(1);
            }
        };
        let port = listener.local_addr().map_or(port, |a| a.port());
        let _ = writeln!(std::io::stdout(), "listening on 127.0.0.1:{port}");
        let _ = std::io::stdout().flush();
        let emulator = Emulator::new(settings);
        let served = tokio::spawn(front::serve(std::sync::Arc::clone(&emulator), listener));
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(e) => {
                    eprintln!("cannot handle SIGTERM: {e}");
                    return ExitCode::from(1);
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        served.abort();
        emulator.shutdown().await;
        ExitCode::SUCCESS
    })
}
