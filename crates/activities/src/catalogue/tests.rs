use std::collections::BTreeSet;

use serde_json::json;

use super::*;

fn parse(function: &str, args: Value) -> Result<Call, String> {
    Call::parse(&spec(function, args))
}

const STOP: &str = "chaosaws.ecs.actions.stop_random_tasks";
const SCALE: &str = "chaosaws.ecs.actions.update_desired_count";

#[test]
fn stop_random_tasks_needs_exactly_one_of_count_and_percent() {
    let c = parse(STOP, json!({"cluster": "c", "task_count": 2})).unwrap();
    assert_eq!(c.int("task_count"), 2);
    assert_eq!(
        c.text("reason"),
        "Chaos Testing",
        "the default is filled in"
    );
    assert_eq!(c.opt_text("service"), None);
    let both = parse(
        STOP,
        json!({"cluster": "c", "task_count": 1, "task_percent": 5}),
    )
    .unwrap_err();
    assert_eq!(
        both,
        "exactly one of 'task_count' and 'task_percent' is required by chaosaws.ecs.actions.stop_random_tasks"
    );
    let none = parse(STOP, json!({"cluster": "c"})).unwrap_err();
    assert_eq!(none, both);
    let pct = parse(STOP, json!({"cluster": "c", "task_percent": 101})).unwrap_err();
    assert_eq!(
        pct,
        "argument 'task_percent' of chaosaws.ecs.actions.stop_random_tasks must be a whole number from 1 to 100, found 101"
    );
}

#[test]
fn one_bound_one_message_whatever_the_wrong_number() {
    let msg = |n: Value| parse(STOP, json!({"cluster": "c", "task_count": n})).unwrap_err();
    let expected = |n: &str| {
        format!("argument 'task_count' of chaosaws.ecs.actions.stop_random_tasks must be a whole number from 1 to 10000, found {n}")
    };
    assert_eq!(msg(json!(-1)), expected("-1"));
    assert_eq!(msg(json!(0)), expected("0"));
    assert_eq!(msg(json!("0")), expected("0"));
    assert_eq!(msg(json!(1.5)), expected("1.5"));
    assert_eq!(msg(json!("many")), expected("\"many\""));
}

#[test]
fn numbers_given_as_strings_are_read() {
    let c = parse(
        SCALE,
        json!({"cluster": "c", "service": "s", "desired_count": "0"}),
    )
    .unwrap();
    assert_eq!(c.arguments()["desired_count"], json!(0));
}

#[test]
fn wrong_types_and_unknown_arguments_are_named() {
    let e = parse(
        SCALE,
        json!({"cluster": "c", "service": "s", "desired_count": -1}),
    )
    .unwrap_err();
    assert_eq!(e, "argument 'desired_count' of chaosaws.ecs.actions.update_desired_count must be a whole number from 0 to 2147483647, found -1");
    let e = parse(
        SCALE,
        json!({"cluster": 5, "service": "s", "desired_count": 1}),
    )
    .unwrap_err();
    assert_eq!(e, "argument 'cluster' of chaosaws.ecs.actions.update_desired_count must be a string, found a number");
    let e = parse(
        SCALE,
        json!({"cluster": "c", "service": "s", "desired_count": 1, "force": true}),
    )
    .unwrap_err();
    assert_eq!(e, "argument 'force' is not a parameter of chaosaws.ecs.actions.update_desired_count (parameters: cluster, service, desired_count)");
    let e = parse(SCALE, json!({"cluster": "c", "service": "s"})).unwrap_err();
    assert_eq!(
        e,
        "argument 'desired_count' is required by chaosaws.ecs.actions.update_desired_count"
    );
}

#[test]
fn a_misspelt_argument_is_told_what_was_meant() {
    let e = parse(
        SCALE,
        json!({"cluster": "c", "service": "s", "desired_cuont": 1}),
    )
    .unwrap_err();
    assert_eq!(e, "argument 'desired_cuont' is not a parameter of chaosaws.ecs.actions.update_desired_count (did you mean 'desired_count'?) (parameters: cluster, service, desired_count)");
}

#[test]
fn a_misspelt_activity_is_told_what_was_meant_and_internal_ones_are_never_offered() {
    let e = parse("chaosaws.ecs.actions.stop_random_task", json!({})).unwrap_err();
    assert!(
        e.starts_with("'chaosaws.ecs.actions.stop_random_task' is not supported (did you mean 'chaosaws.ecs.actions.stop_random_tasks'?); chaosaws.ecs.actions has "),
        "{e}"
    );
    let e = parse("turbulence.guards.actions.release_locks", json!({})).unwrap_err();
    assert!(!e.contains("release_lock'"), "{e}");
    let e = parse("chaosaws.nosuch.actions.boom", json!({})).unwrap_err();
    assert!(
        e.contains("the supported modules are chaosaws.ecs.actions"),
        "{e}"
    );
    assert!(!e.contains("turbulence.guards"), "{e}");
    assert!(!supported().contains(&"turbulence.guards.actions.release_lock"));
}

#[test]
fn an_experiment_may_not_call_an_internal_activity() {
    let release = spec(
        "turbulence.guards.actions.release_lock",
        json!({"parameter_name": "/turbulence/locks/x", "execution": "e"}),
    );
    assert!(Call::parse(&release).is_ok(), "an undo may");
    let e = Call::parse_experiment(&release).unwrap_err();
    assert!(
        e.starts_with("'turbulence.guards.actions.release_lock' is not supported"),
        "{e}"
    );
}

#[test]
fn a_destructive_function_is_refused_with_that_reason() {
    let e = parse("chaosaws.ecs.actions.delete_service", json!({})).unwrap_err();
    assert!(
        e.starts_with("'chaosaws.ecs.actions.delete_service' is refused: it is destructive, nothing can undo its change"),
        "{e}"
    );
}

#[test]
fn implicit_configuration_argument_is_accepted() {
    assert!(parse(
        "chaosaws.cloudwatch.probes.get_alarm_state_value",
        json!({"alarm_name": "a", "configuration": {}}),
    )
    .is_ok());
}

#[test]
fn every_declaration_holds_together() {
    let mut names = BTreeSet::new();
    for a in activities() {
        assert!(names.insert(a.name), "{} is declared twice", a.name);
        let example = Call::parse(&CallSpec {
            function: a.name.into(),
            arguments: a.example_arguments(),
        });
        let call =
            example.unwrap_or_else(|e| panic!("{}: its example does not parse: {e}", a.name));
        let mut params = BTreeSet::new();
        for p in a.params {
            assert!(params.insert(p.name), "{}: '{}' twice", a.name, p.name);
            assert!(
                !(p.required && p.default != Fallback::None),
                "{}: '{}' is required and has a default",
                a.name,
                p.name
            );
        }
        for rule in a.rules {
            let (Rule::ExactlyOne(n)
            | Rule::AtMostOne(n)
            | Rule::AtLeastOne(n)
            | Rule::Together(n)) = rule;
            for name in *n {
                assert!(params.contains(name), "{}: rule names '{name}'", a.name);
            }
        }
        for r in call.touches() {
            assert!(
                a.touched.iter().any(|t| std::ptr::eq(*t, r.ty)),
                "{}: touches {r}, of a type it does not declare",
                a.name
            );
        }
        match (a.kind, a.undo) {
            (Kind::Probe, Revert::Nothing) => {
                assert!(
                    call.touches().is_empty(),
                    "{}: a probe touches nothing",
                    a.name
                )
            }
            (Kind::Probe, _) => panic!("{}: a probe has no undo", a.name),
            (_, Revert::Nothing) => {
                panic!(
                    "{}: an action says what undoes it, or why nothing need",
                    a.name
                )
            }
            (_, Revert::By(undos)) => {
                assert!(!undos.is_empty(), "{}: undone by nothing", a.name);
                for u in undos {
                    let undo =
                        find(u).unwrap_or_else(|| panic!("{}: undone by unknown {u}", a.name));
                    assert_eq!(
                        undo.kind,
                        Kind::Action,
                        "{}: its undo {u} is an action",
                        a.name
                    );
                }
            }
            (_, Revert::NotNeeded(why)) => assert!(!why.is_empty()),
        }
        for i in a.iam.iter().chain(a.preflight_iam) {
            assert!(
                i.action.contains(':'),
                "{}: IAM action {}",
                a.name,
                i.action
            );
        }
        if a.kind != Kind::Probe && a.name.starts_with("chaosaws.") {
            assert!(
                !a.iam.is_empty(),
                "{}: an AWS action calls something",
                a.name
            );
        }
    }
    for r in refusals() {
        assert!(find(r.name).is_none(), "{} is declared and refused", r.name);
        assert!(names.insert(r.name), "{} is refused twice", r.name);
    }
}
