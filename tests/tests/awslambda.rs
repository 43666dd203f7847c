//! chaosaws's awslambda actions end to end on the local stack: a target
//! function's reserved concurrency (0: every invocation throttled),
//! timeout and memory, and the event source mapping that feeds it, changed
//! by a run and put back by its rollbacks; a function without the opt-in
//! tag refused and left as it was. (StopExecution with the janitor putting
//! them back is fault-matrix row 12, `tests/tests/safety.rs`.)

use std::time::Duration;

use local::{FunctionSettings, LocalStack, Stack};
use serde_json::{json, Value};

const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// What moto creates a function with: nothing reserved, 3 s, 128 MB.
const AS_CREATED: FunctionSettings = FunctionSettings {
    reserved: None,
    timeout: 3,
    memory_size: 128,
};

fn python(kind: &str, name: &str, func: &str, arguments: Value) -> Value {
    let module = format!("chaosaws.awslambda.{kind}s");
    json!({"type": kind, "name": name,
        "provider": {"type": "python", "module": module, "func": func, "arguments": arguments}})
}

/// Throttle the function, lengthen its timeout, grow its memory, stop its
/// feed; then read each back. The rollbacks are Turbulence's own undos.
fn lambda_experiment(stack: &Stack, function: &str, mapping: &str) -> Value {
    let f = json!({"function_name": function});
    let probe = |name: &str, func: &str, tolerance: Value| {
        let mut p = python("probe", name, func, f.clone());
        p["tolerance"] = tolerance;
        p
    };
    let method = vec![
        python(
            "action",
            "throttle",
            "put_function_concurrency",
            json!({"function_name": function, "concurrent_executions": 0}),
        ),
        python(
            "action",
            "slow down",
            "put_function_timeout",
            json!({"function_name": function, "timeout": 30}),
        ),
        python(
            "action",
            "grow",
            "put_function_memory_size",
            json!({"function_name": function, "memory_size": 256}),
        ),
        python(
            "action",
            "stop the feed",
            "toggle_event_source_mapping_state",
            json!({"event_uuid": mapping, "enabled": false}),
        ),
        probe("throttled", "get_function_concurrency", json!(0)),
        probe("timeout", "get_function_timeout", json!(30)),
        probe("memory", "get_function_memory_size", json!(256)),
        probe(
            "feed",
            "list_event_source_mapping",
            json!({"type": "jsonpath",
            "path": "$.EventSourceMappings[0].State", "expect": "Disabled"}),
        ),
    ];
    json!({
        "title": "a throttled function",
        "description": "its settings changed, then put back",
        "method": method,
        "extensions": [{"name": "turbulence", "abort_alarms": [stack.abort_alarm],
            "poll_interval_seconds": 1, "time_scale": 1.0 / 60.0}],
    })
}

async fn target(local: &LocalStack, stack: &Stack, opt_in: bool) -> (String, String) {
    let function = local
        .create_target_function(
            &format!("{}-fn", stack.prefix),
            opt_in,
            &format!("{}{}", stack.fault_parameter_prefix, stack.prefix),
        )
        .await
        .expect("target function");
    let mapping = local
        .create_event_source_mapping(&function)
        .await
        .expect("event source mapping");
    (function, mapping)
}

#[tokio::test]
async fn the_rollbacks_put_back_what_the_awslambda_actions_changed() {
    let (local, stack) = LocalStack::for_tests_with_stack("lambda-undo").await;
    let (function, mapping) = target(&local, &stack, true).await;
    assert_eq!(
        local.function_settings(&function).await.unwrap(),
        AS_CREATED
    );
    let execution = local
        .start_execution(&stack, &lambda_experiment(&stack, &function, &mapping))
        .await
        .unwrap();
    let done = local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert!(done.succeeded(), "{done:?}");
    let journal = done.output.unwrap();
    assert_eq!(journal["status"], "completed", "{journal}");
    // The method saw every change: the probes met their tolerances.
    let run = journal["run"].as_array().unwrap();
    assert_eq!(run[3]["output"]["State"], "Disabled", "{}", run[3]);
    assert_eq!(run[4]["output"], 0);
    assert_eq!(
        run[7]["output"]["EventSourceMappings"][0]["UUID"],
        mapping.as_str(),
        "{}",
        run[7]
    );
    // Undos newest first, then the lock releases.
    let undone: Vec<&str> = journal["rollbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["activity"]["provider"]["func"].as_str().unwrap())
        .collect();
    assert_eq!(
        undone[..4],
        [
            "toggle_event_source_mapping_state",
            "put_function_memory_size",
            "put_function_timeout",
            "delete_function_concurrency"
        ],
        "{undone:?}"
    );
    assert_eq!(
        local.function_settings(&function).await.unwrap(),
        AS_CREATED
    );
    assert_eq!(
        local.event_source_mapping_state(&mapping).await.unwrap(),
        "Enabled"
    );
}

#[tokio::test]
async fn a_function_without_the_opt_in_tag_is_refused_and_untouched() {
    let (local, stack) = LocalStack::for_tests_with_stack("lambda-refused").await;
    let (function, mapping) = target(&local, &stack, false).await;
    let execution = local
        .start_execution(&stack, &lambda_experiment(&stack, &function, &mapping))
        .await
        .unwrap();
    let done = local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.error.as_deref(), Some("GuardRefused"), "{done:?}");
    let cause = done.cause.unwrap_or_default();
    // The mapping opts in through its function: both are refused.
    assert!(
        cause.contains(&format!(
            "Lambda event source mapping '{mapping}' has not opted in"
        )) || cause.contains(&format!("Lambda function '{function}' has not opted in")),
        "{cause}"
    );
    assert_eq!(
        local.function_settings(&function).await.unwrap(),
        AS_CREATED
    );
    assert_eq!(
        local.event_source_mapping_state(&mapping).await.unwrap(),
        "Enabled"
    );
}
