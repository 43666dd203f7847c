//! chaosaws's ecs actions beyond the ECS experiment's, end to end on the
//! local stack: a service's deployment configuration, placement strategy
//! and tags changed, a container instance drained and a task stopped by a
//! run, put back by its rollbacks;
//! the probes read as chaosaws's jsonpath tolerances expect; a service
//! without the opt-in tag refused and left as it was. (StopExecution with
//! the janitor putting them back is fault-matrix row 13,
//! `tests/tests/safety.rs`.)

use std::collections::BTreeMap;
use std::time::Duration;

use local::{EcsTarget, EcsTargetSpec, LocalStack, Reconciler, Stack};
use serde_json::{json, Value};

const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// What the service is set to before the run.
const BEFORE: (i32, i32) = (150, 50);

/// The service's deployment configuration, placement strategies and tags.
async fn settings(
    local: &LocalStack,
    target: &EcsTarget,
) -> (Option<(i32, i32)>, usize, BTreeMap<String, String>, String) {
    let out = local
        .ecs()
        .describe_services()
        .cluster(&target.cluster)
        .services(&target.service)
        .include(aws_sdk_ecs::types::ServiceField::Tags)
        .send()
        .await
        .unwrap();
    let s = &out.services()[0];
    let deployment = s
        .deployment_configuration()
        .and_then(|c| Some((c.maximum_percent()?, c.minimum_healthy_percent()?)));
    let tags = s
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect();
    (
        deployment,
        s.placement_strategy().len(),
        tags,
        s.service_arn().unwrap_or_default().to_string(),
    )
}

async fn target(local: &LocalStack, stack: &Stack, opt_in: bool) -> EcsTarget {
    let mut spec = EcsTargetSpec::new(&stack.prefix, 4);
    spec.reconciler = Reconciler::TasksOnly;
    if !opt_in {
        spec = spec.without_opt_in();
    }
    let target = local.create_ecs_target(&spec).await.expect("ECS target");
    let configuration = aws_sdk_ecs::types::DeploymentConfiguration::builder()
        .maximum_percent(BEFORE.0)
        .minimum_healthy_percent(BEFORE.1)
        .build();
    local
        .ecs()
        .update_service()
        .cluster(&target.cluster)
        .service(&target.service)
        .deployment_configuration(configuration)
        .send()
        .await
        .unwrap();
    target
}

fn python(kind: &str, name: &str, func: &str, arguments: Value) -> Value {
    json!({"type": kind, "name": name,
        "provider": {"type": "python", "module": format!("chaosaws.ecs.{kind}s"), "func": func,
            "arguments": arguments}})
}

fn experiment(stack: &Stack, target: &EcsTarget, service_arn: &str, instance: &str) -> Value {
    let at = json!({"cluster": target.cluster, "service": target.service});
    let mut deployment = python(
        "probe",
        "deployment configuration",
        "describe_service",
        at.clone(),
    );
    deployment["tolerance"] = json!({"type": "jsonpath",
        "path": "$.services[0].deploymentConfiguration.maximumPercent", "expect": 100});
    let mut running = python(
        "probe",
        "cluster tasks",
        "describe_cluster",
        json!({"cluster": target.cluster}),
    );
    running["tolerance"] = json!({"type": "jsonpath",
        "path": "$.clusters[0].clusterName", "expect": target.cluster});
    let mut deploying = python("probe", "deploying", "service_is_deploying", at.clone());
    deploying["tolerance"] = json!(false);
    json!({
        "title": "an ECS service reconfigured",
        "description": "its deployment, placement and tags changed, then put back",
        "method": [
            python("action", "drain one", "update_container_instances_state",
                json!({"cluster": target.cluster, "container_instances": [instance], "status": "DRAINING"})),
            python("action", "no headroom", "set_service_deployment_configuration",
                json!({"cluster": target.cluster, "service": target.service,
                    "maximum_percent": 100, "minimum_healthy_percent": 0})),
            python("action", "spread", "set_service_placement_strategy",
                json!({"cluster": target.cluster, "service": target.service,
                    "placement_type": "spread", "placement_field": "attribute:ecs.availability-zone"})),
            python("action", "tag", "tag_resource",
                json!({"resource_arn": service_arn, "tags": [{"key": "chaos", "value": "now"}]})),
            python("action", "stop one", "stop_task", at.clone()),
            deployment,
            running,
            deploying,
            python("probe", "tasks", "describe_tasks", json!({"cluster": target.cluster})),
        ],
        "extensions": [{"name": "turbulence", "abort_alarms": [stack.abort_alarm],
            "poll_interval_seconds": 1}],
    })
}

#[tokio::test]
async fn the_rollbacks_put_back_what_the_ecs_actions_changed() {
    let (local, stack) = LocalStack::for_tests_with_stack("ecs-actions").await;
    let target = target(&local, &stack, true).await;
    let instances = local
        .register_container_instances(&target, 4, true)
        .await
        .unwrap();
    let before = settings(&local, &target).await;
    assert_eq!(before.0, Some(BEFORE));
    let execution = local
        .start_execution(
            &stack,
            &experiment(&stack, &target, &before.3, &instances[0]),
        )
        .await
        .unwrap();
    let done = local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert!(done.succeeded(), "{done:?}");
    let journal = done.output.unwrap();
    assert_eq!(journal["status"], "completed", "{journal:#}");
    let run = journal["run"].as_array().unwrap();
    // The stop named its task; the probes met their jsonpath tolerances;
    // describe_tasks lists the tasks that should run, not the stopped one.
    assert_eq!(
        run[0]["output"]["containerInstances"][0]["status"], "DRAINING",
        "{}",
        run[0]
    );
    let stopped = run[4]["output"]["task"]["taskArn"].as_str().unwrap();
    let tasks = run[8]["output"]["tasks"].as_array().unwrap();
    assert!(!tasks.is_empty(), "{}", run[8]);
    assert!(
        tasks
            .iter()
            .all(|t| t["desiredStatus"] == "RUNNING" && t["taskArn"] != stopped),
        "{}",
        run[8]
    );
    let undone: Vec<&str> = journal["rollbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["activity"]["provider"]["func"].as_str().unwrap())
        .collect();
    assert_eq!(
        undone[..3],
        [
            "restore_tags",
            "restore_placement_strategy",
            "set_service_deployment_configuration"
        ],
        "{undone:?}"
    );
    assert_eq!(undone[3], "update_container_instances_state", "{undone:?}");
    let after = settings(&local, &target).await;
    assert_eq!(after, before, "deployment, placement and tags as they were");
    assert_eq!(
        local
            .container_instance_states(&target, &instances)
            .await
            .unwrap(),
        ["ACTIVE"; 4],
        "the drained instance is ACTIVE again"
    );
}

#[tokio::test]
async fn a_service_without_the_opt_in_tag_is_refused_and_untouched() {
    let (local, stack) = LocalStack::for_tests_with_stack("ecs-refused").await;
    let target = target(&local, &stack, false).await;
    let instances = local
        .register_container_instances(&target, 4, false)
        .await
        .unwrap();
    let before = settings(&local, &target).await;
    let execution = local
        .start_execution(
            &stack,
            &experiment(&stack, &target, &before.3, &instances[0]),
        )
        .await
        .unwrap();
    let done = local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.error.as_deref(), Some("GuardRefused"), "{done:?}");
    assert!(
        done.cause.unwrap_or_default().contains("has not opted in"),
        "the refusal names the opt-in tag"
    );
    assert_eq!(settings(&local, &target).await, before);
    assert_eq!(
        local
            .container_instance_states(&target, &instances)
            .await
            .unwrap(),
        ["ACTIVE"; 4]
    );
}
