//! Fault injection for any Lambda: one injector, two front ends. Each mode
//! with its own probability, it adds latency, answers a status code instead
//! of the handler, or fails with an `InjectedFault` error — read from a
//! chaos configuration in SSM, cached per execution environment, and off
//! (at no cost) when none is configured.
//!
//! - The core (always built, no lambda_runtime or tower): [`config`] (the
//!   formats: failure-lambda 1.0, upgraded 0.x and chaos_lambda 0.3, plus
//!   `expires_at`; pure), [`Injector`] (the TTL cache with its single
//!   refresh and jitter, and the decision for one JSON event and deadline),
//!   [`Dice`], [`ConfigSource`] and [`Settings`].
//! - The tower layer for a Rust handler (feature `layer`, default):
//!   [`FaultLayer`] / [`FaultService`], [`FaultResponse`] for typed
//!   responses, [`FaultError`] as a `Diagnostic`.
//! - The Runtime API proxy for every other runtime is the
//!   `turbulence-extension` crate, over the same [`Injector`].
//!
//! ```no_run
//! # #[cfg(all(feature = "layer", feature = "ssm"))]
//! # mod example {
//! use inject::FaultLayer;
//! use lambda_runtime::tower::ServiceBuilder;
//! use lambda_runtime::{service_fn, Error, LambdaEvent};
//! use serde_json::Value;
//!
//! async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
//!     Ok(event.payload)
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Error> {
//!     let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//!     lambda_runtime::run(
//!         ServiceBuilder::new()
//!             .layer(FaultLayer::from_env(&sdk_config))
//!             .service(service_fn(handler)),
//!     )
//!     .await
//! }
//! # }
//! ```
//!
//! Fail safe: a missing, unreadable, invalid, disabled or expired
//! configuration injects nothing; the reason is logged once.

mod cache;
pub mod config;
mod dice;
#[cfg(feature = "layer")]
mod error;
#[cfg(feature = "layer")]
mod layer;
mod plan;
mod response;
mod source;

pub use cache::{Builder, Current, Injector, DEFAULT_FETCH_TIMEOUT};
pub use config::{ConfigError, FaultConfig};
pub use dice::{Dice, SeededDice};
#[cfg(feature = "layer")]
pub use error::{FaultError, InjectedFault};
#[cfg(feature = "layer")]
pub use layer::{FaultFuture, FaultLayer, FaultService};
pub use plan::{Decision, Outcome, Plan, DEADLINE_MARGIN};
pub use response::{injected_body, FaultResponse};
#[cfg(feature = "ssm")]
pub use source::SsmSource;
pub use source::{
    ConfigSource, Settings, SourceError, StaticSource, DEFAULT_JITTER, DEFAULT_TTL, JITTER_VAR,
    LEGACY_PARAM_VAR, MIN_ENV_TTL, PARAM_VAR, TTL_VAR,
};

/// The `errorType` of an injected exception, from either front end.
pub const INJECTED_FAULT: &str = "InjectedFault";

#[cfg(all(test, feature = "layer"))]
mod tests;
