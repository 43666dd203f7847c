//! The narrow views of AWS the activities need. Adapters over the SDK live
//! in [`crate::aws`]; tests use in-memory fakes.

use std::collections::BTreeMap;

use async_trait::async_trait;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub status: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub pending_count: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub arn: String,
    pub last_status: String,
}

#[async_trait]
pub trait Ecs: Send + Sync {
    async fn describe_service(&self, cluster: &str, service: &str) -> Result<Service, AwsError>;
    /// Tasks whose last status is RUNNING, of one service when given (by the
    /// task's `group`, `service:<name>`), else of the whole cluster.
    async fn running_tasks(
        &self,
        cluster: &str,
        service: Option<&str>,
    ) -> Result<Vec<Task>, AwsError>;
    async fn stop_task(&self, cluster: &str, task_arn: &str, reason: &str) -> Result<(), AwsError>;
    async fn update_desired_count(
        &self,
        cluster: &str,
        service: &str,
        desired_count: i32,
    ) -> Result<(), AwsError>;
    /// The tags of a service, or of the cluster when no service is given.
    async fn tags(
        &self,
        cluster: &str,
        service: Option<&str>,
    ) -> Result<BTreeMap<String, String>, AwsError>;
}

#[async_trait]
pub trait Alarms: Send + Sync {
    /// The state value (OK, ALARM, INSUFFICIENT_DATA) of each named alarm
    /// that exists; names missing from the answer do not exist.
    async fn states(&self, names: &[String]) -> Result<BTreeMap<String, String>, AwsError>;
    /// What each named metric alarm that exists watches (composite alarms
    /// watch other alarms, not a metric, and are left out).
    async fn definitions(&self, names: &[String]) -> Result<Vec<AlarmDefinition>, AwsError>;
}

/// A metric alarm: its metric, threshold and current state.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmDefinition {
    pub name: String,
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    /// `Sum`, `Average`, ... or an extended statistic such as `p99`.
    pub statistic: String,
    pub period_seconds: i32,
    pub threshold: Option<f64>,
    /// `GreaterThanOrEqualToThreshold`, ...
    pub comparison: String,
    pub state: String,
    /// When the alarm last changed state.
    pub state_updated: Option<time::OffsetDateTime>,
}

/// One CloudWatch metric over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    pub start: time::OffsetDateTime,
    pub end: time::OffsetDateTime,
    pub period_seconds: i32,
    /// `Sum`, `Average`, `Maximum`, ... or a percentile such as `p99`.
    pub statistic: String,
    pub unit: Option<String>,
}

#[async_trait]
pub trait Metrics: Send + Sync {
    /// GetMetricStatistics: one value per datapoint, oldest first.
    async fn statistics(&self, query: &MetricQuery) -> Result<Vec<f64>, AwsError>;
    /// GetMetricData with one MetricStat query: its values, oldest first.
    async fn data(&self, query: &MetricQuery) -> Result<Vec<f64>, AwsError> {
        Ok(self
            .series(query)
            .await?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }
    /// GetMetricData with one MetricStat query: (timestamp, value), oldest
    /// first.
    async fn series(
        &self,
        query: &MetricQuery,
    ) -> Result<Vec<(time::OffsetDateTime, f64)>, AwsError>;
}

#[async_trait]
pub trait DeadLetters: Send + Sync {
    async fn send(&self, queue_url: &str, body: &str) -> Result<(), AwsError>;
}

/// SSM parameters: where fault configurations live.
#[async_trait]
pub trait Parameters: Send + Sync {
    /// The value, or `None` when the parameter does not exist.
    async fn get(&self, name: &str) -> Result<Option<String>, AwsError>;
    async fn put(&self, put: &PutParameter) -> Result<(), AwsError>;
    /// `false` when there was nothing to delete.
    async fn delete(&self, name: &str) -> Result<bool, AwsError>;
    /// Create a String parameter unless one exists (a conditional write:
    /// of two callers, one wins). `false` when it existed.
    async fn create(&self, name: &str, value: &str) -> Result<bool, AwsError>;
    /// Every parameter under a path, recursively: (name, value).
    async fn list(&self, path: &str) -> Result<Vec<(String, String)>, AwsError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutParameter {
    pub name: String,
    pub value: String,
    /// String, StringList or SecureString.
    pub kind: String,
    pub description: Option<String>,
    pub overwrite: bool,
}

/// What one Lambda invocation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub status_code: i32,
    /// `Unhandled` when the function raised.
    pub function_error: Option<String>,
    pub payload: Vec<u8>,
}

#[async_trait]
pub trait Functions: Send + Sync {
    async fn invoke(
        &self,
        function_name: &str,
        payload: &[u8],
        invocation_type: &str,
        qualifier: Option<&str>,
    ) -> Result<Invocation, AwsError>;
    async fn tags(&self, function_name: &str) -> Result<BTreeMap<String, String>, AwsError>;
    /// What the function is set up with (lambda:GetFunction): runtime,
    /// layers, environment names, tags; Plan checks a fault target with it.
    async fn setup(
        &self,
        function_name: &str,
    ) -> Result<experiment::faults::FunctionSetup, AwsError>;
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

fn unavailable(service: &str) -> AwsError {
    AwsError::Other(format!("this function has no {service} client"))
}

#[async_trait]
impl Ecs for Unavailable {
    async fn describe_service(&self, _: &str, _: &str) -> Result<Service, AwsError> {
        Err(unavailable("ECS"))
    }
    async fn running_tasks(&self, _: &str, _: Option<&str>) -> Result<Vec<Task>, AwsError> {
        Err(unavailable("ECS"))
    }
    async fn stop_task(&self, _: &str, _: &str, _: &str) -> Result<(), AwsError> {
        Err(unavailable("ECS"))
    }
    async fn update_desired_count(&self, _: &str, _: &str, _: i32) -> Result<(), AwsError> {
        Err(unavailable("ECS"))
    }
    async fn tags(&self, _: &str, _: Option<&str>) -> Result<BTreeMap<String, String>, AwsError> {
        Err(unavailable("ECS"))
    }
}

#[async_trait]
impl Alarms for Unavailable {
    async fn states(&self, _: &[String]) -> Result<BTreeMap<String, String>, AwsError> {
        Err(unavailable("CloudWatch alarms"))
    }
    async fn definitions(&self, _: &[String]) -> Result<Vec<AlarmDefinition>, AwsError> {
        Err(unavailable("CloudWatch alarms"))
    }
}

#[async_trait]
impl Metrics for Unavailable {
    async fn statistics(&self, _: &MetricQuery) -> Result<Vec<f64>, AwsError> {
        Err(unavailable("CloudWatch metrics"))
    }
    async fn series(&self, _: &MetricQuery) -> Result<Vec<(time::OffsetDateTime, f64)>, AwsError> {
        Err(unavailable("CloudWatch metrics"))
    }
}

#[async_trait]
impl DeadLetters for Unavailable {
    async fn send(&self, _: &str, _: &str) -> Result<(), AwsError> {
        Err(unavailable("SQS"))
    }
}

#[async_trait]
impl Parameters for Unavailable {
    async fn get(&self, _: &str) -> Result<Option<String>, AwsError> {
        Err(unavailable("SSM"))
    }
    async fn put(&self, _: &PutParameter) -> Result<(), AwsError> {
        Err(unavailable("SSM"))
    }
    async fn delete(&self, _: &str) -> Result<bool, AwsError> {
        Err(unavailable("SSM"))
    }
    async fn create(&self, _: &str, _: &str) -> Result<bool, AwsError> {
        Err(unavailable("SSM"))
    }
    async fn list(&self, _: &str) -> Result<Vec<(String, String)>, AwsError> {
        Err(unavailable("SSM"))
    }
}

#[async_trait]
impl Functions for Unavailable {
    async fn invoke(
        &self,
        _: &str,
        _: &[u8],
        _: &str,
        _: Option<&str>,
    ) -> Result<Invocation, AwsError> {
        Err(unavailable("Lambda"))
    }
    async fn tags(&self, _: &str) -> Result<BTreeMap<String, String>, AwsError> {
        Err(unavailable("Lambda"))
    }
    async fn setup(&self, _: &str) -> Result<experiment::faults::FunctionSetup, AwsError> {
        Err(unavailable("Lambda"))
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
