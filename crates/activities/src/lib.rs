//! The activities Turbulence runs: the catalogue ([`catalogue`]), each
//! activity declared once in the module of its AWS service with the port it
//! needs ([`ecs`], [`awslambda`], [`cloudwatch`], [`ssm`], [`faults`],
//! [`http`], [`attack`], [`guard`]), and the run context they share.
//!
//! [`run`] executes one catalogued [`Call`] against the ports and returns its
//! output and, for an action that changed something, the call that undoes it.
//! Nothing here links an AWS SDK client: the adapters are the
//! `activities-aws` crate, so `turbulence validate` and the fuzz targets
//! check experiments offline with this crate alone.

pub mod attack;
pub mod awslambda;
pub mod catalogue;
pub mod cloudwatch;
pub mod ecs;
pub mod elbv2;
pub mod faults;
pub mod guard;
pub mod http;
pub mod ports;
pub mod ssm;
pub mod suggest;
mod unsupported;

use std::collections::BTreeMap;

use rand::RngCore;
use serde_json::Value;

pub use catalogue::{Call, CallSpec};
pub use cloudwatch::{firing, missing};
pub use ecs::{desired_count_key, tasks_of};
pub use guard::BlastRadius;
pub use ports::{
    AlarmDefinition, Alarms, AwsError, DeadLetters, Ecs, Executions, Functions, MetricQuery,
    Metrics, Parameters, Unavailable,
};

/// The AWS the activities reach.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    pub ecs: &'a dyn Ecs,
    pub alarms: &'a dyn Alarms,
    pub metrics: &'a dyn Metrics,
    pub parameters: &'a dyn Parameters,
    pub functions: &'a dyn Functions,
    pub load_balancing: &'a dyn elbv2::LoadBalancing,
    /// Background activities' executions (and, for the janitor, ended ones).
    pub executions: &'a dyn Executions,
    /// The function's environment, read once at cold start: configuration
    /// and secrets of type `env` come from here.
    pub environment: &'a BTreeMap<String, String>,
}

impl<'a> Ports<'a> {
    /// Every port [`Unavailable`]: a function sets the ones it has clients
    /// for.
    pub fn unavailable(environment: &'a BTreeMap<String, String>) -> Ports<'a> {
        Ports {
            ecs: &Unavailable,
            alarms: &Unavailable,
            metrics: &Unavailable,
            parameters: &Unavailable,
            functions: &Unavailable,
            load_balancing: &Unavailable,
            executions: &Unavailable,
            environment,
        }
    }
}

/// RFC 3339 text of an instant, as the journal records times.
pub fn timestamp(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// The instant of RFC 3339 text, as [`timestamp`] writes it.
pub fn parse_timestamp(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
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
        if guard::kill_switch_is_set(value.as_deref()) {
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
    pub fn output(output: Value) -> Self {
        Outcome {
            output,
            detail: None,
            undo: None,
        }
    }
}

/// Run one catalogued call.
pub async fn run(
    call: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    (call.activity.run)(call, ports, ctx).await
}

/// Plan's read-only check of one call, when its activity has one.
pub async fn preflight(
    call: &Call,
    ports: &Ports<'_>,
    caps: &BlastRadius,
) -> Result<(), ActivityError> {
    match call.activity.preflight {
        Some(check) => check(call, ports, caps).await,
        None => Ok(()),
    }
}

#[cfg(any(test, feature = "fake"))]
pub mod fake;

#[cfg(test)]
pub(crate) mod testing;
