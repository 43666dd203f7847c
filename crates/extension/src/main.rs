//! turbulence-extension: the Runtime API proxy the layer's wrapper starts.
//!
//!   turbulence-extension --ready-fd N
//!
//! Binds 127.0.0.1 (`TURBULENCE_PROXY_PORT`, default: a port the kernel
//! picks), writes `127.0.0.1:PORT` and a newline to file descriptor N (the
//! wrapper's pipe) and closes it, then proxies `AWS_LAMBDA_RUNTIME_API`.
//! Exits non-zero, having written nothing, when it cannot start: the
//! wrapper then gives the runtime the real Runtime API.

use std::io::Write;
use std::process::ExitCode;

use turbulence_extension::{injector, start, Settings, StartError};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut ready_fd = None;
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--ready-fd", Some(fd)) => match fd.parse::<u32>() {
                Ok(fd) => ready_fd = Some(fd),
                Err(_) => return usage(),
            },
            _ => return usage(),
        }
    }
    let settings = Settings::from_env();
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_max_level(settings.log_level)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the proxy's runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let injector = injector(&settings);
        let (listener, addr, proxy) = match start(&settings, injector.clone()).await {
            Ok(started) => started,
            Err(e) => {
                tracing::error!(error = %e, "proxy not started: the runtime gets the real Runtime API");
                return ExitCode::FAILURE;
            }
        };
        if let Some(fd) = ready_fd {
            if let Err(e) = signal_ready(fd, &addr.to_string()) {
                tracing::error!(error = %StartError::Ready(e), "proxy not started");
                return ExitCode::FAILURE;
            }
        }
        tracing::info!(
            listen = %addr,
            upstream = settings.upstream.as_deref().unwrap_or_default(),
            parameter = settings.inject.parameter.as_deref().unwrap_or_default(),
            "fault injection proxy ready"
        );
        // The first read overlaps the runtime's own start.
        if let Some(injector) = injector {
            tokio::spawn(async move {
                injector.plan().await;
            });
        }
        proxy.serve(listener).await;
        ExitCode::SUCCESS
    })
}

/// Write the address to the wrapper's pipe. Through `/proc/self/fd`, so no
/// unsafe descriptor juggling; the wrapper reads one line, then EOF once
/// the proxy exits, whatever else runs on the machine.
fn signal_ready(fd: u32, addr: &str) -> std::io::Result<()> {
    let mut pipe = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{fd}"))?;
    pipe.write_all(format!("{addr}\n").as_bytes())
}

fn usage() -> ExitCode {
    eprintln!("usage: turbulence-extension [--ready-fd N]");
    ExitCode::from(2)
}
