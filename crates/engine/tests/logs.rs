//! Log lines as Lambda's JSON log format prints them. Its own test binary:
//! tracing caches per call site whether anyone listens, so a subscriber set
//! for one test only sees every line when no other test ran first.

use std::sync::{Arc, Mutex};

use activities::fake::{
    FakeAlarms, FakeDeadLetters, FakeEcs, FakeExecutions, FakeFunctions, FakeMetrics,
    FakeParameters,
};
use activities::Ports;
use engine::{finish, plan, rollback, step, wait};
use experiment::{NextKind, State};
use rand::SeedableRng;
use serde_json::{json, Value};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn every_log_line_is_json_with_the_execution_and_the_step() {
    let captured = Captured::default();
    let writer = captured.clone();
    // The format lambda_runtime's subscriber uses when Lambda's LogFormat is JSON.
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_target(false)
        .without_time()
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);

    let mut doc: Value =
        serde_json::from_str(include_str!("../../../experiments/ecs-random-task.json")).unwrap();
    doc["configuration"] = json!({"cluster": "c", "service": "web"});
    doc["extensions"] =
        json!([{"name": "turbulence", "abort_alarms": ["abort"], "time_scale": 0.001}]);
    let ecs = FakeEcs::with_service("c", "web", 3);
    ecs.tag("c", Some("web"), "opt-in", "true");
    let alarms = FakeAlarms::default();
    alarms.set("abort", "OK");
    let parameters = FakeParameters::default();
    let functions = FakeFunctions::default();
    let dlq = FakeDeadLetters::default();
    let metrics = FakeMetrics::default();
    let execution = "arn:aws:states:us-east-1:1:execution:x:logs";
    let executions = FakeExecutions::default();
    executions.set_status(execution, "RUNNING");
    let environment = Default::default();
    let ports = Ports {
        ecs: &ecs,
        alarms: &alarms,
        metrics: &metrics,
        environment: &environment,
        parameters: &parameters,
        functions: &functions,
        executions: &executions,
        ..Ports::unavailable(&environment)
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);

    let start = State {
        experiment: doc.clone(),
        execution: execution.into(),
        deployment: Some(
            serde_json::from_value(json!({
                "allowed_accounts": "*", "allowed_regions": "*", "opt_in_tag": "opt-in",
                "kill_switch_parameter": "/kill", "dead_letter_queue_url": "dlq",
                "max_task_percent": 50, "min_remaining_tasks": 1,
            }))
            .unwrap(),
        ),
        ..Default::default()
    };
    let mut state = plan(start, &ports).await.unwrap();
    while state.next.kind != NextKind::Done {
        state = match state.next.kind {
            NextKind::Wait => wait(state, &ports, None).await.unwrap(),
            _ => {
                // Stand in for ECS: tasks follow the desired count.
                let s = step(state, &ports, &mut rng).await.unwrap();
                ecs.set_running("c", "web", ecs.desired("c", "web").max(0) as usize);
                if ecs.desired("c", "web") == 0 {
                    ecs.set_desired("c", "web", 3);
                    ecs.set_running("c", "web", 3);
                }
                s
            }
        };
    }
    loop {
        state = rollback(state, &ports, &mut rng).await.unwrap();
        if state.next.kind != NextKind::Rollback {
            break;
        }
    }
    finish(
        state,
        &dlq,
        &parameters,
        engine::SeriesSources {
            alarms: &alarms,
            metrics: &metrics,
        },
    )
    .await
    .unwrap();
    drop(guard);

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let mut steps = std::collections::BTreeSet::new();
    for line in text.lines() {
        let doc: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let span = &doc["span"];
        assert_eq!(span["execution"], execution, "{line}");
        assert!(
            span["experiment"].as_str().is_some_and(|t| !t.is_empty()),
            "{line}"
        );
        let step = span["step"]
            .as_str()
            .unwrap_or_else(|| panic!("no step: {line}"));
        steps.insert(step.to_string());
    }
    for expected in [
        "plan",
        "all-desired-tasks-running",
        "stop-random-task",
        "pause after 'scale-service-to-zero'",
        "restore desired count of 'web' to 3",
        "journal",
    ] {
        assert!(
            steps.contains(expected),
            "no line for step {expected}: {steps:?}\n{text}"
        );
    }
}
