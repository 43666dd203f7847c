//! chaosaws's elbv2 actions end to end on the local stack: a target
//! deregistered from its target group and a load balancer's access logs
//! turned on by a run, both put back by its rollbacks; a target group
//! without the opt-in tag refused and left as it was. (StopExecution with
//! the janitor putting them back is fault-matrix row 14,
//! `tests/tests/safety.rs`.)

use std::time::Duration;

use local::{LoadBalancingTarget, LocalStack, Stack};
use serde_json::{json, Value};

const RUN_TIMEOUT: Duration = Duration::from_secs(180);

fn python(kind: &str, name: &str, func: &str, arguments: Value) -> Value {
    let module = format!("chaosaws.elbv2.{kind}s");
    json!({"type": kind, "name": name,
        "provider": {"type": "python", "module": module, "func": func, "arguments": arguments}})
}

/// Take one target out, turn the access logs on; read both back.
fn elbv2_experiment(stack: &Stack, target: &LoadBalancingTarget) -> Value {
    let mut logged = python(
        "probe",
        "logs on",
        "is_access_log_enabled",
        json!({"load_balancer_arn": target.load_balancer_arn}),
    );
    logged["tolerance"] = json!(true);
    let counted = python(
        "probe",
        "one gone",
        "targets_health_count",
        json!({"tg_names": [target.target_group]}),
    );
    json!({
        "title": "a target taken out of its group",
        "description": "a target deregistered and the access logs on, then put back",
        "method": [
            python("action", "deregister", "deregister_target", json!({"tg_name": target.target_group})),
            python("action", "log", "enable_access_log", json!({
                "load_balancer_arn": target.load_balancer_arn, "enable": true, "bucket_name": "access-logs"})),
            counted,
            python("probe", "all healthy", "all_targets_healthy", json!({"tg_names": [target.target_group]})),
            logged,
        ],
        "extensions": [{"name": "turbulence", "abort_alarms": [stack.abort_alarm],
            "poll_interval_seconds": 1, "time_scale": 1.0 / 60.0}],
    })
}

#[tokio::test]
async fn the_rollbacks_put_back_what_the_elbv2_actions_changed() {
    let (local, stack) = LocalStack::for_tests_with_stack("elbv2-undo").await;
    let target = local
        .create_load_balancing_target(&stack.prefix, 3, true)
        .await
        .unwrap();
    let before = local.registered_targets(&target).await.unwrap();
    assert_eq!(before.len(), 3);
    assert!(!local.access_logs_enabled(&target).await.unwrap());
    let execution = local
        .start_execution(&stack, &elbv2_experiment(&stack, &target))
        .await
        .unwrap();
    let done = local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert!(done.succeeded(), "{done:?}");
    let journal = done.output.unwrap();
    assert_eq!(journal["status"], "completed", "{journal}");
    let run = journal["run"].as_array().unwrap();
    // The method saw the change: one target fewer, the logs on.
    let gone = run[0]["output"]["Targets"][0]["Id"].as_str().unwrap();
    assert!(before.iter().any(|t| t == gone), "{}", run[0]);
    assert_eq!(
        run[2]["output"][&target.target_group],
        json!({"healthy": 2}),
        "{}",
        run[2]
    );
    assert_eq!(run[3]["output"], true, "{}", run[3]);
    assert_eq!(run[4]["output"], true, "{}", run[4]);
    let undone: Vec<&str> = journal["rollbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["activity"]["provider"]["func"].as_str().unwrap())
        .collect();
    assert_eq!(
        undone[..2],
        ["enable_access_log", "register_targets"],
        "{undone:?}"
    );
    assert_eq!(local.registered_targets(&target).await.unwrap(), before);
    assert!(!local.access_logs_enabled(&target).await.unwrap());
}

#[tokio::test]
async fn a_target_group_without_the_opt_in_tag_is_refused_and_untouched() {
    let (local, stack) = LocalStack::for_tests_with_stack("elbv2-refused").await;
    let target = local
        .create_load_balancing_target(&stack.prefix, 3, false)
        .await
        .unwrap();
    let execution = local
        .start_execution(&stack, &elbv2_experiment(&stack, &target))
        .await
        .unwrap();
    let done = local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.error.as_deref(), Some("GuardRefused"), "{done:?}");
    let cause = done.cause.unwrap_or_default();
    assert!(
        cause.contains(&format!(
            "target group '{}' has not opted in",
            target.target_group
        )) || cause.contains(&format!(
            "load balancer '{}' has not opted in",
            target.load_balancer_arn
        )),
        "{cause}"
    );
    assert_eq!(local.registered_targets(&target).await.unwrap().len(), 3);
    assert!(!local.access_logs_enabled(&target).await.unwrap());
}
