//! Background activities: start each in a child execution (Fork), wait
//! for them all before anything after the method (Join), and stop the ones
//! still running when the run rolls back early (abandon).
//!
//! A child logs its undos in a run record of its own, marked with its
//! parent. When the parent takes a child in, the child's undos move into
//! the parent's state and record (so they run in the parent's rollbacks,
//! before its locks are released) and the child's record goes.

use std::time::Duration;

use activities::{AwsError, Ports};
use experiment::background::{self as bg};
use experiment::guards::RunRecord;
use experiment::{Background, ErrorReport, NextKind, Phase, Record, RunStatus, State, StepKind};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::guard::{read_record, rewrite_record};
use crate::Failure;

fn aws(doing: &'static str) -> impl FnOnce(AwsError) -> Failure {
    move |e| Failure::from_aws(doing, e)
}

/// Start the background activity under the cursor and move past its steps.
/// The run record names the child (with its state's digest) before it
/// starts: the child's Plan checks that, and the janitor stops it.
pub(crate) async fn fork(mut state: State, ports: &Ports<'_>) -> Result<State, Failure> {
    let invalid = |m: String| Failure::StateInvalid(m);
    let plan = state
        .plan
        .as_ref()
        .ok_or_else(|| invalid("the state has no plan; Plan must run first".into()))?;
    let group = plan
        .steps
        .get(state.cursor)
        .and_then(|s| s.background)
        .ok_or_else(|| {
            invalid(format!(
                "step {} is not a background activity",
                state.cursor
            ))
        })?;
    let steps = &plan.steps[state.cursor..];
    let in_group = steps
        .iter()
        .take_while(|s| s.background == Some(group))
        .count();
    let end = state.cursor + in_group;
    let name = steps[..in_group]
        .iter()
        .find(|s| s.kind != StepKind::Wait)
        .map_or_else(String::new, |s| s.name.clone());
    let child = bg::child_state(&state, group)
        .ok_or_else(|| invalid(format!("background activity '{name}' has no steps")))?;
    let (machine, child_name, execution) = bg::child_execution(&state.execution, group)
        .ok_or_else(|| invalid(format!("'{}' is not an execution ARN", state.execution)))?;
    state.background.retain(|b| b.group != group);
    state.background.push(Background {
        group,
        name: name.clone(),
        execution: execution.clone(),
        digest: bg::digest(&child),
        joined: false,
    });
    rewrite_record(&state, ports.parameters).await?;
    let input = json!({ bg::INPUT_KEY: child }).to_string();
    ports
        .executions
        .start(&machine, &child_name, &input)
        .await
        .map_err(aws("starting a background activity's execution"))?;
    tracing::info!(execution = %state.execution, activity = %name, child = %execution, "background activity started");
    state.point_at(end);
    Ok(state)
}

/// The state a child execution runs, from its input; refused unless the
/// parent's run record names this execution with this state's digest, so
/// an input cannot skip Plan's guards. The deployment settings come from
/// the state machine's definition, as for any run.
pub(crate) async fn child_plan(
    outer: State,
    inner: &Value,
    ports: &Ports<'_>,
) -> Result<State, Failure> {
    let refuse = |why: String| Failure::Refused(format!("background activity refused: {why}"));
    let mut child: State = serde_json::from_value(inner.clone())
        .map_err(|e| refuse(format!("its input is not a state: {e}")))?;
    if child.execution != outer.execution {
        return Err(refuse(format!(
            "its input is for execution '{}', this is '{}'",
            child.execution, outer.execution
        )));
    }
    let parent = child
        .parent
        .clone()
        .ok_or_else(|| refuse("its input names no parent run".into()))?;
    let record = read_record(ports.parameters, &parent)
        .await
        .map_err(aws("reading the parent's run record"))?
        .ok_or_else(|| refuse(format!("the run '{parent}' has no run record")))?;
    let digest = bg::digest(&child);
    if !record
        .children
        .iter()
        .any(|c| c.execution == child.execution && c.digest == digest)
    {
        return Err(refuse(format!(
            "the run record of '{parent}' does not name this execution with this state"
        )));
    }
    child.deployment = outer.deployment;
    child.point_at(0);
    tracing::info!(execution = %child.execution, %parent, "background activity planned");
    Ok(child)
}

/// Wait up to one chunk for the background activities, polling the abort
/// alarms and the kill switch as a pause does; take in each one that ended.
/// When all are in, the method is over: on to the hypothesis, or to the
/// rollbacks when one failed or an abort came.
pub(crate) async fn join(
    mut state: State,
    ports: &Ports<'_>,
    time_left: Option<Duration>,
) -> Result<State, Failure> {
    let settings = state
        .plan
        .as_ref()
        .map(|p| p.settings.clone())
        .ok_or_else(|| Failure::StateInvalid("the state has no plan".into()))?;
    let chunk = crate::Chunk::new(u64::MAX, &settings, time_left);
    let kill_switch = crate::kill_switch(&state);
    let runs = crate::runs(&state);
    let watch = activities::Watch {
        abort_alarms: &settings.abort_alarms,
        kill_switch: kill_switch.as_deref(),
        runs: &runs,
    };
    loop {
        let calm =
            crate::ensure_calm(ports, watch, "while waiting for the background activities").await;
        match calm {
            Ok(()) => {}
            // Rolled back from here, so what was taken in stays in the state.
            Err(f @ Failure::Aborted(_)) => {
                state.error.get_or_insert(f.caught());
                state.next.kind = NextKind::Rollback;
                return Ok(state);
            }
            Err(f) => return Err(f),
        }
        for i in 0..state.background.len() {
            if state.background[i].joined {
                continue;
            }
            let status = ports
                .executions
                .status(&state.background[i].execution)
                .await
                .map_err(aws("reading a background activity's status"))?;
            if status.as_deref() != Some("RUNNING") {
                take_in(&mut state, i, status.as_deref(), ports).await?;
            }
        }
        if state.background.iter().all(|b| b.joined) {
            break;
        }
        if !chunk.next_poll().await {
            return Ok(state);
        }
    }
    if state.error.is_some() {
        state.next.kind = NextKind::Rollback;
    } else {
        state.point_at(state.cursor);
    }
    Ok(state)
}

/// Stop the background activities still running and take in what they
/// did, so their undos run in this run's rollbacks.
pub(crate) async fn abandon(state: &mut State, ports: &Ports<'_>) -> Result<(), Failure> {
    for i in 0..state.background.len() {
        if state.background[i].joined {
            continue;
        }
        let execution = state.background[i].execution.clone();
        let mut status = ports
            .executions
            .status(&execution)
            .await
            .map_err(aws("reading a background activity's status"))?;
        if status.as_deref() == Some("RUNNING") {
            ports
                .executions
                .stop(&execution, "the run that started it is rolling back")
                .await
                .map_err(aws("stopping a background activity"))?;
            tracing::warn!(%execution, "background activity stopped: the run is rolling back");
            status = Some("ABORTED".into());
        }
        take_in(state, i, status.as_deref(), ports).await?;
    }
    Ok(())
}

/// Take an ended child in: its records and cost, its undos (from its
/// output, or its record when that holds more), its error.
async fn take_in(
    state: &mut State,
    i: usize,
    status: Option<&str>,
    ports: &Ports<'_>,
) -> Result<(), Failure> {
    let child = state.background[i].clone();
    let output: Option<State> = if status == Some("SUCCEEDED") {
        ports
            .executions
            .output(&child.execution)
            .await
            .map_err(aws("reading a background activity's output"))?
            .and_then(|v| serde_json::from_value(v).ok())
    } else {
        None
    };
    let logged = read_record(ports.parameters, &child.execution)
        .await
        .map_err(aws("reading a background activity's run record"))?
        .map(|r| r.compensations)
        .unwrap_or_default();
    let mut undos = output
        .as_ref()
        .map(|o| o.compensations.clone())
        .unwrap_or_default();
    if logged.len() > undos.len() {
        undos = logged;
    }
    let mut error = None;
    match output {
        Some(o) => {
            state.records.extend(o.records);
            state.cost.invocations += o.cost.invocations;
            state.cost.function_ms += o.cost.function_ms;
            if let Some(e) = o.error {
                // The record goes with the others; the journal would add
                // the one inside the run's error a second time.
                let (e, record) = e.take_record();
                state.records.extend(record);
                error = Some(e);
            }
        }
        None => {
            let how = status.unwrap_or("GONE");
            let message = format!(
                "background activity '{}' ended {how} (execution {})",
                child.name, child.execution
            );
            let now = experiment::timestamp(OffsetDateTime::now_utc());
            let record = Record {
                phase: Phase::Method,
                name: child.name.clone(),
                kind: StepKind::Action,
                function: "background".into(),
                arguments: Default::default(),
                status: RunStatus::Failed,
                output: Value::Null,
                detail: Some(json!({"execution": child.execution, "status": how})),
                tolerance: None,
                tolerance_met: None,
                exception: Some(message.clone()),
                start: now.clone(),
                end: now,
                duration: 0.0,
            };
            state.records.push(record.clone());
            error = Some(
                Failure::ActivityFailed(ErrorReport {
                    message,
                    record: None,
                })
                .caught(),
            );
        }
    }
    if let Some(e) = error {
        state.error.get_or_insert(e);
    }
    let adopted = undos.len();
    state.compensations.extend(undos);
    state.background[i].joined = true;
    // The parent's record holds the undos before the child's goes (the
    // janitor, cleaning a run whose history it could not read, has no
    // deployment and is about to remove the record anyway).
    if state.deployment.is_some() {
        rewrite_record(state, ports.parameters).await?;
    }
    if let Some(name) = RunRecord::parameter(&child.execution) {
        ports
            .parameters
            .delete(&name)
            .await
            .map_err(aws("removing a background activity's run record"))?;
    }
    tracing::info!(execution = %state.execution, activity = %child.name, status = ?status, undos = adopted, "background activity taken in");
    Ok(())
}

/// What a child's Rollback does: nothing. Its undos go back to the parent,
/// which runs them with its own.
pub(crate) fn hand_back(mut state: State) -> State {
    state.next.kind = NextKind::Return;
    state.next.remaining_ms = None;
    state
}
