//! The handlers driven the way the state machine drives them, against
//! in-memory ports, with tokio's clock paused so waits take no real time.

use super::*;
use activities::fake::{
    FakeAlarms, FakeDeadLetters, FakeEcs, FakeExecutions, FakeFunctions, FakeMetrics,
    FakeParameters,
};
use activities::Executions;
use experiment::journal::Status;
use experiment::CaughtError;
use rand::SeedableRng;

const ALARM: &str = "abort";

fn ecs_experiment(time_scale: f64) -> Value {
    let mut doc: Value =
        serde_json::from_str(include_str!("../../../experiments/ecs-random-task.json")).unwrap();
    doc["configuration"] = json!({"cluster": "c", "service": "web"});
    doc["extensions"] = json!([{
        "name": "turbulence",
        "abort_alarms": [ALARM],
        "poll_interval_seconds": 5,
        "time_scale": time_scale,
    }]);
    doc
}

const EXECUTION: &str = "arn:aws:states:us-east-1:1:execution:x:y";
const OPT_IN: &str = "turbulence:opt-in";
const KILL_SWITCH: &str = "/turbulence/kill-switch";

fn deployment() -> experiment::guards::Deployment {
    serde_json::from_value(json!({
        "allowed_accounts": "1",
        "allowed_regions": "us-east-1",
        "opt_in_tag": OPT_IN,
        "kill_switch_parameter": KILL_SWITCH,
        "dead_letter_queue_url": "dlq",
        "max_task_percent": "50",
        "min_remaining_tasks": "1",
    }))
    .unwrap()
}

fn start(doc: Value) -> State {
    State {
        experiment: doc,
        execution: EXECUTION.into(),
        deployment: Some(deployment()),
        ..Default::default()
    }
}

struct World {
    ecs: FakeEcs,
    alarms: std::sync::Arc<FakeAlarms>,
    dlq: FakeDeadLetters,
    parameters: FakeParameters,
    functions: FakeFunctions,
    metrics: FakeMetrics,
    executions: FakeExecutions,
    environment: std::collections::BTreeMap<String, String>,
    wait_calls: usize,
    /// Run each background activity's execution to its end as soon as it
    /// starts (else it stays RUNNING).
    run_children: bool,
}

fn rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(1)
}

impl World {
    fn ports(&self) -> Ports<'_> {
        Ports {
            ecs: &self.ecs,
            alarms: &*self.alarms,
            metrics: &self.metrics,
            environment: &self.environment,
            parameters: &self.parameters,
            functions: &self.functions,
            executions: &self.executions,
            ..Ports::unavailable(&self.environment)
        }
    }

    fn sources(&self) -> crate::SeriesSources<'_> {
        crate::SeriesSources {
            alarms: &*self.alarms,
            metrics: &self.metrics,
        }
    }

    fn new() -> World {
        let alarms = std::sync::Arc::new(FakeAlarms::default());
        alarms.set(ALARM, "OK");
        let ecs = FakeEcs::with_service("c", "web", 3);
        ecs.tag("c", Some("web"), OPT_IN, "true");
        // The run's own execution, as Step Functions has it while it runs.
        let executions = FakeExecutions::default();
        executions.set_status(EXECUTION, "RUNNING");
        World {
            ecs,
            alarms,
            dlq: FakeDeadLetters::default(),
            parameters: FakeParameters::default(),
            functions: FakeFunctions::default(),
            metrics: FakeMetrics::default(),
            executions,
            environment: Default::default(),
            wait_calls: 0,
            run_children: true,
        }
    }

    /// Walk the state machine: Plan, Dispatch over steps, Rollback until
    /// done, Journal. `between` runs after every step, standing in for the
    /// world moving on (ECS restarting tasks, autoscaling).
    async fn run(
        &mut self,
        doc: Value,
        mut between: impl FnMut(&State, &FakeEcs, &FakeAlarms),
    ) -> (State, Finished) {
        let mut rng = rng();
        let mut state = match plan(start(doc.clone()), &self.ports()).await {
            Ok(s) => s,
            Err(f) => {
                let mut s = start(doc);
                s.error = Some(f.caught());
                let finished = finish(s.clone(), &self.dlq, &self.parameters, self.sources())
                    .await
                    .unwrap();
                return (s, finished);
            }
        };
        let mut guard = 0;
        loop {
            guard += 1;
            assert!(guard < 1000, "the run does not end");
            let input = state.clone();
            let result = match state.next.kind {
                NextKind::Probe | NextKind::Action => {
                    step(input.clone(), &self.ports(), &mut rng).await
                }
                NextKind::Wait => {
                    self.wait_calls += 1;
                    wait(input.clone(), &self.ports(), None).await
                }
                NextKind::Fork => {
                    let forked = step(input.clone(), &self.ports(), &mut rng).await;
                    if self.run_children {
                        self.run_started_children().await;
                    }
                    forked
                }
                NextKind::Join => wait(input.clone(), &self.ports(), None).await,
                NextKind::Attack => panic!("these experiments have no fanned-out attack"),
                NextKind::Done | NextKind::Rollback | NextKind::Return => break,
            };
            match result {
                Ok(next) => state = next,
                Err(f) => {
                    state = input;
                    state.error = Some(f.caught());
                    break;
                }
            }
            between(&state, &self.ecs, &self.alarms);
        }
        loop {
            state = rollback(state, &self.ports(), &mut rng).await.unwrap();
            if state.next.kind != NextKind::Rollback {
                break;
            }
        }
        let finished = finish(state.clone(), &self.dlq, &self.parameters, self.sources())
            .await
            .unwrap();
        (state, finished)
    }
}

impl World {
    /// Run the started child executions that have not run, the way the
    /// state machine runs one: Start, Plan, Dispatch, Return.
    async fn run_started_children(&self) {
        let mut rng = rng();
        for (machine, name, input) in self.executions.started() {
            let arn = format!(
                "{}:{name}",
                machine.replace(":stateMachine:", ":execution:")
            );
            if self.executions.status(&arn).await.unwrap().as_deref() != Some("RUNNING") {
                continue;
            }
            let outer = State {
                experiment: serde_json::from_str(&input).unwrap(),
                execution: arn.clone(),
                deployment: Some(deployment()),
                ..Default::default()
            };
            let mut state = match plan(outer.clone(), &self.ports()).await {
                Ok(s) => s,
                Err(f) => {
                    self.executions.set_status(&arn, "FAILED");
                    panic!("the child's Plan refused: {f}");
                }
            };
            loop {
                let input = state.clone();
                let result = match state.next.kind {
                    NextKind::Probe | NextKind::Action => {
                        step(input.clone(), &self.ports(), &mut rng).await
                    }
                    NextKind::Wait => wait(input.clone(), &self.ports(), None).await,
                    NextKind::Return => break,
                    other => panic!("a child never goes to {other:?}"),
                };
                match result {
                    Ok(next) => state = next,
                    Err(f) => {
                        state = input;
                        state.error = Some(f.caught());
                        state = rollback(state, &self.ports(), &mut rng).await.unwrap();
                        assert_eq!(state.next.kind, NextKind::Return);
                        break;
                    }
                }
            }
            self.executions
                .succeed(&arn, serde_json::to_value(&state).unwrap());
        }
    }
}

/// Stands in for ECS and autoscaling: tasks follow desiredCount, and a
/// service scaled below its minimum of 3 comes back.
fn autoscaling(state: &State, ecs: &FakeEcs, _: &FakeAlarms) {
    if state.next.kind == NextKind::Wait && ecs.desired("c", "web") == 0 {
        ecs.set_desired("c", "web", 3);
    }
    ecs.set_running("c", "web", ecs.desired("c", "web") as usize);
}

#[tokio::test(start_paused = true)]
async fn the_ecs_experiment_completes_when_autoscaling_restores_the_service() {
    let mut w = World::new();
    let clock = Instant::now();
    let (state, finished) = w.run(ecs_experiment(1.0), autoscaling).await;
    assert_eq!(finished.outcome.error, None, "{:?}", finished.outcome.cause);
    assert_eq!(finished.journal["status"], "completed");
    assert_eq!(finished.journal["deviated"], false);
    // The real pauses, on a paused clock: 150 s + 1 h.
    assert_eq!(clock.elapsed(), Duration::from_secs(150 + 3600));
    // Stopped one task; recorded and replayed the desired count it found.
    assert_eq!(w.ecs.stopped().len(), 1);
    assert_eq!(finished.journal["run"][0]["output"], json!(w.ecs.stopped()));
    // The restore, then the lock Plan took, released last.
    assert_eq!(state.rollbacks.len(), 2);
    assert_eq!(state.rollbacks[0].arguments["desired_count"], json!(3));
    assert_eq!(
        state.rollbacks[1].function,
        "turbulence.guards.actions.release_lock"
    );
    assert_eq!(w.parameters.value("/turbulence/locks/ecs/c/web"), None);
    assert_eq!(w.parameters.value("/turbulence/runs/x/y"), None);
    assert_eq!(w.ecs.desired("c", "web"), 3);
    assert!(
        w.dlq.sent().is_empty(),
        "a completed run sends nothing to the DLQ"
    );
}

#[tokio::test(start_paused = true)]
async fn without_autoscaling_the_run_deviates_and_the_rollback_restores_the_count() {
    let mut w = World::new();
    let (state, finished) = w.run(ecs_experiment(1.0), |_, _, _| {}).await;
    assert_eq!(
        finished.outcome.error.as_deref(),
        Some("SteadyStateDeviated")
    );
    assert!(finished.outcome.deviated);
    let cause = finished.outcome.cause.unwrap();
    assert!(
        cause.contains("'all-desired-tasks-running' after the method returned false"),
        "{cause}"
    );
    assert!(cause.contains("\"expected\":3"), "{cause}");
    assert_eq!(
        finished.journal["steady_states"]["after"]["probes"][0]["tolerance_met"],
        false
    );
    assert_eq!(state.rollbacks[0].status, RunStatus::Succeeded);
    assert_eq!(
        w.ecs.desired("c", "web"),
        3,
        "rollback restores the recorded count"
    );
    let sent = w.dlq.sent();
    assert_eq!(sent.len(), 1);
    let body: Value = serde_json::from_str(&sent[0].1).unwrap();
    assert_eq!(body["error"], "SteadyStateDeviated");
    assert_eq!(body["journal"]["deviated"], true);
}

#[tokio::test(start_paused = true)]
async fn an_alarm_during_the_hour_aborts_within_one_poll_and_rolls_back() {
    let mut w = World::new();
    let clock = Instant::now();
    // The alarm fires 20 minutes and 2 s into the 1 h wait.
    let fire_at = Duration::from_secs(150 + 1202);
    let alarms = w.alarms.clone();
    tokio::spawn(async move {
        tokio::time::sleep_until(clock + fire_at).await;
        alarms.set(ALARM, "ALARM");
    });
    let (state, finished) = w.run(ecs_experiment(1.0), |_, _, _| {}).await;
    let noticed = clock.elapsed() - fire_at;
    assert!(
        noticed <= Duration::from_secs(5),
        "noticed {noticed:?} after the alarm, poll is 5 s"
    );
    assert_eq!(finished.outcome.error.as_deref(), Some("ExperimentAborted"));
    assert_eq!(finished.journal["status"], "aborted");
    let cause = finished.outcome.cause.unwrap();
    assert_eq!(
        cause,
        "abort alarm 'abort' in ALARM during 'pause after 'scale-service-to-zero''"
    );
    assert_eq!(state.rollbacks.len(), 2);
    assert_eq!(
        w.ecs.desired("c", "web"),
        3,
        "rollback restores the recorded count"
    );
    assert_eq!(w.dlq.sent().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_wait_ends_within_one_poll_once_its_run_is_stopped() {
    let w = World::new();
    let mut state = plan(start(ecs_experiment(1.0)), &w.ports()).await.unwrap();
    let mut rng = rng();
    // Step to the 150 s pause after the task stop.
    while state.next.kind != NextKind::Wait {
        state = step(state, &w.ports(), &mut rng).await.unwrap();
    }
    let clock = Instant::now();
    // The console's Stop, 42 s into the pause: Step Functions abandons the
    // task, but this invocation would go on to the end of its chunk.
    let stop_at = Duration::from_secs(42);
    let executions = &w.executions;
    let stopped = async {
        tokio::time::sleep(stop_at).await;
        executions.set_status(EXECUTION, "ABORTED");
    };
    let ports = w.ports();
    let (result, ()) = tokio::join!(wait(state, &ports, None), stopped);
    let err = result.unwrap_err();
    let after = clock.elapsed() - stop_at;
    assert!(
        after <= Duration::from_secs(5),
        "ended {after:?} after the stop, poll is 5 s"
    );
    assert_eq!(err.name(), "ExperimentAborted");
    assert!(
        err.to_string().starts_with(&format!(
            "the run is over: execution {EXECUTION} is ABORTED"
        )),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_compressed_hour_is_waited_in_scaled_chunks() {
    let mut w = World::new();
    let clock = Instant::now();
    let (_, finished) = w.run(ecs_experiment(1.0 / 600.0), autoscaling).await;
    assert_eq!(finished.outcome.error, None);
    // 150 s + 3600 s at 1/600 = 0.25 s + 6 s.
    assert_eq!(clock.elapsed(), Duration::from_millis(250 + 6000));
    // Chunks of 600 s scale to 1 s, raised to the 5 s poll: one invocation
    // for the 150 s pause, two for the hour.
    assert_eq!(w.wait_calls, 3);
}

#[tokio::test(start_paused = true)]
async fn a_wait_never_runs_past_the_lambda_deadline() {
    let w = World::new();
    let mut state = plan(start(ecs_experiment(1.0)), &w.ports()).await.unwrap();
    state.point_at(4); // the 1 h pause
    assert_eq!(state.next.kind, NextKind::Wait);
    let clock = Instant::now();
    let state = wait(state, &w.ports(), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(
        clock.elapsed(),
        Duration::from_secs(50),
        "60 s left minus the 10 s margin"
    );
    assert_eq!(state.next.remaining_ms, Some(3_600_000 - 50_000));
    assert_eq!(state.cursor, 4, "still in the same pause");
}

#[tokio::test]
async fn plan_refuses_missing_alarms_and_touches_nothing() {
    let w = World::new();
    let mut doc = ecs_experiment(1.0);
    doc["extensions"][0]["abort_alarms"] = json!(["abort", "nope"]);
    let err = plan(start(doc), &w.ports()).await.unwrap_err();
    assert_eq!(
        err,
        Failure::Invalid(
            "extensions.turbulence.abort_alarms: no CloudWatch alarm named 'nope'".into()
        )
    );
    assert!(w.ecs.stopped().is_empty());
}

#[tokio::test]
async fn plan_refuses_a_change_without_an_abort_alarm_unless_stated_or_defaulted() {
    let w = World::new();
    let mut doc = ecs_experiment(1.0);
    doc["extensions"][0]
        .as_object_mut()
        .unwrap()
        .remove("abort_alarms");
    let err = plan(start(doc.clone()), &w.ports()).await.unwrap_err();
    assert_eq!(err.name(), "ExperimentInvalid");
    let text = err.to_string();
    assert!(
        text.contains("action 'stop-random-task'")
            && text.contains("names no abort alarm")
            && text.contains("DefaultAbortAlarms")
            && text.contains("\"without_abort_alarms\": true"),
        "{text}"
    );
    assert!(w.ecs.stopped().is_empty());
    assert_eq!(w.parameters.value("/turbulence/runs/x/y"), None);

    // The typo that used to drop every alarm without a word.
    let mut typo = ecs_experiment(1.0);
    typo["extensions"][0]["name"] = json!("turbulance");
    let err = plan(start(typo), &w.ports()).await.unwrap_err();
    assert_eq!(err.name(), "ExperimentInvalid");
    assert!(
        err.to_string()
            .contains("extension 'turbulance' is not 'turbulence'"),
        "{err}"
    );

    // The deployment's default alarms stand in, and are watched.
    let mut s = start(doc.clone());
    s.deployment.as_mut().unwrap().default_abort_alarms = vec![ALARM.into()];
    let planned = plan(s, &w.ports()).await.unwrap();
    assert_eq!(
        planned.plan.unwrap().settings.abort_alarms,
        vec![ALARM.to_string()]
    );
    let mut s = start(doc.clone());
    s.deployment.as_mut().unwrap().default_abort_alarms = vec!["not-there".into()];
    let err = plan(s, &w.ports()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("no CloudWatch alarm named 'not-there'"),
        "{err}"
    );

    // Stated explicitly: it runs without one.
    doc["extensions"][0]["without_abort_alarms"] = json!(true);
    let planned = plan(start(doc), &w.ports()).await.unwrap();
    assert!(planned.plan.unwrap().settings.abort_alarms.is_empty());
}

#[tokio::test]
async fn plan_refuses_a_region_or_account_it_cannot_act_in() {
    let w = World::new();
    let mut doc = ecs_experiment(1.0);
    doc["configuration"]["aws_region"] = json!("eu-west-1");
    let err = plan(start(doc.clone()), &w.ports()).await.unwrap_err();
    assert_eq!(err.name(), "GuardRefused");
    assert!(
        err.to_string().contains(
            "aws_region is 'eu-west-1', but this Turbulence deployment runs in us-east-1"
        ),
        "{err}"
    );
    doc["configuration"]["aws_region"] = json!("us-east-1");
    plan(start(doc.clone()), &w.ports()).await.unwrap();
    let w = World::new();
    doc["configuration"]["aws_role_arn"] = json!("arn:aws:iam::222222222222:role/chaos");
    let err = plan(start(doc.clone()), &w.ports()).await.unwrap_err();
    assert_eq!(err.name(), "ExperimentInvalid");
    assert!(
        err.to_string().starts_with("configuration.aws_role_arn: "),
        "{err}"
    );
    assert!(w.ecs.stopped().is_empty());
    assert_eq!(w.parameters.value("/turbulence/runs/x/y"), None);
}

#[tokio::test]
async fn plan_refuses_to_start_while_an_abort_alarm_fires() {
    let w = World::new();
    w.alarms.set(ALARM, "ALARM");
    let err = plan(start(ecs_experiment(1.0)), &w.ports())
        .await
        .unwrap_err();
    assert_eq!(err.name(), "ExperimentAborted");
}

#[tokio::test]
async fn an_invalid_experiment_fails_with_its_reason_in_the_dlq() {
    let mut w = World::new();
    let mut doc = ecs_experiment(1.0);
    doc["method"][0]["provider"]["arguments"]
        .as_object_mut()
        .unwrap()
        .remove("cluster");
    let (_, finished) = w.run(doc, |_, _, _| {}).await;
    assert_eq!(finished.outcome.error.as_deref(), Some("ExperimentInvalid"));
    assert_eq!(
        finished.outcome.cause.as_deref(),
        Some("activity 'stop-random-task': argument 'cluster' is required by chaosaws.ecs.actions.stop_random_tasks")
    );
    assert_eq!(finished.journal["status"], "failed");
    assert!(w.ecs.stopped().is_empty());
    assert_eq!(w.ecs.desired("c", "web"), 3);
    assert_eq!(w.dlq.sent().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failing_action_stops_the_method_and_still_rolls_back() {
    let mut w = World::new();
    let mut doc = ecs_experiment(1.0);
    // Scale to zero first, then try to stop a task: none is left.
    let scale = doc["method"][1].clone();
    let stop = doc["method"][0].clone();
    doc["method"] = json!([scale, stop]);
    let (state, finished) = w
        .run(doc, |_, ecs, _| {
            ecs.set_running("c", "web", ecs.desired("c", "web").max(0) as usize)
        })
        .await;
    assert_eq!(finished.outcome.error.as_deref(), Some("ActivityFailed"));
    let cause = finished.outcome.cause.unwrap();
    assert_eq!(
        cause,
        "action 'stop-random-task' in the method failed: no running tasks in service 'web' of cluster 'c'"
    );
    assert_eq!(finished.journal["run"][1]["status"], "failed");
    assert_eq!(
        finished.journal["run"][1]["exception"][0],
        "no running tasks in service 'web' of cluster 'c'"
    );
    assert_eq!(state.rollbacks.len(), 2);
    assert_eq!(w.ecs.desired("c", "web"), 3);
}

#[tokio::test]
async fn throttling_is_retryable_and_records_nothing() {
    let w = World::new();
    let mut state = plan(start(ecs_experiment(1.0)), &w.ports()).await.unwrap();
    state.point_at(1); // stop-random-task
    w.ecs
        .fail_next(activities::AwsError::Throttled("Rate exceeded".into()));
    let mut rng = rng();
    let err = step(state, &w.ports(), &mut rng).await.unwrap_err();
    assert_eq!(err.name(), "Throttled");
    assert!(w.ecs.stopped().is_empty());
}

#[tokio::test]
async fn a_failed_rollback_is_recorded_and_the_next_one_still_runs() {
    let w = World::new();
    let mut state = plan(start(ecs_experiment(1.0)), &w.ports()).await.unwrap();
    let undo = |service: &str, n: i32| Compensation {
        for_action: "a".into(),
        name: format!("restore {service}"),
        call: experiment::CallSpec {
            function: "chaosaws.ecs.actions.update_desired_count".into(),
            arguments: json!({"cluster": "c", "service": service, "desired_count": n})
                .as_object()
                .cloned()
                .unwrap(),
        },
    };
    state.compensations = vec![undo("web", 5), undo("ghost", 1)];
    let mut rng = rng();
    let state = rollback(state, &w.ports(), &mut rng).await.unwrap();
    assert_eq!(state.next.kind, NextKind::Rollback);
    assert_eq!(
        state.rollbacks[0].status,
        RunStatus::Failed,
        "ghost goes first: newest first"
    );
    let state = rollback(state, &w.ports(), &mut rng).await.unwrap();
    assert_eq!(state.next.kind, NextKind::Done);
    assert_eq!(w.ecs.desired("c", "web"), 5);
    let o = experiment::journal::outcome(&state);
    assert_eq!(o.error.as_deref(), Some("RollbackFailed"));
    assert_eq!(o.status, Status::Failed);
}

#[tokio::test]
async fn a_step_of_the_wrong_kind_is_refused() {
    let w = World::new();
    let mut state = plan(start(ecs_experiment(1.0)), &w.ports()).await.unwrap();
    state.point_at(2); // a wait
    let mut rng = rng();
    let err = step(state, &w.ports(), &mut rng).await.unwrap_err();
    assert_eq!(err.name(), "StateInvalid");
}

#[tokio::test(start_paused = true)]
async fn a_schedule_names_a_published_experiment_and_plan_loads_it() {
    let mut w = World::new();
    let published = serde_json::to_string(&ecs_experiment(1.0)).unwrap();
    w.parameters
        .set("/turbulence/experiments/ecs-random-task", &published);
    // What EventBridge Scheduler sends, as the state machine's Start wraps it.
    let input = json!({"experiment_parameter": "/turbulence/experiments/ecs-random-task"});
    let (state, finished) = w.run(input, autoscaling).await;
    assert_eq!(finished.outcome.error, None, "{:?}", finished.outcome.cause);
    assert_eq!(
        state.experiment_parameter.as_deref(),
        Some("/turbulence/experiments/ecs-random-task")
    );
    assert_eq!(
        finished.journal["experiment"]["title"],
        ecs_experiment(1.0)["title"]
    );
    assert_eq!(
        finished.journal["turbulence"]["experiment_parameter"],
        "/turbulence/experiments/ecs-random-task"
    );
}

#[tokio::test]
async fn a_bad_experiment_reference_is_invalid() {
    let w = World::new();
    w.parameters
        .set("/turbulence/experiments/garbage", "{not json");
    let cases = [
        (
            json!({"experiment_parameter": "/turbulence/experiments/missing"}),
            "no SSM parameter named '/turbulence/experiments/missing'",
        ),
        (
            json!({"experiment_parameter": "/turbulence/experiments/garbage"}),
            "does not hold JSON",
        ),
        (
            json!({"experiment_parameter": "/x", "title": "t"}),
            "must hold nothing else",
        ),
        (
            json!({"experiment_parameter": "no spaces please"}),
            "not an SSM parameter name",
        ),
    ];
    for (input, expected) in cases {
        let err = plan(start(input.clone()), &w.ports()).await.unwrap_err();
        assert_eq!(err.name(), "ExperimentInvalid", "{input}");
        assert!(err.to_string().contains(expected), "{input}: {err}");
    }
}

/// The guards and the janitor.
mod guards {
    use super::*;
    use crate::janitor::{self, Janitor};

    async fn refused(w: &World, doc: Value) -> String {
        match plan(start(doc), &w.ports()).await {
            Err(Failure::Refused(m)) => m,
            other => panic!("expected GuardRefused, got {other:?}"),
        }
    }

    fn untouched(w: &World) {
        assert!(w.ecs.stopped().is_empty());
        assert_eq!(w.ecs.desired("c", "web"), 3);
        assert_eq!(w.parameters.value("/turbulence/runs/x/y"), None);
    }

    #[tokio::test]
    async fn a_service_without_the_opt_in_tag_is_refused() {
        let mut w = World::new();
        w.ecs = FakeEcs::with_service("c", "web", 3);
        w.ecs.tag("c", Some("web"), OPT_IN, "false");
        let m = refused(&w, ecs_experiment(1.0)).await;
        assert_eq!(
            m,
            "ECS service 'web' of cluster 'c' has not opted in: it needs the tag 'turbulence:opt-in' with the value 'true'"
        );
        untouched(&w);
        assert_eq!(w.parameters.value("/turbulence/locks/ecs/c/web"), None);
    }

    fn lambda_experiment() -> Value {
        json!({
            "title": "faults", "description": "d",
            "extensions": [{"name": "turbulence", "abort_alarms": [ALARM], "poll_interval_seconds": 5}],
            "method": [{"type": "action", "name": "inject-faults",
                "provider": {"type": "python", "module": "turbulence.faults.actions",
                    "func": "inject_lambda_faults",
                    "arguments": {"parameter_name": "/turbulence/faults/moderation",
                                  "function_name": "moderation",
                                  "configuration": {"exception": {"enabled": true}}}}}]
        })
    }

    #[tokio::test]
    async fn a_function_the_faults_cannot_reach_is_refused_naming_what_it_lacks() {
        use experiment::faults::{FunctionSetup, EXEC_WRAPPER};
        let w = World::new();
        w.functions.tag("moderation", OPT_IN, "true");
        let python = |variables: &[(&str, &str)], layers: &[&str]| {
            FunctionSetup::new(
                Some("python3.12".into()),
                layers.iter().map(|l| l.to_string()).collect(),
                variables
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string())),
                Default::default(),
            )
        };
        w.functions.set_up(
            "moderation",
            python(
                &[("FAILURE_INJECTION_PARAM", "/turbulence/faults/moderation")],
                &[],
            ),
        );
        let m = refused(&w, lambda_experiment()).await;
        assert!(
            m.starts_with(
                "activity 'inject-faults': Lambda function 'moderation' cannot take the faults"
            ),
            "{m}"
        );
        assert!(
            m.contains("the turbulence-extension layer") && m.contains("AWS_LAMBDA_EXEC_WRAPPER"),
            "{m}"
        );
        assert_eq!(w.parameters.value("/turbulence/faults/moderation"), None);
        assert_eq!(w.parameters.value("/turbulence/runs/x/y"), None);

        // Behind the layer: Plan lets it through.
        w.functions.set_up(
            "moderation",
            python(
                &[
                    ("FAILURE_INJECTION_PARAM", "/turbulence/faults/moderation"),
                    ("AWS_LAMBDA_EXEC_WRAPPER", EXEC_WRAPPER),
                ],
                &["arn:aws:lambda:us-east-1:1:layer:turbulence-extension-arm64:1"],
            ),
        );
        assert!(plan(start(lambda_experiment()), &w.ports()).await.is_ok());
    }

    #[tokio::test]
    async fn a_locked_target_is_refused_and_the_lock_left_to_its_holder() {
        let w = World::new();
        let other = "arn:aws:states:us-east-1:1:execution:x:other";
        let held = json!({"execution": other, "expires_at": "2999-01-01T00:00:00Z"}).to_string();
        w.parameters.set("/turbulence/locks/ecs/c/web", &held);
        let m = refused(&w, ecs_experiment(1.0)).await;
        assert_eq!(
            m,
            format!("ECS service 'web' of cluster 'c' is locked by another experiment ({other}) until 2999-01-01T00:00:00Z")
        );
        untouched(&w);
        assert_eq!(
            w.parameters.value("/turbulence/locks/ecs/c/web"),
            Some(held)
        );
    }

    #[tokio::test]
    async fn a_stop_over_the_blast_radius_is_refused_at_plan() {
        let w = World::new();
        let mut doc = ecs_experiment(1.0);
        doc["method"][0]["provider"]["arguments"]["task_count"] = json!(2);
        let m = refused(&w, doc).await;
        assert_eq!(m, "activity 'stop-random-task': stopping 2 of the 3 running tasks of service 'web' of cluster 'c' is over the blast-radius cap of 50% of running tasks");
        untouched(&w);
    }

    #[tokio::test]
    async fn the_kill_switch_refuses_new_runs() {
        let w = World::new();
        w.parameters.set(KILL_SWITCH, "on");
        let m = refused(&w, ecs_experiment(1.0)).await;
        assert_eq!(
            m,
            "kill switch '/turbulence/kill-switch' is set (on): no experiment may start"
        );
        untouched(&w);
    }

    #[tokio::test]
    async fn a_run_outside_the_allowed_accounts_is_refused() {
        let w = World::new();
        let mut s = start(ecs_experiment(1.0));
        s.execution = "arn:aws:states:us-east-1:999:execution:x:y".into();
        let e = plan(s, &w.ports()).await.unwrap_err();
        assert_eq!(e.name(), "GuardRefused");
        assert_eq!(
            e.to_string(),
            "account 999 is not in the allowed accounts (1)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_kill_switch_aborts_a_running_wait_at_its_next_poll() {
        let w = World::new();
        let mut state = plan(start(ecs_experiment(1.0)), &w.ports()).await.unwrap();
        let mut rng = rng();
        // The probe, then the task stop: the 150 s pause is next.
        state = step(state.clone(), &w.ports(), &mut rng).await.unwrap();
        state = step(state.clone(), &w.ports(), &mut rng).await.unwrap();
        let clock = Instant::now();
        let kill = async {
            tokio::time::sleep(Duration::from_secs(12)).await;
            w.parameters.set(KILL_SWITCH, "incident 7");
        };
        let ports = w.ports();
        let (result, ()) = tokio::join!(wait(state, &ports, None), kill);
        let e = result.unwrap_err();
        assert_eq!(e.name(), "ExperimentAborted");
        assert!(
            e.to_string()
                .starts_with("kill switch '/turbulence/kill-switch' is set (incident 7) during"),
            "{e}"
        );
        // Polls every 5 s: noticed at 15 s.
        assert_eq!(clock.elapsed(), Duration::from_secs(15));
    }

    #[tokio::test]
    async fn an_undo_logged_by_an_action_that_then_failed_still_runs() {
        let w = World::new();
        let mut doc = ecs_experiment(1.0);
        doc["method"] = json!([doc["method"][1].clone()]);
        let mut rng = rng();
        let state = plan(start(doc), &w.ports()).await.unwrap();
        let state = step(state, &w.ports(), &mut rng).await.unwrap();
        let before = state.clone();
        // The action changes the count, then its Lambda dies before it
        // returns: the Catch keeps the state from before the action.
        step(state, &w.ports(), &mut rng).await.unwrap();
        assert_eq!(w.ecs.desired("c", "web"), 0);
        let mut state = before;
        state.error = Some(CaughtError {
            error: "States.Timeout".into(),
            cause: "Task timed out".into(),
        });
        loop {
            state = rollback(state, &w.ports(), &mut rng).await.unwrap();
            if state.next.kind != NextKind::Rollback {
                break;
            }
        }
        assert_eq!(w.ecs.desired("c", "web"), 3);
        assert_eq!(w.parameters.value("/turbulence/locks/ecs/c/web"), None);
    }

    /// A run stopped during its hour-long wait: the janitor restores the
    /// count, releases the lock, sends one journal, and removes the record;
    /// a second event for the same run does nothing.
    #[tokio::test]
    async fn the_janitor_cleans_up_after_a_stopped_run_once() {
        let w = World::new();
        let mut rng = rng();
        let mut state = plan(start(ecs_experiment(1.0)), &w.ports()).await.unwrap();
        while state.next.kind != NextKind::Wait || state.cursor < 3 {
            state = match state.next.kind {
                NextKind::Wait => {
                    state.advance();
                    state
                }
                _ => step(state, &w.ports(), &mut rng).await.unwrap(),
            };
        }
        assert_eq!(w.ecs.desired("c", "web"), 0);
        w.executions.set_status(EXECUTION, "ABORTED");
        w.executions
            .set_last_state(EXECUTION, serde_json::to_value(&state).unwrap());
        let j = Janitor {
            ports: w.ports(),
            dead_letters: &w.dlq,
            fault_prefix: None,
        };
        let event: janitor::Event = serde_json::from_value(json!({
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "detail": {"executionArn": EXECUTION, "status": "ABORTED", "stopDate": 1}
        }))
        .unwrap();
        let out = janitor::handle(event.clone(), &j, &mut rng).await.unwrap();
        assert_eq!(out["cleaned"], true, "{out}");
        assert_eq!(w.ecs.desired("c", "web"), 3);
        assert_eq!(w.parameters.value("/turbulence/locks/ecs/c/web"), None);
        assert_eq!(w.parameters.value("/turbulence/runs/x/y"), None);
        let sent = w.dlq.sent();
        assert_eq!(sent.len(), 1);
        let message: Value = serde_json::from_str(&sent[0].1).unwrap();
        assert_eq!(message["error"], "ExperimentInterrupted");
        assert_eq!(message["journal"]["status"], "interrupted");
        assert_eq!(message["journal"]["run"].as_array().unwrap().len(), 2);

        let again = janitor::handle(event, &j, &mut rng).await.unwrap();
        assert_eq!(again["cleaned"], false);
        assert_eq!(w.dlq.sent().len(), 1);
    }

    #[tokio::test]
    async fn the_sweep_removes_expired_locks_and_faults_and_cleans_finished_runs() {
        let w = World::new();
        let mut rng = rng();
        let state = plan(start(ecs_experiment(1.0)), &w.ports()).await.unwrap();
        w.parameters.set(
            "/turbulence/locks/ecs/c/old",
            &json!({"execution": "e", "expires_at": "2000-01-01T00:00:00Z"}).to_string(),
        );
        w.parameters.set(
            "/turbulence/faults/f",
            &json!({"latency": {"enabled": true, "min_latency": 1, "max_latency": 2}, "expires_at": "2000-01-01T00:00:00Z"}).to_string(),
        );
        w.parameters.set(
            "/turbulence/faults/live",
            &json!({"latency": {"enabled": true, "min_latency": 1, "max_latency": 2}, "expires_at": "2999-01-01T00:00:00Z"}).to_string(),
        );
        w.executions.set_status(EXECUTION, "FAILED");
        w.executions
            .set_last_state(EXECUTION, serde_json::to_value(&state).unwrap());
        let j = Janitor {
            ports: w.ports(),
            dead_letters: &w.dlq,
            fault_prefix: Some("/turbulence/faults"),
        };
        let out = janitor::sweep(&j, &mut rng, OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert_eq!(out["locks_removed"], json!(["/turbulence/locks/ecs/c/old"]));
        assert_eq!(out["faults_removed"], json!(["/turbulence/faults/f"]));
        assert_eq!(out["runs"][0]["cleaned"], true);
        assert!(w.parameters.value("/turbulence/faults/live").is_some());
        assert_eq!(w.parameters.value("/turbulence/locks/ecs/c/web"), None);
        assert_eq!(w.dlq.sent().len(), 1);
    }
}

/// Load attacks and http probes at Plan.
mod attacks {
    use super::*;

    fn attack_experiment(users: u32, target: &str) -> Value {
        json!({
            "title": "abuse", "description": "d",
            "extensions": [{"name": "turbulence", "without_abort_alarms": true}],
            "steady-state-hypothesis": {"title": "h", "probes": [
                {"type": "probe", "name": "health", "tolerance": 200,
                 "provider": {"type": "http", "url": format!("{target}/health")}}
            ]},
            "method": [{"type": "action", "name": "abuse", "provider": {
                "type": "python", "module": "turbulence.load.actions", "func": "attack",
                "arguments": {"target": target,
                    "stages": [{"users": 10, "duration_s": 60}, {"users": users, "duration_s": 60}],
                    "requests": [{"template": "invalid_token", "path": "/moderate"}]}}}]
        })
    }

    fn allowing(hosts: &str) -> State {
        let mut s = start(Value::Null);
        let d = s.deployment.as_mut().unwrap();
        d.load_allowed_hosts = hosts.split(',').map(String::from).collect();
        d.load_max_users = 300;
        s
    }

    #[tokio::test]
    async fn an_attack_too_big_for_one_invocation_fans_out_in_waves() {
        let w = World::new();
        let mut s = allowing("api.test");
        s.experiment = attack_experiment(250, "http://api.test:8080");
        let s = plan(s, &w.ports()).await.unwrap();
        let step = &s.plan.as_ref().unwrap().steps[1];
        let waves = step.waves.as_ref().expect("fanned out");
        // One wave per stage; 250 users over three invocations.
        assert_eq!(waves.len(), 2);
        assert_eq!(waves[0].len(), 1);
        assert_eq!(waves[1].len(), 3);
        let users: u64 = waves[1]
            .iter()
            .map(|sh| sh["stages"][0]["users"].as_u64().unwrap())
            .sum();
        assert_eq!(users, 250);
        // The host is locked like any other target.
        assert!(w
            .parameters
            .value("/turbulence/locks/host/api.test_8080")
            .is_some());
    }

    #[tokio::test]
    async fn loopback_and_metadata_targets_are_refused_even_allow_listed() {
        let w = World::new();
        for (hosts, target, why) in [
            (
                "169.254.169.254",
                "http://169.254.169.254",
                "instance metadata service",
            ),
            ("127.0.0.1", "http://127.0.0.1:9001", "loopback"),
            // Allow-listed by name, refused by what it resolves to.
            (
                "localhost",
                "http://localhost:9001",
                "localhost resolves to",
            ),
        ] {
            let mut s = allowing(hosts);
            s.experiment = attack_experiment(10, target);
            let e = plan(s, &w.ports()).await.unwrap_err();
            assert_eq!(e.name(), "GuardRefused", "{target}: {e}");
            assert!(e.to_string().contains(why), "{target}: {e}");
        }
        // The health probe too, before any attack.
        let mut s = allowing("localhost,api.test");
        s.experiment = attack_experiment(10, "http://api.test");
        s.experiment["steady-state-hypothesis"]["probes"][0]["provider"]["url"] =
            json!("http://localhost/health");
        let e = plan(s, &w.ports()).await.unwrap_err();
        assert!(e.to_string().contains("localhost resolves to"), "{e}");
        assert_eq!(w.parameters.value("/turbulence/runs/x/y"), None);
    }

    #[tokio::test]
    async fn attacks_and_probes_off_the_allow_list_or_over_the_caps_are_refused() {
        let w = World::new();
        let mut s = allowing("api.test");
        s.experiment = attack_experiment(10, "http://elsewhere.test");
        let e = plan(s, &w.ports()).await.unwrap_err();
        assert_eq!(e.name(), "GuardRefused");
        assert!(e.to_string().contains("elsewhere.test"), "{e}");

        let mut s = allowing("api.test");
        s.experiment = attack_experiment(301, "http://api.test");
        let e = plan(s, &w.ports()).await.unwrap_err();
        assert_eq!(e.name(), "GuardRefused");
        assert!(e.to_string().contains("301"), "{e}");
        assert_eq!(w.parameters.value("/turbulence/runs/x/y"), None);
    }
}

/// The Chaos Toolkit format beyond the basics: configuration from the
/// environment and SSM, secrets, refs, controls, runtime strategies, dry runs.
mod format {
    use super::*;

    fn with(doc: &mut Value, key: &str, v: Value) {
        doc[key] = v;
    }

    #[tokio::test(start_paused = true)]
    async fn configuration_comes_from_the_environment_and_ssm() {
        let mut w = World::new();
        w.environment.insert("TARGET_SERVICE".into(), "web".into());
        w.parameters.set("/turbulence/experiments/cluster", "c");
        let mut doc = ecs_experiment(1.0 / 600.0);
        with(
            &mut doc,
            "configuration",
            json!({"cluster": {"type": "ssm", "name": "/turbulence/experiments/cluster"},
                   "service": {"type": "env", "key": "TARGET_SERVICE"}}),
        );
        let (_, finished) = w.run(doc.clone(), autoscaling).await;
        assert_eq!(finished.outcome.error, None, "{:?}", finished.outcome.cause);
        assert_eq!(w.ecs.stopped().len(), 1);

        let mut w = World::new();
        let (_, finished) = w.run(doc, autoscaling).await;
        assert_eq!(finished.outcome.error.as_deref(), Some("ExperimentInvalid"));
        assert_eq!(
            finished.outcome.cause.as_deref(),
            Some("configuration.cluster: SSM parameter '/turbulence/experiments/cluster' does not exist")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn secrets_reach_the_call_but_never_the_state_or_the_journal() {
        let mut w = World::new();
        w.parameters.set("/turbulence/secrets/alarm", "abort");
        let mut doc = ecs_experiment(1.0 / 600.0);
        with(
            &mut doc,
            "secrets",
            json!({"aws": {"alarm_name": {"type": "ssm", "name": "/turbulence/secrets/alarm"}, "literal": "s3cr3t-literal"}}),
        );
        doc["method"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "probe", "name": "read-alarm", "provider": {
                "type": "python", "module": "chaosaws.cloudwatch.probes", "func": "get_alarm_state_value",
                "arguments": {"alarm_name": "${alarm_name}", "configuration": {"note": "${literal}"}}}}));
        let (state, finished) = w.run(doc, autoscaling).await;
        assert_eq!(finished.outcome.error, None, "{:?}", finished.outcome.cause);
        let probe = state
            .records
            .iter()
            .find(|r| r.name == "read-alarm")
            .unwrap();
        // The call got the secret (the alarm was found); the record kept the name.
        assert_eq!(probe.output, json!("OK"));
        assert_eq!(probe.arguments["alarm_name"], "${alarm_name}");
        // A literal secret is in the execution input, as written; the
        // journal and every record carry it blanked or as its name.
        let text = serde_json::to_string(&finished.journal).unwrap()
            + &serde_json::to_string(&state.records).unwrap();
        assert!(!text.contains("s3cr3t-literal"), "a literal secret leaked");
        assert_eq!(
            finished.journal["experiment"]["secrets"]["aws"]["literal"],
            "***"
        );
        assert!(!finished.journal.to_string().contains("\"abort\",\"note\""));
    }

    #[tokio::test(start_paused = true)]
    async fn refs_controls_and_the_never_rollback_strategy() {
        let mut w = World::new();
        let mut doc = ecs_experiment(1.0 / 600.0);
        doc["method"]
            .as_array_mut()
            .unwrap()
            .push(json!({"ref": "all-desired-tasks-running"}));
        doc["rollbacks"] = json!([{"type": "action", "name": "restore", "provider": {
            "type": "python", "module": "chaosaws.ecs.actions", "func": "update_desired_count",
            "arguments": {"cluster": "c", "service": "web", "desired_count": 3}}}]);
        with(
            &mut doc,
            "controls",
            json!([{"name": "tracing", "provider": {"type": "python", "module": "chaostracing.control"}}]),
        );
        with(
            &mut doc,
            "runtime",
            json!({"rollbacks": {"strategy": "never"}}),
        );
        let (state, finished) = w.run(doc.clone(), autoscaling).await;
        assert_eq!(finished.outcome.error, None, "{:?}", finished.outcome.cause);
        assert_eq!(
            state
                .records
                .iter()
                .filter(|r| r.name == "all-desired-tasks-running")
                .count(),
            3,
            "before, the ref in the method, after"
        );
        // Compensations always run; the declared rollback does not.
        assert!(state.rollbacks.iter().all(|r| r.name != "restore"));
        assert_eq!(
            finished.journal["turbulence"]["warnings"][0],
            "controls are not supported and were ignored: tracing"
        );

        let mut bad = doc.clone();
        bad["method"]
            .as_array_mut()
            .unwrap()
            .push(json!({"ref": "nowhere"}));
        let (_, finished) = World::new().run(bad, autoscaling).await;
        assert_eq!(
            finished.outcome.cause.as_deref(),
            Some("method[3]: 'ref' to 'nowhere', but no activity of the experiment is named so (a ref names an activity written out in full)")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn continuously_checks_the_hypothesis_during_the_pauses() {
        let mut w = World::new();
        let mut doc = ecs_experiment(1.0);
        with(
            &mut doc,
            "runtime",
            json!({"hypothesis": {"strategy": "continuously", "frequency": 900}}),
        );
        // Nothing restores the service: a check during the hour sees it.
        let (state, finished) = w.run(doc, |_, _, _| {}).await;
        assert_eq!(
            finished.outcome.error.as_deref(),
            Some("SteadyStateDeviated")
        );
        assert!(finished.outcome.deviated);
        let during = finished.journal["steady_states"]["during"]
            .as_array()
            .unwrap();
        assert!(!during.is_empty());
        assert_eq!(during.last().unwrap()["tolerance_met"], false);
        assert!(
            state.records.iter().all(|r| r.phase != Phase::After),
            "it deviated during the method, before the after-checks"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_dry_run_records_what_would_be_called_and_touches_nothing() {
        let mut w = World::new();
        let mut doc = ecs_experiment(1.0);
        doc["extensions"][0]["dry_run"] = json!("activities");
        let (state, finished) = w.run(doc, |_, _, _| {}).await;
        assert_eq!(finished.outcome.error, None, "{:?}", finished.outcome.cause);
        assert!(w.ecs.stopped().is_empty());
        assert_eq!(w.ecs.desired("c", "web"), 3);
        assert!(state
            .records
            .iter()
            .all(|r| r.detail == Some(json!({"dry_run": "activities"}))));
        assert_eq!(
            finished.journal["run"][1]["activity"]["provider"]["func"],
            "update_desired_count"
        );
        assert_eq!(
            w.parameters.value("/turbulence/locks/ecs/c/web"),
            None,
            "nothing locked"
        );
        assert_eq!(finished.journal["turbulence"]["dry_run"], "activities");
        assert!(
            finished.journal["turbulence"]["cost"]["lambda_invocations"]
                .as_u64()
                .unwrap()
                > 5
        );
    }
}

/// `{"type": "probe"}` tolerances: an http call with the output as `value`.
mod probe_tolerance {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot HTTP server on loopback answering `status`; returns its
    /// URL and the request it got.
    async fn judge(status: u16) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let n = s.read(&mut buf).await.unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let answer =
                format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            s.write_all(answer.as_bytes()).await.unwrap();
            text
        });
        (url, task)
    }

    async fn run(status: u16) -> (Result<State, Failure>, String) {
        let mut w = World::new();
        // The judge listens on loopback: the local stack's opt-out.
        w.environment
            .insert(load::reach::ALLOW_LOOPBACK_VAR.into(), "true".into());
        let (url, request) = judge(status).await;
        let mut s = start(json!({
            "title": "t", "description": "d",
            "steady-state-hypothesis": {"title": "h", "probes": [{
                "type": "probe", "name": "alarm-ok",
                "tolerance": {"type": "probe", "name": "judge", "provider": {
                    "type": "http", "method": "POST", "url": format!("{url}/judge"),
                    "arguments": {"expected": "OK"}}},
                "provider": {"type": "python", "module": "chaosaws.cloudwatch.probes",
                    "func": "get_alarm_state_value", "arguments": {"alarm_name": ALARM}}}]},
            "method": []
        }));
        s.deployment.as_mut().unwrap().load_allowed_hosts = vec!["127.0.0.1".into()];
        let s = plan(s, &w.ports()).await.unwrap();
        let mut rng = rng();
        let out = step(s, &w.ports(), &mut rng).await;
        (out, request.await.unwrap())
    }

    #[tokio::test]
    async fn the_tolerance_probe_gets_the_output_and_its_status_decides() {
        let (out, request) = run(200).await;
        let state = out.unwrap();
        assert_eq!(state.records[0].tolerance_met, Some(true));
        assert!(request.starts_with("POST /judge"), "{request}");
        assert!(request.contains(r#""value":"OK""#), "{request}");
        assert!(request.contains(r#""expected":"OK""#), "{request}");

        let (out, _) = run(418).await;
        let e = out.unwrap_err();
        assert_eq!(e.name(), "SteadyStateDeviated");
        assert!(
            e.to_string().contains("tolerance probe answered 418"),
            "{e}"
        );
    }

    #[test]
    fn a_probe_tolerance_needs_an_http_provider() {
        let e = Experiment::parse(&json!({
            "title": "t", "description": "d",
            "steady-state-hypothesis": {"title": "h", "probes": [{
                "type": "probe", "name": "p",
                "tolerance": {"type": "probe", "name": "judge", "provider": {
                    "type": "python", "module": "m", "func": "f"}},
                "provider": {"type": "http", "url": "http://x"}}]},
            "method": []
        }))
        .unwrap_err();
        assert_eq!(e.0, "activity 'p': field 'tolerance': a 'probe' tolerance needs an http provider: it is sent the output as 'value' (no catalogued function takes a 'value')");
    }
}

/// `"background": true` in the method: a child execution per activity,
/// joined before anything after the method.
mod background_activities {
    use super::*;
    use experiment::guards::RunRecord;

    const CHILD: &str = "arn:aws:states:us-east-1:1:execution:x:y-bg0";

    fn experiment() -> Value {
        json!({
            "title": "load while describing", "description": "d",
            "extensions": [{"name": "turbulence", "abort_alarms": [ALARM], "poll_interval_seconds": 5}],
            "method": [
                {"type": "action", "name": "scale-to-one", "background": true,
                 "pauses": {"after": 60},
                 "provider": {"type": "python", "module": "chaosaws.ecs.actions",
                    "func": "update_desired_count",
                    "arguments": {"cluster": "c", "service": "web", "desired_count": 1}}},
                {"type": "probe", "name": "describe",
                 "pauses": {"after": 10},
                 "provider": {"type": "python", "module": "chaosaws.ecs.probes",
                    "func": "describe_service", "arguments": {"cluster": "c", "service": "web"}}}
            ]
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_background_action_runs_in_a_child_and_its_undo_in_the_parents_rollbacks() {
        let mut w = World::new();
        let (state, finished) = w.run(experiment(), |_, _, _| {}).await;
        assert_eq!(finished.outcome.error, None, "{:?}", finished.outcome.cause);
        assert_eq!(finished.journal["status"], "completed");
        let started = w.executions.started();
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].0, "arn:aws:states:us-east-1:1:stateMachine:x");
        assert_eq!(started[0].1, "y-bg0");
        // The method's own activity first, the background one when joined.
        let run: Vec<&str> = finished.journal["run"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["activity"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(run, ["describe", "scale-to-one"]);
        // The child's undo ran in the parent's rollbacks, before the lock went.
        let rollbacks: Vec<&str> = state
            .rollbacks
            .iter()
            .map(|r| r.function.as_str())
            .collect();
        assert_eq!(
            rollbacks,
            [
                "chaosaws.ecs.actions.update_desired_count",
                "turbulence.guards.actions.release_lock"
            ]
        );
        assert_eq!(w.ecs.desired("c", "web"), 3);
        assert_eq!(w.parameters.value("/turbulence/runs/x/y-bg0"), None);
        assert_eq!(w.parameters.value("/turbulence/runs/x/y"), None);
        // The child's Lambda time counts in the run's cost.
        assert!(state.cost.invocations >= 6, "{:?}", state.cost);
    }

    #[tokio::test(start_paused = true)]
    async fn a_child_input_the_parent_did_not_write_is_refused() {
        let w = World::new();
        let mut parent = plan(start(experiment()), &w.ports()).await.unwrap();
        assert_eq!(parent.next.kind, NextKind::Fork);
        let child = experiment::background::child_state(&parent, 0).unwrap();
        let outer = |child: &State| State {
            experiment: json!({"turbulence_background": child}),
            execution: CHILD.into(),
            deployment: Some(deployment()),
            ..Default::default()
        };
        // Before the parent forked: its record does not name the child.
        let e = plan(outer(&child), &w.ports()).await.unwrap_err();
        assert_eq!(e.name(), "GuardRefused");
        assert!(
            e.to_string().contains("does not name this execution"),
            "{e}"
        );

        parent = step(parent, &w.ports(), &mut rng()).await.unwrap();
        assert_eq!(parent.next.kind, NextKind::Probe);
        assert_eq!(parent.cursor, 2);
        // The same input is accepted once the record names it...
        let planned = plan(outer(&child), &w.ports()).await.unwrap();
        assert_eq!(planned.next.kind, NextKind::Action);
        assert_eq!(planned.deployment, Some(deployment()));
        // ...but not one that asks for more.
        let mut bigger = child.clone();
        bigger.plan.as_mut().unwrap().steps[0]
            .call
            .as_mut()
            .unwrap()
            .arguments
            .insert("desired_count".into(), json!(0));
        let e = plan(outer(&bigger), &w.ports()).await.unwrap_err();
        assert_eq!(e.name(), "GuardRefused");
        // Nor one run under another execution's name.
        let mut elsewhere = outer(&child);
        elsewhere.execution = "arn:aws:states:us-east-1:1:execution:x:other".into();
        let e = plan(elsewhere, &w.ports()).await.unwrap_err();
        assert!(e.to_string().contains("is for execution"), "{e}");
    }

    /// A background activity that fails fails the run at the join, with
    /// its record in the journal; the method's own activities ran meanwhile.
    #[tokio::test(start_paused = true)]
    async fn a_failing_background_activity_fails_the_run_at_the_join() {
        let mut w = World::new();
        let mut doc = experiment();
        // Probes are not guarded at Plan: this one fails when it runs.
        doc["method"][0] = json!({"type": "probe", "name": "scale-to-one", "background": true,
            "provider": {"type": "python", "module": "chaosaws.ecs.probes",
                "func": "describe_service", "arguments": {"cluster": "c", "service": "missing"}}});
        let (state, finished) = w.run(doc, |_, _, _| {}).await;
        assert_eq!(finished.outcome.error.as_deref(), Some("ActivityFailed"));
        assert_eq!(finished.journal["status"], "failed");
        let run = finished.journal["run"].as_array().unwrap();
        let names: Vec<&str> = run
            .iter()
            .map(|r| r["activity"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["describe", "scale-to-one"]);
        assert_eq!(run[1]["status"], "failed");
        let cause = finished.outcome.cause.clone().unwrap_or_default();
        assert!(cause.contains("'scale-to-one'"), "{cause}");
        assert!(state.background.iter().all(|b| b.joined));
        // Nothing changed: no lock (a probe-only run takes none), no record.
        assert_eq!(w.parameters.value("/turbulence/locks/ecs/c/web"), None);
        assert_eq!(w.parameters.value("/turbulence/runs/x/y"), None);
        assert_eq!(w.dlq.sent().len(), 1);
    }

    /// Two stops of one service's tasks that may run at once would each
    /// check the blast radius without seeing the other's: refused at Plan.
    #[tokio::test]
    async fn stops_of_the_same_tasks_may_not_run_at_once() {
        let w = World::new();
        let stop = |name: &str, background: bool| {
            json!({"type": "action", "name": name, "background": background,
                "provider": {"type": "python", "module": "chaosaws.ecs.actions",
                    "func": "stop_random_tasks",
                    "arguments": {"cluster": "c", "service": "web", "task_count": 1}}})
        };
        let mut doc = experiment();
        doc["method"] = json!([stop("beside", true), stop("after", false)]);
        let e = plan(start(doc.clone()), &w.ports()).await.unwrap_err();
        assert_eq!(e.name(), "GuardRefused");
        assert!(
            e.to_string().starts_with(
                "activities 'beside' and 'after' both take from ECS service 'web' of cluster 'c' under the blast-radius cap"
            ),
            "{e}"
        );
        // One after the other is fine.
        doc["method"] = json!([stop("first", false), stop("after", false)]);
        plan(start(doc), &w.ports()).await.unwrap();
    }

    /// What the child logs before it changes the count.
    fn logged_by_the_child(parameters: &FakeParameters) {
        let record = RunRecord {
            execution: CHILD.into(),
            dead_letter_queue_url: "dlq".into(),
            compensations: vec![experiment::Compensation {
                for_action: "scale-to-one".into(),
                name: "restore desired count".into(),
                call: experiment::CallSpec {
                    function: "chaosaws.ecs.actions.update_desired_count".into(),
                    arguments: json!({"cluster": "c", "service": "web", "desired_count": 3})
                        .as_object()
                        .unwrap()
                        .clone(),
                },
            }],
            parent: Some(EXECUTION.into()),
            children: vec![],
        };
        parameters.set(
            "/turbulence/runs/x/y-bg0",
            &serde_json::to_string(&record).unwrap(),
        );
    }

    /// A run stopped from the console while its background activity runs:
    /// the janitor stops the child, runs its undo, then releases the lock.
    #[tokio::test(start_paused = true)]
    async fn the_janitor_stops_the_background_activities_of_a_stopped_run() {
        let w = World::new();
        let state = plan(start(experiment()), &w.ports()).await.unwrap();
        let state = step(state, &w.ports(), &mut rng()).await.unwrap();
        assert_eq!(
            w.executions.status(CHILD).await.unwrap().as_deref(),
            Some("RUNNING")
        );
        logged_by_the_child(&w.parameters);
        w.ecs.set_desired("c", "web", 1);
        w.executions.set_status(EXECUTION, "ABORTED");
        w.executions
            .set_last_state(EXECUTION, serde_json::to_value(&state).unwrap());
        let j = crate::janitor::Janitor {
            ports: w.ports(),
            dead_letters: &w.dlq,
            fault_prefix: None,
        };
        let event: crate::janitor::Event = serde_json::from_value(json!({
            "detail": {"executionArn": EXECUTION, "status": "ABORTED"}
        }))
        .unwrap();
        let out = crate::janitor::handle(event, &j, &mut rng()).await.unwrap();
        assert_eq!(out["cleaned"], true, "{out}");
        assert_eq!(w.executions.stopped(), [CHILD]);
        assert_eq!(w.ecs.desired("c", "web"), 3);
        for gone in [
            "/turbulence/runs/x/y-bg0",
            "/turbulence/runs/x/y",
            "/turbulence/locks/ecs/c/web",
        ] {
            assert_eq!(w.parameters.value(gone), None, "{gone}");
        }
        // One journal, the run's; none for the child.
        assert_eq!(w.dlq.sent().len(), 1);
        // The child's ABORTED event finds nothing left to do.
        let event: crate::janitor::Event = serde_json::from_value(json!({
            "detail": {"executionArn": CHILD, "status": "ABORTED"}
        }))
        .unwrap();
        let out = crate::janitor::handle(event, &j, &mut rng()).await.unwrap();
        assert_eq!(out["cleaned"], false, "{out}");
        assert_eq!(w.dlq.sent().len(), 1);
    }

    /// A background activity that ended keeps its changes until its run
    /// joins it: the sweep leaves its record alone while the run runs.
    #[tokio::test(start_paused = true)]
    async fn the_sweep_leaves_a_finished_background_activity_to_its_running_run() {
        let w = World::new();
        logged_by_the_child(&w.parameters);
        w.ecs.set_desired("c", "web", 1);
        w.executions.set_status(CHILD, "SUCCEEDED");
        w.executions.set_status(EXECUTION, "RUNNING");
        let j = crate::janitor::Janitor {
            ports: w.ports(),
            dead_letters: &w.dlq,
            fault_prefix: None,
        };
        let now = OffsetDateTime::now_utc();
        let out = crate::janitor::sweep(&j, &mut rng(), now).await.unwrap();
        assert_eq!(out["runs"], json!([]), "{out}");
        assert_eq!(w.ecs.desired("c", "web"), 1);
        // Once the run is over without taking it in, the sweep undoes it.
        w.executions.set_status(EXECUTION, "ABORTED");
        let out = crate::janitor::sweep(&j, &mut rng(), now).await.unwrap();
        assert_eq!(out["runs"][0]["cleaned"], true, "{out}");
        assert_eq!(w.ecs.desired("c", "web"), 3);
        assert_eq!(w.parameters.value("/turbulence/runs/x/y-bg0"), None);
        assert!(w.dlq.sent().is_empty(), "a child's record sends no journal");
    }

    /// An abort while the background activity still runs: the rollback
    /// stops it and runs the undo it had logged.
    #[tokio::test(start_paused = true)]
    async fn a_run_that_aborts_stops_its_background_activities_and_undoes_them() {
        let mut w = World::new();
        w.run_children = false;
        logged_by_the_child(&w.parameters);
        let (state, finished) = w
            .run(experiment(), |state, ecs, alarms| {
                if !state.background.is_empty() {
                    // The child changes the count; then the alarm fires.
                    ecs.set_desired("c", "web", 1);
                    alarms.set(ALARM, "ALARM");
                }
            })
            .await;
        assert_eq!(finished.journal["status"], "aborted");
        assert_eq!(w.executions.stopped(), [CHILD]);
        assert_eq!(w.ecs.desired("c", "web"), 3);
        assert_eq!(w.parameters.value("/turbulence/runs/x/y-bg0"), None);
        assert_eq!(w.parameters.value("/turbulence/locks/ecs/c/web"), None);
        let failed = state
            .records
            .iter()
            .find(|r| r.name == "scale-to-one")
            .expect("the background activity is in the journal");
        assert_eq!(failed.status, RunStatus::Failed);
        assert!(
            failed
                .exception
                .as_deref()
                .unwrap()
                .contains("ended ABORTED"),
            "{failed:?}"
        );
    }
}
