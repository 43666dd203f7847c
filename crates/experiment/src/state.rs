//! The state document every function receives and returns.
//!
//! The state machine only routes on `next.kind`; what ran, what it
//! returned and what undoes it live here, so the journal and the rollbacks
//! have everything even when a step fails (the Catch keeps the input state
//! and adds `error`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalogue::CallSpec;
use crate::model::RollbackStrategy;
use crate::plan::{Phase, Plan, Step, StepKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NextKind {
    Probe,
    Action,
    Wait,
    Rollback,
    /// A load attack fanned out over a Map of invocations.
    Attack,
    /// Start the background activity under the cursor as a child execution.
    Fork,
    /// Wait for the background activities before going past the method.
    Join,
    /// A background activity's execution is through: its state goes back
    /// to the run that started it.
    Return,
    /// Nothing left in the method: the state machine goes to the rollbacks.
    #[default]
    Done,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Next {
    pub kind: NextKind,
    /// Wall-clock milliseconds still to wait in the current wait step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_ms: Option<u64>,
    /// Where a fanned-out load attack is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack: Option<AttackProgress>,
    /// The hypothesis rounds of the step under the cursor (its
    /// [`Step::rounds`]): how many are done, and the probe of the one under
    /// way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<Round>,
}

/// Where the hypothesis rounds after (or in) one method step are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Round {
    /// Rounds of the step done.
    pub done: u32,
    /// The probe of [`Plan::during`] to run next, while a round is under
    /// way; `None` while its pause goes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<usize>,
}

/// A fanned-out load attack under way: the wave whose shares the Map runs
/// now, their reports once it ran, and what earlier waves reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackProgress {
    pub wave: usize,
    pub shares: Vec<Value>,
    /// The Map's output: one report per share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<Value>>,
    /// Reports of the waves done so far.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub done: Vec<Value>,
    pub started_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Succeeded,
    Failed,
}

/// One activity run, in the shape of a Chaos Toolkit journal entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub phase: Phase,
    pub name: String,
    pub kind: StepKind,
    pub function: String,
    pub arguments: serde_json::Map<String, Value>,
    pub status: RunStatus,
    pub output: Value,
    /// Facts behind the output (e.g. running and expected task counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_met: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
    pub start: String,
    pub end: String,
    pub duration: f64,
}

/// How to undo what an action changed, recorded when it succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Compensation {
    /// The action this undoes.
    pub for_action: String,
    pub name: String,
    pub call: CallSpec,
}

/// What a Catch adds: the function's error name and the cause text (for a
/// Lambda error, a JSON document with `errorType` and `errorMessage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

/// What a failing function puts in its error message: a sentence for people
/// and the record of the step that failed, for the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorReport {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<Box<Record>>,
}

impl CaughtError {
    /// The same error with the failed step's record taken out of it (for a
    /// caller that keeps the record elsewhere, so the journal has it once).
    pub fn take_record(&self) -> (CaughtError, Option<Record>) {
        let mut report = self.report();
        let record = report.record.take().map(|r| *r);
        (CaughtError::of_lambda(&self.error, &report), record)
    }

    /// What a Catch records of a Lambda error named `error` whose message
    /// is `report` as JSON (what the functions raise).
    pub fn of_lambda(error: &str, report: &ErrorReport) -> CaughtError {
        let message = serde_json::to_string(report).unwrap_or_else(|_| report.message.clone());
        CaughtError {
            error: error.into(),
            cause: serde_json::json!({"errorType": error, "errorMessage": message}).to_string(),
        }
    }

    /// The report inside the cause, or the cause itself as the message when
    /// it came from elsewhere (a timeout, a Lambda service error).
    pub fn report(&self) -> ErrorReport {
        #[derive(Deserialize)]
        struct LambdaError {
            #[serde(rename = "errorMessage")]
            error_message: String,
        }
        let message = serde_json::from_str::<LambdaError>(&self.cause)
            .map(|e| e.error_message)
            .unwrap_or_else(|_| self.cause.clone());
        serde_json::from_str::<ErrorReport>(&message).unwrap_or(ErrorReport {
            message,
            record: None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct State {
    /// The execution input, as given.
    pub experiment: Value,
    /// The execution ARN.
    #[serde(default)]
    pub execution: String,
    /// The deployment's guard settings, from the state machine definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<crate::guards::Deployment>,
    /// The SSM parameter the experiment was loaded from, when the input
    /// named one instead of carrying it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_parameter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Index of the step `next` refers to.
    #[serde(default)]
    pub cursor: usize,
    #[serde(default)]
    pub next: Next,
    #[serde(default)]
    pub records: Vec<Record>,
    #[serde(default)]
    pub compensations: Vec<Compensation>,
    /// Values observed before the method that later checks compare against,
    /// e.g. a service's desired count.
    #[serde(default)]
    pub baselines: BTreeMap<String, Value>,
    #[serde(default)]
    pub rollbacks: Vec<Record>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CaughtError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_error: Option<CaughtError>,
    /// What the run has cost so far, for the journal.
    #[serde(default)]
    pub cost: Cost,
    /// In a background activity's execution: the run that started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// In a background activity's execution: how long the run that started
    /// it could still take then. What the activity injects must last until
    /// that run's rollbacks, not only to the end of the activity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_time_left_ms: Option<u64>,
    /// The background activities this run started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub background: Vec<Background>,
}

/// A background activity of the method, running in an execution of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Background {
    /// The activity's number among the method's background activities.
    pub group: usize,
    /// The activity's name.
    pub name: String,
    pub execution: String,
    /// Of the state it was started with (the run record names it too).
    pub digest: String,
    /// Its records, undos and cost are in this run's state.
    #[serde(default)]
    pub joined: bool,
}

/// Lambda use of a run: invocations that returned, and their time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Cost {
    pub invocations: u64,
    pub function_ms: u64,
}

impl Cost {
    pub fn add(&mut self, elapsed: std::time::Duration) {
        self.invocations += 1;
        self.function_ms += u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    }
}

/// One entry of the rollback queue.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackItem {
    pub name: String,
    pub call: CallSpec,
}

impl State {
    /// Point `next` at the step under the cursor (or at the end).
    pub fn point_at(&mut self, cursor: usize) {
        self.cursor = cursor;
        let step = self.plan.as_ref().and_then(|p| p.steps.get(cursor));
        let simple = |kind| Next {
            kind,
            ..Default::default()
        };
        let in_method = step.is_some_and(|s| matches!(s.phase, Phase::Method | Phase::During));
        self.next = match step {
            // Background activities are joined before anything after the method.
            _ if !in_method && self.background.iter().any(|b| !b.joined) => simple(NextKind::Join),
            None if self.parent.is_some() => simple(NextKind::Return),
            None => simple(NextKind::Done),
            Some(s) if s.background.is_some() => simple(NextKind::Fork),
            Some(s) => match &s.waves {
                Some(waves) => Next {
                    kind: NextKind::Attack,
                    remaining_ms: None,
                    round: None,
                    attack: Some(AttackProgress {
                        wave: 0,
                        shares: waves.first().cloned().unwrap_or_default(),
                        results: None,
                        done: Vec::new(),
                        started_at: String::new(),
                    }),
                },
                None => Next {
                    kind: match s.kind {
                        StepKind::Probe => NextKind::Probe,
                        StepKind::Action => NextKind::Action,
                        StepKind::Wait => NextKind::Wait,
                    },
                    remaining_ms: s.duration_ms,
                    attack: None,
                    round: None,
                },
            },
        };
    }

    pub fn advance(&mut self) {
        self.point_at(self.cursor + 1);
    }

    /// The step the function under the cursor runs: the step itself, or
    /// the probe of the hypothesis round under way after it (or in its
    /// pause).
    pub fn current_step(&self) -> Option<&Step> {
        let plan = self.plan.as_ref()?;
        match self.next.round.and_then(|r| r.probe) {
            Some(p) => plan.during.get(p),
            None => plan.steps.get(self.cursor),
        }
    }

    /// The probe or action the function ran is done: on to the next probe
    /// of the round under way, the round after the step, the rest of its
    /// pause, or the next step.
    pub fn step_done(&mut self) {
        let (rounds, is_wait, probes) = match &self.plan {
            Some(plan) => {
                let step = plan.steps.get(self.cursor);
                (
                    step.and_then(|s| s.rounds).unwrap_or(0),
                    step.is_some_and(|s| s.kind == StepKind::Wait),
                    plan.during.len(),
                )
            }
            None => (0, false, 0),
        };
        let round = self.next.round.unwrap_or_default();
        match round.probe {
            Some(p) if p + 1 < probes => {
                self.next.round = Some(Round {
                    done: round.done,
                    probe: Some(p + 1),
                });
            }
            Some(_) if is_wait && round.done + 1 < rounds => {
                // Back to the pause, until its next round is due.
                self.next = Next {
                    kind: NextKind::Wait,
                    remaining_ms: self.next.remaining_ms,
                    attack: None,
                    round: Some(Round {
                        done: round.done + 1,
                        probe: None,
                    }),
                };
            }
            None if !is_wait && rounds > 0 && probes > 0 => self.start_round(0, None),
            _ => self.advance(),
        }
    }

    fn start_round(&mut self, done: u32, remaining_ms: Option<u64>) {
        self.next = Next {
            kind: NextKind::Probe,
            remaining_ms,
            attack: None,
            round: Some(Round {
                done,
                probe: Some(0),
            }),
        };
    }

    /// How much of the pause under the cursor is left when its next round
    /// of the hypothesis is due (0: none is; wait to its end). Its rounds
    /// come after equal parts of it.
    pub fn next_round_at(&self) -> u64 {
        let Some(step) = self.plan.as_ref().and_then(|p| p.steps.get(self.cursor)) else {
            return 0;
        };
        let rounds = u64::from(step.rounds.unwrap_or(0));
        let done = u64::from(self.next.round.map_or(0, |r| r.done));
        if done >= rounds {
            return 0;
        }
        step.duration_ms.unwrap_or(0) * (rounds - done - 1) / rounds
    }

    /// The pause under the cursor has `left_ms` to go: its next round is
    /// due, it is over, or it goes on.
    pub fn waited(&mut self, left_ms: u64) {
        let due = self.next_round_at();
        let rounds = self
            .plan
            .as_ref()
            .and_then(|p| p.steps.get(self.cursor))
            .and_then(|s| s.rounds)
            .unwrap_or(0);
        let done = self.next.round.map_or(0, |r| r.done);
        if left_ms > due {
            self.next.remaining_ms = Some(left_ms);
        } else if done < rounds && self.plan.as_ref().is_some_and(|p| !p.during.is_empty()) {
            self.start_round(done, Some(left_ms));
        } else {
            self.advance();
        }
    }

    /// How long the rest of the run may take from the step under the cursor:
    /// the waits still ahead, a minute for every other step (and for every
    /// probe of the hypothesis rounds still ahead), and five minutes to
    /// spare. Injected faults expire then, whatever happens.
    pub fn time_left(&self) -> std::time::Duration {
        let Some(plan) = &self.plan else {
            return std::time::Duration::ZERO;
        };
        let done = u64::from(self.next.round.map_or(0, |r| r.done));
        let probes = plan.during.len() as u64;
        let ms: u64 = plan
            .steps
            .iter()
            .enumerate()
            .skip(self.cursor)
            .map(|(i, s)| {
                let rounds = u64::from(s.rounds.unwrap_or(0));
                let rounds = if i == self.cursor {
                    rounds.saturating_sub(done)
                } else {
                    rounds
                };
                s.duration_ms.unwrap_or(60_000) + rounds * probes * 60_000
            })
            .sum();
        let own = std::time::Duration::from_millis(ms + 300_000);
        own.max(std::time::Duration::from_millis(
            self.parent_time_left_ms.unwrap_or(0),
        ))
    }

    /// Recorded compensations newest first, then the experiment's own
    /// rollbacks in the order written.
    pub fn rollback_queue(&self) -> Vec<RollbackItem> {
        let mut queue: Vec<RollbackItem> = self
            .compensations
            .iter()
            .rev()
            .map(|c| RollbackItem {
                name: c.name.clone(),
                call: c.call.clone(),
            })
            .collect();
        if let Some(plan) = &self.plan {
            let declared = match plan.rollback_strategy {
                RollbackStrategy::Always => true,
                RollbackStrategy::Never => false,
                RollbackStrategy::Deviated => self.deviated(),
            };
            if declared {
                queue.extend(plan.rollbacks.iter().map(|r| RollbackItem {
                    name: r.name.clone(),
                    call: r.call.clone(),
                }));
            }
        }
        queue
    }

    /// Whether a hypothesis probe missed during or after the method.
    pub fn deviated(&self) -> bool {
        self.error.as_ref().is_some_and(|e| {
            e.error == crate::journal::names::STEADY_STATE_DEVIATED
                && e.report()
                    .record
                    .is_some_and(|r| matches!(r.phase, Phase::After | Phase::During))
        })
    }

    /// The next rollback to run, if any is left.
    pub fn next_rollback(&self) -> Option<RollbackItem> {
        self.rollback_queue().into_iter().nth(self.rollbacks.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn caught_lambda_error_yields_the_report_inside() {
        let report = ErrorReport {
            message: "alarm x is in ALARM".into(),
            record: None,
        };
        let payload = json!({
            "errorType": "ExperimentAborted",
            "errorMessage": serde_json::to_string(&report).unwrap(),
        });
        let caught = CaughtError {
            error: "ExperimentAborted".into(),
            cause: payload.to_string(),
        };
        assert_eq!(caught.report(), report);
    }

    #[test]
    fn foreign_causes_become_the_message() {
        let caught = CaughtError {
            error: "States.Timeout".into(),
            cause: "Task timed out".into(),
        };
        assert_eq!(caught.report().message, "Task timed out");
        let caught = CaughtError {
            error: "Lambda.Unknown".into(),
            cause: json!({"errorType": "Runtime.ExitError", "errorMessage": "exit status 1"})
                .to_string(),
        };
        assert_eq!(caught.report().message, "exit status 1");
    }

    #[test]
    fn rollback_queue_is_compensations_newest_first_then_declared() {
        let call = |f: &str| CallSpec {
            function: f.into(),
            arguments: Default::default(),
        };
        let mut s = State {
            plan: Some(Plan {
                title: "t".into(),
                settings: crate::plan::Settings {
                    abort_alarms: vec![],
                    poll_interval_ms: 1,
                    wait_chunk_ms: 1,
                    time_scale: 1.0,
                },
                steps: vec![],
                rollbacks: vec![crate::plan::RollbackStep {
                    name: "declared".into(),
                    call: call("d"),
                }],
                rollback_strategy: Default::default(),
                dry_run: None,
                secrets: Default::default(),
                warnings: vec![],
                during: vec![],
            }),
            ..Default::default()
        };
        s.compensations.push(Compensation {
            for_action: "a".into(),
            name: "undo a".into(),
            call: call("a"),
        });
        s.compensations.push(Compensation {
            for_action: "b".into(),
            name: "undo b".into(),
            call: call("b"),
        });
        let names: Vec<String> = s.rollback_queue().into_iter().map(|r| r.name).collect();
        assert_eq!(names, vec!["undo b", "undo a", "declared"]);
        assert_eq!(s.next_rollback().map(|r| r.name), Some("undo b".into()));
    }

    #[test]
    fn the_input_of_the_state_machine_parses_as_a_state() {
        let s: State =
            serde_json::from_value(json!({"experiment": {"title": "x"}, "execution": "arn"}))
                .unwrap();
        assert_eq!(s.next.kind, NextKind::Done);
        assert!(s.plan.is_none());
    }

    /// Drive a run's cursor as the functions do (the wait function up to
    /// the next round or a chunk, the probe function one probe), without
    /// the records: (the pause waited before each round of the hypothesis,
    /// the largest state).
    fn walk(plan: Plan) -> (Vec<u64>, usize) {
        let chunk = plan.settings.wait_chunk_ms;
        let mut s = State {
            plan: Some(plan),
            ..Default::default()
        };
        s.point_at(0);
        let (mut waits, mut waited, mut largest) = (Vec::new(), 0, 0);
        loop {
            largest = largest.max(serde_json::to_string(&s).unwrap().len());
            match s.next.kind {
                NextKind::Done => return (waits, largest),
                NextKind::Wait => {
                    let step = s.current_step().unwrap();
                    let remaining = s.next.remaining_ms.or(step.duration_ms).unwrap_or(0);
                    let until = s.next_round_at().min(remaining);
                    let length = (remaining - until).min(chunk);
                    waited += length;
                    s.waited(remaining - length);
                }
                NextKind::Probe | NextKind::Action => {
                    if s.current_step().unwrap().phase == Phase::During {
                        waits.push(std::mem::take(&mut waited));
                    }
                    s.step_done();
                }
                other => panic!("{other:?}"),
            }
        }
    }

    fn soak(hours: f64) -> Plan {
        let probe = json!({
            "type": "probe", "name": "all-running", "tolerance": true,
            "provider": {"type": "python", "module": "chaosaws.ecs.probes",
                "func": "are_all_desired_tasks_running",
                "arguments": {"cluster": "c", "service": "s"}}
        });
        let e = crate::Experiment::parse(&json!({
            "title": "t", "description": "d",
            "extensions": [{"name": "turbulence", "time_scale": 0.0001}],
            "runtime": {"hypothesis": {"strategy": "continuously", "frequency": 60}},
            "steady-state-hypothesis": {"title": "h", "probes": [probe]},
            "method": [
                {"type": "action", "name": "stop", "pauses": {"after": hours * 3600.0 - 60.0},
                 "provider": {"type": "python", "module": "chaosaws.ecs.actions", "func": "stop_random_tasks",
                    "arguments": {"cluster": "c", "service": "s", "task_count": 1}}}
            ],
            "rollbacks": []
        }))
        .unwrap();
        Plan::keeping(&e, crate::plan::Records::Spilled).unwrap()
    }

    #[test]
    fn a_day_checked_every_minute_runs_every_round_on_time_in_a_state_of_fixed_size() {
        let (waits, largest) = walk(soak(24.0));
        // One round right after the action, then one every 60 s (6 ms at
        // this time scale) of the pause, the last as it ends.
        assert_eq!(waits.len(), 1_440);
        assert_eq!(waits[0], 0);
        assert!(waits[1..].iter().all(|&w| w == 6), "{waits:?}");
        // Without the records (they spill), the state is as large for a
        // day as for an hour.
        let (hour, hour_largest) = walk(soak(1.0));
        assert_eq!(hour.len(), 60);
        assert!(largest < 3_000, "{largest}");
        assert!(hour_largest.abs_diff(largest) <= 16);
    }
}
