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
}

/// The most hypothesis rounds `continuously` adds to a plan.
pub const MAX_DURING_ROUNDS: usize = 48;

impl Plan {
    pub fn new(e: &Experiment) -> Result<Plan, Invalid> {
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
                steps.extend(activity_steps(p, Phase::Before, true, time_scale)?);
            }
        }
        let mut method = Vec::new();
        let mut in_background = 0;
        for a in &e.method {
            // Chaos Toolkit does not judge method probes against tolerances.
            let mut group = activity_steps(a, Phase::Method, false, time_scale)?;
            if a.background {
                for s in &mut group {
                    s.background = Some(in_background);
                }
                in_background += 1;
            }
            method.extend(group);
        }
        if matches!(strategy, H::DuringMethodOnly | H::Continuously) {
            let every_ms = seconds_to_ms(e.runtime.frequency_seconds.unwrap_or(chunk) * time_scale)
                .max(poll_interval_ms);
            method = during(method, &e.hypothesis, every_ms)?;
        }
        steps.extend(method);
        if matches!(strategy, H::Default | H::AfterMethodOnly | H::Continuously) {
            for p in &e.hypothesis {
                steps.extend(activity_steps(p, Phase::After, true, time_scale)?);
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
        })
    }
}

impl Plan {
    /// The checks of this experiment's targets that need the account, which
    /// `turbulence validate` leaves to the run (see
    /// [`crate::faults::left_to_the_run`]).
    pub fn left_to_the_run(&self) -> Vec<String> {
        use crate::catalogue::Call;
        let calls: Vec<Call> = self
            .steps
            .iter()
            .filter_map(|s| s.call.as_ref())
            .chain(self.rollbacks.iter().map(|r| &r.call))
            .filter_map(|spec| Call::parse(spec).ok())
            .collect();
        crate::faults::left_to_the_run(&calls)
    }

    /// Refuse two task stops on the same tasks when one runs in the
    /// background: each checks the blast radius against the tasks running
    /// when it starts, so at once they could stop more than the cap
    /// together. A guard (Plan refuses with `GuardRefused`), checked offline
    /// too.
    pub fn concurrent_stops(&self) -> Result<(), String> {
        use crate::catalogue::{tasks_of, Call};
        let stops: Vec<(&str, Option<usize>, String, Option<String>)> = self
            .steps
            .iter()
            .filter_map(|s| match Call::parse(s.call.as_ref()?).ok()? {
                Call::EcsStopRandomTasks {
                    cluster, service, ..
                } => Some((s.name.as_str(), s.background, cluster, service)),
                _ => None,
            })
            .collect();
        for (i, (a, a_group, a_cluster, a_service)) in stops.iter().enumerate() {
            for (b, b_group, b_cluster, b_service) in &stops[i + 1..] {
                let overlap = a_cluster == b_cluster
                    && (a_service.is_none() || b_service.is_none() || a_service == b_service);
                if overlap && a_group != b_group && (a_group.is_some() || b_group.is_some()) {
                    return Err(format!(
                        "activities '{a}' and '{b}' both stop tasks of {} and may run at once (one is in the background): each would check the blast radius without seeing the other's stops; run them one after the other",
                        tasks_of(a_cluster, a_service.as_deref())
                    ));
                }
            }
        }
        Ok(())
    }
}

/// An activity's steps: its pauses around it.
fn activity_steps(
    a: &Activity,
    phase: Phase,
    with_tolerance: bool,
    time_scale: f64,
) -> Result<Vec<Step>, Invalid> {
    let mut steps = Vec::new();
    if let Some(s) = a.pause_before {
        steps.push(wait(
            phase,
            format!("pause before '{}'", a.name),
            s,
            time_scale,
        )?);
    }
    steps.push(Step {
        waves: None,
        background: None,
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
    });
    if let Some(s) = a.pause_after {
        steps.push(wait(
            phase,
            format!("pause after '{}'", a.name),
            s,
            time_scale,
        )?);
    }
    Ok(steps)
}

/// The method with the hypothesis checked after each of its activities and
/// every `every_ms` of its pauses (pauses split to make room).
fn during(method: Vec<Step>, hypothesis: &[Activity], every_ms: u64) -> Result<Vec<Step>, Invalid> {
    let round = |steps: &mut Vec<Step>| {
        for p in hypothesis {
            steps.push(Step {
                waves: None,
                background: None,
                phase: Phase::During,
                kind: StepKind::Probe,
                name: p.name.clone(),
                call: Some(p.call.clone()),
                tolerance: p.tolerance.clone(),
                duration_ms: None,
            });
        }
    };
    let mut out = Vec::new();
    let mut rounds = 0;
    for step in method {
        // A background activity's steps run in their own execution; the
        // hypothesis is checked around the method's own.
        if step.background.is_some() {
            out.push(step);
            continue;
        }
        match (step.kind, step.duration_ms) {
            (StepKind::Wait, Some(total)) if total > every_ms => {
                let mut left = total;
                while left > 0 {
                    let part = left.min(every_ms);
                    out.push(Step {
                        duration_ms: Some(part),
                        ..step.clone()
                    });
                    left -= part;
                    round(&mut out);
                    rounds += 1;
                }
            }
            _ => {
                out.push(step);
                round(&mut out);
                rounds += 1;
            }
        }
        if rounds > MAX_DURING_ROUNDS {
            return Err(Invalid(format!(
                "runtime.hypothesis: checking continuously every {} s makes over {MAX_DURING_ROUNDS} rounds; raise 'frequency'",
                every_ms as f64 / 1000.0
            )));
        }
    }
    Ok(out)
}

fn seconds_to_ms(s: f64) -> u64 {
    (s * 1000.0).round() as u64
}

fn wait(phase: Phase, name: String, seconds: f64, scale: f64) -> Result<Step, Invalid> {
    if seconds > MAX_PAUSE_SECONDS {
        return Err(Invalid(format!(
            "{name}: {seconds} s is longer than a year"
        )));
    }
    Ok(Step {
        waves: None,
        background: None,
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
}
