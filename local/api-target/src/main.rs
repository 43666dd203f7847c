//! `turbulence-api-target [--port N] [--mode buggy|fixed] [--token T] [--workers N]`
//!
//! Serves the demo moderation API on 127.0.0.1 (see the library docs).
//! `--port 0` (the default) picks a free port; the first line on stdout is
//! always `listening on 127.0.0.1:PORT`. `--workers` sets the Tokio worker
//! threads (default 1). Nothing is logged per request.

use api_target::{App, Mode};
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

const USAGE: &str =
    "usage: turbulence-api-target [--port N] [--mode buggy|fixed] [--token T] [--workers N]";

fn main() -> ExitCode {
    let mut port: u16 = 0;
    let mut mode = Mode::Fixed;
    let mut token = "demo-token".to_string();
    let mut workers: usize = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        let parsed = match (arg.as_str(), value) {
            ("--port", Some(v)) => v.parse().map(|p| port = p).is_ok(),
            ("--mode", Some(v)) => Mode::parse(&v).map(|m| mode = m).is_some(),
            ("--token", Some(v)) => {
                token = v;
                true
            }
            ("--workers", Some(v)) => v.parse().map(|w: usize| workers = w.max(1)).is_ok(),
            _ => false,
        };
        if !parsed {
            eprintln!("bad argument near {arg}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
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
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "listening on 127.0.0.1:{port}");
        let _ = stdout.flush();
        api_target::serve(listener, Arc::new(App::new(mode, &token))).await;
        ExitCode::SUCCESS
    })
}
