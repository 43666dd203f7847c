//! What every function's `main` does once, at cold start: logging and the
//! AWS clients. Nothing here runs per invocation.

use activities::aws::{AwsAlarms, AwsDeadLetters, AwsEcs, AwsFunctions, AwsMetrics, AwsParameters};
use activities::{Executions, NoExecutions, Ports};
use std::time::{Duration, SystemTime};

/// JSON logs in Lambda (`AWS_LAMBDA_LOG_FORMAT=JSON`), at the level of
/// `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (one level such as `debug`; INFO
/// otherwise). The same format as `lambda_runtime::tracing::
/// init_default_subscriber`, without its `EnvFilter`, whose regex engine
/// would be most of a megabyte of every bootstrap.
pub fn init_tracing() {
    use tracing_subscriber::filter::LevelFilter;
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_max_level(level);
    if json {
        fmt.json().init();
    } else {
        fmt.init();
    }
}

/// The AWS clients, from the standard configuration chain (region,
/// credentials, and `AWS_ENDPOINT_URL` for the local stack).
pub struct Aws {
    pub ecs: AwsEcs,
    pub alarms: AwsAlarms,
    pub metrics: AwsMetrics,
    pub dead_letters: AwsDeadLetters,
    pub parameters: AwsParameters,
    pub functions: AwsFunctions,
    /// Only the functions that start, follow or stop executions have a
    /// client ([`Aws::with_executions`]); the others stay without it.
    pub executions: Option<Box<dyn Executions>>,
    /// The environment at cold start.
    pub environment: std::collections::BTreeMap<String, String>,
}

impl Aws {
    pub async fn load() -> Aws {
        let config = activities::aws::sdk_config().await;
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
        Aws {
            ecs: AwsEcs(aws_sdk_ecs::Client::new(&config)),
            alarms: AwsAlarms(cloudwatch.clone()),
            metrics: AwsMetrics(cloudwatch),
            dead_letters: AwsDeadLetters(aws_sdk_sqs::Client::new(&config)),
            parameters: AwsParameters(aws_sdk_ssm::Client::new(&config)),
            functions: AwsFunctions(aws_sdk_lambda::Client::new(&config)),
            executions: None,
            environment: std::env::vars().collect(),
        }
    }

    /// With a Step Functions client, for background activities and the janitor.
    pub async fn with_executions(mut self) -> Aws {
        let config = activities::aws::sdk_config().await;
        self.executions = Some(Box::new(activities::aws::AwsExecutions(
            aws_sdk_sfn::Client::new(&config),
        )));
        self
    }

    pub fn ports(&self) -> Ports<'_> {
        Ports {
            ecs: &self.ecs,
            alarms: &self.alarms,
            metrics: &self.metrics,
            parameters: &self.parameters,
            functions: &self.functions,
            executions: self.executions.as_deref().unwrap_or(&NoExecutions),
            environment: &self.environment,
        }
    }
}

/// Time left before the invocation's deadline.
pub fn time_left(ctx: &lambda_runtime::Context) -> Option<Duration> {
    ctx.deadline().duration_since(SystemTime::now()).ok()
}

/// Parse the state machine's payload, naming what was wrong with it.
pub fn parse<T: serde::de::DeserializeOwned>(
    payload: serde_json::Value,
) -> Result<T, crate::Failure> {
    serde_json::from_value(payload)
        .map_err(|e| crate::Failure::StateInvalid(format!("unreadable input: {e}")))
}
