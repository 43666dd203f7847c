//! Expanding a valid experiment into the flat list of steps the state
//! machine walks: hypothesis probes before, the method with its pauses as
//! wait steps, the hypothesis probes after. Durations are time-scaled here,
//! once, so every later function works in real milliseconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalogue::CallSpec;
use crate::model::{
    Activity, ActivityType, DryRun, Experiment, HypothesisStrategy, Invalid, RollbackStrategy,
    SecretRef,
};
use crate::tolerance::Tolerance;

/// Default seconds between abort-alarm checks in a wait.
pub const DEFAULT_POLL_INTERVAL_SECONDS: f64 = 5.0;
/// Default longest wait one invocation of the wait function makes. It must
/// stay under the function's timeout (template.yaml gives it 900 s).
pub const DEFAULT_WAIT_CHUNK_SECONDS: f64 = 600.0;
pub const MAX_WAIT_CHUNK_SECONDS: f64 = 840.0;
/// Below this, alarm polling would hammer CloudWatch (and moto) for nothing.
pub const MIN_POLL_INTERVAL_SECONDS: f64 = 0.2;
/// Step Functions standard workflows run at most a year; so does a pause.
pub const MAX_PAUSE_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Before,
    Method,
    /// Hypothesis checks while the method runs (`continuously`,
    /// `during-method-only`).
    During,
    After,
    Rollback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    Probe,
    Action,
    Wait,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub phase: Phase,
    pub kind: StepKind,
    /// The activity's name; for a wait, what it pauses for.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Tolerance>,
    /// Wall-clock milliseconds of a wait, after time scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// A load attack too big for one invocation: its shares, by wave. The
    /// shares of a wave run at once (a Map), the waves one after another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waves: Option<Vec<Vec<serde_json::Value>>>,
    /// The background activity (numbered in the method's order) this step
    /// belongs to, with its pauses: a child execution runs them while the
    /// method goes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<usize>,
    /// `continuously` and `during-method-only`: the rounds of the
    /// hypothesis ([`Plan::during`]) this method step is followed by: one
    /// after an activity; for a pause, one after each of this many equal
    /// parts of it. A 24 h pause checked every minute is one step with
    /// 1,440 rounds, not 1,440 steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<u32>,
}

/// A rollback the experiment declares (compensations are recorded at run time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackStep {
    pub name: String,
    pub call: CallSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub abort_alarms: Vec<String>,
    pub poll_interval_ms: u64,
    pub wait_chunk_ms: u64,
    pub time_scale: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub title: String,
    pub settings: Settings,
    pub steps: Vec<Step>,
    pub rollbacks: Vec<RollbackStep>,
    #[serde(default)]
    pub rollback_strategy: RollbackStrategy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<DryRun>,
    /// Where each secret's value lives (never the value of one from SSM or
    /// the environment).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The probes of one round of the hypothesis during the method, once
    /// for all the rounds the steps name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub during: Vec<Step>,
}

/// Where a run keeps its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Records {
    /// All in the Step Functions state (at most 256 KB), as without a
    /// journal bucket.
    #[default]
    InState,
    /// The rounds of the hypothesis spill to the deployment's journal
    /// bucket as they run; the state keeps a bounded summary.
    Spilled,
}

/// The most hypothesis rounds during the method a run whose records all
/// travel in the state may have.
pub const MAX_DURING_ROUNDS: u64 = 48;

/// Step Functions keeps at most this many events in an execution's
/// history; an execution that would need more fails there.
pub const MAX_HISTORY_EVENTS: u64 = 25_000;

impl Plan {
    /// The plan of a run whose records all stay in the state.
    pub fn new(e: &Experiment) -> Result<Plan, Invalid> {
        Plan::keeping(e, Records::InState)
    }

    /// The plan of a run that keeps its records as `records` says: the
    /// number of hypothesis rounds it may have depends on it.
    pub fn keeping(e: &Experiment, records: Records) -> Result<Plan, Invalid> {
        let plan = Plan::expand(e)?;
        plan.check_rounds(records)?;
        Ok(plan)
    }

    fn expand(e: &Experiment) -> Result<Plan, Invalid> {
        let ext = &e.extension;
        let time_scale = ext.time_scale.unwrap_or(1.0);
        if time_scale > 1.0 {
            return Err(Invalid(format!(
                "extensions.turbulence.time_scale: must be at most 1 (it compresses time), found {time_scale}"
            )));
        }
        // The poll interval is wall-clock and never scaled: it is how fast an
        // abort is noticed, and how hard CloudWatch is asked.
        let poll = ext
            .poll_interval_seconds
            .unwrap_or(DEFAULT_POLL_INTERVAL_SECONDS);
        if poll < MIN_POLL_INTERVAL_SECONDS {
            return Err(Invalid(format!(
                "extensions.turbulence.poll_interval_seconds: must be at least {MIN_POLL_INTERVAL_SECONDS}, found {poll}"
            )));
        }
        // A wait chunk is at least one poll: longer would outlive the function.
        if poll > MAX_WAIT_CHUNK_SECONDS {
            return Err(Invalid(format!(
                "extensions.turbulence.poll_interval_seconds: must be at most {MAX_WAIT_CHUNK_SECONDS} (the wait function's timeout is 900 s), found {poll}"
            )));
        }
        let chunk = ext.wait_chunk_seconds.unwrap_or(DEFAULT_WAIT_CHUNK_SECONDS);
        if chunk > MAX_WAIT_CHUNK_SECONDS {
            return Err(Invalid(format!(
                "extensions.turbulence.wait_chunk_seconds: must be at most {MAX_WAIT_CHUNK_SECONDS} (the wait function's timeout is 900 s), found {chunk}"
            )));
        }
        let poll_interval_ms = seconds_to_ms(poll);
        // Chunks scale with time so a compressed run has the shape of a real
        // one (same number of wait invocations), but never below one poll.
        let wait_chunk_ms = seconds_to_ms(chunk * time_scale).max(poll_interval_ms);

        use HypothesisStrategy as H;
        let strategy = e.runtime.hypothesis;
        let mut steps = Vec::new();
        if matches!(strategy, H::Default | H::BeforeMethodOnly | H::Continuously) {
            for p in &e.hypothesis {
                steps.extend(activity_steps(p, Phase::Before, true, time_scale, None)?);
            }
        }
        // The hypothesis during the method: a round after each activity and
        // every `frequency` seconds of its pauses (counted in the
        // experiment's own time, so a time-scaled rehearsal has as many).
        let during =
            matches!(strategy, H::DuringMethodOnly | H::Continuously) && !e.hypothesis.is_empty();
        let every = during.then(|| e.runtime.frequency_seconds.unwrap_or(chunk));
        let mut in_background = 0;
        for a in &e.method {
            // Chaos Toolkit does not judge method probes against tolerances.
            // A background activity's steps run in their own execution; the
            // hypothesis is checked around the method's own.
            let rounds_every = if a.background { None } else { every };
            let mut group = activity_steps(a, Phase::Method, false, time_scale, rounds_every)?;
            if a.background {
                for s in &mut group {
                    s.background = Some(in_background);
                }
                in_background += 1;
            }
            steps.extend(group);
        }
        let during = if during {
            e.hypothesis
                .iter()
                .map(|p| probe_step(p, Phase::During, true))
                .collect()
        } else {
            Vec::new()
        };
        if matches!(strategy, H::Default | H::AfterMethodOnly | H::Continuously) {
            for p in &e.hypothesis {
                steps.extend(activity_steps(p, Phase::After, true, time_scale, None)?);
            }
        }
        let rollbacks = e
            .rollbacks
            .iter()
            .map(|r| RollbackStep {
                name: r.name.clone(),
                call: r.call.clone(),
            })
            .collect();
        Ok(Plan {
            title: e.title.clone(),
            settings: Settings {
                abort_alarms: ext.abort_alarms.clone(),
                poll_interval_ms,
                wait_chunk_ms,
                time_scale,
            },
            steps,
            rollbacks,
            rollback_strategy: e.runtime.rollbacks,
            dry_run: ext.dry_run,
            secrets: e.secrets.clone(),
            warnings: e.warnings.clone(),
            during,
        })
    }

    /// Every round of the hypothesis during the method.
    pub fn rounds(&self) -> u64 {
        self.steps
            .iter()
            .map(|s| u64::from(s.rounds.unwrap_or(0)))
            .sum()
    }

    /// Refuse more rounds than the records can be kept for: 48 in the
    /// state; with a journal bucket, as many as the execution's history
    /// has room for.
    pub fn check_rounds(&self, records: Records) -> Result<(), Invalid> {
        let rounds = self.rounds();
        let every = self
            .steps
            .iter()
            .find(|s| s.kind == StepKind::Wait && s.rounds.unwrap_or(0) > 1)
            .map(|s| {
                let part = s.duration_ms.unwrap_or(0) as f64
                    / f64::from(s.rounds.unwrap_or(1))
                    / self.settings.time_scale;
                format!(" every {}", seconds_text(part / 1000.0))
            })
            .unwrap_or_default();
        match records {
            Records::InState if rounds > MAX_DURING_ROUNDS => Err(Invalid(format!(
                "runtime.hypothesis: checking continuously{every} makes {rounds} rounds, over the {MAX_DURING_ROUNDS} whose records fit in the Step Functions state (every round's records travel in it); raise 'frequency'"
            ))),
            _ => {
                let events = self.history_events();
                if events > MAX_HISTORY_EVENTS {
                    return Err(Invalid(format!(
                        "runtime.hypothesis: checking continuously{every} makes {rounds} rounds, about {events} Step Functions history events, over the {MAX_HISTORY_EVENTS} an execution may have; raise 'frequency'"
                    )));
                }
                Ok(())
            }
        }
    }

    /// About how many history events a run of this plan makes (each Task
    /// state 5, each Choice 2; a wait one Task per chunk, a round one per
    /// probe), for runs that complete.
    pub fn history_events(&self) -> u64 {
        const TASK: u64 = 5 + 2; // the Task, then the Dispatch choice
        let chunk = self.settings.wait_chunk_ms.max(1);
        let probes = self.during.len() as u64;
        // Start, Plan, the rollbacks' Choice, Journal, Outcome, the end.
        let mut events = 1 + 2 + TASK + 5 + 2 + 2 + 2;
        events += self.rollbacks.len() as u64 * TASK;
        for step in &self.steps {
            let rounds = u64::from(step.rounds.unwrap_or(0));
            events += match (step.kind, step.duration_ms) {
                (StepKind::Wait, Some(ms)) => {
                    let parts = rounds.max(1);
                    parts * (ms / parts).div_ceil(chunk).max(1) * TASK
                }
                _ => {
                    TASK + step
                        .waves
                        .as_ref()
                        .map_or(0, |w| 10 * w.iter().map(Vec::len).sum::<usize>() as u64)
                }
            };
            events += rounds * probes * TASK;
        }
        events
    }
}

impl Plan {
    /// Every call the run may make, by the name of its step or rollback:
    /// the steps' in order, then the experiment's own rollbacks.
    pub fn calls(&self) -> impl Iterator<Item = (&str, crate::catalogue::Call)> + '_ {
        let steps = self
            .steps
            .iter()
            .filter_map(|s| s.call.as_ref().map(|c| (s.name.as_str(), c)));
        let rollbacks = self.rollbacks.iter().map(|r| (r.name.as_str(), &r.call));
        steps
            .chain(rollbacks)
            .filter_map(|(name, spec)| Some((name, crate::catalogue::Call::parse(spec).ok()?)))
    }

    /// The checks of this experiment's targets that need the account, which
    /// `turbulence validate` leaves to the run (see
    /// [`crate::faults::left_to_the_run`]).
    pub fn left_to_the_run(&self) -> Vec<String> {
        let calls: Vec<_> = self.calls().map(|(_, call)| call).collect();
        crate::faults::left_to_the_run(&calls)
    }

    /// Refuse two activities under a blast-radius cap (the task stops) on
    /// the same resources when one runs in the background: each checks the
    /// blast radius against what runs when it starts, so at once they
    /// could take more than the cap together. A guard (Plan refuses with
    /// `GuardRefused`), checked offline too.
    pub fn concurrent_stops(&self) -> Result<(), String> {
        use crate::catalogue::Call;
        let capped: Vec<(&str, Option<usize>, Vec<crate::guards::Resource>)> = self
            .steps
            .iter()
            .filter_map(|s| {
                let call = Call::parse(s.call.as_ref()?).ok()?;
                call.activity
                    .preflight
                    .is_some()
                    .then(|| (s.name.as_str(), s.background, call.touches()))
            })
            .collect();
        for (i, (a, a_group, a_touches)) in capped.iter().enumerate() {
            for (b, b_group, b_touches) in &capped[i + 1..] {
                let shared = a_touches
                    .iter()
                    .find(|r| b_touches.iter().any(|o| r.overlaps(o)));
                let concurrent = a_group != b_group && (a_group.is_some() || b_group.is_some());
                if let (Some(resource), true) = (shared, concurrent) {
                    return Err(format!(
                        "activities '{a}' and '{b}' both take from {resource} under the blast-radius cap and may run at once (one is in the background): each would check the blast radius without seeing the other's; run them one after the other"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// An activity's steps: its pauses around it; with `rounds_every`, each
/// followed by the rounds of the hypothesis during the method, one every
/// that many seconds of a pause.
fn activity_steps(
    a: &Activity,
    phase: Phase,
    with_tolerance: bool,
    time_scale: f64,
    rounds_every: Option<f64>,
) -> Result<Vec<Step>, Invalid> {
    let mut steps = Vec::new();
    let pause = |when: &str, seconds: f64| {
        let name = format!("pause {when} '{}'", a.name);
        wait(phase, name, seconds, time_scale, rounds_every)
    };
    if let Some(s) = a.pause_before {
        steps.push(pause("before", s)?);
    }
    let mut step = probe_step(a, phase, with_tolerance);
    step.rounds = rounds_every.map(|_| 1);
    steps.push(step);
    if let Some(s) = a.pause_after {
        steps.push(pause("after", s)?);
    }
    Ok(steps)
}

/// The step of an activity itself.
fn probe_step(a: &Activity, phase: Phase, with_tolerance: bool) -> Step {
    Step {
        waves: None,
        background: None,
        rounds: None,
        phase,
        kind: match a.kind {
            ActivityType::Probe => StepKind::Probe,
            ActivityType::Action => StepKind::Action,
        },
        name: a.name.clone(),
        call: Some(a.call.clone()),
        tolerance: if with_tolerance {
            a.tolerance.clone()
        } else {
            None
        },
        duration_ms: None,
    }
}

fn seconds_to_ms(s: f64) -> u64 {
    (s * 1000.0).round() as u64
}

/// `60 s`, `0.5 s`, `2 h`: a duration for a message.
fn seconds_text(s: f64) -> String {
    if s >= 3600.0 && (s / 3600.0).fract() == 0.0 {
        format!("{} h", s / 3600.0)
    } else if s >= 60.0 && (s / 60.0).fract() == 0.0 {
        format!("{} min", s / 60.0)
    } else {
        format!("{} s", (s * 1000.0).round() / 1000.0)
    }
}

fn wait(
    phase: Phase,
    name: String,
    seconds: f64,
    scale: f64,
    rounds_every: Option<f64>,
) -> Result<Step, Invalid> {
    if seconds > MAX_PAUSE_SECONDS {
        return Err(Invalid(format!(
            "{name}: {seconds} s is longer than a year"
        )));
    }
    // One round after each `every` seconds of the pause, and one after it
    // however short it is; counted before the time scale, so a rehearsal
    // checks as often as the real run.
    let rounds = rounds_every.map(|every| {
        let n = (seconds / every).ceil().max(1.0);
        if n >= f64::from(u32::MAX) {
            u32::MAX
        } else {
            n as u32
        }
    });
    Ok(Step {
        waves: None,
        background: None,
        rounds,
        phase,
        kind: StepKind::Wait,
        name,
        call: None,
        tolerance: None,
        duration_ms: Some(seconds_to_ms(seconds * scale)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn experiment(ext: Value) -> Experiment {
        let probe = json!({
            "type": "probe", "name": "all-running", "tolerance": true,
            "provider": {"type": "python", "module": "chaosaws.ecs.probes",
                "func": "are_all_desired_tasks_running",
                "arguments": {"cluster": "c", "service": "s"}}
        });
        Experiment::parse(&json!({
            "title": "t", "description": "d",
            "extensions": [ext],
            "steady-state-hypothesis": {"title": "h", "probes": [probe]},
            "method": [
                {"type": "action", "name": "stop", "pauses": {"after": 150},
                 "provider": {"type": "python", "module": "chaosaws.ecs.actions", "func": "stop_random_tasks",
                    "arguments": {"cluster": "c", "service": "s", "task_count": 1}}},
                {"type": "action", "name": "zero", "pauses": {"after": 3600},
                 "provider": {"type": "python", "module": "chaosaws.ecs.actions", "func": "update_desired_count",
                    "arguments": {"cluster": "c", "service": "s", "desired_count": 0}}}
            ],
            "rollbacks": []
        }))
        .unwrap()
    }

    #[test]
    fn expands_hypothesis_method_and_pauses_in_order() {
        let plan = Plan::new(&experiment(json!({"name": "turbulence"}))).unwrap();
        let shape: Vec<(Phase, StepKind, &str)> = plan
            .steps
            .iter()
            .map(|s| (s.phase, s.kind, s.name.as_str()))
            .collect();
        assert_eq!(
            shape,
            vec![
                (Phase::Before, StepKind::Probe, "all-running"),
                (Phase::Method, StepKind::Action, "stop"),
                (Phase::Method, StepKind::Wait, "pause after 'stop'"),
                (Phase::Method, StepKind::Action, "zero"),
                (Phase::Method, StepKind::Wait, "pause after 'zero'"),
                (Phase::After, StepKind::Probe, "all-running"),
            ]
        );
        assert_eq!(plan.steps[2].duration_ms, Some(150_000));
        assert_eq!(plan.steps[4].duration_ms, Some(3_600_000));
        assert_eq!(plan.settings.poll_interval_ms, 5_000);
        assert_eq!(plan.settings.wait_chunk_ms, 600_000);
        assert!(plan.steps[0].tolerance.is_some());
    }

    #[test]
    fn time_scale_compresses_waits_and_chunks_but_not_polls() {
        let plan = Plan::new(&experiment(
            json!({"name": "turbulence", "time_scale": 0.001, "poll_interval_seconds": 1}),
        ))
        .unwrap();
        assert_eq!(plan.steps[2].duration_ms, Some(150));
        assert_eq!(plan.steps[4].duration_ms, Some(3_600));
        assert_eq!(plan.settings.poll_interval_ms, 1_000);
        // 600 s * 0.001 = 0.6 s, raised to one poll.
        assert_eq!(plan.settings.wait_chunk_ms, 1_000);
    }

    #[test]
    fn bad_settings_are_refused() {
        let e = Plan::new(&experiment(json!({"name": "turbulence", "time_scale": 2}))).unwrap_err();
        assert!(e.0.contains("time_scale: must be at most 1"), "{e}");
        let e = Plan::new(&experiment(
            json!({"name": "turbulence", "poll_interval_seconds": 0.01}),
        ))
        .unwrap_err();
        assert!(
            e.0.contains("poll_interval_seconds: must be at least"),
            "{e}"
        );
        let e = Plan::new(&experiment(
            json!({"name": "turbulence", "wait_chunk_seconds": 1000}),
        ))
        .unwrap_err();
        assert!(
            e.0.contains("wait_chunk_seconds: must be at most 840"),
            "{e}"
        );
    }

    /// A soak: one action, then `hours` of pause, the hypothesis checked
    /// continuously every `every` seconds.
    fn soak(hours: f64, every: f64) -> Experiment {
        let mut e = experiment(json!({"name": "turbulence", "time_scale": 0.0001}));
        e.runtime.hypothesis = HypothesisStrategy::Continuously;
        e.runtime.frequency_seconds = Some(every);
        e.method.truncate(1);
        e.method[0].pause_after = Some(hours * 3600.0 - every);
        e
    }

    #[test]
    fn a_day_checked_every_minute_is_a_few_steps_whatever_the_rounds() {
        let day = Plan::keeping(&soak(24.0, 60.0), Records::Spilled).unwrap();
        let shape: Vec<(Phase, StepKind, Option<u32>)> = day
            .steps
            .iter()
            .map(|s| (s.phase, s.kind, s.rounds))
            .collect();
        assert_eq!(
            shape,
            vec![
                (Phase::Before, StepKind::Probe, None),
                (Phase::Method, StepKind::Action, Some(1)),
                (Phase::Method, StepKind::Wait, Some(1_439)),
                (Phase::After, StepKind::Probe, None),
            ]
        );
        assert_eq!(day.rounds(), 1_440);
        assert_eq!(day.during.len(), 1);
        assert_eq!(day.during[0].phase, Phase::During);
        // The plan the state carries is as large for an hour as for 30
        // days: only the digits of the pause and its rounds differ.
        let size = |p: &Plan| serde_json::to_string(p).unwrap().len();
        let hour = Plan::keeping(&soak(1.0, 60.0), Records::Spilled).unwrap();
        let long = Plan::keeping(&soak(24.0 * 30.0, 3_600.0), Records::Spilled).unwrap();
        assert_eq!(long.rounds(), 24 * 30);
        assert!(size(&day) < 2_000, "{}", size(&day));
        assert!(size(&long).abs_diff(size(&hour)) <= 16);
    }

    #[test]
    fn rounds_past_what_the_state_holds_are_refused() {
        let e = Plan::new(&soak(24.0, 60.0)).unwrap_err();
        assert_eq!(
            e.0,
            "runtime.hypothesis: checking continuously every 1 min makes 1440 rounds, over the 48 whose records fit in the Step Functions state (every round's records travel in it); raise 'frequency'"
        );
        // 48 rounds still fit without the bucket.
        assert_eq!(Plan::new(&soak(0.8, 60.0)).unwrap().rounds(), 48);
        // With the bucket, the bound is the execution's history: a round a
        // second for a day would need more events than one may have.
        let e = Plan::keeping(&soak(24.0, 1.0), Records::Spilled).unwrap_err();
        assert!(e.0.contains("over the 25000 an execution may have"), "{e}");
        let day = Plan::keeping(&soak(24.0, 60.0), Records::Spilled).unwrap();
        assert!(day.history_events() < MAX_HISTORY_EVENTS);
    }
}
