//! Background activities end to end on the local stack: the activity runs
//! in an execution of its own while the method goes on, and the run takes
//! its record and its undo in before anything after the method.
//!
//! Needs the stack: `scripts/stack start` (scripts/test does it).

use std::time::Duration;

use local::{EcsTargetSpec, LocalStack, Reconciler};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const RUN_TIMEOUT: Duration = Duration::from_secs(180);
/// Each activity's pause: longer than the two starts can be apart.
const PAUSE_SECONDS: f64 = 6.0;

fn started(entry: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(entry["start"].as_str().unwrap(), &Rfc3339).unwrap()
}

#[tokio::test]
async fn a_background_action_runs_beside_the_method_and_is_undone_with_the_run() {
    let (local, stack) = LocalStack::for_tests_with_stack("background").await;
    let mut spec = EcsTargetSpec::new(&stack.prefix, 3);
    spec.reconciler = Reconciler::TasksOnly;
    let target = local.create_ecs_target(&spec).await.expect("ECS target");
    let experiment = json!({
        "title": "The service answers while it is scaled down",
        "description": "Scale down in the background; describe the service meanwhile.",
        "configuration": {"cluster": target.cluster, "service": target.service},
        "extensions": [{"name": "turbulence", "abort_alarms": [stack.abort_alarm],
            "poll_interval_seconds": 1}],
        "method": [
            {"type": "action", "name": "scale-to-two", "background": true,
             "pauses": {"after": PAUSE_SECONDS},
             "provider": {"type": "python", "module": "chaosaws.ecs.actions",
                "func": "update_desired_count",
                "arguments": {"cluster": "${cluster}", "service": "${service}", "desired_count": 2}}},
            {"type": "probe", "name": "describe",
             "pauses": {"after": PAUSE_SECONDS},
             "provider": {"type": "python", "module": "chaosaws.ecs.probes",
                "func": "describe_service",
                "arguments": {"cluster": "${cluster}", "service": "${service}"}}}
        ]
    });
    let execution = local.start_execution(&stack, &experiment).await.unwrap();
    let done = local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert!(done.succeeded(), "{done:?}");
    let history = local.history(&execution).await.unwrap();
    let journal = local::journal(&history)
        .expect("a Journal state ran")
        .clone();
    assert_eq!(journal["status"], "completed", "{journal:#}");

    // Both ran, the method's own first, the background one as it was joined.
    let run = journal["run"].as_array().unwrap();
    let names: Vec<&str> = run
        .iter()
        .map(|r| r["activity"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["describe", "scale-to-two"]);
    assert!(run.iter().all(|r| r["status"] == "succeeded"), "{run:#?}");
    // Side by side: neither waited for the other's pause.
    let apart = (started(&run[0]) - started(&run[1])).abs();
    println!("background: the two activities started {apart} apart (each pauses {PAUSE_SECONDS} s after)");
    assert!(
        apart < time::Duration::seconds_f64(PAUSE_SECONDS - 2.0),
        "the activities started {apart} apart: one waited for the other"
    );

    // The child execution, named in the journal, succeeded.
    let (_, _, child) = experiment::background::child_execution(&execution, 0).unwrap();
    assert_eq!(
        journal["turbulence"]["background"],
        json!([{"activity": "scale-to-two", "execution": child}])
    );
    let child_done = local.wait_for(&child, RUN_TIMEOUT).await.unwrap();
    assert!(child_done.succeeded(), "{child_done:?}");

    // Its undo ran in the run's rollbacks: the count is back.
    let rollbacks = journal["rollbacks"].as_array().unwrap();
    assert_eq!(
        rollbacks[0]["activity"]["provider"]["func"], "update_desired_count",
        "{rollbacks:#?}"
    );
    assert_eq!(local.desired_count(&target).await.unwrap(), 3);
    for e in [&execution, &child] {
        let record = experiment::guards::RunRecord::parameter(e).unwrap();
        assert_eq!(local.parameter(&record).await.unwrap(), None, "{record}");
    }
    assert_eq!(local.dlq_depth(&stack).await.unwrap(), 0);
}
