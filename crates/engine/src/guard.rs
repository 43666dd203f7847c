//! Plan's guards, and the run record every change is logged in first.
//!
//! Order matters: every check that only reads comes first; then the run
//! record is written naming the locks about to be taken (so a crash between
//! the two leaves nothing the janitor cannot release); then the locks.

use std::collections::BTreeSet;

use activities::guard::{opted_in, release_lock, release_undo, take_lock};
use activities::{ActivityError, AwsError, Parameters, Ports, Undo, UndoLog};
use experiment::catalogue::Call;
use experiment::guards::{Deployment, Lock, Resource, RunRecord};
use experiment::{Compensation, Plan, State};
use time::OffsetDateTime;

use crate::Failure;

/// The deployment settings the state machine put in the state.
pub(crate) fn deployment(state: &State) -> Result<&Deployment, Failure> {
    state.deployment.as_ref().ok_or_else(|| {
        Failure::StateInvalid(
            "the state has no deployment settings; the state machine's Start state passes them"
                .into(),
        )
    })
}

/// Every call the run may make that changes something: the method's
/// actions and the experiment's own rollbacks.
fn changing_calls(plan: &Plan) -> Vec<(String, Call)> {
    plan.calls()
        .filter(|(_, c)| !c.touches().is_empty())
        .map(|(name, c)| (name.to_string(), c))
        .collect()
}

fn aws(doing: &str) -> impl FnOnce(AwsError) -> Failure + '_ {
    move |e| Failure::from_aws(doing, e)
}

/// The checks that only read: place, kill switch, opt-in tags, and each
/// activity's own (the blast radius of a task stop).
pub(crate) async fn check(
    state: &State,
    plan: &Plan,
    ports: &Ports<'_>,
) -> Result<BTreeSet<Resource>, Failure> {
    let d = deployment(state)?;
    d.check_place(&state.execution).map_err(Failure::Refused)?;
    let switch = ports
        .parameters
        .get(&d.kill_switch_parameter)
        .await
        .map_err(aws("reading the kill switch"))?;
    if experiment::guards::kill_switch_is_set(switch.as_deref()) {
        return Err(Failure::Refused(format!(
            "kill switch '{}' is set ({}): no experiment may start",
            d.kill_switch_parameter,
            switch.unwrap_or_default().trim()
        )));
    }
    let calls = changing_calls(plan);
    let targets: BTreeSet<Resource> = calls.iter().flat_map(|(_, c)| c.touches()).collect();
    for target in targets.iter().filter(|t| t.needs_opt_in()) {
        match opted_in(ports, target, &d.opt_in_tag).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(Failure::Refused(format!(
                    "{target} has not opted in: it needs the tag '{}' with the value 'true'",
                    d.opt_in_tag
                )))
            }
            Err(AwsError::NotFound(m)) => {
                return Err(Failure::Refused(format!("{target} cannot be checked: {m}")))
            }
            Err(e) => return Err(Failure::from_aws("reading the opt-in tags", e)),
        }
    }
    plan.concurrent_stops().map_err(Failure::Refused)?;
    for (name, call) in &calls {
        match activities::preflight(call, ports, &d.blast_radius).await {
            Ok(()) => {}
            Err(ActivityError::Refused(e)) => {
                return Err(Failure::Refused(format!("activity '{name}': {e}")))
            }
            Err(ActivityError::Aws(e)) => {
                return Err(Failure::from_aws(&format!("checking activity '{name}'"), e))
            }
            Err(e) => return Err(Failure::Refused(format!("activity '{name}': {e}"))),
        }
    }
    Ok(targets)
}

/// Write the run record, then take every target's lock. On refusal, what
/// was taken is given back and the record removed.
pub(crate) async fn lock(
    state: &mut State,
    targets: &BTreeSet<Resource>,
    parameters: &dyn Parameters,
    now: OffsetDateTime,
) -> Result<(), Failure> {
    let d = deployment(state)?.clone();
    let record_name = RunRecord::parameter(&state.execution).ok_or_else(|| {
        Failure::StateInvalid(format!("'{}' is not an execution ARN", state.execution))
    })?;
    let lock = Lock {
        execution: state.execution.clone(),
        expires_at: experiment::timestamp(now + state.time_left()),
    };
    state.compensations = targets
        .iter()
        .map(|t| {
            let undo = release_undo(t, &state.execution);
            Compensation {
                for_action: "plan".into(),
                name: undo.name,
                call: undo.call,
            }
        })
        .collect();
    let record = record_of(state, &d);
    write_record(parameters, &record_name, &record)
        .await
        .map_err(aws("writing the run record"))?;
    let mut taken = Vec::new();
    for target in targets {
        let result = take_lock(parameters, target, &lock, now).await;
        match result {
            Ok(Ok(())) => taken.push(target),
            other => {
                for t in &taken {
                    let _ = release_lock(parameters, &t.lock_parameter(), &state.execution).await;
                }
                let _ = parameters.delete(&record_name).await;
                return Err(match other {
                    Ok(Err(holder)) => Failure::Refused(format!(
                        "{target} is locked by another experiment ({}) until {}",
                        holder.execution, holder.expires_at
                    )),
                    Err(e) => Failure::from_aws("taking the target locks", e),
                    Ok(Ok(())) => unreachable!("handled above"),
                });
            }
        }
    }
    Ok(())
}

/// The run record of the state as it is: its undos, the run that started
/// it (for a background activity), the background activities it started.
pub(crate) fn record_of(state: &State, d: &Deployment) -> RunRecord {
    RunRecord {
        execution: state.execution.clone(),
        dead_letter_queue_url: d.dead_letter_queue_url.clone(),
        compensations: state.compensations.clone(),
        parent: state.parent.clone(),
        children: state
            .background
            .iter()
            .map(|b| experiment::guards::ChildRun {
                execution: b.execution.clone(),
                digest: b.digest.clone(),
            })
            .collect(),
    }
}

/// Rewrite the run record from the state.
pub(crate) async fn rewrite_record(
    state: &State,
    parameters: &dyn Parameters,
) -> Result<(), Failure> {
    let d = deployment(state)?;
    let name = RunRecord::parameter(&state.execution).ok_or_else(|| {
        Failure::StateInvalid(format!("'{}' is not an execution ARN", state.execution))
    })?;
    write_record(parameters, &name, &record_of(state, d))
        .await
        .map_err(aws("writing the run record"))
}

/// An execution's run record, if it has one.
pub(crate) async fn read_record(
    parameters: &dyn Parameters,
    execution: &str,
) -> Result<Option<RunRecord>, AwsError> {
    let Some(name) = RunRecord::parameter(execution) else {
        return Ok(None);
    };
    Ok(parameters
        .get(&name)
        .await?
        .and_then(|text| serde_json::from_str(&text).ok()))
}

pub(crate) async fn write_record(
    parameters: &dyn Parameters,
    name: &str,
    record: &RunRecord,
) -> Result<(), AwsError> {
    parameters
        .put(&activities::ports::PutParameter {
            name: name.into(),
            value: serde_json::to_string(record).unwrap_or_default(),
            kind: "String".into(),
            description: Some("Turbulence: what undoes this run's changes".into()),
            overwrite: true,
        })
        .await
}

/// The undo log of one step: the run record, rewritten with each undo
/// before the change it undoes.
pub(crate) struct RunLog<'a> {
    pub parameters: &'a dyn Parameters,
    pub name: String,
    pub for_action: String,
    pub record: std::sync::Mutex<RunRecord>,
}

impl<'a> RunLog<'a> {
    pub fn new(state: &State, step: &str, parameters: &'a dyn Parameters) -> Option<Self> {
        let name = RunRecord::parameter(&state.execution)?;
        let d = state.deployment.as_ref()?;
        Some(RunLog {
            parameters,
            name,
            for_action: step.into(),
            record: std::sync::Mutex::new(record_of(state, d)),
        })
    }
}

#[async_trait::async_trait]
impl UndoLog for RunLog<'_> {
    async fn will_change(&self, undo: &Undo) -> Result<(), AwsError> {
        let record = {
            let mut record = self.record.lock().unwrap_or_else(|e| e.into_inner());
            // A retried step logs the same undo again: once is enough.
            if record.compensations.iter().any(|c| c.call == undo.call) {
                return Ok(());
            }
            record.compensations.push(Compensation {
                for_action: self.for_action.clone(),
                name: undo.name.clone(),
                call: undo.call.clone(),
            });
            record.clone()
        };
        write_record(self.parameters, &self.name, &record).await
    }
}

/// The compensations in the run record when it holds more than the state:
/// an action logged an undo, then failed, and the Catch kept the state from
/// before it.
pub(crate) async fn logged_compensations(
    state: &State,
    parameters: &dyn Parameters,
) -> Result<Option<Vec<Compensation>>, AwsError> {
    Ok(read_record(parameters, &state.execution)
        .await?
        .map(|r| r.compensations)
        .filter(|c| c.len() > state.compensations.len()))
}
