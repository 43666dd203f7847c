//! The narrow views of AWS the activities need. Each service's port is in
//! its module ([`crate::ecs::Ecs`], ...) beside the activities that use it;
//! here are the error they share and the ports of the machinery around the
//! activities (the dead-letter queue, Step Functions). Adapters over the SDK
//! are the `activities-aws` crate; tests use the in-memory fakes.

use async_trait::async_trait;

pub use crate::awslambda::{Functions, Invocation};
pub use crate::cloudwatch::{AlarmDefinition, Alarms, MetricQuery, Metrics};
pub use crate::ecs::{Ecs, Service, Task};
pub use crate::ssm::{Parameters, PutParameter};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    /// The API said slow down; nothing was changed, so a retry is safe.
    #[error("throttled by AWS: {0}")]
    Throttled(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Other(String),
}

/// The dead-letter queue: where failed runs' journals go.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    async fn send(&self, queue_url: &str, body: &str) -> Result<(), AwsError>;
}

/// Step Functions executions: background activities run in executions of
/// their own; the janitor reads ended ones.
#[async_trait]
pub trait Executions: Send + Sync {
    /// Start an execution; one already started with this name and input
    /// (a retried call) counts as started.
    async fn start(&self, state_machine: &str, name: &str, input: &str) -> Result<(), AwsError>;
    /// Stop an execution; one already over is left as it is.
    async fn stop(&self, execution: &str, cause: &str) -> Result<(), AwsError>;
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED; `None` when there
    /// is no such execution.
    async fn status(&self, execution: &str) -> Result<Option<String>, AwsError>;
    /// The output of a SUCCEEDED execution.
    async fn output(&self, execution: &str) -> Result<Option<serde_json::Value>, AwsError>;
    /// The newest state document the execution passed to a function, from
    /// its history; its input when it never reached one.
    async fn last_state(&self, execution: &str) -> Result<Option<serde_json::Value>, AwsError>;
}

/// The port of a service a function has no client for: every call fails,
/// naming the service. Each function binary builds only the clients it
/// calls (see `engine::lambda::Aws`), so the others' code stays out of its
/// bootstrap.
pub struct Unavailable;

pub(crate) fn unavailable(service: &str) -> AwsError {
    AwsError::Other(format!("this function has no {service} client"))
}

#[async_trait]
impl DeadLetters for Unavailable {
    async fn send(&self, _: &str, _: &str) -> Result<(), AwsError> {
        Err(unavailable("SQS"))
    }
}

#[async_trait]
impl Executions for Unavailable {
    async fn start(&self, _: &str, _: &str, _: &str) -> Result<(), AwsError> {
        Err(unavailable("Step Functions"))
    }
    async fn stop(&self, _: &str, _: &str) -> Result<(), AwsError> {
        Err(unavailable("Step Functions"))
    }
    async fn status(&self, _: &str) -> Result<Option<String>, AwsError> {
        Err(unavailable("Step Functions"))
    }
    async fn output(&self, _: &str) -> Result<Option<serde_json::Value>, AwsError> {
        Err(unavailable("Step Functions"))
    }
    async fn last_state(&self, _: &str) -> Result<Option<serde_json::Value>, AwsError> {
        Err(unavailable("Step Functions"))
    }
}
