//! The janitor: cleanup that does not depend on the run reaching its own
//! rollbacks.
//!
//! A `StopExecution`, an execution timeout, or a failure the state machine
//! cannot catch ends a run without its Rollback states. EventBridge sends
//! the janitor every such status change; the janitor reads the run's record
//! (every undo is written there before its change), runs the undos, sends
//! the journal to the dead-letter queue and removes the record. A run that
//! got through its own Journal state left no record, so the janitor does
//! nothing for it. The sweep, on a schedule, does the same for any record
//! whose execution is no longer running, and removes expired locks and
//! expired fault configurations.

use activities::{AwsError, DeadLetters, Parameters, Ports};
use experiment::guards::{Lock, RunRecord, LOCK_PREFIX, RUN_PREFIX};
use experiment::journal::names;
use experiment::{CaughtError, ErrorReport, NextKind, State};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::Failure;

/// What wakes the janitor.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Event {
    /// EventBridge's "Step Functions Execution Status Change".
    StatusChange { detail: StatusDetail },
    /// The schedule's input: `{"sweep": true}`.
    Sweep { sweep: bool },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetail {
    pub execution_arn: String,
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
}

/// The statuses that can leave a run's changes behind.
const UNCLEAN: &[&str] = &["ABORTED", "TIMED_OUT", "FAILED"];

/// What the janitor needs of AWS.
pub struct Janitor<'a> {
    pub ports: Ports<'a>,
    pub dead_letters: &'a dyn DeadLetters,
    /// Where fault configurations live; the sweep removes expired ones.
    pub fault_prefix: Option<&'a str>,
}

pub async fn handle(
    event: Event,
    janitor: &Janitor<'_>,
    rng: &mut (dyn RngCore + Send),
) -> Result<Value, Failure> {
    match event {
        Event::StatusChange { detail } => {
            if !UNCLEAN.contains(&detail.status.as_str()) {
                return Ok(json!({"execution": detail.execution_arn, "cleaned": false}));
            }
            clean(janitor, &detail, rng).await
        }
        Event::Sweep { .. } => sweep(janitor, rng, OffsetDateTime::now_utc()).await,
    }
}

fn aws(doing: &'static str) -> impl FnOnce(AwsError) -> Failure {
    move |e| Failure::from_aws(doing, e)
}

/// Undo what one execution changed, if its record is still there.
async fn clean(
    janitor: &Janitor<'_>,
    detail: &StatusDetail,
    rng: &mut (dyn RngCore + Send),
) -> Result<Value, Failure> {
    let execution = &detail.execution_arn;
    let parameters = janitor.ports.parameters;
    let Some(name) = RunRecord::parameter(execution) else {
        return Err(Failure::StateInvalid(format!(
            "'{execution}' is not an execution ARN"
        )));
    };
    let Some(text) = parameters
        .get(&name)
        .await
        .map_err(aws("reading the run record"))?
    else {
        tracing::info!(%execution, status = %detail.status, "no run record: the run cleaned up after itself");
        return Ok(json!({"execution": execution, "cleaned": false}));
    };
    let record: RunRecord = serde_json::from_str(&text)
        .map_err(|e| Failure::StateInvalid(format!("run record '{name}' is unreadable: {e}")))?;
    tracing::warn!(%execution, status = %detail.status, undos = record.compensations.len(), "cleaning up after a run that ended without its rollbacks");

    let last = janitor
        .ports
        .executions
        .last_state(execution)
        .await
        .map_err(aws("reading the execution history"))?;
    let mut state: State = last
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    state.execution = execution.clone();
    state.compensations = record.compensations.clone();
    state.rollbacks.clear();
    state.rollback_error = None;
    if state.error.is_none() {
        let how = match (&detail.error, &detail.cause) {
            (Some(e), Some(c)) => format!(": {e}: {c}"),
            (Some(e), None) => format!(": {e}"),
            _ => String::new(),
        };
        let report = ErrorReport {
            message: format!(
                "the execution ended {}{how} before its rollbacks; the janitor ran them",
                detail.status
            ),
            record: None,
        };
        state.error = Some(CaughtError {
            error: names::EXPERIMENT_INTERRUPTED.into(),
            cause: serde_json::to_string(&report).unwrap_or(report.message),
        });
    }
    // The first rollback stops the background activities the record names
    // that still run, and takes their undos in, as the run's own would.
    for child in &record.children {
        if !state
            .background
            .iter()
            .any(|b| b.execution == child.execution)
        {
            state.background.push(experiment::Background {
                group: usize::MAX,
                name: "background activity".into(),
                execution: child.execution.clone(),
                digest: child.digest.clone(),
                joined: false,
            });
        }
    }
    if record.parent.is_some() {
        // A background activity: its undos run here; the run that started
        // it sends the journal.
        state.parent = None;
        state.next.kind = NextKind::Rollback;
        let undone = undo_all(state, janitor, rng).await?;
        parameters
            .delete(&name)
            .await
            .map_err(aws("removing the run record"))?;
        return Ok(json!({
            "execution": execution,
            "cleaned": true,
            "parent": record.parent,
            "rollbacks": undone.rollbacks.len(),
        }));
    }
    state.next.kind = NextKind::Rollback;
    let state = undo_all(state, janitor, rng).await?;
    let finished = crate::finish_to(
        state,
        &record.dead_letter_queue_url,
        janitor.dead_letters,
        parameters,
        // A stopped run's journal goes without the target's series: the
        // janitor restores, and reads no metrics.
        None,
    )
    .await?;
    // Removed even when an undo failed: the journal in the dead-letter
    // queue says which, and a person takes it from there.
    parameters
        .delete(&name)
        .await
        .map_err(aws("removing the run record"))?;
    Ok(json!({
        "execution": execution,
        "cleaned": true,
        "status": finished.outcome.status,
        "error": finished.outcome.error,
        "rollbacks": finished.journal["rollbacks"].as_array().map_or(0, Vec::len),
    }))
}

/// Run every undo of the state. Each is idempotent (restore a count,
/// delete a parameter, release a lock held by this run), so running one the
/// run already ran is safe.
async fn undo_all(
    mut state: State,
    janitor: &Janitor<'_>,
    rng: &mut (dyn RngCore + Send),
) -> Result<State, Failure> {
    // Each call runs one undo (the first may take background activities'
    // undos in first), so this ends.
    loop {
        state = crate::rollback(state, &janitor.ports, rng).await?;
        if state.next.kind != NextKind::Rollback
            || state.rollbacks.len() > state.rollback_queue().len()
        {
            return Ok(state);
        }
    }
}

/// Clean every record whose execution is over, remove expired locks and
/// expired fault configurations.
pub async fn sweep(
    janitor: &Janitor<'_>,
    rng: &mut (dyn RngCore + Send),
    now: OffsetDateTime,
) -> Result<Value, Failure> {
    let parameters: &dyn Parameters = janitor.ports.parameters;
    let mut cleaned = Vec::new();
    for (name, text) in parameters
        .list(RUN_PREFIX)
        .await
        .map_err(aws("listing run records"))?
    {
        let Ok(record) = serde_json::from_str::<RunRecord>(&text) else {
            tracing::error!(record = %name, "unreadable run record left alone");
            continue;
        };
        let status = janitor
            .ports
            .executions
            .status(&record.execution)
            .await
            .map_err(aws("reading an execution's status"))?;
        if status.as_deref() == Some("RUNNING") {
            continue;
        }
        // A background activity that ended waits for its run's join, which
        // takes its undos in: they run with the run's rollbacks, not before.
        if let Some(parent) = &record.parent {
            let parent_status = janitor
                .ports
                .executions
                .status(parent)
                .await
                .map_err(aws("reading an execution's status"))?;
            if parent_status.as_deref() == Some("RUNNING") {
                continue;
            }
        }
        let detail = StatusDetail {
            execution_arn: record.execution.clone(),
            status: status.unwrap_or_else(|| "GONE".into()),
            error: None,
            cause: Some("found by the sweep".into()),
        };
        cleaned.push(clean(janitor, &detail, rng).await?);
    }
    let mut locks = Vec::new();
    for (name, text) in parameters
        .list(LOCK_PREFIX)
        .await
        .map_err(aws("listing locks"))?
    {
        let expired = serde_json::from_str::<Lock>(&text).map_or(true, |l| l.expired(now));
        if expired
            && parameters
                .delete(&name)
                .await
                .map_err(aws("removing a lock"))?
        {
            tracing::warn!(lock = %name, held = %text, "removed an expired lock");
            locks.push(name);
        }
    }
    let mut faults = Vec::new();
    if let Some(prefix) = janitor.fault_prefix {
        for (name, text) in parameters
            .list(prefix)
            .await
            .map_err(aws("listing fault configurations"))?
        {
            if experiment::faults::is_expired(&text, now)
                && parameters
                    .delete(&name)
                    .await
                    .map_err(aws("removing a fault configuration"))?
            {
                tracing::warn!(parameter = %name, "removed an expired fault configuration");
                faults.push(name);
            }
        }
    }
    Ok(json!({"runs": cleaned, "locks_removed": locks, "faults_removed": faults}))
}
