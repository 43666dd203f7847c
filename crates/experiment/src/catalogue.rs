//! The activities Turbulence runs natively, keyed by Chaos Toolkit's
//! `module.func` names (chaostoolkit-aws 0.35), with their arguments checked.
//!
//! A [`CallSpec`] is what the experiment wrote (after `${name}` substitution);
//! [`Call::parse`] turns it into a typed call. Plan parses every call before
//! anything runs, and the probe/action functions parse again from the same
//! spec, so there is one way from JSON to a call.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::guards::Target;
use crate::model::{kind_of, ActivityType};

/// A call as written in the experiment: `module.func` and its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSpec {
    pub function: String,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

/// How many tasks `stop_random_tasks` stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskCount {
    Count(u32),
    Percent(u32),
}

impl TaskCount {
    /// How many of `running` tasks to stop. A percentage stops at least one
    /// task: one that rounds to none would make the experiment a silent no-op.
    pub fn of(self, running: usize) -> usize {
        match self {
            TaskCount::Count(n) => n as usize,
            TaskCount::Percent(p) => (running * p as usize).div_ceil(100).max(1),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `chaosaws.ecs.actions.stop_random_tasks`
    EcsStopRandomTasks {
        cluster: String,
        service: Option<String>,
        count: TaskCount,
        reason: String,
    },
    /// `chaosaws.ecs.actions.update_desired_count`
    EcsUpdateDesiredCount {
        cluster: String,
        service: String,
        desired_count: i32,
    },
    /// `chaosaws.ecs.probes.are_all_desired_tasks_running`, judged against the
    /// desired count recorded before the method.
    EcsAreAllDesiredTasksRunning { cluster: String, service: String },
    /// `chaosaws.ecs.probes.describe_service`
    EcsDescribeService { cluster: String, service: String },
    /// `chaosaws.cloudwatch.probes.get_alarm_state_value`
    CloudWatchGetAlarmStateValue { alarm_name: String },
    /// `chaosaws.cloudwatch.probes.get_metric_statistics`: the newest
    /// datapoint's statistic over the last `duration_s` (ending `offset_s`
    /// ago). No datapoint fails the probe: Chaos Toolkit's 0 would pass a
    /// "no 5XX" check on a metric that was never published.
    CloudWatchMetricStatistics(MetricSpec),
    /// `chaosaws.cloudwatch.probes.get_metric_data`: the values over the
    /// window, folded by the statistic (Sum: sum, Minimum/Maximum: min/max,
    /// others: mean). No values fails the probe.
    CloudWatchMetricData(MetricSpec),
    /// Chaos Toolkit's `http` provider: one request; output
    /// `{status, headers, body}`.
    Http { request: Value },
    /// `turbulence.load.actions.attack`: closed-loop users sending abuse
    /// requests in stages, every response checked against its template's
    /// expectations (a [`load::AttackSpec`]).
    LoadAttack { spec: Value },
    /// `turbulence.load.probes.expectations_met`: true when the attacks run
    /// so far (or the one named) saw no violated expectation.
    LoadExpectationsMet { attack: Option<String> },
    /// `chaosaws.ssm.actions.put_parameter`
    SsmPutParameter {
        name: String,
        value: String,
        kind: String,
        description: Option<String>,
        overwrite: bool,
    },
    /// `chaosaws.awslambda.actions.invoke_function`
    LambdaInvokeFunction {
        function_name: String,
        payload: Value,
        invocation_type: String,
        qualifier: Option<String>,
    },
    /// `turbulence.awslambda.actions.invoke_function_repeatedly`: invoke
    /// `count` times, `concurrency` at a time, and count what came back.
    LambdaInvokeRepeatedly {
        function_name: String,
        payload: Value,
        count: u32,
        concurrency: u32,
        slow_ms: u32,
    },
    /// `turbulence.faults.actions.inject_lambda_faults`: write a fault
    /// configuration (failure-lambda 1.0 format) that expires with the
    /// experiment; the compensation deletes it.
    InjectLambdaFaults {
        parameter_name: String,
        /// The function that reads the parameter: it must have opted in.
        function_name: String,
        configuration: Value,
    },
    /// `turbulence.faults.actions.clear_lambda_faults`
    ClearLambdaFaults { parameter_name: String },
    /// `turbulence.ssm.actions.delete_parameter`: what undoes a
    /// `put_parameter` that created its parameter.
    SsmDeleteParameter { name: String },
    /// `turbulence.faults.probes.lambda_faults_are_empty`: true when no
    /// configuration is set, or it injects nothing.
    LambdaFaultsAreEmpty { parameter_name: String },
    /// `turbulence.guards.actions.release_lock`: delete a target's lock if
    /// this execution holds it. Plan records one per lock it takes.
    ReleaseLock {
        parameter_name: String,
        execution: String,
    },
}

/// A CloudWatch metric and window, as the two metric probes take them.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    pub duration_s: u32,
    pub period_s: u32,
    pub offset_s: u32,
    /// A statistic (`Sum`...) or an extended one (`p99`).
    pub statistic: String,
    pub unit: Option<String>,
}

/// The function name the `http` provider is catalogued under.
pub const HTTP: &str = "http";

/// The most invocations one `invoke_function_repeatedly` makes.
pub const MAX_INVOCATIONS: u32 = 10_000;
/// The most at a time.
pub const MAX_CONCURRENCY: u32 = 50;

struct Entry {
    function: &'static str,
    /// (name, required)
    params: &'static [(&'static str, bool)],
}

const CATALOGUE: &[Entry] = &[
    Entry {
        function: "chaosaws.ecs.actions.stop_random_tasks",
        params: &[
            ("cluster", true),
            ("task_count", false),
            ("task_percent", false),
            ("service", false),
            ("reason", false),
        ],
    },
    Entry {
        function: "chaosaws.ecs.actions.update_desired_count",
        params: &[
            ("cluster", true),
            ("service", true),
            ("desired_count", true),
        ],
    },
    Entry {
        function: "chaosaws.ecs.probes.are_all_desired_tasks_running",
        params: &[("cluster", true), ("service", true)],
    },
    Entry {
        function: "chaosaws.ecs.probes.describe_service",
        params: &[("cluster", true), ("service", true)],
    },
    Entry {
        function: "chaosaws.cloudwatch.probes.get_alarm_state_value",
        params: &[("alarm_name", true)],
    },
    Entry {
        function: "chaosaws.cloudwatch.probes.get_metric_statistics",
        params: &[
            ("namespace", true),
            ("metric_name", true),
            ("dimension_name", false),
            ("dimension_value", false),
            ("dimensions", false),
            ("duration", false),
            ("offset", false),
            ("statistic", false),
            ("extended_statistic", false),
            ("unit", false),
        ],
    },
    Entry {
        function: "chaosaws.cloudwatch.probes.get_metric_data",
        params: &[
            ("namespace", true),
            ("metric_name", true),
            ("dimension_name", false),
            ("dimension_value", false),
            ("dimensions", false),
            ("statistic", false),
            ("duration", false),
            ("period", false),
            ("offset", false),
            ("unit", false),
        ],
    },
    Entry {
        function: HTTP,
        params: &[
            ("url", true),
            ("method", false),
            ("headers", false),
            ("arguments", false),
            ("timeout", false),
            ("verify_tls", false),
            ("max_retries", false),
        ],
    },
    Entry {
        function: "turbulence.load.actions.attack",
        params: &[
            ("target", true),
            ("stages", true),
            ("requests", true),
            ("stop", false),
            ("timeout_ms", false),
            ("max_rps", false),
            ("verify_tls", false),
        ],
    },
    Entry {
        function: "turbulence.load.probes.expectations_met",
        params: &[("attack", false)],
    },
    Entry {
        function: "chaosaws.ssm.actions.put_parameter",
        params: &[
            ("name", true),
            ("value", true),
            ("description", false),
            ("type", false),
            ("overwrite", false),
            ("key_id", false),
            ("allowed_pattern", false),
            ("tags", false),
            ("tier", false),
            ("policies", false),
            ("data_type", false),
        ],
    },
    Entry {
        function: "chaosaws.awslambda.actions.invoke_function",
        params: &[
            ("function_name", true),
            ("function_arguments", false),
            ("invocation_type", false),
            ("client_context", false),
            ("qualifier", false),
        ],
    },
    Entry {
        function: "turbulence.awslambda.actions.invoke_function_repeatedly",
        params: &[
            ("function_name", true),
            ("count", true),
            ("function_arguments", false),
            ("concurrency", false),
            ("slow_ms", false),
        ],
    },
    Entry {
        function: "turbulence.faults.actions.inject_lambda_faults",
        params: &[
            ("parameter_name", true),
            ("function_name", true),
            ("configuration", true),
        ],
    },
    Entry {
        function: "turbulence.faults.actions.clear_lambda_faults",
        params: &[("parameter_name", true)],
    },
    Entry {
        function: "turbulence.ssm.actions.delete_parameter",
        params: &[("name", true)],
    },
    Entry {
        function: "turbulence.faults.probes.lambda_faults_are_empty",
        params: &[("parameter_name", true)],
    },
    Entry {
        function: "turbulence.guards.actions.release_lock",
        params: &[("parameter_name", true), ("execution", true)],
    },
];

/// Chaos Toolkit passes these to every chaosaws function implicitly; an
/// experiment may still spell them out.
const IMPLICIT: &[&str] = &["configuration", "secrets"];

/// Every supported `module.func`, for error messages and the README.
pub fn supported() -> Vec<&'static str> {
    CATALOGUE.iter().map(|e| e.function).collect()
}

impl Call {
    pub fn parse(spec: &CallSpec) -> Result<Call, String> {
        let entry = CATALOGUE
            .iter()
            .find(|e| e.function == spec.function)
            .ok_or_else(|| {
                format!(
                    "'{}' is not supported; supported: {}",
                    spec.function,
                    supported().join(", ")
                )
            })?;
        for key in spec.arguments.keys() {
            if IMPLICIT.contains(&key.as_str()) {
                continue;
            }
            if !entry.params.iter().any(|(p, _)| p == key) {
                return Err(format!(
                    "argument '{key}' is not a parameter of {} (parameters: {})",
                    entry.function,
                    entry
                        .params
                        .iter()
                        .map(|(p, _)| *p)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        for (p, required) in entry.params {
            if *required && spec.arguments.get(*p).is_none_or(Value::is_null) {
                return Err(format!("argument '{p}' is required by {}", entry.function));
            }
        }
        let args = Args {
            function: entry.function,
            map: &spec.arguments,
        };
        Ok(match entry.function {
            "chaosaws.ecs.actions.stop_random_tasks" => {
                let count = match (args.opt_u32("task_count")?, args.opt_u32("task_percent")?) {
                    (Some(n), None) if n > 0 => TaskCount::Count(n),
                    (None, Some(p)) if (1..=100).contains(&p) => TaskCount::Percent(p),
                    (Some(_), None) => return Err(args.err("task_count", "must be at least 1")),
                    (None, Some(_)) => {
                        return Err(args.err("task_percent", "must be between 1 and 100"))
                    }
                    _ => {
                        return Err(format!(
                            "exactly one of 'task_count' and 'task_percent' is required by {}",
                            entry.function
                        ))
                    }
                };
                Call::EcsStopRandomTasks {
                    cluster: args.text("cluster")?,
                    service: args.opt_text("service")?,
                    count,
                    reason: args
                        .opt_text("reason")?
                        .unwrap_or_else(|| "Chaos Testing".into()),
                }
            }
            "chaosaws.ecs.actions.update_desired_count" => {
                let desired = args.u32("desired_count")?;
                Call::EcsUpdateDesiredCount {
                    cluster: args.text("cluster")?,
                    service: args.text("service")?,
                    desired_count: i32::try_from(desired)
                        .map_err(|_| args.err("desired_count", "is too large"))?,
                }
            }
            "chaosaws.ecs.probes.are_all_desired_tasks_running" => {
                Call::EcsAreAllDesiredTasksRunning {
                    cluster: args.text("cluster")?,
                    service: args.text("service")?,
                }
            }
            "chaosaws.ecs.probes.describe_service" => Call::EcsDescribeService {
                cluster: args.text("cluster")?,
                service: args.text("service")?,
            },
            "chaosaws.cloudwatch.probes.get_alarm_state_value" => {
                Call::CloudWatchGetAlarmStateValue {
                    alarm_name: args.text("alarm_name")?,
                }
            }
            "chaosaws.cloudwatch.probes.get_metric_statistics" => {
                let statistic = match (
                    args.opt_text("statistic")?,
                    args.opt_text("extended_statistic")?,
                ) {
                    (Some(s), None) => {
                        if !STATISTICS.contains(&s.as_str()) {
                            return Err(args.err(
                                "statistic",
                                format!("must be one of {}, found \"{s}\"", STATISTICS.join(", ")),
                            ));
                        }
                        s
                    }
                    (None, Some(p)) => p,
                    _ => {
                        return Err(format!(
                            "exactly one of 'statistic' and 'extended_statistic' is required by {}",
                            entry.function
                        ))
                    }
                };
                let duration_s = args.opt_u32("duration")?.unwrap_or(60).max(1);
                Call::CloudWatchMetricStatistics(args.metric(statistic, duration_s, duration_s)?)
            }
            "chaosaws.cloudwatch.probes.get_metric_data" => {
                let statistic = args
                    .opt_text("statistic")?
                    .unwrap_or_else(|| "Average".into());
                let duration_s = args.opt_u32("duration")?.unwrap_or(300);
                let period_s = args.opt_u32("period")?.unwrap_or(60);
                if period_s == 0 || duration_s < period_s {
                    return Err(args.err(
                        "period",
                        format!("must be at least 1 and at most 'duration' ({duration_s}), found {period_s}"),
                    ));
                }
                Call::CloudWatchMetricData(args.metric(statistic, duration_s, period_s)?)
            }
            HTTP => {
                if args.opt_u32("max_retries")?.unwrap_or(0) != 0 {
                    return Err(args.err("max_retries", "is not supported yet (only 0)"));
                }
                let url = args.text("url")?;
                let mut request = serde_json::json!({"url": url});
                for (from, to) in [
                    ("method", "method"),
                    ("headers", "headers"),
                    ("arguments", "body"),
                    ("timeout", "timeout_s"),
                    ("verify_tls", "verify_tls"),
                ] {
                    if let Some(v) = args.map.get(from).filter(|v| !v.is_null()) {
                        request[to] = v.clone();
                    }
                }
                load::http::HttpProbe::from_json(request.clone())
                    .map_err(|e| format!("http provider: {e}"))?;
                Call::Http { request }
            }
            "turbulence.load.actions.attack" => {
                let spec = Value::Object(args.map.clone());
                let mut spec_only = spec.clone();
                for implicit in IMPLICIT {
                    spec_only.as_object_mut().map(|m| m.remove(*implicit));
                }
                let parsed = load::AttackSpec::from_json(spec_only.clone())
                    .map_err(|e| format!("{}: {e}", entry.function))?;
                // The shape, with the deployment's limits set aside: Plan
                // checks those (hosts, users, rate) before anything runs.
                let open = load::Limits {
                    allowed_hosts: vec![parsed_host(&parsed.target).unwrap_or_default()],
                    max_users: u32::MAX,
                    max_rps: 1e9,
                    max_total_requests: u64::MAX,
                    allow_loopback: true,
                    ..Default::default()
                };
                parsed
                    .validate(&open)
                    .map_err(|e| format!("{}: {e}", entry.function))?;
                Call::LoadAttack { spec: spec_only }
            }
            "turbulence.load.probes.expectations_met" => Call::LoadExpectationsMet {
                attack: args.opt_text("attack")?,
            },
            "chaosaws.ssm.actions.put_parameter" => {
                for unsupported in [
                    "key_id",
                    "allowed_pattern",
                    "tags",
                    "tier",
                    "policies",
                    "data_type",
                ] {
                    if args.map.get(unsupported).is_some_and(|v| !v.is_null()) {
                        return Err(args.err(unsupported, "is not supported yet"));
                    }
                }
                let kind = args.opt_text("type")?.unwrap_or_else(|| "String".into());
                if !["String", "StringList", "SecureString"].contains(&kind.as_str()) {
                    return Err(args.err(
                        "type",
                        format!("must be String, StringList or SecureString, found \"{kind}\""),
                    ));
                }
                Call::SsmPutParameter {
                    name: args.text("name")?,
                    value: args.text_or_json("value")?,
                    kind,
                    description: args.opt_text("description")?,
                    overwrite: args.opt_bool("overwrite")?.unwrap_or(false),
                }
            }
            "chaosaws.awslambda.actions.invoke_function" => {
                if args.map.get("client_context").is_some_and(|v| !v.is_null()) {
                    return Err(args.err("client_context", "is not supported yet"));
                }
                let invocation_type = args
                    .opt_text("invocation_type")?
                    .unwrap_or_else(|| "RequestResponse".into());
                if !["RequestResponse", "Event", "DryRun"].contains(&invocation_type.as_str()) {
                    return Err(args.err(
                        "invocation_type",
                        format!(
                            "must be RequestResponse, Event or DryRun, found \"{invocation_type}\""
                        ),
                    ));
                }
                Call::LambdaInvokeFunction {
                    function_name: args.text("function_name")?,
                    payload: args
                        .map
                        .get("function_arguments")
                        .cloned()
                        .unwrap_or(Value::Null),
                    invocation_type,
                    qualifier: args.opt_text("qualifier")?,
                }
            }
            "turbulence.awslambda.actions.invoke_function_repeatedly" => {
                let count = args.u32("count")?;
                if !(1..=MAX_INVOCATIONS).contains(&count) {
                    return Err(args.err(
                        "count",
                        format!("must be between 1 and {MAX_INVOCATIONS}, found {count}"),
                    ));
                }
                let concurrency = args.opt_u32("concurrency")?.unwrap_or(1);
                if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
                    return Err(args.err(
                        "concurrency",
                        format!("must be between 1 and {MAX_CONCURRENCY}, found {concurrency}"),
                    ));
                }
                Call::LambdaInvokeRepeatedly {
                    function_name: args.text("function_name")?,
                    payload: args
                        .map
                        .get("function_arguments")
                        .cloned()
                        .unwrap_or(Value::Null),
                    count,
                    concurrency,
                    slow_ms: args.opt_u32("slow_ms")?.unwrap_or(1000),
                }
            }
            "turbulence.faults.actions.inject_lambda_faults" => {
                let configuration = args
                    .map
                    .get("configuration")
                    .cloned()
                    .unwrap_or(Value::Null);
                if !configuration.is_object() {
                    return Err(args.err(
                        "configuration",
                        "must be a fault configuration object (failure-lambda 1.0 format)",
                    ));
                }
                let configuration = crate::faults::canonical(&configuration)
                    .map_err(|e| args.err("configuration", e))?;
                Call::InjectLambdaFaults {
                    parameter_name: args.parameter_name("parameter_name")?,
                    function_name: args.text("function_name")?,
                    configuration,
                }
            }
            "turbulence.faults.actions.clear_lambda_faults" => Call::ClearLambdaFaults {
                parameter_name: args.parameter_name("parameter_name")?,
            },
            "turbulence.ssm.actions.delete_parameter" => Call::SsmDeleteParameter {
                name: args.parameter_name("name")?,
            },
            "turbulence.faults.probes.lambda_faults_are_empty" => Call::LambdaFaultsAreEmpty {
                parameter_name: args.parameter_name("parameter_name")?,
            },
            "turbulence.guards.actions.release_lock" => Call::ReleaseLock {
                parameter_name: args.parameter_name("parameter_name")?,
                execution: args.text("execution")?,
            },
            other => return Err(format!("'{other}' has no implementation")),
        })
    }

    pub fn kind(&self) -> ActivityType {
        match self {
            Call::EcsStopRandomTasks { .. }
            | Call::EcsUpdateDesiredCount { .. }
            | Call::SsmPutParameter { .. }
            | Call::LambdaInvokeFunction { .. }
            | Call::LambdaInvokeRepeatedly { .. }
            | Call::InjectLambdaFaults { .. }
            | Call::ClearLambdaFaults { .. }
            | Call::SsmDeleteParameter { .. }
            | Call::LoadAttack { .. }
            | Call::ReleaseLock { .. } => ActivityType::Action,
            Call::EcsAreAllDesiredTasksRunning { .. }
            | Call::EcsDescribeService { .. }
            | Call::CloudWatchGetAlarmStateValue { .. }
            | Call::CloudWatchMetricStatistics(_)
            | Call::CloudWatchMetricData(_)
            | Call::Http { .. }
            | Call::LoadExpectationsMet { .. }
            | Call::LambdaFaultsAreEmpty { .. } => ActivityType::Probe,
        }
    }

    /// Whether an activity of `kind` may make this call: the `http`
    /// provider serves probes and actions alike.
    pub fn allows(&self, kind: ActivityType) -> bool {
        matches!(self, Call::Http { .. }) || self.kind() == kind
    }
}

impl Call {
    /// What this call changes, for the opt-in and lock guards. Probes change
    /// nothing; invoking a function counts as touching it.
    pub fn targets(&self) -> Vec<Target> {
        match self {
            Call::EcsStopRandomTasks {
                cluster,
                service: Some(service),
                ..
            }
            | Call::EcsUpdateDesiredCount {
                cluster, service, ..
            } => vec![Target::EcsService {
                cluster: cluster.clone(),
                service: service.clone(),
            }],
            Call::EcsStopRandomTasks {
                cluster,
                service: None,
                ..
            } => vec![Target::EcsCluster {
                cluster: cluster.clone(),
            }],
            Call::SsmPutParameter { name, .. } | Call::SsmDeleteParameter { name } => {
                vec![Target::Parameter { name: name.clone() }]
            }
            Call::ClearLambdaFaults { parameter_name } => vec![Target::Parameter {
                name: parameter_name.clone(),
            }],
            Call::InjectLambdaFaults {
                parameter_name,
                function_name,
                ..
            } => vec![
                Target::Parameter {
                    name: parameter_name.clone(),
                },
                Target::Function {
                    name: function_name.clone(),
                },
            ],
            Call::LambdaInvokeFunction { function_name, .. }
            | Call::LambdaInvokeRepeatedly { function_name, .. } => vec![Target::Function {
                name: function_name.clone(),
            }],
            // The lock's own bookkeeping, and the probes.
            Call::ReleaseLock { .. }
            | Call::EcsAreAllDesiredTasksRunning { .. }
            | Call::EcsDescribeService { .. }
            | Call::CloudWatchGetAlarmStateValue { .. }
            | Call::CloudWatchMetricStatistics(_)
            | Call::CloudWatchMetricData(_)
            | Call::LambdaFaultsAreEmpty { .. } => vec![],
            // Host allow-list, not a lock: probing an API changes nothing.
            Call::Http { .. } | Call::LoadExpectationsMet { .. } => vec![],
            // Locked per host and port: one attack per API at a time.
            Call::LoadAttack { spec } => spec
                .get("target")
                .and_then(Value::as_str)
                .and_then(|url| {
                    let host = parsed_host(url)?;
                    let https = url.starts_with("https://");
                    let port = url
                        .split("://")
                        .nth(1)?
                        .split(['/', '?', '#'])
                        .next()?
                        .rsplit_once(':')
                        .and_then(|(_, p)| p.parse::<u16>().ok())
                        .unwrap_or(if https { 443 } else { 80 });
                    Some(format!("{host}:{port}"))
                })
                .map(|host| vec![Target::Host { host }])
                .unwrap_or_default(),
        }
    }
}

struct Args<'a> {
    function: &'static str,
    map: &'a Map<String, Value>,
}

/// The host of an http(s) URL.
pub fn parsed_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// CloudWatch's statistics; anything else is an extended statistic (`p99`).
const STATISTICS: &[&str] = &["SampleCount", "Average", "Sum", "Minimum", "Maximum"];

impl Args<'_> {
    /// The metric, its dimensions (`dimension_name`/`dimension_value`, or
    /// `dimensions` as `[{"Name", "Value"}]`) and its window.
    fn metric(
        &self,
        statistic: String,
        duration_s: u32,
        period_s: u32,
    ) -> Result<MetricSpec, String> {
        let mut dimensions = Vec::new();
        match (
            self.opt_text("dimension_name")?,
            self.opt_text("dimension_value")?,
        ) {
            (Some(n), Some(v)) => dimensions.push((n, v)),
            (None, None) => {}
            _ => {
                return Err(format!(
                    "'dimension_name' and 'dimension_value' go together in {}",
                    self.function
                ))
            }
        }
        match self.map.get("dimensions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, d) in items.iter().enumerate() {
                    let pair = d
                        .get("Name")
                        .and_then(Value::as_str)
                        .zip(d.get("Value").and_then(Value::as_str));
                    match pair {
                        Some((n, v)) => dimensions.push((n.to_string(), v.to_string())),
                        None => {
                            return Err(self.err(
                                &format!("dimensions[{i}]"),
                                "must be {\"Name\": ..., \"Value\": ...}",
                            ))
                        }
                    }
                }
            }
            Some(other) => {
                return Err(self.err(
                    "dimensions",
                    format!("must be a list, found {}", kind_of(other)),
                ))
            }
        }
        Ok(MetricSpec {
            namespace: self.text("namespace")?,
            metric_name: self.text("metric_name")?,
            dimensions,
            duration_s,
            period_s,
            offset_s: self.opt_u32("offset")?.unwrap_or(0),
            statistic,
            unit: self.opt_text("unit")?,
        })
    }

    fn err(&self, name: &str, msg: impl std::fmt::Display) -> String {
        format!("argument '{name}' of {} {msg}", self.function)
    }

    fn text(&self, name: &str) -> Result<String, String> {
        self.opt_text(name)?
            .ok_or_else(|| format!("argument '{name}' is required by {}", self.function))
    }

    fn opt_text(&self, name: &str) -> Result<Option<String>, String> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(Value::String(_)) => Err(self.err(name, "must not be empty")),
            Some(other) => {
                Err(self.err(name, format!("must be a string, found {}", kind_of(other))))
            }
        }
    }

    /// A string, or any other JSON value as its JSON text (a fault
    /// configuration written inline as an object, say).
    fn text_or_json(&self, name: &str) -> Result<String, String> {
        match self.map.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Null) | None => Err(format!(
                "argument '{name}' is required by {}",
                self.function
            )),
            Some(other) => Ok(other.to_string()),
        }
    }

    fn opt_bool(&self, name: &str) -> Result<Option<bool>, String> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.err(
                name,
                format!("must be true or false, found {}", kind_of(other)),
            )),
        }
    }

    /// An SSM parameter name: a path of letters, digits and `_.-/`.
    fn parameter_name(&self, name: &str) -> Result<String, String> {
        let value = self.text(name)?;
        let ok = value.len() <= 1011
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
        if !ok {
            return Err(self.err(name, format!("is not an SSM parameter name: \"{value}\"")));
        }
        Ok(value)
    }

    fn u32(&self, name: &str) -> Result<u32, String> {
        self.opt_u32(name)?
            .ok_or_else(|| format!("argument '{name}' is required by {}", self.function))
    }

    fn opt_u32(&self, name: &str) -> Result<Option<u32>, String> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| self.err(name, format!("must be a whole number ≥ 0, found {n}"))),
            // Chaos Toolkit configuration often arrives as strings ("3").
            Some(Value::String(s)) => {
                s.trim().parse::<u32>().map(Some).map_err(|_| {
                    self.err(name, format!("must be a whole number ≥ 0, found \"{s}\""))
                })
            }
            Some(other) => {
                Err(self.err(name, format!("must be a number, found {}", kind_of(other))))
            }
        }
    }
}

/// What a task stop takes its tasks from, for messages.
pub fn tasks_of(cluster: &str, service: Option<&str>) -> String {
    match service {
        Some(s) => format!("service '{s}' of cluster '{cluster}'"),
        None => format!("cluster '{cluster}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(function: &str, args: Value) -> CallSpec {
        CallSpec {
            function: function.into(),
            arguments: args.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn stop_random_tasks_needs_exactly_one_of_count_and_percent() {
        let f = "chaosaws.ecs.actions.stop_random_tasks";
        assert_eq!(
            Call::parse(&spec(f, json!({"cluster": "c", "task_count": 2}))).unwrap(),
            Call::EcsStopRandomTasks {
                cluster: "c".into(),
                service: None,
                count: TaskCount::Count(2),
                reason: "Chaos Testing".into()
            }
        );
        let both = Call::parse(&spec(
            f,
            json!({"cluster": "c", "task_count": 1, "task_percent": 5}),
        ))
        .unwrap_err();
        assert!(both.starts_with("exactly one of"), "{both}");
        let none = Call::parse(&spec(f, json!({"cluster": "c"}))).unwrap_err();
        assert!(none.starts_with("exactly one of"), "{none}");
        let pct = Call::parse(&spec(f, json!({"cluster": "c", "task_percent": 101}))).unwrap_err();
        assert!(pct.contains("between 1 and 100"), "{pct}");
    }

    #[test]
    fn numbers_given_as_strings_are_read() {
        let c = Call::parse(&spec(
            "chaosaws.ecs.actions.update_desired_count",
            json!({"cluster": "c", "service": "s", "desired_count": "0"}),
        ))
        .unwrap();
        assert_eq!(
            c,
            Call::EcsUpdateDesiredCount {
                cluster: "c".into(),
                service: "s".into(),
                desired_count: 0
            }
        );
    }

    #[test]
    fn wrong_types_and_unknown_arguments_are_named() {
        let f = "chaosaws.ecs.actions.update_desired_count";
        let e = Call::parse(&spec(
            f,
            json!({"cluster": "c", "service": "s", "desired_count": -1}),
        ))
        .unwrap_err();
        assert_eq!(e, "argument 'desired_count' of chaosaws.ecs.actions.update_desired_count must be a whole number ≥ 0, found -1");
        let e = Call::parse(&spec(
            f,
            json!({"cluster": 5, "service": "s", "desired_count": 1}),
        ))
        .unwrap_err();
        assert_eq!(e, "argument 'cluster' of chaosaws.ecs.actions.update_desired_count must be a string, found a number");
        let e = Call::parse(&spec(
            f,
            json!({"cluster": "c", "service": "s", "desired_count": 1, "force": true}),
        ))
        .unwrap_err();
        assert!(
            e.starts_with("argument 'force' is not a parameter of"),
            "{e}"
        );
    }

    #[test]
    fn implicit_configuration_argument_is_accepted() {
        let c = Call::parse(&spec(
            "chaosaws.cloudwatch.probes.get_alarm_state_value",
            json!({"alarm_name": "a", "configuration": {}}),
        ));
        assert!(c.is_ok());
    }
}
