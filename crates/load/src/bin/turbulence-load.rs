//! Runs one attack from the command line and prints its report (JSON).
//!
//! ```text
//! turbulence-load (--spec FILE|- | --json JSON) [--allow HOST]... [--max-users N]
//!                 [--max-rps R] [--max-total-requests N] [--threads N]
//!                 [--poll-ms N] [--pretty]
//! ```
//! The allow-list defaults to loopback (`127.0.0.1`, `localhost`, `[::1]`);
//! each `--allow` replaces the default. Other limits default to the
//! library's [`load::Limits::default`]. `--threads 1` (the default when
//! one CPU is available) uses a current-thread runtime. Exit status: 0
//! with a report, 1 for an invalid attack, 2 for bad usage.

use load::{AttackSpec, Limits, NeverStop};
use std::io::Read as _;
use std::process::ExitCode;
use std::time::Duration;

struct Args {
    spec: String,
    limits: Limits,
    threads: usize,
    poll: Duration,
    pretty: bool,
}

const USAGE: &str = "usage: turbulence-load (--spec FILE|- | --json JSON) [--allow HOST]... \
[--max-users N] [--max-rps R] [--max-total-requests N] [--threads N] [--poll-ms N] [--pretty]";

fn parse_args() -> Result<Args, String> {
    let mut spec = None;
    let mut allowed: Vec<String> = Vec::new();
    let mut limits = Limits::default();
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut poll = Duration::from_secs(1);
    let mut pretty = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        fn number<T: std::str::FromStr>(name: &str, text: String) -> Result<T, String> {
            text.parse()
                .map_err(|_| format!("{name}: not a number: {text}"))
        }
        match arg.as_str() {
            "--spec" => {
                let path = value("--spec")?;
                let mut text = String::new();
                if path == "-" {
                    std::io::stdin()
                        .read_to_string(&mut text)
                        .map_err(|e| format!("reading stdin: {e}"))?;
                } else {
                    text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
                }
                spec = Some(text);
            }
            "--json" => spec = Some(value("--json")?),
            "--allow" => allowed.push(value("--allow")?),
            "--max-users" => limits.max_users = number("--max-users", value("--max-users")?)?,
            "--max-rps" => limits.max_rps = number("--max-rps", value("--max-rps")?)?,
            "--max-total-requests" => {
                limits.max_total_requests =
                    number("--max-total-requests", value("--max-total-requests")?)?
            }
            "--threads" => threads = number("--threads", value("--threads")?)?,
            "--poll-ms" => poll = Duration::from_millis(number("--poll-ms", value("--poll-ms")?)?),
            "--pretty" => pretty = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument: {other}\n{USAGE}")),
        }
    }
    limits.allowed_hosts = if allowed.is_empty() {
        vec!["127.0.0.1".into(), "localhost".into(), "[::1]".into()]
    } else {
        allowed
    };
    Ok(Args {
        spec: spec.ok_or_else(|| format!("--spec or --json is required\n{USAGE}"))?,
        limits,
        threads: threads.max(1),
        poll,
        pretty,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let attack = serde_json::from_str(&args.spec)
        .map_err(|e| e.to_string())
        .and_then(|json| AttackSpec::from_json(json).map_err(|e| e.to_string()))
        .and_then(|spec| spec.validate(&args.limits).map_err(|e| e.to_string()));
    let attack = match attack {
        Ok(attack) => attack,
        Err(message) => {
            eprintln!("invalid attack: {message}");
            return ExitCode::from(1);
        }
    };
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let report = runtime.block_on(attack.run(&NeverStop, args.poll));
    let text = if args.pretty {
        serde_json::to_string_pretty(&report)
    } else {
        serde_json::to_string(&report)
    };
    println!("{}", text.expect("a report serializes"));
    ExitCode::SUCCESS
}
