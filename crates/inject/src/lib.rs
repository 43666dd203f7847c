//! Fault injection for any Rust Lambda: a `tower` layer over the typed
//! handler that, each mode with its own probability, adds latency, answers
//! a status code instead of the handler, or fails with an `InjectedFault`
//! error — read from a chaos configuration in SSM, cached per execution
//! environment, and off (at no cost) when none is configured.
//!
//! ```no_run
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
//! ```
//!
//! - [`config`]: the configuration formats (failure-lambda 1.0, upgraded
//!   0.x and chaos_lambda 0.3, plus `expires_at`), pure, for validation
//!   elsewhere too.
//! - [`FaultLayer`] / [`FaultService`]: the layer and its cache.
//! - [`ConfigSource`] ([`SsmSource`], [`StaticSource`]) and [`Dice`]: what
//!   tests replace.
//! - [`FaultResponse`]: how an injected status becomes your response type.
//! - [`FaultError`]: your error or the injected one, both a `Diagnostic`.
//!
//! Fail safe: a missing, unreadable, invalid, disabled or expired
//! configuration injects nothing; the reason is logged once.

pub mod config;
mod dice;
mod error;
mod layer;
mod plan;
mod response;
mod source;

pub use config::{ConfigError, FaultConfig};
pub use dice::{Dice, SeededDice};
pub use error::{FaultError, InjectedFault, INJECTED_FAULT};
pub use layer::{Builder, FaultFuture, FaultLayer, FaultService, DEFAULT_FETCH_TIMEOUT};
pub use plan::DEADLINE_MARGIN;
pub use response::{injected_body, FaultResponse};
#[cfg(feature = "ssm")]
pub use source::SsmSource;
pub use source::{
    ConfigSource, Settings, SourceError, StaticSource, DEFAULT_TTL, LEGACY_PARAM_VAR, MIN_ENV_TTL,
    PARAM_VAR, TTL_VAR,
};

#[cfg(test)]
mod tests;
