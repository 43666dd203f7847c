//! Scheduled experiments on the local stack: experiments are published to
//! SSM parameters, and a schedule starts the state machine with only the
//! parameter's name as input.

use std::process::Command;
use std::time::Duration;

use local::{EcsTargetSpec, LocalStack, Reconciler};
use serde_json::{json, Value};

#[tokio::test]
async fn publishing_puts_every_shipped_experiment_in_its_parameter() {
    let local = LocalStack::for_tests().await;
    let prefix = format!("/{}/", local::unique_name("published"));
    let root = local::workspace_root();
    let out = Command::new(root.join("scripts/publish-experiments"))
        .args(["--endpoint-url", local.endpoint(), "--prefix", &prefix])
        .output()
        .expect("scripts/publish-experiments runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut files: Vec<_> = std::fs::read_dir(root.join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 2);
    for file in files {
        let stem = file.file_stem().unwrap().to_string_lossy().to_string();
        let stored = local
            .parameter(&format!("{prefix}{stem}"))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{stem} was not published"));
        let shipped: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&stored).unwrap(),
            shipped,
            "{stem}"
        );
    }
}

#[tokio::test]
async fn a_published_experiment_started_by_name_runs_to_completion() {
    let (local, stack) = LocalStack::for_tests_with_stack("scheduled").await;
    let prefix = stack.prefix.clone();
    let mut spec = EcsTargetSpec::new(&prefix, 3);
    spec.min_capacity = Some(3);
    spec.reconciler = Reconciler::On;
    let target = local.create_ecs_target(&spec).await.unwrap();

    // The shipped experiment, pointed at this target, published by name.
    let mut doc: Value =
        serde_json::from_str(include_str!("../../experiments/ecs-random-task.json")).unwrap();
    doc["configuration"] = json!({"cluster": target.cluster, "service": target.service});
    doc["extensions"] = json!([{"name": "turbulence", "abort_alarms": [stack.abort_alarm], "poll_interval_seconds": 1, "time_scale": 1.0 / 600.0}]);
    let parameter = format!("/turbulence/experiments/{prefix}");
    local
        .ssm()
        .put_parameter()
        .name(&parameter)
        .value(doc.to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();

    // Exactly the input template.yaml's schedules send.
    let execution = local
        .start_execution(&stack, &json!({"experiment_parameter": parameter}))
        .await
        .unwrap();
    let done = local
        .wait_for(&execution, Duration::from_secs(180))
        .await
        .unwrap();
    assert!(done.succeeded(), "{done:?}");
    let journal = done.output.unwrap();
    assert_eq!(journal["status"], "completed");
    assert_eq!(journal["experiment"]["title"], doc["title"]);
    assert_eq!(
        journal["turbulence"]["experiment_parameter"],
        parameter.as_str()
    );
    assert_eq!(local.desired_count(&target).await.unwrap(), 3);
}
