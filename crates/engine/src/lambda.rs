//! What every function's `main` does once, at cold start: logging and the
//! AWS clients. Nothing here runs per invocation.

use activities::elbv2::LoadBalancing;
use activities::{
    Alarms, DeadLetters, Ecs, Executions, Functions, Metrics, Parameters, Ports, Unavailable,
};
use activities_aws::{
    AwsAlarms, AwsDeadLetters, AwsEcs, AwsFunctions, AwsLoadBalancing, AwsMetrics, AwsParameters,
};
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

/// The AWS clients a function calls, from the standard configuration chain
/// (region, credentials, and `AWS_ENDPOINT_URL` for the local stack). A
/// function's `main` asks for the ones it needs (`Aws::load().await
/// .with_ecs()...`); the ports it did not ask for are [`Unavailable`], so
/// the SDK clients it never calls are not linked into its bootstrap.
pub struct Aws {
    config: aws_config::SdkConfig,
    ecs: Option<Box<dyn Ecs>>,
    alarms: Option<Box<dyn Alarms>>,
    metrics: Option<Box<dyn Metrics>>,
    dead_letters: Option<Box<dyn DeadLetters>>,
    parameters: Option<Box<dyn Parameters>>,
    functions: Option<Box<dyn Functions>>,
    load_balancing: Option<Box<dyn LoadBalancing>>,
    executions: Option<Box<dyn Executions>>,
    /// The environment at cold start.
    pub environment: std::collections::BTreeMap<String, String>,
}

impl Aws {
    pub async fn load() -> Aws {
        Aws {
            config: activities_aws::sdk_config().await,
            ecs: None,
            alarms: None,
            metrics: None,
            dead_letters: None,
            parameters: None,
            functions: None,
            load_balancing: None,
            executions: None,
            environment: std::env::vars().collect(),
        }
    }

    pub fn with_ecs(mut self) -> Aws {
        self.ecs = Some(Box::new(AwsEcs(aws_sdk_ecs::Client::new(&self.config))));
        self
    }

    pub fn with_alarms(mut self) -> Aws {
        let client = aws_sdk_cloudwatch::Client::new(&self.config);
        self.alarms = Some(Box::new(AwsAlarms(client)));
        self
    }

    pub fn with_metrics(mut self) -> Aws {
        let client = aws_sdk_cloudwatch::Client::new(&self.config);
        self.metrics = Some(Box::new(AwsMetrics(client)));
        self
    }

    pub fn with_dead_letters(mut self) -> Aws {
        let client = aws_sdk_sqs::Client::new(&self.config);
        self.dead_letters = Some(Box::new(AwsDeadLetters(client)));
        self
    }

    pub fn with_parameters(mut self) -> Aws {
        let client = aws_sdk_ssm::Client::new(&self.config);
        self.parameters = Some(Box::new(AwsParameters(client)));
        self
    }

    pub fn with_functions(mut self) -> Aws {
        let client = aws_sdk_lambda::Client::new(&self.config);
        self.functions = Some(Box::new(AwsFunctions(client)));
        self
    }

    pub fn with_load_balancing(mut self) -> Aws {
        let client = aws_sdk_elasticloadbalancingv2::Client::new(&self.config);
        self.load_balancing = Some(Box::new(AwsLoadBalancing(client)));
        self
    }

    /// Step Functions: background activities and the janitor.
    pub fn with_executions(mut self) -> Aws {
        let client = aws_sdk_sfn::Client::new(&self.config);
        self.executions = Some(Box::new(activities_aws::AwsExecutions(client)));
        self
    }

    /// Every client: what running any activity needs.
    pub fn with_everything(self) -> Aws {
        self.with_ecs()
            .with_alarms()
            .with_metrics()
            .with_parameters()
            .with_functions()
            .with_load_balancing()
    }

    pub fn ports(&self) -> Ports<'_> {
        Ports {
            ecs: self.ecs.as_deref().unwrap_or(&Unavailable),
            alarms: self.alarms.as_deref().unwrap_or(&Unavailable),
            metrics: self.metrics.as_deref().unwrap_or(&Unavailable),
            parameters: self.parameters.as_deref().unwrap_or(&Unavailable),
            functions: self.functions.as_deref().unwrap_or(&Unavailable),
            load_balancing: self.load_balancing.as_deref().unwrap_or(&Unavailable),
            executions: self.executions.as_deref().unwrap_or(&Unavailable),
            ..Ports::unavailable(&self.environment)
        }
    }

    pub fn dead_letters(&self) -> &dyn DeadLetters {
        self.dead_letters.as_deref().unwrap_or(&Unavailable)
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
