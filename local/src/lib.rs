//! The local stack from Rust: deploys Turbulence into moto (started by
//! `scripts/stack start`) and drives experiment executions there. Used by the
//! end-to-end tests and by the `turbulence-local` demo binary.
//!
//! Stacks are template.yaml itself, translated and created in moto's
//! CloudFormation by `local/stack.py`; moto runs the state machine, and
//! `local/stack.py` runs the real function binaries for every invoke of a
//! deployed function (each with its own environment and credentials).

mod demo_api;
pub mod manifest;
pub mod runtimes;
mod zip;

pub use demo_api::DemoApi;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, DesiredStatus, LaunchType, NetworkMode, Tag as EcsTag,
};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use aws_sdk_sfn::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sfn::types::ExecutionStatus;
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, QueueAttributeName};
use serde_json::Value;

/// CloudWatch alarm states, for [`LocalStack::set_alarm_state`].
pub use aws_sdk_cloudwatch::types::StateValue as AlarmState;

/// Environment variable holding the local stack's endpoint
/// (`.local-stack/env`, written by `scripts/stack start`).
pub const ENDPOINT_VAR: &str = "TURBULENCE_ENDPOINT";
/// Tag read by the ECS stand-in in `local/stack.py`.
pub const RECONCILER_TAG: &str = "turbulence-local:reconciler";
const REGION: &str = "us-east-1";
const LAMBDA_ROLE: &str = "turbulence-local-lambda";
/// How long `create_ecs_target` waits for the stand-in to start the tasks.
const TASKS_READY_TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(200);
/// Upper bound on pages/rounds of any listing loop.
const MAX_PAGES: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{ENDPOINT_VAR} is not set: start the local stack with `scripts/stack start`, then `source .local-stack/env`")]
    NoEndpoint,
    #[error("the local stack must be on loopback (127.0.0.1/localhost), not {0}")]
    NotLoopback(String),
    #[error("{what}: {message}")]
    Aws { what: String, message: String },
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    #[error("state machine definition {path}: {message}")]
    Definition { path: PathBuf, message: String },
    #[error("{0}")]
    Unexpected(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Turns an SDK error into [`Error::Aws`], naming what was being done.
fn aws<E>(what: impl Into<String>) -> impl FnOnce(E) -> Error
where
    E: std::error::Error,
{
    let what = what.into();
    move |e| Error::Aws {
        what,
        message: DisplayErrorContext(&e).to_string(),
    }
}

fn error_code<E: ProvideErrorMetadata>(e: &E) -> Option<&str> {
    e.code()
}

/// The workspace root as seen at compile time (the state machine definition
/// is read from there at run time, so ASL edits need no rebuild).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Clients for every service of the local stack, pointed at moto.
#[derive(Clone, Debug)]
pub struct LocalStack {
    endpoint: String,
    root: PathBuf,
    ecs: aws_sdk_ecs::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    sqs: aws_sdk_sqs::Client,
    sfn: aws_sdk_sfn::Client,
    lambda: aws_sdk_lambda::Client,
    iam: aws_sdk_iam::Client,
    autoscaling: aws_sdk_applicationautoscaling::Client,
    ssm: aws_sdk_ssm::Client,
    elbv2: aws_sdk_elasticloadbalancingv2::Client,
}

/// One deployed copy of the control plane's state machine and its queue and alarm.
#[derive(Clone, Debug)]
pub struct Stack {
    pub prefix: String,
    pub state_machine_arn: String,
    pub dlq_url: String,
    pub abort_alarm: String,
    /// This stack's kill switch parameter (not set).
    pub kill_switch: String,
    /// The demo target function deployed with the stack (`<prefix>-moderation`).
    pub moderation_function: String,
    /// The stack's `FaultParameterPrefix` (`/<prefix>/faults/`).
    pub fault_parameter_prefix: String,
}

impl Stack {
    /// The SSM parameter the stack's moderation function reads its faults from.
    pub fn moderation_fault_parameter(&self) -> String {
        format!("{}moderation", self.fault_parameter_prefix)
    }
}

/// The stack parameters the local stack deploys template.yaml with: the
/// template's defaults but for what must be apart per test (kill switch,
/// the fault parameter prefix) and what loopback needs (the
/// load allow-list, a rate cap above the tests' attacks), and an example
/// abort alarm on a metric nobody publishes (tests set its state).
pub fn stack_parameters(prefix: &str) -> BTreeMap<String, String> {
    [
        ("KillSwitchParameter", format!("/{prefix}/kill-switch")),
        ("FaultParameterPrefix", format!("/{prefix}/faults/")),
        ("LoadAllowedHosts", manifest::LOAD_ALLOWED_HOSTS.to_string()),
        ("LoadMaxRequestsPerSecond", "2000".to_string()),
        (
            "ExampleAbortMetricNamespace",
            "Turbulence/Local".to_string(),
        ),
        ("ExampleAbortMetricName", "AbortSignal".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// What a target function is set to (`function_settings`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionSettings {
    pub reserved: Option<i32>,
    pub timeout: i32,
    pub memory_size: i32,
}

/// What `create_ecs_target` should create.
#[derive(Clone, Debug)]
pub struct EcsTargetSpec {
    /// Cluster name; the service is `<prefix>-svc`.
    pub prefix: String,
    pub desired_count: i32,
    /// Registers an Application Auto Scaling target with this MinCapacity.
    pub min_capacity: Option<i32>,
    pub reconciler: Reconciler,
    /// More tags on the service (e.g. the opt-in tag the guards require).
    pub tags: Vec<(String, String)>,
}

impl EcsTargetSpec {
    pub fn new(prefix: impl Into<String>, desired_count: i32) -> Self {
        Self {
            prefix: prefix.into(),
            desired_count,
            min_capacity: None,
            reconciler: Reconciler::On,
            tags: vec![(manifest::OPT_IN_TAG.into(), "true".into())],
        }
    }

    /// A service that has not opted in to chaos.
    pub fn without_opt_in(mut self) -> Self {
        self.tags.retain(|(k, _)| k != manifest::OPT_IN_TAG);
        self
    }
}

/// How the ECS stand-in of `local/stack.py` treats a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reconciler {
    /// Scheduler (tasks = desiredCount) and auto scaling (desiredCount >= MinCapacity).
    On,
    /// Scheduler only: ECS without auto scaling.
    TasksOnly,
    /// Nothing: the initial tasks are started, then nobody replaces or scales.
    Off,
}

impl Reconciler {
    fn tag_value(self) -> &'static str {
        match self {
            Reconciler::On => "on",
            Reconciler::TasksOnly => "tasks-only",
            Reconciler::Off => "off",
        }
    }
}

/// A load balancer and a target group of IP targets, for the elbv2
/// activities (`create_load_balancing_target`).
#[derive(Clone, Debug)]
pub struct LoadBalancingTarget {
    pub target_group: String,
    pub target_group_arn: String,
    pub load_balancer: String,
    pub load_balancer_arn: String,
}

#[derive(Clone, Debug)]
pub struct EcsTarget {
    pub cluster: String,
    pub service: String,
    pub task_definition_arn: String,
}

/// How an execution ended.
#[derive(Clone, Debug)]
pub struct Finished {
    /// SUCCEEDED, FAILED, TIMED_OUT or ABORTED.
    pub status: String,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// The execution output, when it has one and it is JSON.
    pub output: Option<Value>,
}

impl Finished {
    pub fn succeeded(&self) -> bool {
        self.status == "SUCCEEDED"
    }
}

/// One execution history event: the command-line client's, so the tests
/// read histories as `turbulence run` does.
pub use turbulence_cli::events::Event;

/// Names of the states entered, in order: one per state transition.
pub fn states_entered(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter(|e| e.is_state_entered())
        .filter_map(|e| e.state.as_deref())
        .collect()
}

/// The output of the last `Journal` task: the journal, also for failed runs
/// (whose execution output is empty because they end in a Fail state).
pub use turbulence_cli::journal::from_history as journal;

impl LocalStack {
    /// Clients for the local stack at `endpoint` (loopback only). No request
    /// is sent until used.
    pub async fn connect(endpoint: &str) -> Result<Self> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        if !is_loopback_url(&endpoint) {
            return Err(Error::NotLoopback(endpoint));
        }
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .region(Region::new(REGION))
            .credentials_provider(aws_sdk_sfn::config::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "turbulence-local",
            ))
            // Against a local endpoint a failure is a bug to see, not a blip
            // to retry (and a retried StartExecution would clash on its name).
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_timeout(Duration::from_secs(60))
                    .build(),
            )
            .load()
            .await;
        Ok(Self {
            endpoint,
            root: workspace_root(),
            ecs: aws_sdk_ecs::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            sfn: aws_sdk_sfn::Client::new(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            autoscaling: aws_sdk_applicationautoscaling::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&config),
        })
    }

    /// Connects to `$TURBULENCE_ENDPOINT`.
    /// [`LocalStack::from_env`] for the end-to-end tests: a missing stack
    /// panics with how to start one.
    pub async fn for_tests() -> Self {
        Self::from_env().await.unwrap_or_else(|e| {
            panic!("{e} (run the tests with scripts/test, which starts the local stack)")
        })
    }

    /// [`LocalStack::for_tests`] with a stack of its own deployed under a
    /// unique prefix made from `name` (`stack.prefix`), so tests run side by
    /// side against one local stack.
    pub async fn for_tests_with_stack(name: &str) -> (Self, Stack) {
        let local = Self::for_tests().await;
        let stack = local
            .deploy_stack(&unique_name(name))
            .await
            .expect("deploy the stack");
        (local, stack)
    }

    pub async fn from_env() -> Result<Self> {
        match std::env::var(ENDPOINT_VAR) {
            Ok(url) if !url.trim().is_empty() => Self::connect(url.trim()).await,
            _ => Err(Error::NoEndpoint),
        }
    }

    /// Reads the state machine definition under `root` instead of this
    /// crate's workspace.
    pub fn with_workspace_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = root.into();
        self
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
    pub fn ecs(&self) -> &aws_sdk_ecs::Client {
        &self.ecs
    }
    pub fn cloudwatch(&self) -> &aws_sdk_cloudwatch::Client {
        &self.cloudwatch
    }
    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.sqs
    }
    pub fn ssm(&self) -> &aws_sdk_ssm::Client {
        &self.ssm
    }

    /// An SSM parameter's value, `None` when it does not exist.
    pub async fn parameter(&self, name: &str) -> Result<Option<String>> {
        match self.ssm.get_parameter().name(name).send().await {
            Ok(out) => Ok(out.parameter.and_then(|p| p.value)),
            Err(e) if error_code(&e) == Some("ParameterNotFound") => Ok(None),
            Err(e) => Err(aws(format!("GetParameter {name}"))(e)),
        }
    }

    pub fn sfn(&self) -> &aws_sdk_sfn::Client {
        &self.sfn
    }

    /// Make the stack answer the next `count` calls of `service`'s
    /// `operation` with a throttling error (`local/stack.py`'s
    /// `/_turbulence/throttle`); `count` 0 disarms it.
    pub async fn throttle(&self, service: &str, operation: &str, count: u32) -> Result<()> {
        let body = serde_json::json!({"service": service, "operation": operation, "count": count})
            .to_string();
        let (status, answer) = self.control("POST", "/_turbulence/throttle", &body).await?;
        if status != 200 {
            return Err(Error::Unexpected(format!(
                "throttle: HTTP {status}: {answer}"
            )));
        }
        Ok(())
    }

    /// How often `function` was invoked through the stack, and when the
    /// newest invocation started (ms since the epoch): `local/stack.py`'s
    /// `/_turbulence/invocations`. `(0, 0)` when never.
    pub async fn invocations(&self, function: &str) -> Result<(u64, u64)> {
        let (_, answer) = self.control("GET", "/_turbulence/invocations", "").await?;
        let all: Value = serde_json::from_str(&answer)
            .map_err(|e| Error::Unexpected(format!("invocations: {e}: {answer}")))?;
        let seen = &all["functions"][function];
        Ok((
            seen["count"].as_u64().unwrap_or(0),
            seen["last_started_unix_ms"].as_u64().unwrap_or(0),
        ))
    }

    /// How many calls the stack has throttled so far, per rule.
    pub async fn throttled(&self) -> Result<Value> {
        let (_, answer) = self.control("GET", "/_turbulence/throttle", "").await?;
        serde_json::from_str(&answer).map_err(|e| Error::Unexpected(format!("throttle: {e}")))
    }

    /// One HTTP/1.1 request to the stack's control endpoints (loopback only,
    /// which [`LocalStack::connect`] checked).
    async fn control(&self, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
        self.request(method, path, "Content-Type: application/json\r\n", body)
            .await
    }

    /// `n` EC2 instances (moto's default AMI), for container instances to
    /// stand on. A query request of its own: the tests need no EC2 SDK
    /// client (its build alone takes minutes) for this one call; moto
    /// routes it by the credential scope and checks no signature.
    async fn run_instances(&self, n: usize) -> Result<Vec<String>> {
        let body = format!(
            "Action=RunInstances&Version=2016-11-15&ImageId=ami-12c6146b&MinCount={n}&MaxCount={n}"
        );
        let headers = format!(
            "Content-Type: application/x-www-form-urlencoded\r\nAuthorization: AWS4-HMAC-SHA256 \
             Credential=testing/20260101/{REGION}/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n"
        );
        let (status, answer) = self.request("POST", "/", &headers, &body).await?;
        let ids: Vec<String> = answer
            .split("<instanceId>")
            .skip(1)
            .filter_map(|rest| {
                rest.split_once("</instanceId>")
                    .map(|(id, _)| id.to_string())
            })
            .collect();
        if status != 200 || ids.len() != n {
            return Err(Error::Unexpected(format!(
                "RunInstances: {status} {answer}"
            )));
        }
        Ok(ids)
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &str,
        body: &str,
    ) -> Result<(u16, String)> {
        let authority = self
            .endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        http_call(&authority, method, path, headers, body).await
    }

    /// The subnets of moto's default VPC and that VPC: a query request of
    /// its own, as [`LocalStack::run_instances`] makes.
    async fn default_subnets(&self) -> Result<(Vec<String>, String)> {
        let body = "Action=DescribeSubnets&Version=2016-11-15&Filter.1.Name=default-for-az&Filter.1.Value.1=true";
        let headers = format!(
            "Content-Type: application/x-www-form-urlencoded\r\nAuthorization: AWS4-HMAC-SHA256 \
             Credential=testing/20260101/{REGION}/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n"
        );
        let (status, answer) = self.request("POST", "/", &headers, body).await?;
        let values = |tag: &str| -> Vec<String> {
            answer
                .split(&format!("<{tag}>"))
                .skip(1)
                .filter_map(|rest| {
                    rest.split_once(&format!("</{tag}>"))
                        .map(|(v, _)| v.to_string())
                })
                .collect()
        };
        let (subnets, vpcs) = (values("subnetId"), values("vpcId"));
        match vpcs.first() {
            Some(vpc) if status == 200 && subnets.len() >= 2 => Ok((subnets, vpc.clone())),
            _ => Err(Error::Unexpected(format!(
                "DescribeSubnets: {status} {answer}"
            ))),
        }
    }

    /// An application load balancer in moto's default VPC and a target
    /// group of `targets` IP targets (which moto reports healthy), both
    /// with the opt-in tag when `opt_in`.
    pub async fn create_load_balancing_target(
        &self,
        prefix: &str,
        targets: usize,
        opt_in: bool,
    ) -> Result<LoadBalancingTarget> {
        use aws_sdk_elasticloadbalancingv2::types::{Tag, TargetDescription, TargetTypeEnum};
        let (subnets, vpc) = self.default_subnets().await?;
        let tags = opt_in.then(|| {
            vec![Tag::builder()
                .key(manifest::OPT_IN_TAG)
                .value("true")
                .build()]
        });
        let (load_balancer, target_group) = (format!("{prefix}-lb"), format!("{prefix}-tg"));
        let lb = self
            .elbv2
            .create_load_balancer()
            .name(&load_balancer)
            .set_subnets(Some(subnets[..2].to_vec()))
            .set_tags(tags.clone())
            .send()
            .await
            .map_err(aws(format!("CreateLoadBalancer {load_balancer}")))?;
        let load_balancer_arn = lb.load_balancers()[0]
            .load_balancer_arn()
            .unwrap_or_default()
            .to_string();
        let tg = self
            .elbv2
            .create_target_group()
            .name(&target_group)
            .target_type(TargetTypeEnum::Ip)
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(80)
            .vpc_id(&vpc)
            .set_tags(tags)
            .send()
            .await
            .map_err(aws(format!("CreateTargetGroup {target_group}")))?;
        let target_group_arn = tg.target_groups()[0]
            .target_group_arn()
            .unwrap_or_default()
            .to_string();
        let descriptions = (0..targets)
            .map(|i| {
                TargetDescription::builder()
                    .id(format!("10.0.0.{}", 10 + i))
                    .port(80)
                    .build()
            })
            .collect();
        self.elbv2
            .register_targets()
            .target_group_arn(&target_group_arn)
            .set_targets(Some(descriptions))
            .send()
            .await
            .map_err(aws(format!("RegisterTargets {target_group}")))?;
        Ok(LoadBalancingTarget {
            target_group,
            target_group_arn,
            load_balancer,
            load_balancer_arn,
        })
    }

    /// The IDs of the target group's registered targets.
    pub async fn registered_targets(&self, target: &LoadBalancingTarget) -> Result<Vec<String>> {
        let out = self
            .elbv2
            .describe_target_health()
            .target_group_arn(&target.target_group_arn)
            .send()
            .await
            .map_err(aws(format!("DescribeTargetHealth {}", target.target_group)))?;
        let mut ids: Vec<String> = out
            .target_health_descriptions()
            .iter()
            .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_string))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Whether the load balancer's access logs are on.
    pub async fn access_logs_enabled(&self, target: &LoadBalancingTarget) -> Result<bool> {
        let out = self
            .elbv2
            .describe_load_balancer_attributes()
            .load_balancer_arn(&target.load_balancer_arn)
            .send()
            .await
            .map_err(aws(format!(
                "DescribeLoadBalancerAttributes {}",
                target.load_balancer
            )))?;
        Ok(out
            .attributes()
            .iter()
            .any(|a| a.key() == Some("access_logs.s3.enabled") && a.value() == Some("true")))
    }

    /// A Lambda function that is only a target of guards (never invoked),
    /// with the opt-in tag when `opt_in` (then it also links crates/inject,
    /// reading `fault_parameter`). Returns its name.
    pub async fn create_target_function(
        &self,
        name: &str,
        opt_in: bool,
        fault_parameter: &str,
    ) -> Result<String> {
        let role = self.role(LAMBDA_ROLE, "lambda.amazonaws.com").await?;
        let mut create = self
            .lambda
            .create_function()
            .function_name(name)
            .runtime(Runtime::Providedal2023)
            .handler("bootstrap")
            .role(&role)
            .code(
                FunctionCode::builder()
                    .zip_file(Blob::new(EMPTY_ZIP.to_vec()))
                    .build(),
            );
        if opt_in {
            // A Rust function linking crates/inject and reading its
            // parameter, as Plan requires of an OS-only runtime before
            // injecting it.
            create = create
                .tags(manifest::OPT_IN_TAG, "true")
                .tags(
                    experiment::faults::INJECTOR_TAG,
                    experiment::faults::INJECTOR_CRATE,
                )
                .environment(
                    aws_sdk_lambda::types::Environment::builder()
                        .variables(experiment::faults::PARAM_VAR, fault_parameter)
                        .build(),
                );
        }
        create
            .send()
            .await
            .map_err(aws(format!("CreateFunction {name}")))?;
        Ok(name.to_string())
    }

    /// A target function's reserved concurrency, timeout and memory.
    pub async fn function_settings(&self, name: &str) -> Result<FunctionSettings> {
        let config = self
            .lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .map_err(aws(format!("GetFunctionConfiguration {name}")))?;
        let reserved = self
            .lambda
            .get_function_concurrency()
            .function_name(name)
            .send()
            .await
            .map_err(aws(format!("GetFunctionConcurrency {name}")))?
            .reserved_concurrent_executions();
        Ok(FunctionSettings {
            reserved,
            timeout: config.timeout().unwrap_or_default(),
            memory_size: config.memory_size().unwrap_or_default(),
        })
    }

    /// A queue feeding `function` through an event source mapping, enabled.
    /// Returns the mapping's UUID.
    pub async fn create_event_source_mapping(&self, function: &str) -> Result<String> {
        let queue = self
            .sqs
            .create_queue()
            .queue_name(format!("{function}-feed"))
            .send()
            .await
            .map_err(aws(format!("CreateQueue {function}-feed")))?;
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue.queue_url().unwrap_or_default())
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(aws("GetQueueAttributes".to_string()))?;
        let arn = attributes
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default();
        let mapping = self
            .lambda
            .create_event_source_mapping()
            .function_name(function)
            .event_source_arn(arn)
            .enabled(true)
            .send()
            .await
            .map_err(aws(format!("CreateEventSourceMapping {function}")))?;
        Ok(mapping.uuid().unwrap_or_default().to_string())
    }

    /// An event source mapping's state: `Enabled`, `Disabled`, ...
    pub async fn event_source_mapping_state(&self, uuid: &str) -> Result<String> {
        let mapping = self
            .lambda
            .get_event_source_mapping()
            .uuid(uuid)
            .send()
            .await
            .map_err(aws(format!("GetEventSourceMapping {uuid}")))?;
        Ok(mapping.state().unwrap_or_default().to_string())
    }

    // ----------------------------------------------------------------------
    // Deployment
    // ----------------------------------------------------------------------

    /// Deploys template.yaml as the stack `prefix` (`local/stack.py`
    /// translates it with aws-sam-translator and creates it in moto's
    /// CloudFormation; `POST /_turbulence/stacks`), with the local stack's
    /// settings as stack parameters ([`stack_parameters`]). The functions
    /// run under their deployed names. Use a unique prefix per test.
    pub async fn deploy_stack(&self, prefix: &str) -> Result<Stack> {
        self.deploy_stack_with(prefix, &BTreeMap::new()).await
    }

    /// [`LocalStack::deploy_stack`] with more (or other) stack parameters.
    pub async fn deploy_stack_with(
        &self,
        prefix: &str,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Stack> {
        let mut parameters = stack_parameters(prefix);
        parameters.extend(overrides.clone());
        let body = serde_json::json!({"name": prefix, "parameters": parameters}).to_string();
        let (status, answer) = self.control("POST", "/_turbulence/stacks", &body).await?;
        let deployed: Value = serde_json::from_str(&answer).map_err(|e| {
            Error::Unexpected(format!("deploy {prefix}: HTTP {status}: {e}: {answer}"))
        })?;
        if status != 200 {
            return Err(Error::Aws {
                what: format!("deploy stack {prefix}"),
                message: deployed["message"].as_str().unwrap_or(&answer).to_string(),
            });
        }
        let output = |key: &str| {
            deployed["outputs"][key]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| Error::Unexpected(format!("stack {prefix} has no output {key}")))
        };
        let stack = Stack {
            prefix: prefix.to_string(),
            state_machine_arn: output("StateMachineArn")?,
            dlq_url: output("DeadLetterQueueUrl")?,
            abort_alarm: output("ExampleAbortAlarmName")?,
            kill_switch: parameters["KillSwitchParameter"].clone(),
            moderation_function: output("ModerationFunctionName")?,
            fault_parameter_prefix: parameters["FaultParameterPrefix"].clone(),
        };
        // moto never evaluates alarms from metrics: start it OK by hand.
        self.set_alarm_state(&stack.abort_alarm, AlarmState::Ok)
            .await?;
        Ok(stack)
    }

    /// One synchronous invocation of a Lambda function; its payload, or an
    /// error naming why Lambda refused (e.g. `TooManyRequestsException`).
    pub async fn invoke(&self, function: &str, payload: &Value) -> Result<Value> {
        let out = self
            .lambda
            .invoke()
            .function_name(function)
            .payload(Blob::new(payload.to_string()))
            .send()
            .await
            .map_err(aws(format!("Invoke {function}")))?;
        let body = out.payload.map(|b| b.into_inner()).unwrap_or_default();
        Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Limits the unreserved concurrency of a stack's functions (the local
    /// stand-in for the account's): `Some(0)` throttles every invocation of
    /// a function without reserved concurrency, as when a runaway target
    /// holds all of it; `None` lifts the limit.
    pub async fn limit_unreserved_concurrency(
        &self,
        stack: &Stack,
        limit: Option<u32>,
    ) -> Result<()> {
        let body = serde_json::json!({"stack": stack.prefix, "unreserved": limit}).to_string();
        let (status, answer) = self
            .control("POST", "/_turbulence/concurrency", &body)
            .await?;
        if status != 200 {
            return Err(Error::Unexpected(format!(
                "concurrency: HTTP {status}: {answer}"
            )));
        }
        Ok(())
    }

    /// An IAM role trusted by `principal`, created once; returns its ARN.
    async fn role(&self, name: &str, principal: &str) -> Result<String> {
        let trust = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": principal}, "Action": "sts:AssumeRole"}]
        })
        .to_string();
        let created = self
            .iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust)
            .send()
            .await;
        let role = match created {
            Ok(out) => out.role,
            Err(e) if error_code(&e) == Some("EntityAlreadyExists") => {
                self.iam
                    .get_role()
                    .role_name(name)
                    .send()
                    .await
                    .map_err(aws(format!("GetRole {name}")))?
                    .role
            }
            Err(e) => return Err(aws(format!("CreateRole {name}"))(e)),
        };
        role.map(|r| r.arn)
            .ok_or_else(|| Error::Unexpected(format!("no ARN for role {name}")))
    }

    // ----------------------------------------------------------------------
    // Targets
    // ----------------------------------------------------------------------

    /// `n` container instances registered in the target's cluster (moto
    /// keeps them as records: nothing runs on them), and the cluster opted
    /// in when `opt_in`, as draining requires. Returns their ARNs.
    pub async fn register_container_instances(
        &self,
        target: &EcsTarget,
        n: usize,
        opt_in: bool,
    ) -> Result<Vec<String>> {
        let mut arns = Vec::new();
        for instance in self.run_instances(n).await? {
            let document = serde_json::json!({"instanceId": instance});
            let out = self
                .ecs
                .register_container_instance()
                .cluster(&target.cluster)
                .instance_identity_document(document.to_string())
                .send()
                .await
                .map_err(aws(format!("RegisterContainerInstance {}", target.cluster)))?;
            let arn = out
                .container_instance()
                .and_then(|c| c.container_instance_arn());
            arns.push(arn.unwrap_or_default().to_string());
        }
        if opt_in {
            let clusters = self
                .ecs
                .describe_clusters()
                .clusters(&target.cluster)
                .send()
                .await
                .map_err(aws(format!("DescribeClusters {}", target.cluster)))?;
            let arn = clusters
                .clusters()
                .first()
                .and_then(|c| c.cluster_arn())
                .unwrap_or_default()
                .to_string();
            let tag = aws_sdk_ecs::types::Tag::builder()
                .key(manifest::OPT_IN_TAG)
                .value("true")
                .build();
            self.ecs
                .tag_resource()
                .resource_arn(arn)
                .tags(tag)
                .send()
                .await
                .map_err(aws(format!("TagResource {}", target.cluster)))?;
        }
        Ok(arns)
    }

    /// Each of `arns`' status (ACTIVE, DRAINING), in order; "missing" for
    /// one the cluster does not have.
    pub async fn container_instance_states(
        &self,
        target: &EcsTarget,
        arns: &[String],
    ) -> Result<Vec<String>> {
        let out = self
            .ecs
            .describe_container_instances()
            .cluster(&target.cluster)
            .set_container_instances(Some(arns.to_vec()))
            .send()
            .await
            .map_err(aws(format!(
                "DescribeContainerInstances {}",
                target.cluster
            )))?;
        Ok(arns
            .iter()
            .map(|arn| {
                out.container_instances()
                    .iter()
                    .find(|c| c.container_instance_arn() == Some(arn.as_str()))
                    .and_then(|c| c.status())
                    .unwrap_or("missing")
                    .to_string()
            })
            .collect())
    }

    /// Creates cluster `<prefix>`, a Fargate task definition and service
    /// `<prefix>-svc` with `desired_count` tasks, an optional scalable
    /// target, and waits until the stand-in runs the tasks.
    pub async fn create_ecs_target(&self, spec: &EcsTargetSpec) -> Result<EcsTarget> {
        let cluster = spec.prefix.clone();
        let service = format!("{}-svc", spec.prefix);
        self.ecs
            .create_cluster()
            .cluster_name(&cluster)
            .send()
            .await
            .map_err(aws(format!("CreateCluster {cluster}")))?;
        let task_definition_arn = self
            .ecs
            .register_task_definition()
            .family(format!("{}-app", spec.prefix))
            .requires_compatibilities(Compatibility::Fargate)
            .network_mode(NetworkMode::Awsvpc)
            .cpu("256")
            .memory("512")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image("public.ecr.aws/nginx/nginx:stable")
                    .essential(true)
                    // moto's task placement reads a container-level memory.
                    .memory(512)
                    .build(),
            )
            .send()
            .await
            .map_err(aws(format!("RegisterTaskDefinition {}-app", spec.prefix)))?
            .task_definition
            .and_then(|t| t.task_definition_arn)
            .ok_or_else(|| Error::Unexpected("RegisterTaskDefinition returned no ARN".into()))?;

        // `Off` starts like `TasksOnly` so the initial tasks exist (moto has
        // no other way to start them without knowing the stand-in's network),
        // then is switched off once they run.
        let initial_mode = match spec.reconciler {
            Reconciler::Off => Reconciler::TasksOnly,
            other => other,
        };
        let mut tags = vec![ecs_tag(RECONCILER_TAG, initial_mode.tag_value())?];
        for (k, v) in &spec.tags {
            tags.push(ecs_tag(k, v)?);
        }
        self.ecs
            .create_service()
            .cluster(&cluster)
            .service_name(&service)
            .task_definition(&task_definition_arn)
            .desired_count(spec.desired_count)
            .launch_type(LaunchType::Fargate)
            // Tasks carry the service's tags (the opt-in tag IAM checks on StopTask).
            .propagate_tags(aws_sdk_ecs::types::PropagateTags::Service)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(aws(format!("CreateService {service}")))?;

        if let Some(min) = spec.min_capacity {
            self.autoscaling
                .register_scalable_target()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(format!("service/{cluster}/{service}"))
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .min_capacity(min)
                .max_capacity(min.max(spec.desired_count).max(1) * 2)
                .send()
                .await
                .map_err(aws(format!("RegisterScalableTarget {service}")))?;
        }

        let target = EcsTarget {
            cluster,
            service,
            task_definition_arn,
        };
        let want = usize::try_from(spec.desired_count).unwrap_or(0);
        let deadline = Instant::now() + TASKS_READY_TIMEOUT;
        loop {
            if self.running_tasks(&target).await?.len() == want {
                break;
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!(
                        "{want} RUNNING task(s) of {}/{} (is local/stack.py's ECS stand-in running?)",
                        target.cluster, target.service
                    ),
                    after: TASKS_READY_TIMEOUT,
                });
            }
            tokio::time::sleep(POLL).await;
        }
        if spec.reconciler == Reconciler::Off {
            let arn = self.service_arn(&target).await?;
            self.ecs
                .tag_resource()
                .resource_arn(arn)
                .tags(ecs_tag(RECONCILER_TAG, Reconciler::Off.tag_value())?)
                .send()
                .await
                .map_err(aws(format!("TagResource {}", target.service)))?;
        }
        Ok(target)
    }

    async fn describe_service(&self, target: &EcsTarget) -> Result<aws_sdk_ecs::types::Service> {
        self.ecs
            .describe_services()
            .cluster(&target.cluster)
            .services(&target.service)
            .send()
            .await
            .map_err(aws(format!("DescribeServices {}", target.service)))?
            .services
            .unwrap_or_default()
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::Unexpected(format!(
                    "service {}/{} not found",
                    target.cluster, target.service
                ))
            })
    }

    async fn service_arn(&self, target: &EcsTarget) -> Result<String> {
        self.describe_service(target)
            .await?
            .service_arn
            .ok_or_else(|| Error::Unexpected(format!("service {} has no ARN", target.service)))
    }

    /// The service's desiredCount now.
    pub async fn desired_count(&self, target: &EcsTarget) -> Result<i32> {
        Ok(self.describe_service(target).await?.desired_count)
    }

    /// ARNs of the service's RUNNING tasks. moto's ListTasks ignores
    /// `serviceName`, so tasks are matched by `group = service:<name>`.
    pub async fn running_tasks(&self, target: &EcsTarget) -> Result<Vec<String>> {
        let mut arns = Vec::new();
        let mut token = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .ecs
                .list_tasks()
                .cluster(&target.cluster)
                .desired_status(DesiredStatus::Running)
                .set_next_token(token)
                .send()
                .await
                .map_err(aws(format!("ListTasks {}", target.cluster)))?;
            arns.extend(page.task_arns.unwrap_or_default());
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
        let group = format!("service:{}", target.service);
        let mut running = Vec::new();
        for chunk in arns.chunks(100) {
            let tasks = self
                .ecs
                .describe_tasks()
                .cluster(&target.cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(aws(format!("DescribeTasks {}", target.cluster)))?
                .tasks
                .unwrap_or_default();
            running.extend(
                tasks
                    .into_iter()
                    .filter(|t| t.group.as_deref() == Some(group.as_str()))
                    .filter(|t| t.last_status.as_deref() == Some("RUNNING"))
                    .filter_map(|t| t.task_arn),
            );
        }
        Ok(running)
    }

    /// A task's lastStatus (`RUNNING`, `STOPPED`, ...).
    pub async fn task_status(&self, target: &EcsTarget, task_arn: &str) -> Result<String> {
        self.ecs
            .describe_tasks()
            .cluster(&target.cluster)
            .tasks(task_arn)
            .send()
            .await
            .map_err(aws(format!("DescribeTasks {task_arn}")))?
            .tasks
            .unwrap_or_default()
            .into_iter()
            .find(|t| t.task_arn.as_deref() == Some(task_arn))
            .and_then(|t| t.last_status)
            .ok_or_else(|| Error::Unexpected(format!("task {task_arn} not found")))
    }

    /// Sets an alarm's state (moto never evaluates alarms itself).
    pub async fn set_alarm_state(&self, alarm: &str, state: AlarmState) -> Result<()> {
        self.cloudwatch
            .set_alarm_state()
            .alarm_name(alarm)
            .state_value(state)
            .state_reason("set by the local stack")
            .send()
            .await
            .map_err(aws(format!("SetAlarmState {alarm}")))?;
        Ok(())
    }

    // ----------------------------------------------------------------------
    // Executions
    // ----------------------------------------------------------------------

    /// Starts an execution of the stack's state machine with `input` (the
    /// experiment); returns the execution ARN. Names are unique (moto needs one).
    pub async fn start_execution(&self, stack: &Stack, input: &Value) -> Result<String> {
        let name = execution_name(&stack.prefix);
        self.sfn
            .start_execution()
            .state_machine_arn(&stack.state_machine_arn)
            .name(&name)
            .input(input.to_string())
            .send()
            .await
            .map(|out| out.execution_arn)
            .map_err(aws(format!("StartExecution {name}")))
    }

    /// The execution's status now: `None` while it runs.
    pub async fn poll(&self, execution_arn: &str) -> Result<Option<Finished>> {
        let d = self
            .sfn
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(aws(format!("DescribeExecution {execution_arn}")))?;
        if d.status == ExecutionStatus::Running || d.status == ExecutionStatus::PendingRedrive {
            return Ok(None);
        }
        Ok(Some(Finished {
            status: d.status.as_str().to_string(),
            error: d.error,
            cause: d.cause,
            output: d
                .output
                .as_deref()
                .and_then(|o| serde_json::from_str(o).ok()),
        }))
    }

    /// Waits (bounded) until the execution is no longer running.
    pub async fn wait_for(&self, execution_arn: &str, timeout: Duration) -> Result<Finished> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(done) = self.poll(execution_arn).await? {
                return Ok(done);
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("execution {execution_arn}"),
                    after: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The execution's history, oldest first.
    pub async fn history(&self, execution_arn: &str) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        let mut token = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .sfn
                .get_execution_history()
                .execution_arn(execution_arn)
                .include_execution_data(true)
                .max_results(1000)
                .set_next_token(token)
                .send()
                .await
                .map_err(aws(format!("GetExecutionHistory {execution_arn}")))?;
            events.extend(page.events.iter().map(turbulence_cli::aws::flatten));
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
        Ok(events)
    }

    /// Every message now in the stack's dead-letter queue, bodies parsed as
    /// JSON (a body that is not JSON is returned as a string). Messages are
    /// left in the queue (made visible again at once).
    pub async fn dlq_messages(&self, stack: &Stack) -> Result<Vec<Value>> {
        let mut bodies = Vec::new();
        let mut handles = Vec::new();
        let mut seen = HashSet::new();
        for _ in 0..MAX_PAGES {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&stack.dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .wait_time_seconds(0)
                .send()
                .await
                .map_err(aws(format!("ReceiveMessage {}", stack.dlq_url)))?;
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let id = m.message_id.clone().unwrap_or_default();
                if let Some(handle) = m.receipt_handle {
                    handles.push(handle);
                }
                if !seen.insert(id) {
                    continue;
                }
                let body = m.body.unwrap_or_default();
                bodies.push(serde_json::from_str(&body).unwrap_or(Value::String(body)));
            }
        }
        for (i, chunk) in handles.chunks(10).enumerate() {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(j, h)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(format!("m{i}-{j}"))
                        .receipt_handle(h)
                        .visibility_timeout(0)
                        .build()
                        .map_err(|e| Error::Unexpected(format!("visibility entry: {e}")))
                })
                .collect::<Result<Vec<_>>>()?;
            self.sqs
                .change_message_visibility_batch()
                .queue_url(&stack.dlq_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(aws(format!(
                    "ChangeMessageVisibilityBatch {}",
                    stack.dlq_url
                )))?;
        }
        Ok(bodies)
    }

    /// Number of messages in the queue as SQS reports it (no receive).
    pub async fn dlq_depth(&self, stack: &Stack) -> Result<u64> {
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(&stack.dlq_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(aws(format!("GetQueueAttributes {}", stack.dlq_url)))?
            .attributes
            .unwrap_or_default();
        Ok(attrs
            .get(&QueueAttributeName::ApproximateNumberOfMessages)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }
}

fn ecs_tag(key: &str, value: &str) -> Result<EcsTag> {
    Ok(EcsTag::builder().key(key).value(value).build())
}

/// One HTTP/1.1 request to a control endpoint of the local stack at
/// `authority` (`host:port` on loopback): moto's `/_turbulence/...` and the
/// Runtime API emulator's `/_emulator/...`.
/// One HTTP/1.1 request on loopback, `headers` as CRLF-terminated lines.
pub(crate) async fn http_call(
    authority: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(&authority)
        .await
        .map_err(|e| Error::Unexpected(format!("connect {authority}: {e}")))?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| Error::Unexpected(format!("{method} {path}: {e}")))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .await
        .map_err(|e| Error::Unexpected(format!("{method} {path}: {e}")))?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// `<prefix>-<time>-<counter>`, at most 80 characters (the SFN limit).
/// A name no other test run of this machine uses: `<name>-<pid>-<n>`, for
/// the prefix of a test's own stack and target.
pub fn unique_name(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{name}-{}-{nanos:x}{n}", std::process::id())
}

fn execution_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let suffix = format!("-{millis}-{}-{n}", std::process::id());
    let keep = 80usize.saturating_sub(suffix.len());
    let head: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(keep)
        .collect();
    format!("{head}{suffix}")
}

fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// An empty zip archive (end-of-central-directory record only).
const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_names_are_unique_and_short() {
        let a = execution_name(&"p".repeat(200));
        let b = execution_name(&"p".repeat(200));
        assert_ne!(a, b);
        assert!(a.len() <= 80, "{a}");
        assert!(execution_name("a b/c").starts_with("a-b-c-"));
    }

    #[test]
    fn only_loopback_endpoints() {
        assert!(is_loopback_url("http://127.0.0.1:5000"));
        assert!(is_loopback_url("http://localhost:5000/"));
        assert!(is_loopback_url("http://[::1]:5000"));
        assert!(!is_loopback_url("http://10.0.0.1:5000"));
        assert!(!is_loopback_url("https://sfn.us-east-1.amazonaws.com"));
    }

    #[test]
    fn journal_is_the_last_journal_output() {
        let ev = |id, kind: &str, state: &str, data: Value| Event {
            id,
            kind: kind.into(),
            timestamp: 0.0,
            state: Some(state.into()),
            data: Some(data),
            error: None,
            cause: None,
        };
        let events = vec![
            ev(
                1,
                "TaskStateEntered",
                "Journal",
                serde_json::json!({"in": 1}),
            ),
            ev(
                2,
                "TaskStateExited",
                "Journal",
                serde_json::json!({"journal": {"status": "completed"}, "outcome": {}}),
            ),
            ev(3, "ChoiceStateEntered", "Outcome", serde_json::json!({})),
        ];
        assert_eq!(
            journal(&events),
            Some(&serde_json::json!({"status": "completed"}))
        );
        assert_eq!(states_entered(&events), vec!["Journal", "Outcome"]);
    }
}
