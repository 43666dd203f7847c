//! `turbulence-extension`: Lambda fault injection for every runtime, with
//! no code change. A layer ships this binary and an exec wrapper
//! (`layer/wrapper`, installed as `/opt/turbulence/wrapper`); a function
//! opts in with `AWS_LAMBDA_EXEC_WRAPPER=/opt/turbulence/wrapper` and
//! `FAILURE_INJECTION_PARAM`.
//!
//! The wrapper starts the proxy with an inherited pipe, reads the proxy's
//! address from it (a line no other process can write), points
//! `AWS_LAMBDA_RUNTIME_API` there and execs the runtime; if the proxy is
//! missing, fails or is not ready in time, the runtime gets the real API.
//!
//! - [`settings`]: the environment, read once.
//! - [`proxy`]: the Runtime API proxy and the faults on `/next`.
//! - [`ssm`]: the configuration, read with a signed GetParameter.
//!
//! The decision, its dice and the TTL cache are `inject`'s [`Injector`],
//! the one the Rust layer uses.

pub mod proxy;
pub mod settings;
pub mod ssm;

use std::net::SocketAddr;
use std::sync::Arc;

use http::uri::Authority;
use inject::Injector;
use tokio::net::TcpListener;

pub use proxy::Proxy;
pub use settings::Settings;

/// Why the proxy did not start (the wrapper then gives the runtime the
/// real Runtime API).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{var} is not set: there is no Runtime API to proxy", var = settings::RUNTIME_API_VAR)]
    NoUpstream,
    #[error("{var}={0:?} is not host:port", var = settings::RUNTIME_API_VAR)]
    BadUpstream(String),
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot signal readiness: {0}")]
    Ready(#[source] std::io::Error),
}

/// The injector the settings ask for: `None` without a parameter.
pub fn injector(settings: &Settings) -> Option<Injector> {
    let name = settings.inject.parameter.as_ref()?;
    Some(
        Injector::builder(ssm::SsmParameter::new(name, settings.aws.clone()))
            .ttl(settings.inject.ttl)
            .jitter(settings.inject.jitter)
            .build(),
    )
}

/// Bind the proxy's port and build it; nothing is served yet.
pub async fn start(
    settings: &Settings,
    injector: Option<Injector>,
) -> Result<(TcpListener, SocketAddr, Arc<Proxy>), StartError> {
    let upstream = settings.upstream.as_deref().ok_or(StartError::NoUpstream)?;
    let authority: Authority = upstream
        .parse()
        .map_err(|_| StartError::BadUpstream(upstream.to_string()))?;
    if authority.port_u16().is_none() {
        return Err(StartError::BadUpstream(upstream.to_string()));
    }
    let port = settings.port;
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| StartError::Bind { port, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { port, source })?;
    Ok((listener, addr, Proxy::new(authority, injector)))
}
