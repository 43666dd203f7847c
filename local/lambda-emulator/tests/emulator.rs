//! The emulator with a minimal runtime (tests/fixtures/runtime.py): Lambda's
//! headers and deadline, timeouts, exits and restarts, scale-out, errors.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use lambda_emulator::{Emulator, FunctionConfig, Settings};
use serde_json::{json, Value};

fn function(name: &str, timeout_s: u64) -> FunctionConfig {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    FunctionConfig {
        name: name.into(),
        arn: None,
        runtime: "python3.12".into(),
        handler: "unused".into(),
        code_dir: fixtures.clone(),
        opt_dir: None,
        timeout_s,
        memory_mb: 128,
        environment: Default::default(),
        command: Some(vec![
            "python3".into(),
            fixtures.join("runtime.py").to_string_lossy().into_owned(),
        ]),
    }
}

async fn call(emulator: &Emulator, f: &FunctionConfig, event: Value) -> (Value, Option<String>) {
    let invoked = emulator
        .invoke(f.clone(), Bytes::from(event.to_string()), None)
        .await;
    let payload = serde_json::from_slice(&invoked.payload).unwrap_or(Value::Null);
    (payload, invoked.function_error)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn next_carries_lambdas_headers_and_a_wall_clock_deadline() {
    let emulator = Emulator::new(Settings::default());
    let f = function("headers", 30);
    let before = now_ms();
    let (answer, error) = call(&emulator, &f, json!({"hello": "world"})).await;
    assert_eq!(error, None, "{answer}");
    assert_eq!(answer["event"], json!({"hello": "world"}));
    let headers = &answer["headers"];
    assert_eq!(headers["content-type"], "application/json");
    let deadline: u64 = headers["lambda-runtime-deadline-ms"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (before + 29_000..=now_ms() + 30_000).contains(&deadline),
        "a wall-clock deadline 30 s out: {deadline}"
    );
    assert_eq!(
        headers["lambda-runtime-invoked-function-arn"],
        "arn:aws:lambda:us-east-1:123456789012:function:headers"
    );
    assert!(headers["lambda-runtime-trace-id"]
        .as_str()
        .unwrap()
        .starts_with("Root=1-"));
    assert_eq!(
        headers["lambda-runtime-aws-request-id"]
            .as_str()
            .unwrap()
            .len(),
        36
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_timeout_fails_the_invocation_and_the_next_one_gets_a_fresh_environment() {
    let emulator = Emulator::new(Settings::default());
    let f = function("timeout", 1);
    let (first, _) = call(&emulator, &f, json!({})).await;
    let started = std::time::Instant::now();
    let (answer, error) = call(&emulator, &f, json!({"sleep_ms": 5000})).await;
    assert_eq!(error.as_deref(), Some("Unhandled"));
    assert_eq!(answer["errorType"], "Sandbox.Timedout");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let (after, error) = call(&emulator, &f, json!({})).await;
    assert_eq!(error, None, "{after}");
    assert_ne!(
        first["pid"], after["pid"],
        "the timed-out environment was replaced"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_runtime_that_exits_fails_its_invocation_and_is_restarted() {
    let emulator = Emulator::new(Settings::default());
    let f = function("exits", 10);
    let (answer, error) = call(&emulator, &f, json!({"exit": true})).await;
    assert_eq!(error.as_deref(), Some("Unhandled"));
    assert_eq!(answer["errorType"], "Runtime.ExitError", "{answer}");
    assert!(
        answer["errorMessage"]
            .as_str()
            .unwrap()
            .contains("exit status: 3"),
        "{answer}"
    );
    let (after, error) = call(&emulator, &f, json!({})).await;
    assert_eq!(error, None, "{after}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn overlapping_invocations_scale_out_and_quiet_ones_reuse_an_environment() {
    let emulator = Emulator::new(Settings::default());
    let f = function("scale", 10);
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let (emulator, f) = (Arc::clone(&emulator), f.clone());
            tokio::spawn(async move { call(&emulator, &f, json!({"sleep_ms": 400})).await })
        })
        .collect();
    let mut pids = std::collections::BTreeSet::new();
    for c in calls {
        pids.insert(c.await.unwrap().0["pid"].to_string());
    }
    assert_eq!(
        pids.len(),
        3,
        "three overlapping invocations, three environments"
    );
    let (a, _) = call(&emulator, &f, json!({})).await;
    let (b, _) = call(&emulator, &f, json!({})).await;
    assert!(pids.contains(&a["pid"].to_string()));
    assert!(pids.contains(&b["pid"].to_string()));
    assert_eq!(emulator.environments(Some("scale")).await.len(), 3);
    emulator.shutdown().await;
}

#[tokio::test]
async fn an_error_keeps_its_type_and_xray_cause() {
    let emulator = Emulator::new(Settings::default());
    let f = function("errors", 10);
    let (answer, error) = call(&emulator, &f, json!({"fail": true})).await;
    assert_eq!(error.as_deref(), Some("Unhandled"));
    assert_eq!(
        answer,
        json!({"errorMessage": "it failed", "errorType": "ValueError"})
    );
    let record = emulator.records(Some("errors")).pop().unwrap();
    assert_eq!(record.outcome, "error");
    assert_eq!(record.error_type.as_deref(), Some("ValueError"));
    assert_eq!(
        record.xray_cause.as_deref(),
        Some(r#"{"exceptions":[{"type":"ValueError"}]}"#)
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_changed_configuration_gets_a_fresh_environment() {
    let emulator = Emulator::new(Settings::default());
    let mut f = function("changes", 10);
    let (before, _) = call(&emulator, &f, json!({})).await;
    f.environment.insert("MODE".into(), "new".into());
    let (after, _) = call(&emulator, &f, json!({})).await;
    assert_ne!(before["pid"], after["pid"]);
    emulator.shutdown().await;
}

#[tokio::test]
async fn an_unknown_runtime_or_a_missing_wrapper_fails_as_an_invalid_entrypoint() {
    let emulator = Emulator::new(Settings::default());
    let mut f = function("entry", 10);
    f.command = None;
    f.runtime = "java21".into();
    let (answer, _) = call(&emulator, &f, json!({})).await;
    assert_eq!(answer["errorType"], "Runtime.InvalidEntrypoint", "{answer}");
    let mut f = function("wrapper", 10);
    f.environment.insert(
        "AWS_LAMBDA_EXEC_WRAPPER".into(),
        "/opt/missing/wrapper".into(),
    );
    f.opt_dir = Some(std::env::temp_dir().join("no-such-layer"));
    let (answer, _) = call(&emulator, &f, json!({})).await;
    assert_eq!(answer["errorType"], "Runtime.InvalidEntrypoint", "{answer}");
    emulator.shutdown().await;
}
