//! The Lambda fault-injection experiment end to end on the local stack,
//! against both moderation targets of a stack, each reading its fault
//! configuration from moto's SSM under the stack's `FaultParameterPrefix`
//! (so the tests run side by side):
//! - Rust: the stack's own moderation function (functions/moderation,
//!   wrapped with `crates/inject`, as template.yaml deploys it);
//! - Python: its twin (functions/moderation-python) behind the
//!   turbulence-extension layer's wrapper and proxy, run by awslambdaric
//!   under the Runtime API emulator.

use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use local::runtimes::PythonFunction;
use local::{manifest, AlarmState, LocalStack, Stack};
use serde_json::{json, Value};
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Which moderation target the experiment injects.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Rust,
    Python,
}

/// A stack, and the target's function and fault parameter in it.
struct Setup {
    local: LocalStack,
    stack: Stack,
    function: String,
    parameter: String,
}

async fn setup(name: &str, target: Target) -> Setup {
    let (local, stack) = LocalStack::for_tests_with_stack(name).await;
    let (function, parameter) = match target {
        Target::Rust => (
            stack.moderation_function.clone(),
            stack.moderation_fault_parameter(),
        ),
        Target::Python => {
            let twin = &manifest::PYTHON_MODERATION;
            let parameter = format!("{}moderation-python", stack.fault_parameter_prefix);
            let function = local
                .create_python_function(
                    &PythonFunction::new(
                        format!("{}-moderation-python", stack.prefix),
                        twin.code_dir,
                        twin.handler,
                    )
                    .with_layer(&parameter),
                )
                .await
                .expect("deploy the Python target");
            (function, parameter)
        }
    };
    Setup {
        local,
        stack,
        function,
        parameter,
    }
}

fn experiment(s: &Setup, invocations: u32) -> Value {
    let stack = &s.stack;
    let mut doc: Value = serde_json::from_str(include_str!(
        "../../experiments/lambda-fault-injection.json"
    ))
    .unwrap();
    doc["configuration"]["invocations"] = json!(invocations);
    doc["configuration"]["function_name"] = json!(s.function);
    doc["configuration"]["fault_parameter"] = json!(s.parameter);
    doc["extensions"][0]["abort_alarms"] = json!([stack.abort_alarm]);
    doc["extensions"][0]["poll_interval_seconds"] = json!(1);
    doc
}

fn rate(output: &Value, outcome: &str) -> f64 {
    output["rates"][outcome].as_f64().unwrap_or(0.0)
}

#[tokio::test]
async fn injected_faults_are_seen_at_their_rates_and_gone_afterwards() {
    faults_are_seen_at_their_rates_and_gone_afterwards(Target::Rust).await;
}

#[tokio::test]
async fn through_the_layer_a_python_function_sees_the_same_faults_at_their_rates() {
    faults_are_seen_at_their_rates_and_gone_afterwards(Target::Python).await;
}

async fn faults_are_seen_at_their_rates_and_gone_afterwards(target: Target) {
    let s = setup("faults", target).await;
    let (local, stack) = (&s.local, &s.stack);
    let execution = local
        .start_execution(stack, &experiment(&s, 200))
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
        local.parameter(&s.parameter).await.unwrap(),
        None,
        "the fault configuration is gone"
    );
}

#[tokio::test]
async fn an_abort_while_faults_are_injected_still_deletes_them() {
    an_abort_mid_run_still_deletes_the_faults(Target::Rust).await;
}

#[tokio::test]
async fn an_abort_while_a_python_function_is_injected_still_deletes_the_faults() {
    an_abort_mid_run_still_deletes_the_faults(Target::Python).await;
}

async fn an_abort_mid_run_still_deletes_the_faults(target: Target) {
    let s = setup("faults-abort", target).await;
    let (local, stack) = (&s.local, &s.stack);
    // Far more invocations than the test waits for: only the abort ends it.
    let execution = local
        .start_execution(stack, &experiment(&s, 10_000))
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    while local.parameter(&s.parameter).await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "the faults were never injected");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let injected: Value =
        serde_json::from_str(&local.parameter(&s.parameter).await.unwrap().unwrap()).unwrap();
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
        local.parameter(&s.parameter).await.unwrap(),
        None,
        "the rollback deleted the fault configuration"
    );
    let messages = local.dlq_messages(stack).await.unwrap();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["error"], "ExperimentAborted");
    let rollbacks = messages[0]["journal"]["rollbacks"].as_array().unwrap();
    assert_eq!(
        rollbacks[0]["activity"]["provider"]["func"],
        "clear_lambda_faults"
    );
    assert_eq!(rollbacks[0]["status"], "succeeded");
}

/// The Python twin answers every request as the Rust target does, byte for
/// byte (no faults configured).
#[tokio::test]
async fn the_python_twin_answers_as_the_rust_target() {
    let s = setup("twin", Target::Python).await;
    let requests = [
        r#"{"text": "Lovely bricks, thank you!"}"#,
        r#"{"text": "Free bricks! Not a SCAM, no spam."}"#,
        r#"{"text": "spammer"}"#,
        r#"{"text": "phishing_malware"}"#,
        r#"{"txt": "hi"}"#,
        r#"{"text": 5}"#,
        "[]",
        "not json",
    ];
    let mut events: Vec<Value> = requests
        .iter()
        .map(|body| json!({"httpMethod": "POST", "path": "/moderate", "body": body, "isBase64Encoded": false}))
        .collect();
    events.push(json!({"httpMethod": "POST"}));
    events.push(json!({"body": "{}", "isBase64Encoded": true}));
    events.push(Value::Null);
    for event in events {
        let mut answers = Vec::new();
        for function in [&s.stack.moderation_function, &s.function] {
            let out = s
                .local
                .lambda()
                .invoke()
                .function_name(function)
                .payload(Blob::new(event.to_string()))
                .send()
                .await
                .unwrap();
            assert_eq!(out.function_error, None, "{function}: {event}");
            let mut payload: Value =
                serde_json::from_slice(&out.payload.unwrap().into_inner()).unwrap();
            // The body as JSON: its key order is serde_json's build
            // features', not behaviour.
            if let Some(body) = payload["body"].as_str() {
                payload["body"] = serde_json::from_str(body).unwrap_or(Value::String(body.into()));
            }
            answers.push(payload);
        }
        assert_eq!(answers[0], answers[1], "{event}");
    }
}
