//! The ECS experiment end to end on the local stack: moto runs the state
//! machine, `cargo lambda watch` runs the real function binaries, the ECS
//! stand-in of local/stack.py plays the scheduler and auto scaling.
//!
//! Needs the stack: `scripts/stack start` (scripts/test does it). Each test
//! deploys its own state machine, queue, alarm and ECS service under a
//! unique prefix, so the tests run in parallel against one stack.

use std::time::{Duration, Instant};

use local::{AlarmState, EcsTarget, EcsTargetSpec, LocalStack, Reconciler, Stack};
use serde_json::{json, Value};

/// Compresses the experiment's 150 s and 1 h to 0.25 s and 6 s.
const TIME_SCALE: f64 = 1.0 / 600.0;
/// Abort alarms are polled every second: well within what moto serves.
const POLL_SECONDS: f64 = 1.0;
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// The shipped ECS experiment pointed at a target, its alarm and a time scale.
fn ecs_experiment(stack: &Stack, target: &EcsTarget, time_scale: f64) -> Value {
    let mut doc: Value =
        serde_json::from_str(include_str!("../../experiments/ecs-random-task.json")).unwrap();
    doc["configuration"] = json!({"cluster": target.cluster, "service": target.service});
    doc["extensions"] = json!([{
        "name": "turbulence",
        "abort_alarms": [stack.abort_alarm],
        "poll_interval_seconds": POLL_SECONDS,
        "time_scale": time_scale,
    }]);
    doc
}

struct Setup {
    local: LocalStack,
    stack: Stack,
    target: EcsTarget,
}

async fn setup(name: &str, reconciler: Reconciler) -> Setup {
    let (local, stack) = LocalStack::for_tests_with_stack(name).await;
    let mut spec = EcsTargetSpec::new(&stack.prefix, 3);
    spec.min_capacity = Some(3);
    spec.reconciler = reconciler;
    let target = local
        .create_ecs_target(&spec)
        .await
        .expect("create the ECS target");
    Setup {
        local,
        stack,
        target,
    }
}

/// The journal of a run: the execution output when it succeeded, else the
/// output of its Journal state.
async fn journal_of(local: &LocalStack, execution: &str) -> Value {
    let history = local.history(execution).await.unwrap();
    local::journal(&history)
        .expect("a Journal state ran")
        .clone()
}

#[tokio::test]
async fn the_ecs_experiment_completes_and_everything_is_back() {
    let s = setup("happy", Reconciler::On).await;
    let execution = s
        .local
        .start_execution(&s.stack, &ecs_experiment(&s.stack, &s.target, TIME_SCALE))
        .await
        .unwrap();
    let done = s.local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert!(done.succeeded(), "{done:?}");
    let journal = done.output.expect("a succeeded run outputs its journal");
    assert_eq!(journal["status"], "completed");
    assert_eq!(journal["deviated"], false);
    assert_eq!(journal["steady_states"]["before"]["steady_state_met"], true);
    assert_eq!(journal["steady_states"]["after"]["steady_state_met"], true);

    // The task the method stopped is STOPPED.
    let stopped = journal["run"][0]["output"]
        .as_array()
        .expect("stop_random_tasks lists its tasks");
    assert_eq!(stopped.len(), 1);
    let task = stopped[0].as_str().unwrap();
    assert_eq!(
        s.local.task_status(&s.target, task).await.unwrap(),
        "STOPPED"
    );

    // desiredCount is back at the value recorded before the method, and the
    // rollback replayed it.
    assert_eq!(s.local.desired_count(&s.target).await.unwrap(), 3);
    assert_eq!(
        // [0] is the release of the lock Plan took; it runs last.
        journal["turbulence"]["compensations"][1]["call"]["arguments"]["desired_count"],
        3
    );
    assert_eq!(journal["rollbacks"][0]["status"], "succeeded");
    assert_eq!(
        s.local.dlq_depth(&s.stack).await.unwrap(),
        0,
        "a completed run sends nothing to the DLQ"
    );

    let history = s.local.history(&execution).await.unwrap();
    let transitions = local::states_entered(&history).len();
    println!("state transitions of one compressed 1 h ECS run: {transitions}");
    assert!(transitions <= 100, "{transitions} state transitions");
}

#[tokio::test]
async fn without_the_stand_in_the_run_deviates_and_the_rollback_restores_the_count() {
    let s = setup("no-autoscaling", Reconciler::Off).await;
    let execution = s
        .local
        .start_execution(&s.stack, &ecs_experiment(&s.stack, &s.target, TIME_SCALE))
        .await
        .unwrap();
    let done = s.local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.status, "FAILED");
    assert_eq!(
        done.error.as_deref(),
        Some("SteadyStateDeviated"),
        "{done:?}"
    );
    let cause = done.cause.unwrap_or_default();
    assert!(
        cause.contains("'all-desired-tasks-running' after the method returned false"),
        "{cause}"
    );

    let journal = journal_of(&s.local, &execution).await;
    assert_eq!(journal["deviated"], true);
    assert_eq!(
        journal["steady_states"]["after"]["probes"][0]["tolerance_met"],
        false
    );
    assert_eq!(journal["rollbacks"][0]["status"], "succeeded");
    // Nothing but the rollback could have put it back.
    assert_eq!(s.local.desired_count(&s.target).await.unwrap(), 3);

    let messages = s.local.dlq_messages(&s.stack).await.unwrap();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["error"], "SteadyStateDeviated");
    assert_eq!(messages[0]["journal"]["deviated"], true);
}

#[tokio::test]
async fn an_abort_alarm_during_the_hour_ends_the_run_within_one_poll() {
    // Scheduler but no auto scaling: only the rollback can restore the count.
    let s = setup("abort", Reconciler::TasksOnly).await;
    // 1/60: the hour takes 60 s, long enough to fire the alarm inside it.
    let execution = s
        .local
        .start_execution(&s.stack, &ecs_experiment(&s.stack, &s.target, 1.0 / 60.0))
        .await
        .unwrap();

    // Into the hour: the service was scaled to zero and the run waits.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        assert!(
            Instant::now() < deadline,
            "the run never reached the 1 h wait"
        );
        let history = s.local.history(&execution).await.unwrap();
        let entered = local::states_entered(&history);
        let actions = entered.iter().filter(|s| **s == "Action").count();
        if actions == 2 && entered.last() == Some(&"Wait") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.local.desired_count(&s.target).await.unwrap(), 0);

    s.local
        .set_alarm_state(&s.stack.abort_alarm, AlarmState::Alarm)
        .await
        .unwrap();
    let fired = Instant::now();
    // The wait fails with ExperimentAborted and the run moves to Rollback.
    let noticed = loop {
        let history = s.local.history(&execution).await.unwrap();
        if local::states_entered(&history).contains(&"Rollback") {
            break fired.elapsed();
        }
        assert!(
            fired.elapsed() < Duration::from_secs(30),
            "the alarm was never noticed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("abort noticed {noticed:?} after SetAlarmState (poll interval {POLL_SECONDS} s)");
    // One poll interval, plus the alarm read and moto's own step.
    assert!(
        noticed <= Duration::from_secs_f64(POLL_SECONDS + 1.0),
        "abort took {noticed:?}, poll interval is {POLL_SECONDS} s"
    );

    let done = s.local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.error.as_deref(), Some("ExperimentAborted"), "{done:?}");
    let journal = journal_of(&s.local, &execution).await;
    assert_eq!(journal["status"], "aborted");
    assert_eq!(journal["rollbacks"][0]["status"], "succeeded");
    assert_eq!(
        s.local.desired_count(&s.target).await.unwrap(),
        3,
        "rollback restored the recorded count"
    );

    let messages = s.local.dlq_messages(&s.stack).await.unwrap();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["error"], "ExperimentAborted");
    assert_eq!(messages[0]["journal"]["status"], "aborted");
}

#[tokio::test]
async fn a_failing_action_fails_the_run_and_the_rollbacks_still_run() {
    let s = setup("action-fails", Reconciler::TasksOnly).await;
    let mut doc = ecs_experiment(&s.stack, &s.target, TIME_SCALE);
    // Scale the service to zero, then try to stop one of its tasks: none is
    // left by then.
    let scale = doc["method"][1].clone();
    let stop = doc["method"][0].clone();
    doc["method"] = json!([scale, stop]);

    let execution = s.local.start_execution(&s.stack, &doc).await.unwrap();
    let done = s.local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.error.as_deref(), Some("ActivityFailed"), "{done:?}");
    let cause = done.cause.unwrap_or_default();
    assert!(
        cause.starts_with("action 'stop-random-task' in the method failed:"),
        "{cause}"
    );
    assert!(cause.contains("no running tasks"), "{cause}");

    let journal = journal_of(&s.local, &execution).await;
    assert_eq!(journal["run"][1]["status"], "failed");
    assert_eq!(journal["rollbacks"][0]["status"], "succeeded");
    assert_eq!(s.local.desired_count(&s.target).await.unwrap(), 3);
    let messages = s.local.dlq_messages(&s.stack).await.unwrap();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["error"], "ActivityFailed");
}

#[tokio::test]
async fn an_invalid_experiment_is_refused_before_anything_is_touched() {
    let s = setup("invalid", Reconciler::On).await;
    let before = s.local.running_tasks(&s.target).await.unwrap();
    let valid = ecs_experiment(&s.stack, &s.target, TIME_SCALE);
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut d = valid.clone();
                d.as_object_mut().unwrap().remove("title");
                d
            },
            "experiment: field 'title' is required",
        ),
        (
            {
                let mut d = valid.clone();
                d["method"][0]["provider"] = json!({"type": "process", "path": "/bin/rm"});
                d
            },
            "activity 'stop-random-task': provider type 'process' is not supported",
        ),
        (
            {
                let mut d = valid.clone();
                d["method"][1]["provider"]["arguments"]
                    .as_object_mut()
                    .unwrap()
                    .remove("desired_count");
                d
            },
            "activity 'scale-service-to-zero': argument 'desired_count' is required",
        ),
        (
            {
                let mut d = valid.clone();
                d["method"][0]["pauses"]["after"] = json!(-150);
                d
            },
            "activity 'stop-random-task': field 'pauses.after' must not be negative",
        ),
        (
            {
                let mut d = valid.clone();
                d["extensions"][0]["abort_alarms"] = json!(["no-such-alarm"]);
                d
            },
            "no CloudWatch alarm named 'no-such-alarm'",
        ),
    ];
    let mut executions = Vec::new();
    for (doc, _) in &cases {
        executions.push(s.local.start_execution(&s.stack, doc).await.unwrap());
    }
    for (execution, (_, expected)) in executions.iter().zip(&cases) {
        let done = s.local.wait_for(execution, RUN_TIMEOUT).await.unwrap();
        assert_eq!(
            done.error.as_deref(),
            Some("ExperimentInvalid"),
            "{expected}: {done:?}"
        );
        let cause = done.cause.unwrap_or_default();
        assert!(
            cause.contains(expected),
            "expected '{expected}' in '{cause}'"
        );
        // Plan refused it: no probe, action or wait function ever ran.
        let history = s.local.history(execution).await.unwrap();
        let entered = local::states_entered(&history);
        for never in ["Probe", "Action", "Wait", "Rollback"] {
            assert!(
                !entered.contains(&never),
                "{expected}: {never} ran: {entered:?}"
            );
        }
    }
    let messages = s.local.dlq_messages(&s.stack).await.unwrap();
    assert_eq!(
        messages.len(),
        cases.len(),
        "one DLQ message per refused run"
    );
    for m in &messages {
        assert_eq!(m["error"], "ExperimentInvalid");
    }
    assert_eq!(s.local.desired_count(&s.target).await.unwrap(), 3);
    assert_eq!(
        s.local.running_tasks(&s.target).await.unwrap(),
        before,
        "no task was touched"
    );
}
