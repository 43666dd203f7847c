//! The probes and actions Turbulence runs, behind narrow ports.
//!
//! [`run`] executes one catalogued [`Call`] against the ports and returns its
//! output and, for an action that changed something, the call that undoes it.

pub mod attack;
pub mod aws;
pub mod guard;
pub mod ports;

use std::collections::BTreeMap;

use experiment::guards::BlastRadius;
use experiment::{Call, CallSpec};
use rand::seq::IndexedRandom;
use rand::RngCore;
use serde_json::{json, Value};

pub use ports::{
    AlarmDefinition, Alarms, AwsError, DeadLetters, Ecs, Executions, Functions, MetricQuery,
    Metrics, Parameters, Unavailable,
};

mod lambda;

/// The AWS the activities reach.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    pub ecs: &'a dyn Ecs,
    pub alarms: &'a dyn Alarms,
    pub metrics: &'a dyn Metrics,
    pub parameters: &'a dyn Parameters,
    pub functions: &'a dyn Functions,
    /// Background activities' executions (and, for the janitor, ended ones).
    pub executions: &'a dyn Executions,
    /// The function's environment, read once at cold start: configuration
    /// and secrets of type `env` come from here.
    pub environment: &'a BTreeMap<String, String>,
}

/// What an activity may need of the run around it.
pub struct Context<'a> {
    /// Values observed before the method that later checks compare against.
    pub baselines: &'a mut BTreeMap<String, Value>,
    pub rng: &'a mut (dyn RngCore + Send),
    pub now: time::OffsetDateTime,
    /// How long the rest of the experiment may still take: injected faults
    /// expire then, whatever happens to the run.
    pub experiment_time_left: std::time::Duration,
    /// Long activities poll these while they run.
    pub abort_alarms: &'a [String],
    /// The kill switch parameter, polled with the alarms.
    pub kill_switch: Option<&'a str>,
    /// The executions this activity runs for (its run and, in the
    /// background, the run that started it), polled with the alarms.
    pub runs: &'a [String],
    pub poll_interval: std::time::Duration,
    /// Told what undoes a change before the change is made, so it can be
    /// undone even if this run never returns.
    pub undo_log: &'a dyn UndoLog,
    pub blast_radius: BlastRadius,
    /// Where load attacks and http probes may go, and how hard.
    pub load_limits: &'a load::Limits,
    /// The step's name: what an attack's findings are kept under.
    pub step: &'a str,
}

impl Context<'_> {
    /// What a long activity watches while it runs.
    pub fn watch(&self) -> Watch<'_> {
        Watch {
            abort_alarms: self.abort_alarms,
            kill_switch: self.kill_switch,
            runs: self.runs,
        }
    }

    /// Why the run must stop now, if it must.
    pub async fn stop_reason(&self, ports: &Ports<'_>) -> Result<Option<String>, AwsError> {
        self.watch().stop_reason(ports).await
    }
}

/// What stops work under way: an abort alarm in ALARM, the kill switch,
/// or its run ending. Step Functions abandons a task when its execution is
/// stopped (the console's Stop, StopExecution) or times out, but the
/// invocation goes on: a long activity or a wait that does not look at its
/// run would keep attacking or waiting after the janitor has undone the run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Watch<'a> {
    pub abort_alarms: &'a [String],
    pub kill_switch: Option<&'a str>,
    /// Executions that must still be RUNNING (one DescribeExecution each per
    /// poll); empty before a step starts, since Step Functions schedules no
    /// step of an execution that is over.
    pub runs: &'a [String],
}

impl Watch<'_> {
    /// Why the work must stop now, if it must.
    pub async fn stop_reason(&self, ports: &Ports<'_>) -> Result<Option<String>, AwsError> {
        for run in self.runs {
            match ports.executions.status(run).await?.as_deref() {
                Some("RUNNING") => {}
                Some(status) => {
                    return Ok(Some(format!(
                        "the run is over: execution {run} is {status} (stopped, timed out or failed); its undos are the janitor's"
                    )))
                }
                None => return Ok(Some(format!("the run is over: no execution {run}"))),
            }
        }
        stop_reason(
            ports.alarms,
            ports.parameters,
            self.abort_alarms,
            self.kill_switch,
        )
        .await
    }
}

/// Where an action writes its undo before it changes anything.
#[async_trait::async_trait]
pub trait UndoLog: Send + Sync {
    async fn will_change(&self, undo: &Undo) -> Result<(), AwsError>;
}

/// For rollbacks and tests: undoing needs no undo.
pub struct NoUndoLog;

#[async_trait::async_trait]
impl UndoLog for NoUndoLog {
    async fn will_change(&self, _undo: &Undo) -> Result<(), AwsError> {
        Ok(())
    }
}

/// Why a run must stop: an abort alarm in ALARM, or the kill switch set.
pub async fn stop_reason(
    alarms: &dyn Alarms,
    parameters: &dyn Parameters,
    abort_alarms: &[String],
    kill_switch: Option<&str>,
) -> Result<Option<String>, AwsError> {
    if let Some(name) = kill_switch {
        let value = parameters.get(name).await?;
        if experiment::guards::kill_switch_is_set(value.as_deref()) {
            return Ok(Some(format!(
                "kill switch '{name}' is set ({})",
                value.unwrap_or_default().trim()
            )));
        }
    }
    let firing = firing(alarms, abort_alarms).await?;
    Ok((!firing.is_empty()).then(|| {
        format!(
            "abort alarm {} in ALARM",
            firing
                .iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }))
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActivityError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The activity ran but could not do what it was asked.
    #[error("{0}")]
    Failed(String),
    /// A guard refused it before it changed anything.
    #[error("{0}")]
    Refused(String),
    /// An abort alarm fired, or the kill switch was set, while a long
    /// activity ran; it stopped.
    #[error("{0}")]
    Aborted(String),
}

impl ActivityError {
    pub fn is_throttled(&self) -> bool {
        matches!(self, ActivityError::Aws(AwsError::Throttled(_)))
    }
}

/// An undo: a name for the journal and the call that makes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Undo {
    pub name: String,
    pub call: CallSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub output: Value,
    /// Facts behind the output worth a line in the journal (e.g. counts).
    pub detail: Option<Value>,
    pub undo: Option<Undo>,
}

impl Outcome {
    fn output(output: Value) -> Self {
        Outcome {
            output,
            detail: None,
            undo: None,
        }
    }
}

pub use experiment::catalogue::tasks_of;

/// The key under which a service's desired count before the method is kept.
pub fn desired_count_key(cluster: &str, service: &str) -> String {
    format!("ecs:{cluster}/{service}:desired_count")
}

/// Remember the desired count the first time a service is seen, so later
/// checks compare against what it was before the experiment changed it.
fn remember_desired(
    baselines: &mut BTreeMap<String, Value>,
    cluster: &str,
    service: &str,
    desired: i32,
) -> i64 {
    baselines
        .entry(desired_count_key(cluster, service))
        .or_insert(json!(desired))
        .as_i64()
        .unwrap_or(i64::from(desired))
}

pub(crate) fn spec(function: &str, arguments: Value) -> CallSpec {
    CallSpec {
        function: function.into(),
        arguments: arguments.as_object().cloned().unwrap_or_default(),
    }
}

pub async fn run(
    call: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let baselines = &mut *ctx.baselines;
    match call {
        Call::EcsStopRandomTasks {
            cluster,
            service,
            count,
            reason,
        } => {
            if let Some(s) = service {
                let svc = ports.ecs.describe_service(cluster, s).await?;
                remember_desired(baselines, cluster, s, svc.desired_count);
            }
            let tasks = ports.ecs.running_tasks(cluster, service.as_deref()).await?;
            let of = tasks_of(cluster, service.as_deref());
            let n = count.of(tasks.len());
            if tasks.is_empty() {
                return Err(ActivityError::Failed(format!("no running tasks in {of}")));
            }
            if n > tasks.len() {
                return Err(ActivityError::Failed(format!(
                    "asked to stop {n} tasks but {of} has only {} running",
                    tasks.len()
                )));
            }
            // Again here, not only at Plan: tasks may have gone since.
            ctx.blast_radius
                .check(n, tasks.len(), &of)
                .map_err(ActivityError::Refused)?;
            let chosen: Vec<String> = tasks
                .choose_multiple(&mut *ctx.rng, n)
                .map(|t| t.arn.clone())
                .collect();
            for (i, arn) in chosen.iter().enumerate() {
                match ports.ecs.stop_task(cluster, arn, reason).await {
                    Ok(()) => {}
                    // Throttled after a stop is no longer "nothing changed":
                    // a retry of the whole action would stop more tasks.
                    Err(AwsError::Throttled(e)) if i > 0 => {
                        return Err(ActivityError::Failed(format!(
                            "stopped {i} of {n} tasks, then: {e}"
                        )))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(Outcome {
                output: json!(chosen),
                detail: Some(json!({"running_before": tasks.len(), "stopped": chosen.len()})),
                undo: None,
            })
        }
        Call::EcsUpdateDesiredCount {
            cluster,
            service,
            desired_count,
        } => {
            let before = ports.ecs.describe_service(cluster, service).await?;
            remember_desired(baselines, cluster, service, before.desired_count);
            // Restore the count read just now, not what autoscaling may set
            // meanwhile: the rollback must put back what we found.
            let undo = (before.desired_count != *desired_count).then(|| Undo {
                name: format!("restore desired count of '{service}' to {}", before.desired_count),
                call: spec(
                    "chaosaws.ecs.actions.update_desired_count",
                    json!({"cluster": cluster, "service": service, "desired_count": before.desired_count}),
                ),
            });
            if let Some(undo) = &undo {
                ctx.undo_log.will_change(undo).await?;
            }
            ports
                .ecs
                .update_desired_count(cluster, service, *desired_count)
                .await?;
            Ok(Outcome {
                output: json!({
                    "service": service,
                    "previous_desired_count": before.desired_count,
                    "desired_count": desired_count,
                }),
                detail: None,
                undo,
            })
        }
        Call::EcsAreAllDesiredTasksRunning { cluster, service } => {
            let svc = ports.ecs.describe_service(cluster, service).await?;
            let expected = remember_desired(baselines, cluster, service, svc.desired_count);
            let running = ports.ecs.running_tasks(cluster, Some(service)).await?.len() as i64;
            // Against the count recorded before the method: after the method
            // set desiredCount to 0, "0 of 0 running" must not pass. A service
            // that wanted no tasks has nothing to be steady about.
            let all_running = expected > 0 && running >= expected;
            Ok(Outcome {
                output: json!(all_running),
                detail: Some(json!({
                    "running": running,
                    "expected": expected,
                    "desired_count_now": svc.desired_count,
                })),
                undo: None,
            })
        }
        Call::EcsDescribeService { cluster, service } => {
            let s = ports.ecs.describe_service(cluster, service).await?;
            Ok(Outcome::output(json!({
                "serviceName": s.name,
                "status": s.status,
                "desiredCount": s.desired_count,
                "runningCount": s.running_count,
                "pendingCount": s.pending_count,
            })))
        }
        Call::CloudWatchGetAlarmStateValue { alarm_name } => {
            let states = ports
                .alarms
                .states(std::slice::from_ref(alarm_name))
                .await?;
            states
                .get(alarm_name)
                .map(|s| Outcome::output(json!(s)))
                .ok_or_else(|| {
                    ActivityError::Failed(format!("alarm '{alarm_name}' does not exist"))
                })
        }
        Call::CloudWatchMetricStatistics(m) | Call::CloudWatchMetricData(m) => {
            let statistics = matches!(call, Call::CloudWatchMetricStatistics(_));
            let query = metric_query(m, ctx.now);
            let values = if statistics {
                ports.metrics.statistics(&query).await?
            } else {
                ports.metrics.data(&query).await?
            };
            let window = format!(
                "{} {}{} ({}) over the {} s ending {} s ago",
                m.namespace,
                m.metric_name,
                dimensions_text(&m.dimensions),
                m.statistic,
                m.duration_s,
                m.offset_s
            );
            let value = if statistics {
                // The newest datapoint, as Chaos Toolkit reads it.
                values.last().copied()
            } else {
                fold(&m.statistic, &values)
            };
            let value = value.ok_or_else(|| {
                ActivityError::Failed(format!(
                    "no datapoints for {window}: inconclusive, so the probe fails (a missing metric is not a 0)"
                ))
            })?;
            Ok(Outcome {
                output: json!(value),
                detail: Some(json!({"metric": window, "datapoints": values.len()})),
                undo: None,
            })
        }
        Call::Http { request } => {
            let probe = load::http::HttpProbe::from_json(request.clone())
                .map_err(|e| ActivityError::Failed(e.to_string()))?;
            let out = probe.run(ctx.load_limits).await.map_err(|e| match e {
                load::LoadError::Invalid { .. }
                | load::LoadError::Spec { .. }
                | load::LoadError::HostNotAllowed { .. } => ActivityError::Refused(e.to_string()),
                other => ActivityError::Failed(other.to_string()),
            })?;
            Ok(Outcome::output(
                serde_json::to_value(out).unwrap_or(Value::Null),
            ))
        }
        Call::LoadAttack { spec } => attack::run(spec, ports, ctx).await,
        Call::LoadExpectationsMet { attack: name } => {
            attack::expectations_met(ctx.baselines, name.as_deref())
        }
        Call::SsmPutParameter {
            name,
            value,
            kind,
            description,
            overwrite,
        } => {
            let previous = ports.parameters.get(name).await?;
            if previous.is_some() && !overwrite {
                return Err(ActivityError::Failed(format!(
                    "parameter '{name}' exists and 'overwrite' is false"
                )));
            }
            let undo = match &previous {
                None => Undo {
                    name: format!("delete parameter '{name}'"),
                    call: spec(
                        "turbulence.ssm.actions.delete_parameter",
                        json!({"name": name}),
                    ),
                },
                Some(old) => Undo {
                    name: format!("restore parameter '{name}'"),
                    call: spec(
                        "chaosaws.ssm.actions.put_parameter",
                        json!({"name": name, "value": old, "type": kind, "overwrite": true}),
                    ),
                },
            };
            ctx.undo_log.will_change(&undo).await?;
            ports
                .parameters
                .put(&ports::PutParameter {
                    name: name.clone(),
                    value: value.clone(),
                    kind: kind.clone(),
                    description: description.clone(),
                    overwrite: *overwrite,
                })
                .await?;
            Ok(Outcome {
                output: json!({"name": name, "created": previous.is_none()}),
                detail: None,
                undo: Some(undo),
            })
        }
        Call::SsmDeleteParameter { name }
        | Call::ClearLambdaFaults {
            parameter_name: name,
        } => {
            let deleted = ports.parameters.delete(name).await?;
            Ok(Outcome::output(json!({"name": name, "deleted": deleted})))
        }
        Call::InjectLambdaFaults {
            parameter_name,
            configuration,
            ..
        } => {
            if let Some(current) = ports.parameters.get(parameter_name).await? {
                if !experiment::faults::is_inert(&current, ctx.now) {
                    // Never take over chaos someone else injected.
                    return Err(ActivityError::Failed(format!(
                        "parameter '{parameter_name}' already holds an active fault configuration; clear it first"
                    )));
                }
            }
            let expires_at = experiment::timestamp(ctx.now + ctx.experiment_time_left);
            let mut config = configuration.clone();
            config["expires_at"] = json!(expires_at);
            let undo = Undo {
                name: format!("clear fault configuration '{parameter_name}'"),
                call: spec(
                    "turbulence.faults.actions.clear_lambda_faults",
                    json!({"parameter_name": parameter_name}),
                ),
            };
            ctx.undo_log.will_change(&undo).await?;
            ports
                .parameters
                .put(&ports::PutParameter {
                    name: parameter_name.clone(),
                    value: config.to_string(),
                    kind: "String".into(),
                    description: Some(format!(
                        "Turbulence fault configuration, expires at {expires_at}"
                    )),
                    overwrite: true,
                })
                .await?;
            Ok(Outcome {
                output: json!({"parameter_name": parameter_name, "expires_at": expires_at, "configuration": config}),
                detail: None,
                undo: Some(undo),
            })
        }
        Call::ReleaseLock {
            parameter_name,
            execution,
        } => {
            let released = guard::release_lock(ports.parameters, parameter_name, execution).await?;
            Ok(Outcome::output(
                json!({"parameter_name": parameter_name, "released": released}),
            ))
        }
        Call::LambdaFaultsAreEmpty { parameter_name } => {
            let current = ports.parameters.get(parameter_name).await?;
            let empty = current
                .as_deref()
                .is_none_or(|c| experiment::faults::is_inert(c, ctx.now));
            Ok(Outcome {
                output: json!(empty),
                detail: Some(json!({"parameter_exists": current.is_some()})),
                undo: None,
            })
        }
        Call::LambdaInvokeFunction {
            function_name,
            payload,
            invocation_type,
            qualifier,
        } => {
            let body = lambda::body(payload);
            let inv = ports
                .functions
                .invoke(function_name, &body, invocation_type, qualifier.as_deref())
                .await?;
            Ok(Outcome::output(json!({
                "StatusCode": inv.status_code,
                "FunctionError": inv.function_error,
                "Payload": lambda::payload_value(&inv.payload),
            })))
        }
        Call::LambdaInvokeRepeatedly {
            function_name,
            payload,
            count,
            concurrency,
            slow_ms,
        } => {
            lambda::invoke_repeatedly(
                ports,
                ctx,
                function_name,
                payload,
                *count,
                *concurrency,
                *slow_ms,
            )
            .await
        }
    }
}

fn metric_query(m: &experiment::catalogue::MetricSpec, now: time::OffsetDateTime) -> MetricQuery {
    let end = now - time::Duration::seconds(i64::from(m.offset_s));
    MetricQuery {
        namespace: m.namespace.clone(),
        metric_name: m.metric_name.clone(),
        dimensions: m.dimensions.clone(),
        start: end - time::Duration::seconds(i64::from(m.duration_s)),
        end,
        period_seconds: i32::try_from(m.period_s).unwrap_or(i32::MAX),
        statistic: m.statistic.clone(),
        unit: m.unit.clone(),
    }
}

fn dimensions_text(dimensions: &[(String, String)]) -> String {
    if dimensions.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = dimensions.iter().map(|(n, v)| format!("{n}={v}")).collect();
    format!(" {{{}}}", inner.join(", "))
}

/// Fold GetMetricData's values as chaosaws does: Sum adds, Minimum and
/// Maximum pick, anything else averages. `None` for no values.
fn fold(statistic: &str, values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(match statistic {
        "Sum" | "SampleCount" => values.iter().sum(),
        "Minimum" => values.iter().copied().fold(f64::INFINITY, f64::min),
        "Maximum" => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        _ => values.iter().sum::<f64>() / values.len() as f64,
    })
}

/// The named alarms that are in ALARM now.
pub async fn firing(alarms: &dyn Alarms, names: &[String]) -> Result<Vec<String>, AwsError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let states = alarms.states(names).await?;
    Ok(names
        .iter()
        .filter(|n| states.get(*n).map(String::as_str) == Some("ALARM"))
        .cloned()
        .collect())
}

/// The named alarms that do not exist.
pub async fn missing(alarms: &dyn Alarms, names: &[String]) -> Result<Vec<String>, AwsError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let states = alarms.states(names).await?;
    Ok(names
        .iter()
        .filter(|n| !states.contains_key(*n))
        .cloned()
        .collect())
}

#[cfg(any(test, feature = "fake"))]
pub mod fake;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{FakeAlarms, FakeEcs, FakeFunctions, FakeParameters};
    use crate::ports::{AwsError, Invocation};
    use experiment::catalogue::TaskCount;
    use rand::SeedableRng;

    /// The fakes, and the run context an activity sees.
    struct T {
        ecs: FakeEcs,
        alarms: FakeAlarms,
        parameters: FakeParameters,
        functions: FakeFunctions,
        metrics: crate::fake::FakeMetrics,
        executions: std::sync::Arc<crate::fake::FakeExecutions>,
        runs: Vec<String>,
        baselines: BTreeMap<String, Value>,
        rng: rand::rngs::StdRng,
        abort_alarms: Vec<String>,
        kill_switch: Option<String>,
        poll_interval: std::time::Duration,
        undo_log: RecordingUndoLog,
        blast_radius: BlastRadius,
        load_limits: load::Limits,
        environment: BTreeMap<String, String>,
    }

    /// Keeps what it is told; fails when asked to, as SSM may.
    #[derive(Default)]
    struct RecordingUndoLog {
        undos: std::sync::Mutex<Vec<Undo>>,
        fail: bool,
    }

    #[async_trait::async_trait]
    impl UndoLog for RecordingUndoLog {
        async fn will_change(&self, undo: &Undo) -> Result<(), AwsError> {
            if self.fail {
                return Err(AwsError::Other("ssm:PutParameter: access denied".into()));
            }
            self.undos.lock().unwrap().push(undo.clone());
            Ok(())
        }
    }

    impl T {
        fn new(ecs: FakeEcs) -> T {
            T {
                ecs,
                alarms: FakeAlarms::default(),
                parameters: FakeParameters::default(),
                functions: FakeFunctions::default(),
                metrics: crate::fake::FakeMetrics::default(),
                executions: Default::default(),
                runs: Vec::new(),
                baselines: BTreeMap::new(),
                rng: rand::rngs::StdRng::seed_from_u64(7),
                abort_alarms: Vec::new(),
                kill_switch: None,
                poll_interval: std::time::Duration::from_millis(10),
                undo_log: RecordingUndoLog::default(),
                // Permissive, so tests of other behaviour are not capped.
                blast_radius: BlastRadius {
                    max_task_percent: 100,
                    min_remaining_tasks: 0,
                },
                load_limits: load::Limits {
                    allowed_hosts: vec!["127.0.0.1".into()],
                    // The local stack's opt-out: the target is on loopback.
                    allow_loopback: true,
                    ..Default::default()
                },
                environment: BTreeMap::new(),
            }
        }

        async fn run(&mut self, call: &Call) -> Result<Outcome, ActivityError> {
            let ports = Ports {
                ecs: &self.ecs,
                alarms: &self.alarms,
                metrics: &self.metrics,
                parameters: &self.parameters,
                functions: &self.functions,
                executions: &*self.executions,
                environment: &self.environment,
            };
            let mut ctx = Context {
                baselines: &mut self.baselines,
                rng: &mut self.rng,
                now: time::OffsetDateTime::now_utc(),
                experiment_time_left: std::time::Duration::from_secs(600),
                abort_alarms: &self.abort_alarms,
                kill_switch: self.kill_switch.as_deref(),
                runs: &self.runs,
                poll_interval: self.poll_interval,
                undo_log: &self.undo_log,
                blast_radius: self.blast_radius,
                load_limits: &self.load_limits,
                step: "step",
            };
            run(call, &ports, &mut ctx).await
        }
    }

    #[tokio::test]
    async fn stops_the_asked_number_of_running_tasks() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 3));
        let call = Call::EcsStopRandomTasks {
            cluster: "c".into(),
            service: Some("web".into()),
            count: TaskCount::Count(1),
            reason: "chaos".into(),
        };
        let out = t.run(&call).await.unwrap();
        let stopped: Vec<String> = serde_json::from_value(out.output).unwrap();
        assert_eq!(stopped.len(), 1);
        assert_eq!(t.ecs.stopped(), stopped);
        assert_eq!(t.baselines[&desired_count_key("c", "web")], json!(3));
        assert!(out.undo.is_none());
    }

    #[tokio::test]
    async fn stopping_more_tasks_than_run_fails_without_stopping_any() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 2));
        let call = Call::EcsStopRandomTasks {
            cluster: "c".into(),
            service: Some("web".into()),
            count: TaskCount::Count(3),
            reason: "chaos".into(),
        };
        let err = t.run(&call).await.unwrap_err();
        assert_eq!(
            err,
            ActivityError::Failed(
                "asked to stop 3 tasks but service 'web' of cluster 'c' has only 2 running".into()
            )
        );
        assert!(t.ecs.stopped().is_empty());
    }

    #[tokio::test]
    async fn a_stop_over_the_blast_radius_is_refused_before_any_task_stops() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 3));
        t.blast_radius = BlastRadius::default();
        let call = Call::EcsStopRandomTasks {
            cluster: "c".into(),
            service: Some("web".into()),
            count: TaskCount::Percent(100),
            reason: "chaos".into(),
        };
        let err = t.run(&call).await.unwrap_err();
        assert_eq!(
            err,
            ActivityError::Refused("stopping 3 of the 3 running tasks of service 'web' of cluster 'c' is over the blast-radius cap of 50% of running tasks".into())
        );
        assert!(t.ecs.stopped().is_empty());
    }

    #[tokio::test]
    async fn the_undo_is_logged_before_the_change_and_no_log_means_no_change() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 3));
        let call = Call::EcsUpdateDesiredCount {
            cluster: "c".into(),
            service: "web".into(),
            desired_count: 0,
        };
        let out = t.run(&call).await.unwrap();
        assert_eq!(
            t.undo_log.undos.lock().unwrap().clone(),
            vec![out.undo.unwrap()]
        );

        let mut t = T::new(FakeEcs::with_service("c", "web", 3));
        t.undo_log.fail = true;
        let err = t.run(&call).await.unwrap_err();
        assert!(err.to_string().contains("access denied"), "{err}");
        assert_eq!(
            t.ecs.desired("c", "web"),
            3,
            "nothing changed without an undo on record"
        );
    }

    #[tokio::test]
    async fn the_kill_switch_stops_a_long_activity() {
        let mut t = T::new(FakeEcs::default());
        t.kill_switch = Some("/kill".into());
        t.parameters.set("/kill", "incident 12");
        let call = Call::LambdaInvokeRepeatedly {
            function_name: "f".into(),
            payload: Value::Null,
            count: 10,
            concurrency: 1,
            slow_ms: 1000,
        };
        let err = t.run(&call).await.unwrap_err();
        assert_eq!(
            err,
            ActivityError::Aborted("kill switch '/kill' is set (incident 12)".into())
        );
        assert_eq!(t.functions.calls(), 0);
    }

    #[tokio::test]
    async fn repeated_invocations_stop_once_their_run_is_stopped() {
        let mut t = T::new(FakeEcs::default());
        let run = "arn:aws:states:us-east-1:1:execution:m:run";
        t.runs = vec![run.into()];
        t.executions.set_status(run, "RUNNING");
        t.poll_interval = std::time::Duration::ZERO;
        let call = Call::LambdaInvokeRepeatedly {
            function_name: "f".into(),
            payload: Value::Null,
            count: 1000,
            concurrency: 1,
            slow_ms: 1000,
        };
        // The run is stopped from the console during the third invocation.
        let executions = std::sync::Arc::clone(&t.executions);
        let invoked = std::sync::atomic::AtomicUsize::new(0);
        t.functions = FakeFunctions::answering(move |_, _| {
            if invoked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 2 {
                executions.set_status(run, "ABORTED");
            }
            Ok(Invocation {
                status_code: 200,
                function_error: None,
                payload: b"{}".to_vec(),
            })
        });
        let err = t.run(&call).await.unwrap_err();
        assert_eq!(
            err,
            ActivityError::Aborted(format!(
                "the run is over: execution {run} is ABORTED (stopped, timed out or failed); its undos are the janitor's"
            ))
        );
        assert_eq!(t.functions.calls(), 3);
    }

    #[tokio::test]
    async fn percent_rounds_up_to_at_least_one_task() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 3));
        let call = Call::EcsStopRandomTasks {
            cluster: "c".into(),
            service: Some("web".into()),
            count: TaskCount::Percent(10),
            reason: "chaos".into(),
        };
        t.run(&call).await.unwrap();
        assert_eq!(t.ecs.stopped().len(), 1);
    }

    #[tokio::test]
    async fn update_desired_count_records_the_count_it_found_as_undo() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 3));
        let call = Call::EcsUpdateDesiredCount {
            cluster: "c".into(),
            service: "web".into(),
            desired_count: 0,
        };
        let out = t.run(&call).await.unwrap();
        assert_eq!(t.ecs.desired("c", "web"), 0);
        let undo = out.undo.unwrap();
        assert_eq!(undo.call.arguments["desired_count"], json!(3));
        // The undo is itself a valid catalogued call.
        assert_eq!(
            Call::parse(&undo.call).unwrap(),
            Call::EcsUpdateDesiredCount {
                cluster: "c".into(),
                service: "web".into(),
                desired_count: 3
            }
        );
    }

    #[tokio::test]
    async fn all_running_compares_against_the_count_before_the_method() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 3));
        let probe = Call::EcsAreAllDesiredTasksRunning {
            cluster: "c".into(),
            service: "web".into(),
        };
        assert_eq!(t.run(&probe).await.unwrap().output, json!(true));

        // The method scales the service to zero: 0 running of 0 desired.
        let zero = Call::EcsUpdateDesiredCount {
            cluster: "c".into(),
            service: "web".into(),
            desired_count: 0,
        };
        t.run(&zero).await.unwrap();
        t.ecs.set_running("c", "web", 0);
        let out = t.run(&probe).await.unwrap();
        assert_eq!(out.output, json!(false), "0 == 0 must not pass");
        assert_eq!(out.detail.unwrap()["expected"], json!(3));

        // Autoscaling brought it back.
        t.ecs.set_desired("c", "web", 3);
        t.ecs.set_running("c", "web", 3);
        assert_eq!(t.run(&probe).await.unwrap().output, json!(true));
    }

    #[tokio::test]
    async fn a_service_that_wants_no_tasks_is_not_steady() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 0));
        let probe = Call::EcsAreAllDesiredTasksRunning {
            cluster: "c".into(),
            service: "web".into(),
        };
        assert_eq!(t.run(&probe).await.unwrap().output, json!(false));
    }

    fn metric_call(function: &str, args: Value) -> Call {
        Call::parse(&spec(function, args)).unwrap()
    }

    #[tokio::test]
    async fn a_metric_without_datapoints_fails_the_probe_instead_of_reading_zero() {
        let mut t = T::new(FakeEcs::default());
        let call = metric_call(
            "chaosaws.cloudwatch.probes.get_metric_statistics",
            json!({"namespace": "AWS/ApiGateway", "metric_name": "5XXError",
                   "dimension_name": "ApiName", "dimension_value": "api", "statistic": "Sum", "duration": 600}),
        );
        let err = t.run(&call).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "no datapoints for AWS/ApiGateway 5XXError {ApiName=api} (Sum) over the 600 s ending 0 s ago: inconclusive, so the probe fails (a missing metric is not a 0)"
        );
        *t.metrics.values.lock().unwrap() = vec![2.0, 0.0];
        // The newest datapoint, as chaosaws reads it.
        assert_eq!(t.run(&call).await.unwrap().output, json!(0.0));
        let q = t.metrics.queries.lock().unwrap()[0].clone();
        assert_eq!(q.end - q.start, time::Duration::seconds(600));
        assert_eq!(
            q.dimensions,
            vec![("ApiName".to_string(), "api".to_string())]
        );
    }

    #[tokio::test]
    async fn metric_data_folds_its_values_by_the_statistic() {
        let mut t = T::new(FakeEcs::default());
        *t.metrics.values.lock().unwrap() = vec![1.0, 4.0, 1.0];
        let data = |stat: &str| {
            metric_call(
                "chaosaws.cloudwatch.probes.get_metric_data",
                json!({"namespace": "N", "metric_name": "M", "statistic": stat}),
            )
        };
        assert_eq!(t.run(&data("Sum")).await.unwrap().output, json!(6.0));
        assert_eq!(t.run(&data("Maximum")).await.unwrap().output, json!(4.0));
        assert_eq!(t.run(&data("Average")).await.unwrap().output, json!(2.0));
    }

    #[tokio::test]
    async fn an_http_probe_to_a_host_off_the_allow_list_is_refused_unsent() {
        let mut t = T::new(FakeEcs::default());
        let call = metric_call("http", json!({"url": "http://10.9.8.7:1/health"}));
        let err = t.run(&call).await.unwrap_err();
        assert!(matches!(err, ActivityError::Refused(_)), "{err:?}");
        assert!(err.to_string().contains("10.9.8.7"), "{err}");
    }

    #[test]
    fn expectations_are_met_until_an_attack_saw_a_violation() {
        let mut baselines = BTreeMap::new();
        let before = attack::expectations_met(&baselines, None).unwrap();
        assert_eq!(
            before.output,
            json!(true),
            "no attack ran: nothing violated"
        );
        baselines.insert(
            attack::findings_key("abuse"),
            json!({"violations": ["invalid-token: expected 401 or 403, saw 500 ×12"], "samples": [{"response": {"status": 500}}]}),
        );
        let after = attack::expectations_met(&baselines, Some("abuse")).unwrap();
        assert_eq!(after.output, json!(false));
        let detail = after.detail.unwrap();
        assert_eq!(
            detail["violations"][0],
            "invalid-token: expected 401 or 403, saw 500 ×12"
        );
        assert_eq!(detail["samples"][0]["response"]["status"], 500);
    }

    #[tokio::test]
    async fn firing_and_missing_alarms() {
        let alarms = FakeAlarms::default();
        alarms.set("a", "OK");
        alarms.set("b", "ALARM");
        let names = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(
            firing(&alarms, &names).await.unwrap(),
            vec!["b".to_string()]
        );
        assert_eq!(
            missing(&alarms, &names).await.unwrap(),
            vec!["c".to_string()]
        );
        assert_eq!(alarms.calls(), 2);
        assert!(firing(&alarms, &[]).await.unwrap().is_empty());
        assert_eq!(alarms.calls(), 2, "no alarms, no call");
    }

    fn inject(parameter: &str) -> Call {
        Call::parse(&spec(
            "turbulence.faults.actions.inject_lambda_faults",
            json!({"parameter_name": parameter, "function_name": "f", "configuration": {
                "statuscode": {"enabled": true, "percentage": 20, "status_code": 500}
            }}),
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn injected_faults_expire_with_the_experiment_and_undo_by_deleting() {
        let mut t = T::new(FakeEcs::default());
        let before = time::OffsetDateTime::now_utc();
        let out = t.run(&inject("/faults/f")).await.unwrap();
        let stored: Value =
            serde_json::from_str(&t.parameters.value("/faults/f").unwrap()).unwrap();
        assert_eq!(stored["statuscode"]["status_code"], 500);
        let expires = time::OffsetDateTime::parse(
            stored["expires_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let ahead = (expires - before).whole_seconds();
        assert!(
            (599..=601).contains(&ahead),
            "expires {ahead} s ahead, the experiment has 600 s left"
        );
        let undo = out.undo.unwrap();
        assert_eq!(
            undo.call.function,
            "turbulence.faults.actions.clear_lambda_faults"
        );
        t.run(&Call::parse(&undo.call).unwrap()).await.unwrap();
        assert_eq!(t.parameters.value("/faults/f"), None);
    }

    #[tokio::test]
    async fn injection_never_takes_over_an_active_configuration() {
        let mut t = T::new(FakeEcs::default());
        let theirs = r#"{"latency": {"enabled": true, "percentage": 100, "min_latency": 5, "max_latency": 5}}"#;
        t.parameters.set("/faults/f", theirs);
        let err = t.run(&inject("/faults/f")).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("already holds an active fault configuration"),
            "{err}"
        );
        assert_eq!(t.parameters.value("/faults/f").as_deref(), Some(theirs));
        // A disabled or expired one is fair game.
        t.parameters.set(
            "/faults/f",
            r#"{"exception": {"enabled": false, "percentage": 100}}"#,
        );
        t.run(&inject("/faults/f")).await.unwrap();
    }

    #[tokio::test]
    async fn the_empty_probe_reads_absent_and_inert_as_empty() {
        let mut t = T::new(FakeEcs::default());
        let probe = Call::LambdaFaultsAreEmpty {
            parameter_name: "/faults/f".into(),
        };
        assert_eq!(t.run(&probe).await.unwrap().output, json!(true));
        t.run(&inject("/faults/f")).await.unwrap();
        assert_eq!(t.run(&probe).await.unwrap().output, json!(false));
        t.parameters.set("/faults/f", "not json");
        assert_eq!(
            t.run(&probe).await.unwrap().output,
            json!(false),
            "unreadable is not empty"
        );
    }

    #[tokio::test]
    async fn put_parameter_undoes_to_what_was_there() {
        let mut t = T::new(FakeEcs::default());
        let put = |value: &str| {
            Call::parse(&spec(
                "chaosaws.ssm.actions.put_parameter",
                json!({"name": "/p", "value": value, "overwrite": true}),
            ))
            .unwrap()
        };
        let created = t.run(&put("one")).await.unwrap().undo.unwrap();
        assert_eq!(
            created.call.function,
            "turbulence.ssm.actions.delete_parameter"
        );
        let replaced = t.run(&put("two")).await.unwrap().undo.unwrap();
        assert_eq!(replaced.call.arguments["value"], "one");
        t.run(&Call::parse(&replaced.call).unwrap()).await.unwrap();
        assert_eq!(t.parameters.value("/p").as_deref(), Some("one"));
    }

    #[tokio::test]
    async fn repeated_invocations_are_counted_by_outcome() {
        let mut t = T::new(FakeEcs::default());
        let n = std::sync::atomic::AtomicUsize::new(0);
        t.functions = FakeFunctions::answering(move |_, _| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(match i % 4 {
                0 => Invocation {
                    status_code: 200,
                    function_error: None,
                    payload: br#"{"statusCode":500}"#.to_vec(),
                },
                1 => Invocation {
                    status_code: 200,
                    function_error: Some("Unhandled".into()),
                    payload: br#"{"errorType":"InjectedFault","errorMessage":"x"}"#.to_vec(),
                },
                _ => Invocation {
                    status_code: 200,
                    function_error: None,
                    payload: br#"{"statusCode":200}"#.to_vec(),
                },
            })
        });
        let call = Call::LambdaInvokeRepeatedly {
            function_name: "f".into(),
            payload: json!({"body": "{}"}),
            count: 100,
            concurrency: 4,
            slow_ms: 1000,
        };
        let out = t.run(&call).await.unwrap().output;
        assert_eq!(out["invocations"], 100);
        assert_eq!(
            out["outcomes"],
            json!({"status:500": 25, "error:InjectedFault": 25, "status:200": 50})
        );
        assert_eq!(out["rates"]["status:200"], 0.5);
        assert_eq!(t.functions.calls(), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_invocations_stop_when_an_abort_alarm_fires() {
        let mut t = T::new(FakeEcs::default());
        t.alarms.set("stop", "OK");
        // Checked at the start, at 1 s, and in ALARM at the third read (2 s).
        t.alarms.set_after_reads(2, "stop", "ALARM");
        t.abort_alarms = vec!["stop".into()];
        t.poll_interval = std::time::Duration::from_secs(1);
        t.functions.latency = std::time::Duration::from_millis(100);
        let call = Call::LambdaInvokeRepeatedly {
            function_name: "f".into(),
            payload: Value::Null,
            count: 10_000,
            concurrency: 2,
            slow_ms: 1000,
        };
        let started = tokio::time::Instant::now();
        let err = t.run(&call).await.unwrap_err();
        assert_eq!(
            err,
            ActivityError::Aborted("abort alarm 'stop' in ALARM".into())
        );
        let stopped_after = started.elapsed();
        assert!(
            stopped_after <= std::time::Duration::from_millis(2200),
            "{stopped_after:?}"
        );
        assert!(t.functions.calls() <= 44, "{} calls", t.functions.calls());
    }

    #[tokio::test]
    async fn throttled_invocations_are_counted_not_fatal() {
        let mut t = T::new(FakeEcs::default());
        t.functions = FakeFunctions::answering(|_, _| Err(AwsError::Throttled("slow down".into())));
        let call = Call::LambdaInvokeRepeatedly {
            function_name: "f".into(),
            payload: Value::Null,
            count: 3,
            concurrency: 1,
            slow_ms: 1000,
        };
        let out = t.run(&call).await.unwrap().output;
        assert_eq!(out["outcomes"], json!({"invoke-failed": 3}));
    }
}
