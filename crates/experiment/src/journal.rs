//! The Chaos Toolkit journal of a run, and the outcome the state machine
//! ends with.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::plan::Phase;
use crate::state::{Record, RunStatus, State};
use crate::timestamp;

/// The stable error names executions fail with. Step Functions `Retry` and
/// `Catch`, alarms and runbooks match on them: they are an API.
pub mod names {
    pub const EXPERIMENT_INVALID: &str = "ExperimentInvalid";
    pub const EXPERIMENT_ABORTED: &str = "ExperimentAborted";
    pub const STEADY_STATE_DEVIATED: &str = "SteadyStateDeviated";
    pub const ACTIVITY_FAILED: &str = "ActivityFailed";
    pub const ROLLBACK_FAILED: &str = "RollbackFailed";
    /// An AWS API throttled us; safe to retry (only raised before any change).
    pub const THROTTLED: &str = "Throttled";
    /// The state document itself is unusable (a bug, or a hand-edited input).
    pub const STATE_INVALID: &str = "StateInvalid";
    /// A guard refused the experiment before anything was touched.
    pub const GUARD_REFUSED: &str = "GuardRefused";
    /// The execution was stopped or timed out; the janitor cleaned up.
    pub const EXPERIMENT_INTERRUPTED: &str = "ExperimentInterrupted";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Completed,
    Failed,
    Aborted,
    /// Stopped from outside (StopExecution, a timeout), as Chaos Toolkit
    /// calls a run ended by a signal.
    Interrupted,
}

/// How the run ended: the journal's status and, for anything but a clean
/// completion, the error name and a sentence for the Fail state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub status: Status,
    pub deviated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// What the journal function returns to the state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    pub journal: Value,
    pub outcome: Outcome,
}

pub fn outcome(state: &State) -> Outcome {
    let report = state.error.as_ref().map(|e| e.report());
    let failed_phase = report
        .as_ref()
        .and_then(|r| r.record.as_ref())
        .map(|r| r.phase);
    let (status, deviated, error, mut cause) = match (&state.error, report) {
        (None, _) => (Status::Completed, false, None, None),
        (Some(e), Some(r)) => match e.error.as_str() {
            names::EXPERIMENT_INVALID => (
                Status::Failed,
                false,
                Some(names::EXPERIMENT_INVALID),
                Some(r.message),
            ),
            names::EXPERIMENT_ABORTED => (
                Status::Aborted,
                false,
                Some(names::EXPERIMENT_ABORTED),
                Some(r.message),
            ),
            names::GUARD_REFUSED => (
                Status::Failed,
                false,
                Some(names::GUARD_REFUSED),
                Some(r.message),
            ),
            names::EXPERIMENT_INTERRUPTED => (
                Status::Interrupted,
                false,
                Some(names::EXPERIMENT_INTERRUPTED),
                Some(r.message),
            ),
            names::STEADY_STATE_DEVIATED => (
                Status::Failed,
                // Chaos Toolkit calls only a miss after the method a deviation;
                // a miss before it means the system was not steady to begin with.
                matches!(failed_phase, Some(Phase::After | Phase::During)),
                Some(names::STEADY_STATE_DEVIATED),
                Some(r.message),
            ),
            names::ACTIVITY_FAILED => (
                Status::Failed,
                false,
                Some(names::ACTIVITY_FAILED),
                Some(r.message),
            ),
            other => (
                Status::Failed,
                false,
                Some(names::ACTIVITY_FAILED),
                Some(format!("{other}: {}", r.message)),
            ),
        },
        (Some(e), None) => (
            Status::Failed,
            false,
            Some(names::ACTIVITY_FAILED),
            Some(e.error.clone()),
        ),
    };
    let mut error = error.map(str::to_string);
    let failed_rollbacks: Vec<String> = state
        .rollbacks
        .iter()
        .filter(|r| r.status == RunStatus::Failed)
        .map(|r| {
            format!(
                "'{}' ({})",
                r.name,
                r.exception.as_deref().unwrap_or("failed")
            )
        })
        .chain(
            state
                .rollback_error
                .iter()
                .map(|e| format!("{}: {}", e.error, e.report().message)),
        )
        .collect();
    if !failed_rollbacks.is_empty() {
        let text = format!("rollback failed: {}", failed_rollbacks.join("; "));
        cause = Some(match cause {
            Some(c) => format!("{c}; {text}"),
            None => text,
        });
        if error.is_none() {
            error = Some(names::ROLLBACK_FAILED.to_string());
        }
    }
    let status = if error.is_some() && status == Status::Completed {
        Status::Failed
    } else {
        status
    };
    Outcome {
        status,
        deviated,
        error,
        cause,
    }
}

/// The journal: Chaos Toolkit's shape, with Turbulence's additions under
/// `turbulence`.
pub fn journal(state: &State, now: OffsetDateTime) -> Finished {
    let outcome = outcome(state);
    let failed = state.error.as_ref().and_then(|e| e.report().record);
    let all: Vec<&Record> = state.records.iter().chain(failed.as_deref()).collect();
    let hypothesis = |phase: Phase| -> Value {
        let probes: Vec<Value> = all
            .iter()
            .filter(|r| r.phase == phase)
            .map(|r| entry(r))
            .collect();
        if probes.is_empty() {
            return Value::Null;
        }
        let met = all
            .iter()
            .filter(|r| r.phase == phase)
            .all(|r| r.status == RunStatus::Succeeded && r.tolerance_met != Some(false));
        json!({"steady_state_met": met, "probes": probes})
    };
    let end = timestamp(now);
    let start = state.started_at.clone().unwrap_or_else(|| end.clone());
    let duration = crate::parse_timestamp(&start)
        .map(|s| (now - s).as_seconds_f64())
        .unwrap_or(0.0);
    let journal = json!({
        // Not chaoslib, but readers expect a version string here.
        "chaoslib-version": concat!("turbulence ", env!("CARGO_PKG_VERSION")),
        "platform": "AWS Step Functions",
        "node": state.execution,
        "experiment": redacted(&state.experiment),
        "start": start,
        "end": end,
        "duration": duration,
        "status": outcome.status,
        "deviated": outcome.deviated,
        "steady_states": {
            "before": hypothesis(Phase::Before),
            "after": hypothesis(Phase::After),
            "during": all
                .iter()
                .filter(|r| r.phase == Phase::During)
                .map(|r| entry(r))
                .collect::<Vec<_>>(),
        },
        "run": all.iter().filter(|r| r.phase == Phase::Method).map(|r| entry(r)).collect::<Vec<_>>(),
        "rollbacks": state.rollbacks.iter().map(entry).collect::<Vec<_>>(),
        "turbulence": {
            "execution": state.execution,
            "experiment_parameter": state.experiment_parameter,
            "error": outcome.error,
            "cause": outcome.cause,
            "baselines": state.baselines,
            "compensations": state.compensations,
            "time_scale": state.plan.as_ref().map(|p| p.settings.time_scale),
            "dry_run": state.plan.as_ref().and_then(|p| p.dry_run),
            "rollback_strategy": state.plan.as_ref().map(|p| p.rollback_strategy),
            "warnings": state.plan.as_ref().map(|p| p.warnings.clone()).unwrap_or_default(),
            // Each background activity ran in an execution of its own.
            "background": state
                .background
                .iter()
                .map(|b| json!({"activity": b.name, "execution": b.execution}))
                .collect::<Vec<_>>(),
            "cost": {
                "lambda_invocations": state.cost.invocations,
                "lambda_seconds": state.cost.function_ms as f64 / 1000.0,
                // Each function call is a Task and a Choice; plus Start,
                // Journal, Outcome and the end state.
                "state_transitions_estimate": 2 * state.cost.invocations + 4,
            },
        },
    });
    Finished { journal, outcome }
}

/// The experiment as given, with every secret written in it blanked.
fn redacted(experiment: &Value) -> Value {
    let mut e = experiment.clone();
    if let Some(scopes) = e.get_mut("secrets").and_then(Value::as_object_mut) {
        for entries in scopes.values_mut() {
            if let Some(entries) = entries.as_object_mut() {
                for v in entries.values_mut() {
                    if v.is_string() {
                        *v = Value::String("***".into());
                    }
                }
            }
        }
    }
    e
}

/// The CloudWatch namespace of Turbulence's own metrics.
pub const METRICS_NAMESPACE: &str = "Turbulence";

/// One run's metrics as a CloudWatch embedded-metric-format document: the
/// journal function prints it as one log line and CloudWatch turns it into
/// metrics, per experiment and across all (no dimension), at no API cost.
pub fn metrics(state: &State, finished: &Finished, now: OffsetDateTime) -> Value {
    let o = &finished.outcome;
    let flag = |b: bool| if b { 1 } else { 0 };
    let title = state
        .plan
        .as_ref()
        .map(|p| p.title.clone())
        .or_else(|| {
            state
                .experiment
                .get("title")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "(invalid)".into());
    let rollbacks_failed = state
        .rollbacks
        .iter()
        .filter(|r| r.status == RunStatus::Failed)
        .count()
        + usize::from(state.rollback_error.is_some());
    let metric = |name: &str, unit: &str| json!({"Name": name, "Unit": unit});
    json!({
        "_aws": {
            "Timestamp": (now.unix_timestamp_nanos() / 1_000_000) as i64,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [["Experiment"], []],
                "Metrics": [
                    metric("Runs", "Count"),
                    metric("Completed", "Count"),
                    metric("Failed", "Count"),
                    metric("Aborted", "Count"),
                    metric("Deviated", "Count"),
                    metric("RollbacksFailed", "Count"),
                    metric("DurationSeconds", "Seconds"),
                    metric("Steps", "Count"),
                    metric("Rollbacks", "Count"),
                ],
            }],
        },
        "Experiment": title,
        "Runs": 1,
        "Completed": flag(o.status == Status::Completed && o.error.is_none()),
        "Failed": flag(o.status == Status::Failed),
        "Aborted": flag(o.status == Status::Aborted),
        "Deviated": flag(o.deviated),
        "RollbacksFailed": rollbacks_failed,
        "DurationSeconds": finished.journal["duration"].as_f64().unwrap_or(0.0),
        "Steps": state.records.len(),
        "Rollbacks": state.rollbacks.len(),
        // Not metrics: context for whoever reads the log line.
        "execution": state.execution,
        "error": o.error,
    })
}

fn entry(r: &Record) -> Value {
    let (module, func) = r
        .function
        .rsplit_once('.')
        .unwrap_or(("", r.function.as_str()));
    let mut e = json!({
        "activity": {
            "type": match r.kind { crate::plan::StepKind::Action => "action", _ => "probe" },
            "name": r.name,
            "provider": {"type": "python", "module": module, "func": func, "arguments": r.arguments},
        },
        "output": r.output,
        "status": r.status,
        "start": r.start,
        "end": r.end,
        "duration": r.duration,
    });
    if let Some(t) = &r.tolerance {
        e["activity"]["tolerance"] = t.clone();
    }
    if let Some(d) = &r.detail {
        e["turbulence_detail"] = d.clone();
    }
    if let Some(met) = r.tolerance_met {
        e["tolerance_met"] = json!(met);
    }
    if let Some(x) = &r.exception {
        e["exception"] = json!([x]);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::StepKind;
    use crate::state::{CaughtError, ErrorReport};

    fn record(phase: Phase, status: RunStatus, met: Option<bool>) -> Record {
        Record {
            phase,
            name: "all-running".into(),
            kind: StepKind::Probe,
            function: "chaosaws.ecs.probes.are_all_desired_tasks_running".into(),
            arguments: Default::default(),
            status,
            output: json!(met.unwrap_or(true)),
            detail: None,
            tolerance: Some(json!(true)),
            tolerance_met: met,
            exception: None,
            start: "2026-01-01T00:00:00Z".into(),
            end: "2026-01-01T00:00:01Z".into(),
            duration: 1.0,
        }
    }

    fn caught(name: &str, record: Option<Record>) -> CaughtError {
        let report = ErrorReport {
            message: format!("{name} happened"),
            record: record.map(Box::new),
        };
        CaughtError {
            error: name.into(),
            cause:
                json!({"errorType": name, "errorMessage": serde_json::to_string(&report).unwrap()})
                    .to_string(),
        }
    }

    #[test]
    fn clean_run_completes() {
        let s = State {
            records: vec![record(Phase::Before, RunStatus::Succeeded, Some(true))],
            ..Default::default()
        };
        let f = journal(&s, OffsetDateTime::now_utc());
        assert_eq!(
            f.outcome,
            Outcome {
                status: Status::Completed,
                deviated: false,
                error: None,
                cause: None
            }
        );
        assert_eq!(f.journal["status"], "completed");
        assert_eq!(
            f.journal["steady_states"]["before"]["steady_state_met"],
            true
        );
    }

    /// Steady before the method, not after it.
    fn deviated_after_the_method() -> State {
        State {
            records: vec![record(Phase::Before, RunStatus::Succeeded, Some(true))],
            error: Some(caught(
                "SteadyStateDeviated",
                Some(record(Phase::After, RunStatus::Succeeded, Some(false))),
            )),
            ..Default::default()
        }
    }

    #[test]
    fn miss_after_the_method_is_a_deviation_and_lands_in_the_journal() {
        let s = deviated_after_the_method();
        let f = journal(&s, OffsetDateTime::now_utc());
        assert_eq!(f.outcome.error.as_deref(), Some("SteadyStateDeviated"));
        assert!(f.outcome.deviated);
        assert_eq!(f.journal["status"], "failed");
        assert_eq!(f.journal["deviated"], true);
        assert_eq!(
            f.journal["steady_states"]["after"]["steady_state_met"],
            false
        );
        assert_eq!(
            f.journal["steady_states"]["after"]["probes"][0]["tolerance_met"],
            false
        );
    }

    #[test]
    fn miss_before_the_method_fails_without_deviation() {
        let s = State {
            error: Some(caught(
                "SteadyStateDeviated",
                Some(record(Phase::Before, RunStatus::Succeeded, Some(false))),
            )),
            ..Default::default()
        };
        let o = outcome(&s);
        assert_eq!(o.error.as_deref(), Some("SteadyStateDeviated"));
        assert!(!o.deviated);
        assert_eq!(o.status, Status::Failed);
    }

    #[test]
    fn abort_is_aborted_and_unknown_errors_are_activity_failures() {
        let s = State {
            error: Some(caught("ExperimentAborted", None)),
            ..Default::default()
        };
        assert_eq!(outcome(&s).status, Status::Aborted);
        let s = State {
            error: Some(CaughtError {
                error: "States.Timeout".into(),
                cause: "timed out".into(),
            }),
            ..Default::default()
        };
        let o = outcome(&s);
        assert_eq!(o.error.as_deref(), Some("ActivityFailed"));
        assert_eq!(o.cause.as_deref(), Some("States.Timeout: timed out"));
    }

    /// Decode an EMF document as CloudWatch does: every metric it declares
    /// is a number at the root, every dimension a string.
    fn decode_emf(line: &str) -> Vec<(String, Vec<String>, f64)> {
        let doc: Value = serde_json::from_str(line).expect("an EMF line is one JSON object");
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert!(
            doc["_aws"]["Timestamp"].as_i64().is_some(),
            "Timestamp is epoch milliseconds"
        );
        assert_eq!(directive["Namespace"], METRICS_NAMESPACE);
        let dimension_sets: Vec<Vec<String>> =
            serde_json::from_value(directive["Dimensions"].clone()).unwrap();
        let mut out = Vec::new();
        for set in &dimension_sets {
            for d in set {
                assert!(
                    doc[d].is_string(),
                    "dimension {d} must be a string at the root"
                );
            }
            for m in directive["Metrics"].as_array().unwrap() {
                let name = m["Name"].as_str().unwrap();
                let value = doc[name]
                    .as_f64()
                    .unwrap_or_else(|| panic!("metric {name} must be a number"));
                out.push((name.to_string(), set.clone(), value));
            }
        }
        out
    }

    #[test]
    fn a_deviated_run_is_counted_per_experiment_and_overall() {
        let s = State {
            experiment: json!({"title": "ECS recovers"}),
            execution: "arn:x".into(),
            ..deviated_after_the_method()
        };
        let f = journal(&s, OffsetDateTime::now_utc());
        let line = metrics(&s, &f, OffsetDateTime::now_utc()).to_string();
        let decoded = decode_emf(&line);
        let value = |name: &str, dims: &[&str]| {
            decoded
                .iter()
                .find(|(n, d, _)| {
                    n == name && d.iter().map(String::as_str).eq(dims.iter().copied())
                })
                .map(|(_, _, v)| *v)
        };
        assert_eq!(value("Runs", &["Experiment"]), Some(1.0));
        assert_eq!(value("Runs", &[]), Some(1.0));
        assert_eq!(value("Deviated", &[]), Some(1.0));
        assert_eq!(value("Failed", &[]), Some(1.0));
        assert_eq!(value("Completed", &[]), Some(0.0));
        assert_eq!(value("Steps", &[]), Some(1.0));
        let doc: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(doc["Experiment"], "ECS recovers");
    }

    #[test]
    fn a_failed_rollback_fails_an_otherwise_clean_run() {
        let mut r = record(Phase::Method, RunStatus::Failed, None);
        r.name = "restore".into();
        r.exception = Some("service not found".into());
        let s = State {
            rollbacks: vec![r],
            ..Default::default()
        };
        let o = outcome(&s);
        assert_eq!(o.error.as_deref(), Some("RollbackFailed"));
        assert_eq!(o.status, Status::Failed);
        assert_eq!(
            o.cause.as_deref(),
            Some("rollback failed: 'restore' (service not found)")
        );
    }
}
