//! Background activities (`"background": true` in the method), as Chaos
//! Toolkit runs them: the activity (with its pauses) starts, and the method
//! goes on without waiting for it; every one is waited for before the
//! hypothesis is checked after the method.
//!
//! Turbulence runs each in a child execution of the same state machine,
//! given the planned state of just that activity. The child skips Plan's
//! checks (its parent made them and holds the locks), so its input must be
//! one the parent wrote: the parent's run record names the child's
//! execution and the [`digest`] of that state before the child starts, and
//! the child's Plan refuses anything else.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::guards::ExecutionArn;
use crate::state::State;

/// The key of a child execution's input that holds its state.
pub const INPUT_KEY: &str = "turbulence_background";

/// Step Functions execution names are at most 80 characters.
const MAX_NAME: usize = 80;

/// The child execution of background activity `group` of `parent`: its
/// state machine's ARN, its name and its execution ARN.
pub fn child_execution(parent: &str, group: usize) -> Option<(String, String, String)> {
    let arn = ExecutionArn::parse(parent)?;
    let suffix = format!("-bg{group}");
    let keep = MAX_NAME.saturating_sub(suffix.len()).min(arn.name.len());
    let stem = arn.name.get(..keep).unwrap_or(arn.name);
    let name = format!("{stem}{suffix}");
    // arn:PARTITION:states:REGION:ACCOUNT:execution:MACHINE:NAME
    let prefix = parent.strip_suffix(arn.name)?.strip_suffix(':')?;
    let machine = prefix.replacen(":execution:", ":stateMachine:", 1);
    Some((machine, name.clone(), format!("{prefix}:{name}")))
}

/// The state a child execution starts from: the parent's plan cut down to
/// the activity's own steps, no rollbacks (its undos go back to the
/// parent), nothing recorded yet. `None` when the plan has no such group or
/// the parent's execution is not an ARN.
pub fn child_state(parent: &State, group: usize) -> Option<State> {
    let mut plan = parent.plan.clone()?;
    plan.steps.retain(|s| s.background == Some(group));
    if plan.steps.is_empty() {
        return None;
    }
    for s in &mut plan.steps {
        s.background = None;
    }
    plan.rollbacks.clear();
    plan.warnings.clear();
    // The hypothesis is checked around the method's own steps, not in a
    // background activity's execution.
    plan.during.clear();
    let (_, _, execution) = child_execution(&parent.execution, group)?;
    Some(State {
        experiment: serde_json::json!({"title": plan.title, "background_of": parent.execution}),
        execution,
        plan: Some(plan),
        started_at: parent.started_at.clone(),
        baselines: parent.baselines.clone(),
        parent: Some(parent.execution.clone()),
        parent_time_left_ms: Some(
            u64::try_from(parent.time_left().as_millis()).unwrap_or(u64::MAX),
        ),
        ..Default::default()
    })
}

/// SHA-256 of the state in a canonical JSON form (keys sorted, numbers as
/// f64), without the deployment settings, which the child takes from the
/// state machine's definition. The same whichever serde_json features the
/// function binaries were built with.
pub fn digest(state: &State) -> String {
    let mut v = serde_json::to_value(state).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.remove("deployment");
        obj.remove("next");
        obj.remove("cursor");
    }
    let mut text = String::new();
    canonical(&v, &mut text);
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        Value::Number(n) => out.push_str(&format!("{:?}", n.as_f64().unwrap_or(0.0))),
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Experiment;
    use crate::plan::{Phase, Plan, StepKind};
    use serde_json::json;

    const PARENT: &str = "arn:aws:states:us-east-1:123456789012:execution:machine:run-1";

    fn parent() -> State {
        let stop = |name: &str, background: bool| {
            json!({"type": "action", "name": name, "background": background,
                "pauses": {"after": 10},
                "provider": {"type": "python", "module": "chaosaws.ecs.actions", "func": "stop_random_tasks",
                    "arguments": {"cluster": "c", "service": "s", "task_count": 1}}})
        };
        let e = Experiment::parse(&json!({
            "title": "t", "description": "d",
            "method": [stop("first", false), stop("load", true), stop("last", false)],
        }))
        .unwrap();
        let mut s = State {
            execution: PARENT.into(),
            plan: Some(Plan::new(&e).unwrap()),
            ..Default::default()
        };
        s.point_at(0);
        s
    }

    #[test]
    fn a_background_activity_and_its_pauses_are_one_group() {
        let s = parent();
        let groups: Vec<(&str, Option<usize>)> = s
            .plan
            .as_ref()
            .unwrap()
            .steps
            .iter()
            .map(|s| (s.name.as_str(), s.background))
            .collect();
        assert_eq!(
            groups,
            [
                ("first", None),
                ("pause after 'first'", None),
                ("load", Some(0)),
                ("pause after 'load'", Some(0)),
                ("last", None),
                ("pause after 'last'", None),
            ]
        );
    }

    #[test]
    fn the_child_runs_only_its_activity_and_returns() {
        let p = parent();
        let mut child = child_state(&p, 0).unwrap();
        assert_eq!(
            child.execution,
            "arn:aws:states:us-east-1:123456789012:execution:machine:run-1-bg0"
        );
        assert_eq!(child.parent.as_deref(), Some(PARENT));
        let steps = &child.plan.as_ref().unwrap().steps;
        assert_eq!(steps.len(), 2);
        assert!(steps
            .iter()
            .all(|s| s.background.is_none() && s.phase == Phase::Method));
        child.point_at(0);
        assert_eq!(child.next.kind, crate::NextKind::Action);
        // What it injects lasts as long as the parent may still run.
        assert_eq!(child.time_left(), p.time_left());
        assert!(child.time_left() > std::time::Duration::from_secs(300 + 10));
        child.point_at(2);
        assert_eq!(child.next.kind, crate::NextKind::Return);
        assert!(child_state(&p, 1).is_none());
    }

    #[test]
    fn the_parent_forks_then_joins_before_leaving_the_method() {
        let mut p = parent();
        p.point_at(2);
        assert_eq!(p.next.kind, crate::NextKind::Fork);
        p.background.push(crate::state::Background {
            group: 0,
            name: "load".into(),
            execution: "x".into(),
            digest: "d".into(),
            joined: false,
        });
        p.point_at(4);
        assert_eq!(p.next.kind, crate::NextKind::Action);
        p.point_at(6);
        assert_eq!(p.next.kind, crate::NextKind::Join);
        p.background[0].joined = true;
        p.point_at(6);
        assert_eq!(p.next.kind, crate::NextKind::Done);
        assert_eq!(p.plan.as_ref().unwrap().steps[4].kind, StepKind::Action);
    }

    #[test]
    fn background_means_something_only_in_the_method() {
        let probe = json!({"type": "probe", "name": "up", "tolerance": true, "background": true,
            "provider": {"type": "python", "module": "chaosaws.ecs.probes",
                "func": "are_all_desired_tasks_running", "arguments": {"cluster": "c", "service": "s"}}});
        let undo = json!({"type": "action", "name": "back", "background": true,
            "provider": {"type": "python", "module": "chaosaws.ecs.actions",
                "func": "update_desired_count", "arguments": {"cluster": "c", "service": "s", "desired_count": 2}}});
        let e = Experiment::parse(&json!({
            "title": "t", "description": "d",
            "steady-state-hypothesis": {"title": "h", "probes": [probe]},
            "method": [], "rollbacks": [undo],
        }))
        .unwrap();
        assert_eq!(
            e.warnings,
            [
                "probe 'up': 'background' was ignored: steady-state probes run one after another",
                "rollback 'back': 'background' was ignored: rollbacks run one after another, each to its end"
            ]
        );
        let plan = Plan::new(&e).unwrap();
        assert!(plan.steps.iter().all(|s| s.background.is_none()));
    }

    #[test]
    fn names_fit_step_functions_limits() {
        let long = format!("arn:aws:states:r:1:execution:m:{}", "n".repeat(80));
        let (machine, name, arn) = child_execution(&long, 10).unwrap();
        assert_eq!(machine, "arn:aws:states:r:1:stateMachine:m");
        assert_eq!(name.len(), 80);
        assert!(name.ends_with("-bg10"));
        assert_eq!(arn, format!("arn:aws:states:r:1:execution:m:{name}"));
        assert_eq!(child_execution("nonsense", 0), None);
    }

    #[test]
    fn the_digest_ignores_key_order_and_number_spelling_but_not_content() {
        let p = parent();
        let child = child_state(&p, 0).unwrap();
        let d = digest(&child);
        let text = serde_json::to_string(&child).unwrap();
        // Another binary may print 1.0 as 1 and keys in another order.
        let mut v: Value = serde_json::from_str(&text).unwrap();
        v["plan"]["settings"]["time_scale"] = json!(1);
        let back: State = serde_json::from_value(v).unwrap();
        assert_eq!(digest(&back), d);
        let mut changed = child.clone();
        changed.plan.as_mut().unwrap().steps[0]
            .call
            .as_mut()
            .unwrap()
            .arguments
            .insert("task_count".into(), json!(3));
        assert_ne!(digest(&changed), d);
    }
}
