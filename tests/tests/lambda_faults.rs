//! The Lambda fault-injection experiment end to end on the local stack: the
//! stack's own moderation function (wrapped with the `inject` layer, as
//! template.yaml deploys it) reads its fault configuration from moto's SSM,
//! under the stack's `FaultParameterPrefix`, so the tests run side by side.

use std::time::{Duration, Instant};

use local::{AlarmState, LocalStack, Stack};
use serde_json::{json, Value};
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

async fn setup(name: &str) -> (LocalStack, Stack) {
    LocalStack::for_tests_with_stack(name).await
}

fn experiment(stack: &Stack, invocations: u32) -> Value {
    let mut doc: Value = serde_json::from_str(include_str!(
        "../../experiments/lambda-fault-injection.json"
    ))
    .unwrap();
    doc["configuration"]["invocations"] = json!(invocations);
    doc["configuration"]["function_name"] = json!(stack.moderation_function);
    doc["configuration"]["fault_parameter"] = json!(stack.moderation_fault_parameter());
    doc["extensions"][0]["abort_alarms"] = json!([stack.abort_alarm]);
    doc["extensions"][0]["poll_interval_seconds"] = json!(1);
    doc
}

fn rate(output: &Value, outcome: &str) -> f64 {
    output["rates"][outcome].as_f64().unwrap_or(0.0)
}

#[tokio::test]
async fn injected_faults_are_seen_at_their_rates_and_gone_afterwards() {
    let (local, stack) = setup("faults").await;
    let execution = local
        .start_execution(&stack, &experiment(&stack, 200))
        .await
        .unwrap();
    let done = local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert!(done.succeeded(), "{done:?}");
    let journal = done.output.unwrap();
    assert_eq!(journal["status"], "completed");
    assert_eq!(journal["steady_states"]["after"]["steady_state_met"], true);

    let seen = &journal["run"][1]["output"];
    println!("observed: {seen}");
    assert_eq!(seen["invocations"], 200);
    // Configured: latency 50 %, status 500 at 20 %, an exception at 10 % of
    // the rest (the status fault answers first): 8 %. With 200 calls one
    // standard deviation is at most 3.5 points; allow about three.
    let slow = seen["slow"]["rate"].as_f64().unwrap();
    assert!(
        (slow - 0.50).abs() <= 0.11,
        "slow rate {slow}, configured 0.5"
    );
    let status_500 = rate(seen, "status:500");
    assert!(
        (status_500 - 0.20).abs() <= 0.09,
        "status 500 rate {status_500}, configured 0.2"
    );
    let exception = rate(seen, "error:InjectedFault");
    assert!(
        (exception - 0.08).abs() <= 0.06,
        "exception rate {exception}, expected 0.08"
    );
    let healthy = rate(seen, "status:200");
    assert!(
        (healthy - 0.72).abs() <= 0.10,
        "healthy rate {healthy}, expected 0.72"
    );
    // Every injected delay is at least its configured second.
    assert!(seen["latency_ms"]["max"].as_u64().unwrap() >= 1000);

    assert_eq!(
        local
            .parameter(&stack.moderation_fault_parameter())
            .await
            .unwrap(),
        None,
        "the fault configuration is gone"
    );
}

#[tokio::test]
async fn an_abort_while_faults_are_injected_still_deletes_them() {
    let (local, stack) = setup("faults-abort").await;
    // Far more invocations than the test waits for: only the abort ends it.
    let execution = local
        .start_execution(&stack, &experiment(&stack, 10_000))
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    while local
        .parameter(&stack.moderation_fault_parameter())
        .await
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline, "the faults were never injected");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let injected: Value = serde_json::from_str(
        &local
            .parameter(&stack.moderation_fault_parameter())
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert!(
        injected["expires_at"].is_string(),
        "an injection always carries its expiry: {injected}"
    );
    // Let the invocations start, then fire the abort alarm.
    tokio::time::sleep(Duration::from_secs(8)).await;
    local
        .set_alarm_state(&stack.abort_alarm, AlarmState::Alarm)
        .await
        .unwrap();

    let done = local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.error.as_deref(), Some("ExperimentAborted"), "{done:?}");
    assert_eq!(
        local
            .parameter(&stack.moderation_fault_parameter())
            .await
            .unwrap(),
        None,
        "the rollback deleted the fault configuration"
    );
    let messages = local.dlq_messages(&stack).await.unwrap();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["error"], "ExperimentAborted");
    let rollbacks = messages[0]["journal"]["rollbacks"].as_array().unwrap();
    assert_eq!(
        rollbacks[0]["activity"]["provider"]["func"],
        "clear_lambda_faults"
    );
    assert_eq!(rollbacks[0]["status"], "succeeded");
}
