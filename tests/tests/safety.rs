//! The fault matrix: ways a chaos run goes wrong, on the local stack.
//! After each, the account must be as it was: the service's desiredCount
//! back at the value recorded before the method, no fault configuration
//! left, every lock released, the run record gone, and exactly one journal
//! in the dead-letter queue (none for the row whose run completes: a
//! completed run's journal is its output, not a dead letter).
//!
//! Each row prints `matrix row N (name): clean` when it passes;
//! `scripts/fault-matrix` runs them and prints the reliability summary.
//!
//! The experiment of every row is the shipped ECS experiment with a fault
//! injection first: inject a Lambda fault configuration (for a function
//! made for the row), stop a random task, wait 150 s, scale to zero, wait
//! 1 h, all time-compressed.

use std::time::{Duration, Instant};

use local::{
    manifest, AlarmState, DemoApi, EcsTarget, EcsTargetSpec, LocalStack, Reconciler, Stack,
};
use serde_json::{json, Value};
use tokio::sync::RwLock;

const POLL_SECONDS: f64 = 1.0;
const RUN_TIMEOUT: Duration = Duration::from_secs(240);
/// The hour takes 60 s: long enough to act inside it.
const SLOW: f64 = 1.0 / 60.0;
/// The hour takes 6 s.
const FAST: f64 = 1.0 / 600.0;

/// Row 8 arms a throttle that any ECS UpdateService of the stack would
/// consume: it runs alone, the others together.
static THROTTLE: RwLock<()> = RwLock::const_new(());

struct Row {
    local: LocalStack,
    stack: Stack,
    target: EcsTarget,
    fault_parameter: String,
    function: String,
}

async fn row(name: &str, service_opt_in: bool, reconciler: Reconciler) -> Row {
    let (local, stack) = LocalStack::for_tests_with_stack(name).await;
    let prefix = stack.prefix.clone();
    let mut spec = EcsTargetSpec::new(&prefix, 3);
    spec.min_capacity = Some(3);
    spec.reconciler = reconciler;
    if !service_opt_in {
        spec = spec.without_opt_in();
    }
    let target = local.create_ecs_target(&spec).await.expect("ECS target");
    // Under the stack's FaultParameterPrefix: the only parameters its
    // action function may write.
    let fault_parameter = format!("{}{prefix}", stack.fault_parameter_prefix);
    let function = local
        .create_target_function(&format!("{prefix}-fn"), true, &fault_parameter)
        .await
        .expect("target function");
    Row {
        fault_parameter,
        local,
        stack,
        target,
        function,
    }
}

impl Row {
    fn experiment(&self, time_scale: f64) -> Value {
        let mut doc: Value =
            serde_json::from_str(include_str!("../../experiments/ecs-random-task.json")).unwrap();
        doc["configuration"] =
            json!({"cluster": self.target.cluster, "service": self.target.service});
        doc["extensions"] = json!([{
            "name": "turbulence",
            "abort_alarms": [self.stack.abort_alarm],
            "poll_interval_seconds": POLL_SECONDS,
            "time_scale": time_scale,
        }]);
        let inject = json!({
            "type": "action",
            "name": "inject-faults",
            "provider": {
                "type": "python",
                "module": "turbulence.faults.actions",
                "func": "inject_lambda_faults",
                "arguments": {
                    "parameter_name": self.fault_parameter,
                    "function_name": self.function,
                    "configuration": {"latency": {"enabled": true, "percentage": 50, "min_latency": 100, "max_latency": 200}}
                }
            }
        });
        let method = doc["method"].as_array_mut().unwrap();
        method.insert(0, inject);
        doc
    }

    async fn start(&self, doc: &Value) -> String {
        self.local.start_execution(&self.stack, doc).await.unwrap()
    }

    /// Until the run is in its hour-long wait: all three actions ran.
    async fn until_in_the_hour(&self, execution: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            assert!(
                Instant::now() < deadline,
                "the run never reached the 1 h wait"
            );
            let history = self.local.history(execution).await.unwrap();
            let entered = local::states_entered(&history);
            let actions = entered.iter().filter(|s| **s == "Action").count();
            if actions == 3 && entered.last() == Some(&"Wait") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // The wait function is running its chunk now.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(self.local.desired_count(&self.target).await.unwrap(), 0);
        assert!(self
            .local
            .parameter(&self.fault_parameter)
            .await
            .unwrap()
            .is_some());
    }

    fn locks(&self) -> Vec<String> {
        vec![
            format!(
                "{}ecs/{}/{}",
                experiment::guards::LOCK_PREFIX,
                self.target.cluster,
                self.target.service
            ),
            format!(
                "{}lambda/{}",
                experiment::guards::LOCK_PREFIX,
                self.function
            ),
            format!(
                "{}ssm/{}",
                experiment::guards::LOCK_PREFIX,
                self.fault_parameter.trim_start_matches('/')
            ),
        ]
    }

    /// The account is as it was, and the dead-letter queue holds
    /// `dead_letters` journals (polled: the janitor works asynchronously).
    async fn stop_from_the_console(&self, execution: &str) {
        self.local
            .sfn()
            .stop_execution()
            .execution_arn(execution)
            .cause("stopped from the console")
            .send()
            .await
            .unwrap();
    }

    async fn assert_clean(&self, executions: &[&str], dead_letters: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut messages = self.local.dlq_messages(&self.stack).await.unwrap();
        while messages.len() < dead_letters && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            messages = self.local.dlq_messages(&self.stack).await.unwrap();
        }
        let mut records = Vec::new();
        for e in executions {
            let name = experiment::guards::RunRecord::parameter(e).unwrap();
            while self.local.parameter(&name).await.unwrap().is_some() {
                assert!(Instant::now() < deadline, "run record {name} never went");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            records.push(name);
        }
        assert_eq!(
            self.local.desired_count(&self.target).await.unwrap(),
            3,
            "desiredCount restored to the recorded 3"
        );
        assert_eq!(
            self.local.parameter(&self.fault_parameter).await.unwrap(),
            None,
            "no fault configuration left"
        );
        for lock in self.locks() {
            assert_eq!(
                self.local.parameter(&lock).await.unwrap(),
                None,
                "lock {lock} released"
            );
        }
        // A moment more: nothing else may arrive late.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let messages = self.local.dlq_messages(&self.stack).await.unwrap();
        assert_eq!(messages.len(), dead_letters, "{messages:#?}");
        for m in &messages {
            assert!(
                m["journal"]["status"].is_string(),
                "a dead letter carries the journal: {m}"
            );
        }
        messages
    }
}

fn clean(n: u32, name: &str) {
    println!("matrix row {n} ({name}): clean");
}

#[tokio::test]
async fn row_1_an_action_fails_mid_method() {
    let _shared = THROTTLE.read().await;
    let r = row("m1-action-fails", true, Reconciler::TasksOnly).await;
    let mut doc = r.experiment(FAST);
    // After the service is scaled to zero, stop a task again: none is left.
    let again = doc["method"][1].clone();
    doc["method"].as_array_mut().unwrap().push(again);
    let execution = r.start(&doc).await;
    let done = r.local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.error.as_deref(), Some("ActivityFailed"), "{done:?}");
    let m = r.assert_clean(&[&execution], 1).await;
    assert_eq!(m[0]["error"], "ActivityFailed");
    assert_eq!(m[0]["journal"]["rollbacks"].as_array().unwrap().len(), 5);
    clean(1, "action fails mid-method");
}

#[tokio::test]
async fn row_2_an_abort_alarm_during_the_wait() {
    let _shared = THROTTLE.read().await;
    let r = row("m2-alarm", true, Reconciler::TasksOnly).await;
    let execution = r.start(&r.experiment(SLOW)).await;
    r.until_in_the_hour(&execution).await;
    r.local
        .set_alarm_state(&r.stack.abort_alarm, AlarmState::Alarm)
        .await
        .unwrap();
    let done = r.local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.error.as_deref(), Some("ExperimentAborted"), "{done:?}");
    let m = r.assert_clean(&[&execution], 1).await;
    assert_eq!(m[0]["journal"]["status"], "aborted");
    clean(2, "abort alarm during a wait");
}

#[tokio::test]
async fn row_3_stop_execution_during_the_hour_the_janitor_cleans_up() {
    let _shared = THROTTLE.read().await;
    let r = row("m3-stopped", true, Reconciler::TasksOnly).await;
    let execution = r.start(&r.experiment(SLOW)).await;
    r.until_in_the_hour(&execution).await;
    r.stop_from_the_console(&execution).await;
    let stopped = Instant::now();
    let done = r.local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.status, "ABORTED");
    let m = r.assert_clean(&[&execution], 1).await;
    // assert_clean waits 2 s at its end for late messages.
    println!(
        "row 3: StopExecution to clean account: {:.1} s (janitor via the status-change event)",
        stopped.elapsed().as_secs_f64() - 2.0
    );
    assert_eq!(m[0]["error"], "ExperimentInterrupted");
    assert_eq!(m[0]["journal"]["status"], "interrupted");
    let rollbacks = m[0]["journal"]["rollbacks"].as_array().unwrap();
    assert!(
        rollbacks.iter().all(|r| r["status"] == "succeeded"),
        "{rollbacks:#?}"
    );
    clean(3, "StopExecution during the 1 h wait");
}

#[tokio::test]
async fn row_4_the_kill_switch_set_mid_run() {
    let _shared = THROTTLE.read().await;
    let r = row("m4-kill", true, Reconciler::TasksOnly).await;
    let execution = r.start(&r.experiment(SLOW)).await;
    r.until_in_the_hour(&execution).await;
    r.local
        .ssm()
        .put_parameter()
        .name(&r.stack.kill_switch)
        .value("incident 42: stop all chaos")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let done = r.local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.error.as_deref(), Some("ExperimentAborted"), "{done:?}");
    assert!(
        done.cause.as_deref().unwrap_or("").contains("kill switch"),
        "{done:?}"
    );
    r.assert_clean(&[&execution], 1).await;

    // While it is set, nothing new starts.
    let refused = r.start(&r.experiment(FAST)).await;
    let done = r.local.wait_for(&refused, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.error.as_deref(), Some("GuardRefused"), "{done:?}");
    clean(4, "kill switch set mid-run");
}

#[tokio::test]
async fn row_5_a_second_experiment_on_a_locked_target_is_refused() {
    let _shared = THROTTLE.read().await;
    let r = row("m5-locked", true, Reconciler::On).await;
    let first = r.start(&r.experiment(FAST)).await;
    // Until the first holds its locks and has changed something.
    let deadline = Instant::now() + Duration::from_secs(60);
    while r
        .local
        .parameter(&r.fault_parameter)
        .await
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline, "the first run never injected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = r.start(&r.experiment(FAST)).await;
    let done = r.local.wait_for(&second, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.error.as_deref(), Some("GuardRefused"), "{done:?}");
    assert!(
        done.cause
            .as_deref()
            .unwrap_or("")
            .contains("is locked by another experiment"),
        "{done:?}"
    );
    let entered = local::states_entered(&r.local.history(&second).await.unwrap())
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    for never in ["Probe", "Action", "Wait", "Rollback"] {
        assert!(
            !entered.iter().any(|s| s == never),
            "{never} ran: {entered:?}"
        );
    }
    let first_done = r.local.wait_for(&first, RUN_TIMEOUT).await.unwrap();
    assert!(
        first_done.succeeded(),
        "the first run went on: {first_done:?}"
    );
    let m = r.assert_clean(&[&first, &second], 1).await;
    assert_eq!(m[0]["error"], "GuardRefused");
    clean(5, "second experiment on a locked target refused");
}

async fn refused_untouched(r: &Row, doc: &Value, expected: &str) {
    let before = r.local.running_tasks(&r.target).await.unwrap();
    let execution = r.start(doc).await;
    let done = r.local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.error.as_deref(), Some("GuardRefused"), "{done:?}");
    let cause = done.cause.unwrap_or_default();
    assert!(
        cause.contains(expected),
        "expected '{expected}' in '{cause}'"
    );
    assert_eq!(r.local.running_tasks(&r.target).await.unwrap(), before);
    let m = r.assert_clean(&[&execution], 1).await;
    assert_eq!(m[0]["error"], "GuardRefused");
    assert!(m[0]["journal"]["run"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn row_6_a_target_without_the_opt_in_tag_is_refused() {
    let _shared = THROTTLE.read().await;
    let r = row("m6-no-opt-in", false, Reconciler::On).await;
    refused_untouched(
        &r,
        &r.experiment(FAST),
        &format!(
            "has not opted in: it needs the tag '{}'",
            manifest::OPT_IN_TAG
        ),
    )
    .await;
    clean(6, "target without the opt-in tag refused");
}

#[tokio::test]
async fn row_7_a_blast_radius_over_the_cap_is_refused() {
    let _shared = THROTTLE.read().await;
    let r = row("m7-blast", true, Reconciler::On).await;
    let mut doc = r.experiment(FAST);
    doc["method"][1]["provider"]["arguments"]["task_count"] = json!(2);
    refused_untouched(&r, &doc, "over the blast-radius cap of 50%").await;
    clean(7, "blast radius over the cap refused");
}

#[tokio::test]
async fn row_8_throttling_is_retried_and_the_run_completes() {
    let _alone = THROTTLE.write().await;
    let r = row("m8-throttled", true, Reconciler::On).await;
    // More than the SDK's own three attempts: the action fails Throttled,
    // and the state machine's Retry runs it again.
    r.local.throttle("ecs", "UpdateService", 4).await.unwrap();
    let execution = r.start(&r.experiment(FAST)).await;
    let done = r.local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    r.local.throttle("ecs", "UpdateService", 0).await.unwrap();
    assert!(done.succeeded(), "{done:?}");
    let history = r.local.history(&execution).await.unwrap();
    let throttled = history
        .iter()
        .filter(|e| e.error.as_deref() == Some("Throttled"))
        .count();
    assert!(throttled >= 1, "no Throttled failure was retried");
    let journal = done.output.unwrap();
    assert_eq!(journal["status"], "completed");
    r.assert_clean(&[&execution], 0).await;
    println!("row 8: {throttled} Throttled task failure(s) retried");
    clean(8, "throttling retried, run completes");
}

/// StopExecution while a background activity runs (the scale to zero and
/// its hour, here): the janitor stops the activity's execution too and runs
/// the undo it logged, before it releases the locks.
#[tokio::test]
async fn row_9_stop_execution_while_a_background_activity_runs() {
    let _shared = THROTTLE.read().await;
    let r = row("m9-background", true, Reconciler::TasksOnly).await;
    let mut doc = r.experiment(SLOW);
    doc["method"][2]["background"] = json!(true);
    let execution = r.start(&doc).await;
    let (_, _, child) = experiment::background::child_execution(&execution, 0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while r.local.desired_count(&r.target).await.unwrap() != 0 {
        assert!(
            Instant::now() < deadline,
            "the background activity never scaled to zero"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The child is in its hour; the run waits for it at its join.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        r.local.poll(&child).await.unwrap().is_none(),
        "the child runs"
    );
    r.stop_from_the_console(&execution).await;
    let done = r.local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.status, "ABORTED");
    // The child ends either way, promptly: stopped by the janitor, or on its
    // own within one poll once its run is no longer RUNNING (its pause
    // polls the run), whichever comes first.
    let child_done = r.local.wait_for(&child, RUN_TIMEOUT).await.unwrap();
    assert!(
        child_done.status == "ABORTED" || child_done.status == "SUCCEEDED",
        "the child ended: {child_done:?}"
    );
    let m = r.assert_clean(&[&execution, &child], 1).await;
    assert_eq!(m[0]["error"], "ExperimentInterrupted");
    let rollbacks = m[0]["journal"]["rollbacks"].as_array().unwrap();
    assert!(
        rollbacks
            .iter()
            .any(|r| r["activity"]["provider"]["func"] == "update_desired_count"),
        "the child's undo ran with the run's: {rollbacks:#?}"
    );
    clean(9, "StopExecution while a background activity runs");
}

/// A target exhausts the account's unreserved concurrency (the local stack
/// throttles every invocation of a function without reserved concurrency):
/// the control plane's functions have reserved concurrency, so the run
/// still aborts on its alarm, rolls back and reports.
#[tokio::test]
async fn row_10_the_accounts_unreserved_concurrency_is_exhausted() {
    let _shared = THROTTLE.read().await;
    let r = row("m10-starved", true, Reconciler::TasksOnly).await;
    r.local
        .limit_unreserved_concurrency(&r.stack, Some(0))
        .await
        .unwrap();
    let execution = r.start(&r.experiment(SLOW)).await;
    r.until_in_the_hour(&execution).await;
    // The starvation is real: the stack's own target is throttled.
    let throttled = r
        .local
        .invoke(&r.stack.moderation_function, &json!({"path": "/health"}))
        .await
        .expect_err("a function without reserved concurrency is throttled");
    assert!(
        throttled.to_string().contains("TooManyRequestsException"),
        "{throttled}"
    );
    r.local
        .set_alarm_state(&r.stack.abort_alarm, AlarmState::Alarm)
        .await
        .unwrap();
    let done = r.local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    r.local
        .limit_unreserved_concurrency(&r.stack, None)
        .await
        .unwrap();
    assert_eq!(done.error.as_deref(), Some("ExperimentAborted"), "{done:?}");
    let m = r.assert_clean(&[&execution], 1).await;
    assert_eq!(m[0]["journal"]["status"], "aborted");
    let rollbacks = m[0]["journal"]["rollbacks"].as_array().unwrap();
    assert!(
        rollbacks.iter().all(|r| r["status"] == "succeeded"),
        "{rollbacks:#?}"
    );
    clean(10, "unreserved concurrency exhausted by a target");
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// An experiment of one long action, watched by the stack's abort alarm.
fn long_action(r: &Row, name: &str, module: &str, func: &str, arguments: Value) -> Value {
    json!({
        "title": format!("stopped during {name}"),
        "description": "StopExecution while a long action runs",
        "extensions": [{"name": "turbulence", "abort_alarms": [r.stack.abort_alarm],
            "poll_interval_seconds": POLL_SECONDS}],
        "method": [{"type": "action", "name": name,
            "provider": {"type": "python", "module": module, "func": func, "arguments": arguments}}]
    })
}

/// Polls `last` (the newest request or invocation the target saw, ms since
/// the epoch) until `started` is true, stops the run from the console, and
/// checks that nothing reached the target later than one poll interval and
/// a second after the stop, and that the account is clean with
/// `dead_letters` journals in the queue so far. Returns that delay.
async fn stop_while_it_runs(
    r: &Row,
    doc: &Value,
    dead_letters: usize,
    started: impl AsyncFn() -> bool,
    last: impl AsyncFn() -> u64,
) -> u64 {
    let execution = r.start(doc).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while !started().await {
        assert!(Instant::now() < deadline, "the long action never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // In full swing for a moment, then the console's Stop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    r.stop_from_the_console(&execution).await;
    let stopped_at = unix_ms();
    let done = r.local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.status, "ABORTED");
    r.assert_clean(&[&execution], dead_letters).await;
    // assert_clean took seconds; anything still sending would show now.
    let newest = last().await;
    let bound = stopped_at + (POLL_SECONDS * 1000.0) as u64 + 1000;
    assert!(
        newest <= bound,
        "the target was reached {} ms after the stop (bound: one poll + 1 s)",
        newest.saturating_sub(stopped_at)
    );
    newest.saturating_sub(stopped_at)
}

/// StopExecution in the middle of a load attack, and of repeated
/// invocations: Step Functions abandons the action, but its invocation goes
/// on unless it watches its run. Nothing may reach the target later than
/// one poll interval and a second after the stop.
#[tokio::test]
async fn row_11_stop_execution_during_a_load_attack_and_repeated_invocations() {
    let _shared = THROTTLE.read().await;
    let r = row("m11-stop-long", true, Reconciler::TasksOnly).await;
    let api = DemoApi::start("fixed").expect("the demo API");
    let attack = long_action(
        &r,
        "abuse-the-api",
        "turbulence.load.actions",
        "attack",
        json!({"target": api.url(), "stages": [{"users": 4, "duration_s": 120}], "max_rps": 200,
            "requests": [{"name": "invalid-token", "template": "invalid_token", "path": "/moderate"}]}),
    );
    let requests = async || api.stats().unwrap()["requests"].as_u64().unwrap_or(0);
    let after_attack = stop_while_it_runs(
        &r,
        &attack,
        1,
        async || requests().await > 0,
        async || {
            api.stats().unwrap()["last_request_unix_ms"]
                .as_u64()
                .unwrap()
        },
    )
    .await;

    // The stack's own moderation function: no other test invokes it.
    let function = r.stack.moderation_function.as_str();
    let invoke = long_action(
        &r,
        "invoke-the-moderation-service",
        "turbulence.awslambda.actions",
        "invoke_function_repeatedly",
        json!({"function_name": function, "count": 10000, "concurrency": 2,
            "function_arguments": {"httpMethod": "POST", "path": "/moderate",
                "headers": {"Content-Type": "application/json"}, "body": "{\"text\": \"hi\"}"}}),
    );
    let (before, _) = r.local.invocations(function).await.unwrap();
    let after_invoke = stop_while_it_runs(
        &r,
        &invoke,
        2,
        async || r.local.invocations(function).await.unwrap().0 > before + 5,
        async || r.local.invocations(function).await.unwrap().1,
    )
    .await;
    println!(
        "row 11: last request {after_attack} ms, last invocation {after_invoke} ms after the stop"
    );
    clean(11, "StopExecution during a load attack / invocations");
}

/// Until `ok` holds, polled for up to a minute (the janitor works
/// asynchronously).
/// What a StopExecution mid-run must leave once the janitor has run: no run
/// record, every one of `locks` released, and exactly one dead letter,
/// `ExperimentInterrupted`.
async fn assert_interrupted_and_released(
    local: &LocalStack,
    stack: &Stack,
    execution: &str,
    locks: &[String],
) {
    let record = experiment::guards::RunRecord::parameter(execution).unwrap();
    eventually("the run record's removal", || async {
        local.parameter(&record).await.unwrap().is_none()
    })
    .await;
    for lock in locks {
        assert_eq!(
            local.parameter(lock).await.unwrap(),
            None,
            "{lock} released"
        );
    }
    let messages = local.dlq_messages(stack).await.unwrap();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(messages[0]["error"], "ExperimentInterrupted");
}

async fn eventually<F: std::future::Future<Output = bool>>(what: &str, mut ok: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok().await {
        assert!(Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn row_12_stop_execution_while_a_function_is_throttled() {
    let _shared = THROTTLE.read().await;
    let (local, stack) = LocalStack::for_tests_with_stack("m11-lambda").await;
    let function = local
        .create_target_function(
            &format!("{}-fn", stack.prefix),
            true,
            &format!("{}{}", stack.fault_parameter_prefix, stack.prefix),
        )
        .await
        .unwrap();
    let mapping = local.create_event_source_mapping(&function).await.unwrap();
    let before = local.function_settings(&function).await.unwrap();
    let action = |name: &str, func: &str, arguments: Value| {
        json!({"type": "action", "name": name, "provider": {"type": "python",
            "module": "chaosaws.awslambda.actions", "func": func, "arguments": arguments}})
    };
    let mut throttle = action(
        "throttle",
        "put_function_concurrency",
        json!({"function_name": function, "concurrent_executions": 0}),
    );
    throttle["pauses"] = json!({"after": 3600});
    let doc = json!({
        "title": "a function throttled for an hour",
        "description": "stopped from the console in the middle",
        "method": [
            action("slow down", "put_function_timeout", json!({"function_name": function, "timeout": 30})),
            action("stop the feed", "toggle_event_source_mapping_state", json!({"event_uuid": mapping, "enabled": false})),
            throttle,
        ],
        "extensions": [{"name": "turbulence", "abort_alarms": [stack.abort_alarm],
            "poll_interval_seconds": POLL_SECONDS, "time_scale": SLOW}],
    });
    let execution = local.start_execution(&stack, &doc).await.unwrap();
    eventually("the throttle", || async {
        local.function_settings(&function).await.unwrap().reserved == Some(0)
    })
    .await;
    // In the hour's wait now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        local.event_source_mapping_state(&mapping).await.unwrap(),
        "Disabled"
    );
    local
        .sfn()
        .stop_execution()
        .execution_arn(&execution)
        .cause("stopped from the console")
        .send()
        .await
        .unwrap();
    let done = local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.status, "ABORTED");
    eventually("the janitor's undos", || async {
        local.function_settings(&function).await.unwrap() == before
            && local.event_source_mapping_state(&mapping).await.unwrap() == "Enabled"
    })
    .await;
    let locks = [
        format!("{}lambda/{function}", experiment::guards::LOCK_PREFIX),
        format!("{}lambda-esm/{mapping}", experiment::guards::LOCK_PREFIX),
    ];
    assert_interrupted_and_released(&local, &stack, &execution, &locks).await;
    clean(12, "StopExecution while a function is throttled");
}

#[tokio::test]
async fn row_13_stop_execution_while_an_ecs_service_is_reconfigured() {
    let _shared = THROTTLE.read().await;
    let r = row("m12-ecs-config", true, Reconciler::TasksOnly).await;
    let configuration = |max: i32, min: i32| {
        aws_sdk_ecs::types::DeploymentConfiguration::builder()
            .maximum_percent(max)
            .minimum_healthy_percent(min)
            .build()
    };
    r.local
        .ecs()
        .update_service()
        .cluster(&r.target.cluster)
        .service(&r.target.service)
        .deployment_configuration(configuration(150, 50))
        .send()
        .await
        .unwrap();
    let read = || async {
        let out = r
            .local
            .ecs()
            .describe_services()
            .cluster(&r.target.cluster)
            .services(&r.target.service)
            .include(aws_sdk_ecs::types::ServiceField::Tags)
            .send()
            .await
            .unwrap();
        let s = out.services()[0].clone();
        let deployment = s
            .deployment_configuration()
            .and_then(|c| Some((c.maximum_percent()?, c.minimum_healthy_percent()?)));
        let tags: Vec<String> = s
            .tags()
            .iter()
            .filter_map(|t| t.key().map(str::to_string))
            .collect();
        (
            deployment,
            tags,
            s.service_arn().unwrap_or_default().to_string(),
        )
    };
    let instances = r
        .local
        .register_container_instances(&r.target, 4, true)
        .await
        .unwrap();
    let states = || async {
        r.local
            .container_instance_states(&r.target, &instances)
            .await
            .unwrap()
    };
    let before = read().await;
    let action = |name: &str, func: &str, arguments: Value| {
        json!({"type": "action", "name": name, "provider": {"type": "python",
            "module": "chaosaws.ecs.actions", "func": func, "arguments": arguments}})
    };
    let mut tag = action(
        "tag",
        "tag_resource",
        json!({"resource_arn": before.2, "tags": [{"key": "chaos", "value": "now"}]}),
    );
    tag["pauses"] = json!({"after": 3600});
    let doc = json!({
        "title": "a service without headroom for an hour",
        "description": "stopped from the console in the middle",
        "method": [
            action("no headroom", "set_service_deployment_configuration",
                json!({"cluster": r.target.cluster, "service": r.target.service,
                    "maximum_percent": 100, "minimum_healthy_percent": 0})),
            action("drain one", "update_container_instances_state",
                json!({"cluster": r.target.cluster, "container_instances": [instances[0]],
                    "status": "DRAINING"})),
            tag,
        ],
        "extensions": [{"name": "turbulence", "abort_alarms": [r.stack.abort_alarm],
            "poll_interval_seconds": POLL_SECONDS, "time_scale": SLOW}],
    });
    let execution = r.start(&doc).await;
    eventually("the change", || async {
        read().await.1.contains(&"chaos".to_string())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(read().await.0, Some((100, 0)));
    assert_eq!(states().await[0], "DRAINING");
    r.stop_from_the_console(&execution).await;
    let done = r.local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.status, "ABORTED");
    eventually("the janitor's undos", || async {
        read().await == before && states().await == ["ACTIVE"; 4]
    })
    .await;
    let m = r.assert_clean(&[&execution], 1).await;
    assert_eq!(m[0]["error"], "ExperimentInterrupted");
    clean(13, "StopExecution while an ECS service is reconfigured");
}

#[tokio::test]
async fn row_14_stop_execution_while_a_target_is_deregistered() {
    let _shared = THROTTLE.read().await;
    let (local, stack) = LocalStack::for_tests_with_stack("m14-elbv2").await;
    let target = local
        .create_load_balancing_target(&stack.prefix, 3, true)
        .await
        .unwrap();
    let before = local.registered_targets(&target).await.unwrap();
    let action = |name: &str, func: &str, arguments: Value| {
        json!({"type": "action", "name": name, "provider": {"type": "python",
            "module": "chaosaws.elbv2.actions", "func": func, "arguments": arguments}})
    };
    let mut deregister = action(
        "deregister",
        "deregister_target",
        json!({"tg_name": target.target_group}),
    );
    deregister["pauses"] = json!({"after": 3600});
    let doc = json!({
        "title": "a target out of its group for an hour",
        "description": "stopped from the console in the middle",
        "method": [
            action("log", "enable_access_log", json!({"load_balancer_arn": target.load_balancer_arn,
                "enable": true, "bucket_name": "access-logs"})),
            deregister,
        ],
        "extensions": [{"name": "turbulence", "abort_alarms": [stack.abort_alarm],
            "poll_interval_seconds": POLL_SECONDS, "time_scale": SLOW}],
    });
    let execution = local.start_execution(&stack, &doc).await.unwrap();
    eventually("the deregistration", || async {
        local.registered_targets(&target).await.unwrap().len() == 2
    })
    .await;
    // In the hour's wait now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(local.access_logs_enabled(&target).await.unwrap());
    local
        .sfn()
        .stop_execution()
        .execution_arn(&execution)
        .cause("stopped from the console")
        .send()
        .await
        .unwrap();
    let done = local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.status, "ABORTED");
    eventually("the janitor's undos", || async {
        local.registered_targets(&target).await.unwrap() == before
            && !local.access_logs_enabled(&target).await.unwrap()
    })
    .await;
    let lock = format!(
        "{}elbv2-tg/{}",
        experiment::guards::LOCK_PREFIX,
        target.target_group
    );
    assert_interrupted_and_released(&local, &stack, &execution, &[lock]).await;
    clean(14, "StopExecution while a target is deregistered");
}

/// StopExecution while the write-up's Lambda experiment injects faults into
/// the Python twin through the turbulence-extension layer: the janitor
/// deletes the fault configuration, and the function, still behind the
/// wrapper and proxy, answers as its handler does once the proxy's cache
/// has expired (one TTL).
#[tokio::test]
async fn row_15_stop_execution_while_a_python_function_is_injected_through_the_layer() {
    let _shared = THROTTLE.read().await;
    let (local, stack) = LocalStack::for_tests_with_stack("m14-python").await;
    let twin = &manifest::PYTHON_MODERATION;
    let parameter = format!("{}moderation-python", stack.fault_parameter_prefix);
    let function = local
        .create_python_function(
            &local::runtimes::PythonFunction::new(
                format!("{}-moderation-python", stack.prefix),
                twin.code_dir,
                twin.handler,
            )
            .with_layer(&parameter),
        )
        .await
        .expect("deploy the Python target");
    let mut doc: Value = serde_json::from_str(include_str!(
        "../../experiments/lambda-fault-injection.json"
    ))
    .unwrap();
    // Far more invocations than the row waits for: only the stop ends it.
    doc["configuration"]["invocations"] = json!(10_000);
    doc["configuration"]["function_name"] = json!(function);
    doc["configuration"]["fault_parameter"] = json!(parameter);
    doc["extensions"][0]["abort_alarms"] = json!([stack.abort_alarm]);
    doc["extensions"][0]["poll_interval_seconds"] = json!(POLL_SECONDS);
    let (before, _) = local.invocations(&function).await.unwrap();
    let execution = local.start_execution(&stack, &doc).await.unwrap();
    eventually("the injection", || async {
        local.parameter(&parameter).await.unwrap().is_some()
    })
    .await;
    // The configuration is written, then 6 s pass before the invocations.
    eventually("invocations under injection", || async {
        local.invocations(&function).await.unwrap().0 > before + 20
    })
    .await;
    local
        .sfn()
        .stop_execution()
        .execution_arn(&execution)
        .cause("stopped from the console")
        .send()
        .await
        .unwrap();
    let done = local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.status, "ABORTED");
    eventually("the fault configuration's removal", || async {
        local.parameter(&parameter).await.unwrap().is_none()
    })
    .await;
    let locks = [
        format!("{}lambda/{function}", experiment::guards::LOCK_PREFIX),
        format!(
            "{}ssm/{}",
            experiment::guards::LOCK_PREFIX,
            parameter.trim_start_matches('/')
        ),
    ];
    assert_interrupted_and_released(&local, &stack, &execution, &locks).await;
    // The proxy may serve the configuration it cached for one TTL (5 s by
    // default) after the clear; past that, every call is the handler's.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let event = json!({"httpMethod": "POST", "path": "/moderate",
        "headers": {"Content-Type": "application/json"},
        "body": "{\"text\": \"Look at my new LEGO castle!\"}"});
    for _ in 0..20 {
        let started = Instant::now();
        let out = local
            .lambda()
            .invoke()
            .function_name(&function)
            .payload(aws_sdk_lambda::primitives::Blob::new(event.to_string()))
            .send()
            .await
            .unwrap();
        assert_eq!(out.function_error, None, "no injected exception");
        let payload: Value = serde_json::from_slice(&out.payload.unwrap().into_inner()).unwrap();
        assert_eq!(
            payload["statusCode"], 200,
            "the handler's answer: {payload}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "no injected delay: {:?}",
            started.elapsed()
        );
    }
    clean(15, "StopExecution mid-injection, Python via layer");
}
