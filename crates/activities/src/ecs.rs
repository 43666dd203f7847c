//! Amazon ECS: chaosaws's `ecs` module.

use std::collections::BTreeMap;

use async_trait::async_trait;
use rand::seq::IndexedRandom;
use serde_json::{json, Value};

use crate::catalogue::{
    custom, int, one_of, read, scoped, spec, tagged, text, texts, Activity, Call, Module, OptIn,
    Refusal, Resource, ResourceType, Revert, Rule,
};
use crate::guard::BlastRadius;
use crate::ports::{unavailable, AwsError, Unavailable};
use crate::{preflight, run, ActivityError, Context, Outcome, Ports, Undo};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub arn: String,
    pub status: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub pending_count: i32,
    pub deployments: Vec<Deployment>,
    /// (maximumPercent, minimumHealthyPercent), when the service has one.
    pub deployment_configuration: Option<(i32, i32)>,
    pub placement_strategy: Vec<Placement>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployment {
    /// PRIMARY, ACTIVE or INACTIVE.
    pub status: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub rollout_state: Option<String>,
}

/// One placement strategy: `random`, `spread` or `binpack`, and its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub kind: String,
    pub field: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub arn: String,
    pub last_status: String,
}

/// A task as describe_tasks reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskInfo {
    pub arn: String,
    pub last_status: String,
    pub desired_status: String,
    pub group: Option<String>,
    pub health_status: Option<String>,
    pub task_definition: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cluster {
    pub name: String,
    pub arn: String,
    pub status: String,
    pub running_tasks: i32,
    pub pending_tasks: i32,
    pub active_services: i32,
    pub container_instances: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInstance {
    pub arn: String,
    /// ACTIVE, DRAINING, ...
    pub status: String,
}

/// What the ECS activities need of ECS.
#[async_trait]
pub trait Ecs: Send + Sync {
    async fn describe_service(&self, cluster: &str, service: &str) -> Result<Service, AwsError>;
    /// Tasks whose last status is RUNNING, of one service when given (by the
    /// task's `group`, `service:<name>`), else of the whole cluster.
    async fn running_tasks(
        &self,
        cluster: &str,
        service: Option<&str>,
    ) -> Result<Vec<Task>, AwsError>;
    async fn stop_task(&self, cluster: &str, task_arn: &str, reason: &str) -> Result<(), AwsError>;
    async fn update_desired_count(
        &self,
        cluster: &str,
        service: &str,
        desired_count: i32,
    ) -> Result<(), AwsError>;
    /// The tags of a service, or of the cluster when no service is given.
    async fn tags(
        &self,
        cluster: &str,
        service: Option<&str>,
    ) -> Result<BTreeMap<String, String>, AwsError>;
    /// The tags of one task (by ID or ARN).
    async fn task_tags(
        &self,
        cluster: &str,
        task: &str,
    ) -> Result<BTreeMap<String, String>, AwsError>;
    async fn describe_cluster(&self, cluster: &str) -> Result<Cluster, AwsError>;
    /// The cluster's tasks that should be running (ListTasks' default).
    async fn tasks(&self, cluster: &str) -> Result<Vec<TaskInfo>, AwsError>;
    async fn update_deployment_configuration(
        &self,
        cluster: &str,
        service: &str,
        maximum_percent: i32,
        minimum_healthy_percent: i32,
    ) -> Result<(), AwsError>;
    async fn update_placement_strategy(
        &self,
        cluster: &str,
        service: &str,
        strategy: &[Placement],
    ) -> Result<(), AwsError>;
    /// ListTagsForResource.
    async fn resource_tags(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsError>;
    async fn tag_resource(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError>;
    async fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<(), AwsError>;
    /// Every container instance of the cluster.
    async fn container_instances(&self, cluster: &str) -> Result<Vec<ContainerInstance>, AwsError>;
    async fn set_container_instances_state(
        &self,
        cluster: &str,
        instances: &[String],
        status: &str,
    ) -> Result<(), AwsError>;
}

#[async_trait]
impl Ecs for Unavailable {
    async fn describe_service(&self, _: &str, _: &str) -> Result<Service, AwsError> {
        Err(unavailable("ECS"))
    }
    async fn running_tasks(&self, _: &str, _: Option<&str>) -> Result<Vec<Task>, AwsError> {
        Err(unavailable("ECS"))
    }
    async fn stop_task(&self, _: &str, _: &str, _: &str) -> Result<(), AwsError> {
        Err(unavailable("ECS"))
    }
    async fn update_desired_count(&self, _: &str, _: &str, _: i32) -> Result<(), AwsError> {
        Err(unavailable("ECS"))
    }
    async fn tags(&self, _: &str, _: Option<&str>) -> Result<BTreeMap<String, String>, AwsError> {
        Err(unavailable("ECS"))
    }
    async fn task_tags(&self, _: &str, _: &str) -> Result<BTreeMap<String, String>, AwsError> {
        Err(unavailable("ECS"))
    }
    async fn describe_cluster(&self, _: &str) -> Result<Cluster, AwsError> {
        Err(unavailable("ECS"))
    }
    async fn tasks(&self, _: &str) -> Result<Vec<TaskInfo>, AwsError> {
        Err(unavailable("ECS"))
    }
    async fn update_deployment_configuration(
        &self,
        _: &str,
        _: &str,
        _: i32,
        _: i32,
    ) -> Result<(), AwsError> {
        Err(unavailable("ECS"))
    }
    async fn update_placement_strategy(
        &self,
        _: &str,
        _: &str,
        _: &[Placement],
    ) -> Result<(), AwsError> {
        Err(unavailable("ECS"))
    }
    async fn resource_tags(&self, _: &str) -> Result<BTreeMap<String, String>, AwsError> {
        Err(unavailable("ECS"))
    }
    async fn tag_resource(&self, _: &str, _: &BTreeMap<String, String>) -> Result<(), AwsError> {
        Err(unavailable("ECS"))
    }
    async fn untag_resource(&self, _: &str, _: &[String]) -> Result<(), AwsError> {
        Err(unavailable("ECS"))
    }
    async fn container_instances(&self, _: &str) -> Result<Vec<ContainerInstance>, AwsError> {
        Err(unavailable("ECS"))
    }
    async fn set_container_instances_state(
        &self,
        _: &str,
        _: &[String],
        _: &str,
    ) -> Result<(), AwsError> {
        Err(unavailable("ECS"))
    }
}

fn service_tags<'a>(
    r: &'a Resource,
    ports: &'a Ports<'a>,
) -> futures_util::future::BoxFuture<'a, Result<BTreeMap<String, String>, AwsError>> {
    Box::pin(async move {
        let cluster = r.parent.as_deref().unwrap_or_default();
        ports.ecs.tags(cluster, Some(&r.id)).await
    })
}

fn cluster_tags<'a>(
    r: &'a Resource,
    ports: &'a Ports<'a>,
) -> futures_util::future::BoxFuture<'a, Result<BTreeMap<String, String>, AwsError>> {
    Box::pin(async move { ports.ecs.tags(&r.id, None).await })
}

/// An ECS service, within its cluster.
pub static SERVICE: ResourceType = ResourceType {
    service: "ecs",
    name: "service",
    noun: "ECS service",
    parent: Some("cluster"),
    lock: "ecs",
    opt_in: OptIn::Tag {
        read: service_tags,
        iam: &["ecs:DescribeServices"],
    },
};

/// An ECS cluster: a cluster-wide task stop touches every service in it.
pub static CLUSTER: ResourceType = ResourceType {
    service: "ecs",
    name: "cluster",
    noun: "ECS cluster",
    parent: None,
    lock: "ecs",
    opt_in: OptIn::Tag {
        read: cluster_tags,
        iam: &["ecs:DescribeClusters"],
    },
};

fn task_tags<'a>(
    r: &'a Resource,
    ports: &'a Ports<'a>,
) -> futures_util::future::BoxFuture<'a, Result<BTreeMap<String, String>, AwsError>> {
    Box::pin(async move {
        let cluster = r.parent.as_deref().unwrap_or("default");
        ports.ecs.task_tags(cluster, &r.id).await
    })
}

fn arn_tags<'a>(
    r: &'a Resource,
    ports: &'a Ports<'a>,
) -> futures_util::future::BoxFuture<'a, Result<BTreeMap<String, String>, AwsError>> {
    Box::pin(async move { ports.ecs.resource_tags(&r.id).await })
}

/// One ECS task, within its cluster: it carries its service's tags when
/// the service propagates them (`propagateTags: SERVICE`).
pub static TASK: ResourceType = ResourceType {
    service: "ecs",
    name: "task",
    noun: "ECS task",
    parent: Some("cluster"),
    lock: "ecs-task",
    opt_in: OptIn::Tag {
        read: task_tags,
        iam: &["ecs:DescribeTasks"],
    },
};

/// Any ECS resource by its (long) ARN: what tag_resource and untag_resource
/// change.
pub static TAGGABLE: ResourceType = ResourceType {
    service: "ecs",
    name: "resource",
    noun: "ECS resource",
    parent: None,
    lock: "ecs-arn",
    opt_in: OptIn::Tag {
        read: arn_tags,
        iam: &["ecs:ListTagsForResource"],
    },
};

const STOP_RANDOM_TASKS: &str = "chaosaws.ecs.actions.stop_random_tasks";
const UPDATE_DESIRED_COUNT: &str = "chaosaws.ecs.actions.update_desired_count";
const STOP_TASK: &str = "chaosaws.ecs.actions.stop_task";
const TAG: &str = "chaosaws.ecs.actions.tag_resource";
const UNTAG: &str = "chaosaws.ecs.actions.untag_resource";
const PLACEMENT: &str = "chaosaws.ecs.actions.set_service_placement_strategy";
const RESTORE_PLACEMENT: &str = "turbulence.ecs.actions.restore_placement_strategy";
const RESTORE_TAGS: &str = "turbulence.ecs.actions.restore_tags";
const DEPLOYMENT: &str = "chaosaws.ecs.actions.set_service_deployment_configuration";
const INSTANCES_STATE: &str = "chaosaws.ecs.actions.update_container_instances_state";
/// Tags under this prefix are Turbulence's (the opt-in tag): an experiment
/// may not add, change or remove them, or it could opt a resource in, or
/// out of its own undo (IAM grants the undo only on opted-in resources).
const OWN_TAGS: &str = "turbulence:";
const INSTANCE_FENCE: &str = "conditioned on ecs:cluster within TargetClusterNamePattern; the cluster must carry the opt-in tag (checked at Plan)";

/// The most tasks one stop may name (a cap on the count, before the blast
/// radius's).
const MAX_TASKS: i64 = 10_000;

pub static MODULE: Module = Module {
    service: "ecs",
    title: "Amazon ECS",
    activities: &[
        Activity::action(STOP_RANDOM_TASKS, run!(stop_random_tasks))
            .doc("Stops RUNNING tasks of the service (or of the cluster); a percentage rounds up to at least one task; fails, stopping nothing, when asked for more tasks than run. Checked against the blast radius at Plan and again before the first stop.")
            .params(&[
                text("cluster"),
                int("task_count", 1, MAX_TASKS).optional(),
                int("task_percent", 1, 100).optional(),
                text("service").optional(),
                text("reason").or_text("Chaos Testing"),
            ])
            .rules(&[Rule::ExactlyOne(&["task_count", "task_percent"])])
            .touches(&[&SERVICE, &CLUSTER], service_or_cluster)
            .undo(Revert::NotNeeded("the service replaces its stopped tasks"))
            .iam(&[
                read("ecs:DescribeServices"),
                read("ecs:ListTasks"),
                read("ecs:DescribeTasks"),
                tagged("ecs:StopTask"),
            ])
            .preflight(
                preflight!(stop_within_blast_radius),
                &[read("ecs:ListTasks"), read("ecs:DescribeTasks")],
            )
            .example(r#"{"cluster": "shop", "service": "web", "task_count": 1}"#),
        Activity::action(UPDATE_DESIRED_COUNT, run!(update_desired_count))
            .doc("Records the count it found; the rollback restores it.")
            .params(&[
                text("cluster"),
                text("service"),
                int("desired_count", 0, i32::MAX as i64),
            ])
            .touches(&[&SERVICE], service)
            .undo(Revert::By(&[UPDATE_DESIRED_COUNT]))
            .iam(&[read("ecs:DescribeServices"), tagged("ecs:UpdateService")])
            .example(r#"{"cluster": "shop", "service": "web", "desired_count": 0}"#),
        Activity::probe(
            "chaosaws.ecs.probes.are_all_desired_tasks_running",
            run!(are_all_desired_tasks_running),
        )
        .doc("`true` when the running tasks reach the desired count recorded before the method (never for a service that wants 0).")
        .params(&[text("cluster"), text("service")])
        .iam(&[
            read("ecs:DescribeServices"),
            read("ecs:ListTasks"),
            read("ecs:DescribeTasks"),
        ])
        .example(r#"{"cluster": "shop", "service": "web"}"#),
        Activity::probe("chaosaws.ecs.probes.describe_service", run!(describe_service))
            .doc("`{\"services\": [{serviceName, serviceArn, status, desiredCount, runningCount, pendingCount, deployments, deploymentConfiguration, placementStrategy}]}`, as chaosaws (and DescribeServices) answer.")
            .params(&[text("cluster"), text("service")])
            .iam(&[read("ecs:DescribeServices")])
            .example(r#"{"cluster": "shop", "service": "web"}"#),
        Activity::action(STOP_TASK, run!(stop_task))
            .doc("Stops the task `task_id`, or a random RUNNING task of `service` (checked against the blast radius as a stop of one task). The task must carry the opt-in tag; the service replaces it.")
            .params(&[
                text("cluster").or_text("default"),
                text("task_id").optional(),
                text("service").optional(),
                text("reason").or_text("Chaos Testing"),
            ])
            .rules(&[Rule::AtLeastOne(&["task_id", "service"])])
            .touches(&[&TASK, &SERVICE], task_or_service)
            .undo(Revert::NotNeeded("the service replaces its stopped tasks"))
            .iam(&[
                read("ecs:ListTasks"),
                read("ecs:DescribeTasks"),
                tagged("ecs:StopTask"),
            ])
            .preflight(
                preflight!(stop_one_within_blast_radius),
                &[read("ecs:ListTasks"), read("ecs:DescribeTasks")],
            )
            .example(r#"{"cluster": "shop", "service": "web"}"#),
        Activity::action(TAG, run!(tag_resource))
            .doc("Adds or changes tags (`[{\"key\", \"value\"}]`) of an ECS resource by its long ARN; the undo puts back the values it found and removes the tags it added. Tags under `turbulence:` are refused.")
            .params(&[custom("tags", "list of {key, value}", tag_list), text("resource_arn")])
            .touches(&[&TAGGABLE], tagged_resource)
            .undo(Revert::By(&[RESTORE_TAGS]))
            .iam(&[read("ecs:ListTagsForResource"), tagged("ecs:TagResource")])
            .example(r#"{"tags": [{"key": "team", "value": "chaos"}], "resource_arn": "arn:aws:ecs:eu-west-1:123456789012:service/shop/web"}"#),
        Activity::action(UNTAG, run!(untag_resource))
            .doc("Removes tags of an ECS resource by its long ARN; the undo puts back those it found. Tags under `turbulence:` are refused.")
            .params(&[custom("tag_keys", "list of tag keys", tag_keys), text("resource_arn")])
            .touches(&[&TAGGABLE], tagged_resource)
            .undo(Revert::By(&[TAG]))
            .iam(&[read("ecs:ListTagsForResource"), tagged("ecs:UntagResource")])
            .example(r#"{"tag_keys": ["team"], "resource_arn": "arn:aws:ecs:eu-west-1:123456789012:service/shop/web"}"#),
        Activity::action(PLACEMENT, run!(set_service_placement_strategy))
            .doc("Sets the service's task placement strategy (`random`, or `spread`/`binpack` with a `placement_field`); the undo puts back the strategies it found.")
            .params(&[
                text("cluster"),
                text("service"),
                one_of("placement_type", &["random", "spread", "binpack"]),
                text("placement_field").optional(),
            ])
            .check(placement_field_given)
            .touches(&[&SERVICE], service)
            .undo(Revert::By(&[RESTORE_PLACEMENT]))
            .iam(&[read("ecs:DescribeServices"), tagged("ecs:UpdateService")])
            .example(r#"{"cluster": "shop", "service": "web", "placement_type": "spread", "placement_field": "attribute:ecs.availability-zone"}"#),
        Activity::action(RESTORE_PLACEMENT, run!(restore_placement_strategy))
            .doc("Puts back a service's placement strategies as `set_service_placement_strategy` found them (its undo).")
            .params(&[
                text("cluster"),
                text("service"),
                crate::catalogue::json("strategy").doc("`[{\"type\", \"field\"}]`"),
            ])
            .touches(&[&SERVICE], service)
            .undo(Revert::NotNeeded("it undoes set_service_placement_strategy"))
            .iam(&[tagged("ecs:UpdateService")])
            .example(r#"{"cluster": "shop", "service": "web", "strategy": []}"#)
            .internal(),
        Activity::action(RESTORE_TAGS, run!(restore_tags))
            .doc("Puts back a resource's tags as `tag_resource` found them (its undo): removes `tag_keys`, sets `tags`.")
            .params(&[
                text("resource_arn"),
                crate::catalogue::json("tags"),
                crate::catalogue::json("tag_keys"),
            ])
            .touches(&[&TAGGABLE], tagged_resource)
            .undo(Revert::NotNeeded("it undoes tag_resource"))
            .iam(&[
                read("ecs:ListTagsForResource"),
                tagged("ecs:TagResource"),
                tagged("ecs:UntagResource"),
            ])
            .example(r#"{"resource_arn": "arn:aws:ecs:eu-west-1:123456789012:service/shop/web", "tags": [], "tag_keys": ["team"]}"#)
            .internal(),
        Activity::action(DEPLOYMENT, run!(set_service_deployment_configuration))
            .doc("Sets the service's deployment `maximumPercent` and `minimumHealthyPercent`; the undo puts back what it found.")
            .params(&[
                text("cluster"),
                text("service"),
                int("maximum_percent", 0, 10_000).or_int(200),
                int("minimum_healthy_percent", 0, 100).or_int(100),
            ])
            .check(minimum_within_maximum)
            .touches(&[&SERVICE], service)
            .undo(Revert::By(&[DEPLOYMENT]))
            .iam(&[read("ecs:DescribeServices"), tagged("ecs:UpdateService")])
            .example(r#"{"cluster": "shop", "service": "web", "maximum_percent": 100, "minimum_healthy_percent": 0}"#),
        Activity::action(INSTANCES_STATE, run!(update_container_instances_state))
            .doc("Sets container instances ACTIVE or DRAINING (their tasks move elsewhere); the undo puts back each one's state. Draining is checked against the blast radius over the cluster's ACTIVE instances. The cluster must opt in.")
            .params(&[
                text("cluster"),
                texts("container_instances"),
                one_of("status", &["ACTIVE", "DRAINING"]),
            ])
            .touches(&[&CLUSTER], cluster)
            .undo(Revert::By(&[INSTANCES_STATE]))
            .iam(&[
                read("ecs:ListContainerInstances"),
                read("ecs:DescribeContainerInstances"),
                scoped("ecs:UpdateContainerInstancesState", INSTANCE_FENCE),
            ])
            .preflight(
                preflight!(drain_within_blast_radius),
                &[
                    read("ecs:ListContainerInstances"),
                    read("ecs:DescribeContainerInstances"),
                ],
            )
            .example(r#"{"cluster": "shop", "container_instances": ["arn:aws:ecs:eu-west-1:123456789012:container-instance/shop/1a2b"], "status": "DRAINING"}"#),
        Activity::probe("chaosaws.ecs.probes.service_is_deploying", run!(service_is_deploying))
            .doc("`true` while the service has more than one deployment, as chaosaws reads it.")
            .params(&[text("cluster"), text("service")])
            .iam(&[read("ecs:DescribeServices")])
            .example(r#"{"cluster": "shop", "service": "web"}"#),
        Activity::probe("chaosaws.ecs.probes.describe_cluster", run!(describe_cluster))
            .doc("`{\"clusters\": [{clusterName, clusterArn, status, runningTasksCount, pendingTasksCount, activeServicesCount, registeredContainerInstancesCount}]}`, as chaosaws's jsonpath tolerances read it.")
            .params(&[text("cluster")])
            .iam(&[read("ecs:DescribeClusters")])
            .example(r#"{"cluster": "shop"}"#),
        Activity::probe("chaosaws.ecs.probes.describe_tasks", run!(describe_tasks))
            .doc("`{\"tasks\": [{taskArn, lastStatus, desiredStatus, group, healthStatus, taskDefinitionArn}]}`: the cluster's tasks that should run.")
            .params(&[text("cluster")])
            .iam(&[read("ecs:ListTasks"), read("ecs:DescribeTasks")])
            .example(r#"{"cluster": "shop"}"#),
    ],
    refused: &[
        Refusal::destructive(
            "chaosaws.ecs.actions.delete_service",
            "the service, its deployments and its load balancer registrations are gone; update_desired_count to 0 takes it down reversibly",
        ),
        Refusal::destructive(
            "chaosaws.ecs.actions.delete_cluster",
            "the cluster is gone",
        ),
        Refusal::destructive(
            "chaosaws.ecs.actions.deregister_container_instance",
            "an instance deregistered from its cluster comes back only when its agent registers it again",
        ),
    ],
};

fn service(c: &Call) -> Vec<Resource> {
    vec![SERVICE.within(c.text("cluster"), c.text("service"))]
}

/// A stop of a service's tasks touches the service; one of the cluster's,
/// every service in it.
fn service_or_cluster(c: &Call) -> Vec<Resource> {
    match c.opt_text("service") {
        Some(s) => vec![SERVICE.within(c.text("cluster"), s)],
        None => vec![CLUSTER.of(c.text("cluster"))],
    }
}

/// How many tasks `stop_random_tasks` stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskCount {
    Count(u32),
    Percent(u32),
}

impl TaskCount {
    pub fn of_call(c: &Call) -> TaskCount {
        match c.opt_int("task_count") {
            Some(n) => TaskCount::Count(u32::try_from(n).unwrap_or(u32::MAX)),
            None => TaskCount::Percent(u32::try_from(c.int("task_percent")).unwrap_or(100)),
        }
    }

    /// How many of `running` tasks to stop. A percentage stops at least one
    /// task: one that rounds to none would make the experiment a silent no-op.
    pub fn of(self, running: usize) -> usize {
        match self {
            TaskCount::Count(n) => n as usize,
            TaskCount::Percent(p) => (running * p as usize).div_ceil(100).max(1),
        }
    }
}

/// What a task stop takes its tasks from, for messages.
pub fn tasks_of(cluster: &str, service: Option<&str>) -> String {
    match service {
        Some(s) => format!("service '{s}' of cluster '{cluster}'"),
        None => format!("cluster '{cluster}'"),
    }
}

/// The key under which a service's desired count before the method is kept.
pub fn desired_count_key(cluster: &str, service: &str) -> String {
    format!("ecs:{cluster}/{service}:desired_count")
}

/// Remember the desired count the first time a service is seen, so later
/// checks compare against what it was before the experiment changed it.
fn remember_desired(
    baselines: &mut BTreeMap<String, Value>,
    cluster: &str,
    service: &str,
    desired: i32,
) -> i64 {
    baselines
        .entry(desired_count_key(cluster, service))
        .or_insert(json!(desired))
        .as_i64()
        .unwrap_or(i64::from(desired))
}

async fn stop_within_blast_radius(
    c: &Call,
    ports: &Ports<'_>,
    caps: &BlastRadius,
) -> Result<(), ActivityError> {
    let (cluster, service) = (c.text("cluster"), c.opt_text("service"));
    let running = ports.ecs.running_tasks(cluster, service).await?.len();
    caps.check(
        TaskCount::of_call(c).of(running),
        running,
        &tasks_of(cluster, service),
    )
    .map_err(ActivityError::Refused)
}

async fn stop_random_tasks(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let (cluster, service, reason) = (c.text("cluster"), c.opt_text("service"), c.text("reason"));
    if let Some(s) = service {
        let svc = ports.ecs.describe_service(cluster, s).await?;
        remember_desired(ctx.baselines, cluster, s, svc.desired_count);
    }
    let tasks = ports.ecs.running_tasks(cluster, service).await?;
    let of = tasks_of(cluster, service);
    let n = TaskCount::of_call(c).of(tasks.len());
    if tasks.is_empty() {
        return Err(ActivityError::Failed(format!("no running tasks in {of}")));
    }
    if n > tasks.len() {
        return Err(ActivityError::Failed(format!(
            "asked to stop {n} tasks but {of} has only {} running",
            tasks.len()
        )));
    }
    // Again here, not only at Plan: tasks may have gone since.
    ctx.blast_radius
        .check(n, tasks.len(), &of)
        .map_err(ActivityError::Refused)?;
    let chosen: Vec<String> = tasks
        .choose_multiple(&mut *ctx.rng, n)
        .map(|t| t.arn.clone())
        .collect();
    for (i, arn) in chosen.iter().enumerate() {
        match ports.ecs.stop_task(cluster, arn, reason).await {
            Ok(()) => {}
            // Throttled after a stop is no longer "nothing changed": a retry
            // of the whole action would stop more tasks.
            Err(AwsError::Throttled(e)) if i > 0 => {
                return Err(ActivityError::Failed(format!(
                    "stopped {i} of {n} tasks, then: {e}"
                )))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Outcome {
        output: json!(chosen),
        detail: Some(json!({"running_before": tasks.len(), "stopped": chosen.len()})),
        undo: None,
    })
}

async fn update_desired_count(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let (cluster, service) = (c.text("cluster"), c.text("service"));
    let desired_count = i32::try_from(c.int("desired_count")).unwrap_or(i32::MAX);
    let before = ports.ecs.describe_service(cluster, service).await?;
    remember_desired(ctx.baselines, cluster, service, before.desired_count);
    // Restore the count read just now, not what autoscaling may set
    // meanwhile: the rollback must put back what we found.
    let undo = (before.desired_count != desired_count).then(|| Undo {
        name: format!(
            "restore desired count of '{service}' to {}",
            before.desired_count
        ),
        call: spec(
            UPDATE_DESIRED_COUNT,
            json!({"cluster": cluster, "service": service, "desired_count": before.desired_count}),
        ),
    });
    if let Some(undo) = &undo {
        ctx.undo_log.will_change(undo).await?;
    }
    ports
        .ecs
        .update_desired_count(cluster, service, desired_count)
        .await?;
    Ok(Outcome {
        output: json!({
            "service": service,
            "previous_desired_count": before.desired_count,
            "desired_count": desired_count,
        }),
        detail: None,
        undo,
    })
}

async fn are_all_desired_tasks_running(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let (cluster, service) = (c.text("cluster"), c.text("service"));
    let svc = ports.ecs.describe_service(cluster, service).await?;
    let expected = remember_desired(ctx.baselines, cluster, service, svc.desired_count);
    let running = ports.ecs.running_tasks(cluster, Some(service)).await?.len() as i64;
    // Against the count recorded before the method: after the method set
    // desiredCount to 0, "0 of 0 running" must not pass. A service that
    // wanted no tasks has nothing to be steady about.
    let all_running = expected > 0 && running >= expected;
    Ok(Outcome {
        output: json!(all_running),
        detail: Some(json!({
            "running": running,
            "expected": expected,
            "desired_count_now": svc.desired_count,
        })),
        undo: None,
    })
}

async fn describe_service(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let s = ports
        .ecs
        .describe_service(c.text("cluster"), c.text("service"))
        .await?;
    Ok(Outcome::output(json!({"services": [service_json(&s)]})))
}

/// A service as DescribeServices answers (the fields experiments read).
fn service_json(s: &Service) -> Value {
    let mut v = json!({
        "serviceName": s.name,
        "serviceArn": s.arn,
        "status": s.status,
        "desiredCount": s.desired_count,
        "runningCount": s.running_count,
        "pendingCount": s.pending_count,
        "deployments": s.deployments.iter().map(|d| json!({
            "status": d.status,
            "desiredCount": d.desired_count,
            "runningCount": d.running_count,
            "rolloutState": d.rollout_state,
        })).collect::<Vec<_>>(),
        "placementStrategy": placement_json(&s.placement_strategy),
    });
    if let Some((max, min)) = s.deployment_configuration {
        v["deploymentConfiguration"] = json!({"maximumPercent": max, "minimumHealthyPercent": min});
    }
    v
}

fn placement_json(strategy: &[Placement]) -> Value {
    Value::Array(
        strategy
            .iter()
            .map(|p| match &p.field {
                Some(f) => json!({"type": p.kind, "field": f}),
                None => json!({"type": p.kind}),
            })
            .collect(),
    )
}

fn cluster(c: &Call) -> Vec<Resource> {
    vec![CLUSTER.of(c.text("cluster"))]
}

fn task_or_service(c: &Call) -> Vec<Resource> {
    match (c.opt_text("task_id"), c.opt_text("service")) {
        (Some(task), _) => vec![TASK.within(c.text("cluster"), task)],
        (None, Some(s)) => vec![SERVICE.within(c.text("cluster"), s)],
        (None, None) => Vec::new(),
    }
}

fn tagged_resource(c: &Call) -> Vec<Resource> {
    vec![TAGGABLE.of(c.text("resource_arn"))]
}

fn own_tag(key: &str) -> Result<(), String> {
    if key.starts_with(OWN_TAGS) {
        return Err(format!(
            "may not touch '{key}': tags under '{OWN_TAGS}' are Turbulence's own"
        ));
    }
    Ok(())
}

/// `[{"key": ..., "value": ...}]`, none of Turbulence's own.
fn tag_list(v: &Value) -> Result<Value, String> {
    let items = v
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| "must be a non-empty list of {\"key\": ..., \"value\": ...}".to_string())?;
    for (i, t) in items.iter().enumerate() {
        let key = t
            .get("key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty());
        let value = t.get("value").and_then(Value::as_str);
        match (key, value) {
            (Some(k), Some(_)) => own_tag(k)?,
            _ => {
                return Err(format!(
                    "must be a list of {{\"key\": ..., \"value\": ...}} (item {i} is not)"
                ))
            }
        }
    }
    Ok(v.clone())
}

/// A non-empty list of tag keys, none of Turbulence's own.
fn tag_keys(v: &Value) -> Result<Value, String> {
    let keys = v
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| "must be a non-empty list of tag keys".to_string())?;
    for k in keys {
        match k.as_str() {
            Some(k) if !k.is_empty() => own_tag(k)?,
            _ => return Err("must be a non-empty list of tag keys".into()),
        }
    }
    Ok(v.clone())
}

fn placement_field_given(c: &Call) -> Result<(), String> {
    let kind = c.text("placement_type");
    if kind != "random" && c.opt_text("placement_field").is_none() {
        return Err(c.err(
            "placement_field",
            format!("is required with the placement_type \"{kind}\""),
        ));
    }
    Ok(())
}

fn minimum_within_maximum(c: &Call) -> Result<(), String> {
    let (max, min) = (c.int("maximum_percent"), c.int("minimum_healthy_percent"));
    if min > max {
        return Err(c.err(
            "minimum_healthy_percent",
            format!("must be at most 'maximum_percent' ({max}), found {min}"),
        ));
    }
    Ok(())
}

/// The service whose random task `stop_task` stops, when no task is named.
fn random_task_of(c: &Call) -> Option<&str> {
    c.opt_text("service")
        .filter(|_| c.opt_text("task_id").is_none())
}

async fn stop_one_within_blast_radius(
    c: &Call,
    ports: &Ports<'_>,
    caps: &BlastRadius,
) -> Result<(), ActivityError> {
    let Some(service) = random_task_of(c) else {
        return Ok(());
    };
    let cluster = c.text("cluster");
    let running = ports.ecs.running_tasks(cluster, Some(service)).await?.len();
    caps.check(1, running, &tasks_of(cluster, Some(service)))
        .map_err(ActivityError::Refused)
}

async fn stop_task(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let cluster = c.text("cluster");
    let task = match random_task_of(c) {
        None => c.text("task_id").to_string(),
        Some(service) => {
            let of = tasks_of(cluster, Some(service));
            let tasks = ports.ecs.running_tasks(cluster, Some(service)).await?;
            // Again here, not only at Plan: tasks may have gone since.
            ctx.blast_radius
                .check(1, tasks.len(), &of)
                .map_err(ActivityError::Refused)?;
            tasks
                .choose(&mut *ctx.rng)
                .map(|t| t.arn.clone())
                .ok_or_else(|| ActivityError::Failed(format!("no running tasks in {of}")))?
        }
    };
    ports
        .ecs
        .stop_task(cluster, &task, c.text("reason"))
        .await?;
    Ok(Outcome::output(
        json!({"task": {"taskArn": task, "desiredStatus": "STOPPED"}}),
    ))
}

/// Tags as `[{key, value}]`.
fn tags_json(tags: &BTreeMap<String, String>) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

/// The undo of changing a resource's tags from `before` to `after`: one
/// call that removes the keys it lacked and puts back the values it had.
fn tags_undo(
    arn: &str,
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Option<Undo> {
    let added: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    let restore: BTreeMap<String, String> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if added.is_empty() && restore.is_empty() {
        return None;
    }
    Some(Undo {
        name: format!("put back the tags of '{arn}'"),
        call: spec(
            RESTORE_TAGS,
            json!({"resource_arn": arn, "tags": tags_json(&restore), "tag_keys": added}),
        ),
    })
}

/// Change a resource's tags from `before` to `after`, the undo on record
/// first.
async fn retag(
    arn: &str,
    before: BTreeMap<String, String>,
    after: BTreeMap<String, String>,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let undo = tags_undo(arn, &before, &after);
    if let Some(undo) = &undo {
        ctx.undo_log.will_change(undo).await?;
    }
    set_tags(arn, &before, &after, ports).await?;
    Ok(Outcome {
        output: json!({"resourceArn": arn, "tags": tags_json(&after)}),
        detail: Some(json!({"previous": tags_json(&before)})),
        undo,
    })
}

/// Tag and untag so a resource whose tags are `before` has `after`.
async fn set_tags(
    arn: &str,
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    ports: &Ports<'_>,
) -> Result<(), AwsError> {
    let set: BTreeMap<String, String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let removed: Vec<String> = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .cloned()
        .collect();
    if !set.is_empty() {
        ports.ecs.tag_resource(arn, &set).await?;
    }
    if !removed.is_empty() {
        ports.ecs.untag_resource(arn, &removed).await?;
    }
    Ok(())
}

/// `[{key, value}]` as a map.
fn tag_map(v: &Value) -> BTreeMap<String, String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                t.get("key")?.as_str()?.to_string(),
                t.get("value")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

async fn restore_tags(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let arn = c.text("resource_arn");
    let before = ports.ecs.resource_tags(arn).await?;
    let mut after = before.clone();
    for key in c.value("tag_keys").as_array().into_iter().flatten() {
        if let Some(k) = key.as_str() {
            after.remove(k);
        }
    }
    after.extend(tag_map(c.value("tags")));
    set_tags(arn, &before, &after, ports).await?;
    Ok(Outcome::output(
        json!({"resourceArn": arn, "tags": tags_json(&after)}),
    ))
}

async fn tag_resource(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let arn = c.text("resource_arn");
    let before = ports.ecs.resource_tags(arn).await?;
    let mut after = before.clone();
    after.extend(tag_map(c.value("tags")));
    retag(arn, before, after, ports, ctx).await
}

async fn untag_resource(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let arn = c.text("resource_arn");
    let before = ports.ecs.resource_tags(arn).await?;
    let keys = c.texts("tag_keys");
    let after = before
        .iter()
        .filter(|(k, _)| !keys.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    retag(arn, before, after, ports, ctx).await
}

fn strategy_of(v: &Value) -> Vec<Placement> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some(Placement {
                kind: p.get("type")?.as_str()?.to_string(),
                field: p.get("field").and_then(Value::as_str).map(str::to_string),
            })
        })
        .collect()
}

async fn set_service_placement_strategy(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let (cluster, service) = (c.text("cluster"), c.text("service"));
    let before = ports.ecs.describe_service(cluster, service).await?;
    let kind = c.text("placement_type");
    let wanted = vec![Placement {
        kind: kind.into(),
        field: c
            .opt_text("placement_field")
            .filter(|_| kind != "random")
            .map(str::to_string),
    }];
    let undo = (before.placement_strategy != wanted).then(|| Undo {
        name: format!("put back the placement strategy of '{service}'"),
        call: spec(
            RESTORE_PLACEMENT,
            json!({"cluster": cluster, "service": service,
                "strategy": placement_json(&before.placement_strategy)}),
        ),
    });
    if let Some(undo) = &undo {
        ctx.undo_log.will_change(undo).await?;
    }
    ports
        .ecs
        .update_placement_strategy(cluster, service, &wanted)
        .await?;
    Ok(Outcome {
        output: json!({"service": service, "placementStrategy": placement_json(&wanted)}),
        detail: Some(json!({"previous": placement_json(&before.placement_strategy)})),
        undo,
    })
}

async fn restore_placement_strategy(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let (cluster, service) = (c.text("cluster"), c.text("service"));
    let strategy = strategy_of(c.value("strategy"));
    ports
        .ecs
        .update_placement_strategy(cluster, service, &strategy)
        .await?;
    Ok(Outcome::output(
        json!({"service": service, "placementStrategy": placement_json(&strategy)}),
    ))
}

async fn set_service_deployment_configuration(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let (cluster, service) = (c.text("cluster"), c.text("service"));
    let wanted = (
        i32::try_from(c.int("maximum_percent")).unwrap_or(200),
        i32::try_from(c.int("minimum_healthy_percent")).unwrap_or(100),
    );
    let before = ports.ecs.describe_service(cluster, service).await?;
    // ECS's defaults for a replica service, when it reports none.
    let found = before.deployment_configuration.unwrap_or((200, 100));
    let undo = (found != wanted).then(|| Undo {
        name: format!(
            "set the deployment configuration of '{service}' back to {}/{}",
            found.0, found.1
        ),
        call: spec(
            DEPLOYMENT,
            json!({"cluster": cluster, "service": service,
                "maximum_percent": found.0, "minimum_healthy_percent": found.1}),
        ),
    });
    if let Some(undo) = &undo {
        ctx.undo_log.will_change(undo).await?;
    }
    ports
        .ecs
        .update_deployment_configuration(cluster, service, wanted.0, wanted.1)
        .await?;
    Ok(Outcome {
        output: json!({"service": service, "deploymentConfiguration":
            {"maximumPercent": wanted.0, "minimumHealthyPercent": wanted.1}}),
        detail: Some(
            json!({"previous": {"maximumPercent": found.0, "minimumHealthyPercent": found.1}}),
        ),
        undo,
    })
}

/// The named instances (by ID or ARN) as the cluster has them, and how
/// many of the cluster's are ACTIVE.
async fn instances_named(
    c: &Call,
    ports: &Ports<'_>,
) -> Result<(Vec<ContainerInstance>, usize), ActivityError> {
    let cluster = c.text("cluster");
    let all = ports.ecs.container_instances(cluster).await?;
    let mut named = Vec::new();
    for want in c.texts("container_instances") {
        let found = all
            .iter()
            .find(|i| i.arn == want || i.arn.rsplit('/').next() == Some(want))
            .ok_or_else(|| {
                ActivityError::Failed(format!(
                    "container instance '{want}' is not in cluster '{cluster}'"
                ))
            })?;
        named.push(found.clone());
    }
    let active = all.iter().filter(|i| i.status == "ACTIVE").count();
    Ok((named, active))
}

/// Draining is a stop of every task on the instances: the blast radius
/// caps it over the cluster's ACTIVE instances.
fn check_drain(
    c: &Call,
    named: &[ContainerInstance],
    active: usize,
    caps: &BlastRadius,
) -> Result<(), ActivityError> {
    if c.text("status") != "DRAINING" {
        return Ok(());
    }
    let draining = named.iter().filter(|i| i.status == "ACTIVE").count();
    let of = format!("cluster '{}'", c.text("cluster"));
    caps.check_share(
        "draining",
        draining,
        active,
        "ACTIVE container instances",
        &of,
    )
    .map_err(ActivityError::Refused)
}

async fn drain_within_blast_radius(
    c: &Call,
    ports: &Ports<'_>,
    caps: &BlastRadius,
) -> Result<(), ActivityError> {
    let (named, active) = instances_named(c, ports).await?;
    check_drain(c, &named, active, caps)
}

async fn update_container_instances_state(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let (cluster, status) = (c.text("cluster"), c.text("status"));
    let (named, active) = instances_named(c, ports).await?;
    // Again here, not only at Plan: instances may have drained since.
    check_drain(c, &named, active, &ctx.blast_radius)?;
    if let Some(odd) = named
        .iter()
        .find(|i| i.status != "ACTIVE" && i.status != "DRAINING")
    {
        return Err(ActivityError::Failed(format!(
            "container instance '{}' is {}: only ACTIVE and DRAINING instances can be set",
            odd.arn, odd.status
        )));
    }
    // The others are so already. Only ACTIVE and DRAINING can be set, so
    // every instance that changes goes back to the one other state.
    let changing: Vec<&str> = named
        .iter()
        .filter(|i| i.status != status)
        .map(|i| i.arn.as_str())
        .collect();
    let back = if status == "ACTIVE" {
        "DRAINING"
    } else {
        "ACTIVE"
    };
    let undo = (!changing.is_empty()).then(|| Undo {
        name: format!(
            "set {} container instances of '{cluster}' back to {back}",
            changing.len()
        ),
        call: spec(
            INSTANCES_STATE,
            json!({"cluster": cluster, "container_instances": changing, "status": back}),
        ),
    });
    if let Some(undo) = &undo {
        ctx.undo_log.will_change(undo).await?;
    }
    let arns: Vec<String> = changing.iter().map(|a| a.to_string()).collect();
    if !arns.is_empty() {
        ports
            .ecs
            .set_container_instances_state(cluster, &arns, status)
            .await?;
    }
    Ok(Outcome {
        output: json!({"containerInstances": named.iter().map(|i| json!({
            "containerInstanceArn": i.arn, "status": status})).collect::<Vec<_>>()}),
        detail: Some(json!({"changed": arns.len()})),
        undo,
    })
}

async fn service_is_deploying(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let s = ports
        .ecs
        .describe_service(c.text("cluster"), c.text("service"))
        .await?;
    Ok(Outcome {
        output: json!(s.deployments.len() > 1),
        detail: Some(json!({"deployments": s.deployments.len()})),
        undo: None,
    })
}

async fn describe_cluster(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let cl = ports.ecs.describe_cluster(c.text("cluster")).await?;
    Ok(Outcome::output(json!({"clusters": [{
        "clusterName": cl.name,
        "clusterArn": cl.arn,
        "status": cl.status,
        "runningTasksCount": cl.running_tasks,
        "pendingTasksCount": cl.pending_tasks,
        "activeServicesCount": cl.active_services,
        "registeredContainerInstancesCount": cl.container_instances,
    }]})))
}

async fn describe_tasks(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let tasks = ports.ecs.tasks(c.text("cluster")).await?;
    Ok(Outcome::output(
        json!({"tasks": tasks.iter().map(|t| json!({
        "taskArn": t.arn,
        "lastStatus": t.last_status,
        "desiredStatus": t.desired_status,
        "group": t.group,
        "healthStatus": t.health_status,
        "taskDefinitionArn": t.task_definition,
    })).collect::<Vec<_>>()}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeEcs;
    use crate::testing::{call, T};

    #[tokio::test]
    async fn stops_the_asked_number_of_running_tasks() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 3));
        let stop = call(
            STOP_RANDOM_TASKS,
            json!({"cluster": "c", "service": "web", "task_count": 1, "reason": "chaos"}),
        );
        let out = t.run(&stop).await.unwrap();
        let stopped: Vec<String> = serde_json::from_value(out.output).unwrap();
        assert_eq!(stopped.len(), 1);
        assert_eq!(t.ecs.stopped(), stopped);
        assert_eq!(t.baselines[&desired_count_key("c", "web")], json!(3));
        assert!(out.undo.is_none());
    }

    #[tokio::test]
    async fn stopping_more_tasks_than_run_fails_without_stopping_any() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 2));
        let stop = call(
            STOP_RANDOM_TASKS,
            json!({"cluster": "c", "service": "web", "task_count": 3}),
        );
        let err = t.run(&stop).await.unwrap_err();
        assert_eq!(
            err,
            ActivityError::Failed(
                "asked to stop 3 tasks but service 'web' of cluster 'c' has only 2 running".into()
            )
        );
        assert!(t.ecs.stopped().is_empty());
    }

    #[tokio::test]
    async fn a_stop_over_the_blast_radius_is_refused_before_any_task_stops() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 3));
        t.blast_radius = BlastRadius::default();
        let stop = call(
            STOP_RANDOM_TASKS,
            json!({"cluster": "c", "service": "web", "task_percent": 100}),
        );
        let err = t.run(&stop).await.unwrap_err();
        assert_eq!(
            err,
            ActivityError::Refused("stopping 3 of the 3 running tasks of service 'web' of cluster 'c' is over the blast-radius cap of 50% of running tasks".into())
        );
        assert!(t.ecs.stopped().is_empty());
    }

    #[tokio::test]
    async fn percent_rounds_up_to_at_least_one_task() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 3));
        let stop = call(
            STOP_RANDOM_TASKS,
            json!({"cluster": "c", "service": "web", "task_percent": 10}),
        );
        t.run(&stop).await.unwrap();
        assert_eq!(t.ecs.stopped().len(), 1);
    }

    #[tokio::test]
    async fn the_preflight_counts_the_tasks_running_now() {
        let t = T::new(FakeEcs::with_service("c", "web", 2));
        let stop = call(
            STOP_RANDOM_TASKS,
            json!({"cluster": "c", "service": "web", "task_count": 2}),
        );
        let err = t
            .preflight(&stop, &BlastRadius::default())
            .await
            .unwrap_err();
        assert_eq!(
            err,
            ActivityError::Refused("stopping 2 of the 2 running tasks of service 'web' of cluster 'c' is over the blast-radius cap of 50% of running tasks".into())
        );
        let one = call(
            STOP_RANDOM_TASKS,
            json!({"cluster": "c", "service": "web", "task_count": 1}),
        );
        t.preflight(&one, &BlastRadius::default()).await.unwrap();
    }

    #[test]
    fn a_stop_touches_its_service_or_its_whole_cluster() {
        let of_service = call(
            STOP_RANDOM_TASKS,
            json!({"cluster": "c", "service": "web", "task_count": 1}),
        );
        let of_cluster = call(STOP_RANDOM_TASKS, json!({"cluster": "c", "task_count": 1}));
        let (s, cl) = (of_service.touches(), of_cluster.touches());
        assert_eq!(s[0].to_string(), "ECS service 'web' of cluster 'c'");
        assert_eq!(cl[0].to_string(), "ECS cluster 'c'");
        assert!(s[0].overlaps(&cl[0]) && cl[0].overlaps(&s[0]));
        assert_eq!(s[0].lock_parameter(), "/turbulence/locks/ecs/c/web");
        assert_eq!(cl[0].lock_parameter(), "/turbulence/locks/ecs/c");
        let other = call(STOP_RANDOM_TASKS, json!({"cluster": "d", "task_count": 1}));
        assert!(!other.touches()[0].overlaps(&s[0]));
    }

    #[tokio::test]
    async fn update_desired_count_records_the_count_it_found_as_undo() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 3));
        let zero = call(
            UPDATE_DESIRED_COUNT,
            json!({"cluster": "c", "service": "web", "desired_count": 0}),
        );
        let out = t.run(&zero).await.unwrap();
        assert_eq!(t.ecs.desired("c", "web"), 0);
        let undo = out.undo.unwrap();
        assert_eq!(undo.call.arguments["desired_count"], json!(3));
        // The undo is itself a valid catalogued call, and it restores.
        t.run(&Call::parse(&undo.call).unwrap()).await.unwrap();
        assert_eq!(t.ecs.desired("c", "web"), 3);
    }

    #[tokio::test]
    async fn the_undo_is_logged_before_the_change_and_no_log_means_no_change() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 3));
        let zero = call(
            UPDATE_DESIRED_COUNT,
            json!({"cluster": "c", "service": "web", "desired_count": 0}),
        );
        let out = t.run(&zero).await.unwrap();
        assert_eq!(t.undo_log.undos(), vec![out.undo.unwrap()]);

        let mut t = T::new(FakeEcs::with_service("c", "web", 3));
        t.undo_log.fail = true;
        let err = t.run(&zero).await.unwrap_err();
        assert!(err.to_string().contains("access denied"), "{err}");
        assert_eq!(
            t.ecs.desired("c", "web"),
            3,
            "nothing changed without an undo on record"
        );
    }

    #[tokio::test]
    async fn all_running_compares_against_the_count_before_the_method() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 3));
        let probe = call(
            "chaosaws.ecs.probes.are_all_desired_tasks_running",
            json!({"cluster": "c", "service": "web"}),
        );
        assert_eq!(t.run(&probe).await.unwrap().output, json!(true));

        // The method scales the service to zero: 0 running of 0 desired.
        let zero = call(
            UPDATE_DESIRED_COUNT,
            json!({"cluster": "c", "service": "web", "desired_count": 0}),
        );
        t.run(&zero).await.unwrap();
        t.ecs.set_running("c", "web", 0);
        let out = t.run(&probe).await.unwrap();
        assert_eq!(out.output, json!(false), "0 == 0 must not pass");
        assert_eq!(out.detail.unwrap()["expected"], json!(3));

        // Autoscaling brought it back.
        t.ecs.set_desired("c", "web", 3);
        t.ecs.set_running("c", "web", 3);
        assert_eq!(t.run(&probe).await.unwrap().output, json!(true));
    }

    #[tokio::test]
    async fn a_service_that_wants_no_tasks_is_not_steady() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 0));
        let probe = call(
            "chaosaws.ecs.probes.are_all_desired_tasks_running",
            json!({"cluster": "c", "service": "web"}),
        );
        assert_eq!(t.run(&probe).await.unwrap().output, json!(false));
    }

    async fn undo(t: &mut T, out: Outcome) {
        let undo = out.undo.expect("an undo");
        assert!(
            t.undo_log.undos().contains(&undo),
            "logged before the change"
        );
        t.run(&Call::parse(&undo.call).unwrap()).await.unwrap();
    }

    #[tokio::test]
    async fn stop_task_stops_the_named_task_or_one_of_the_service() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 3));
        let one = call(STOP_TASK, json!({"cluster": "c", "service": "web"}));
        let out = t.run(&one).await.unwrap();
        assert_eq!(t.ecs.stopped().len(), 1);
        assert!(out.undo.is_none());
        let named = call(
            STOP_TASK,
            json!({"cluster": "c", "task_id": "arn:aws:ecs:task/c/1"}),
        );
        t.run(&named).await.unwrap();
        assert!(t
            .ecs
            .stopped()
            .contains(&"arn:aws:ecs:task/c/1".to_string()));
        assert_eq!(
            named.touches()[0].to_string(),
            "ECS task 'arn:aws:ecs:task/c/1' of cluster 'c'"
        );
        let e = Call::parse(&spec(STOP_TASK, json!({"cluster": "c"}))).unwrap_err();
        assert_eq!(
            e,
            "at least one of 'task_id' and 'service' is required by chaosaws.ecs.actions.stop_task"
        );
    }

    #[tokio::test]
    async fn stop_task_of_the_last_task_is_over_the_blast_radius() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 1));
        t.blast_radius = BlastRadius::default();
        let one = call(STOP_TASK, json!({"cluster": "c", "service": "web"}));
        assert!(matches!(t.run(&one).await, Err(ActivityError::Refused(_))));
        assert!(t.preflight(&one, &BlastRadius::default()).await.is_err());
        assert!(t.ecs.stopped().is_empty());
    }

    const WEB: &str = "arn:aws:ecs:us-east-1:1:service/c/web";

    #[tokio::test]
    async fn tags_are_set_and_put_back_as_they_were() {
        let mut t = T::new(FakeEcs::default());
        t.ecs.tag_arn(WEB, "team", "shop");
        let tag = call(
            TAG,
            json!({"resource_arn": WEB, "tags": [{"key": "team", "value": "chaos"}, {"key": "new", "value": "x"}]}),
        );
        let out = t.run(&tag).await.unwrap();
        assert_eq!(t.ecs.arn_tags(WEB).len(), 2);
        undo(&mut t, out).await;
        assert_eq!(
            t.ecs.arn_tags(WEB),
            BTreeMap::from([("team".to_string(), "shop".to_string())])
        );
        let untag = call(UNTAG, json!({"resource_arn": WEB, "tag_keys": ["team"]}));
        let out = t.run(&untag).await.unwrap();
        assert!(t.ecs.arn_tags(WEB).is_empty());
        undo(&mut t, out).await;
        assert_eq!(t.ecs.arn_tags(WEB)["team"], "shop");
    }

    #[test]
    fn turbulences_own_tags_are_refused() {
        let e = Call::parse(&spec(
            UNTAG,
            json!({"resource_arn": WEB, "tag_keys": ["turbulence:opt-in"]}),
        ))
        .unwrap_err();
        assert_eq!(e, "argument 'tag_keys' of chaosaws.ecs.actions.untag_resource may not touch 'turbulence:opt-in': tags under 'turbulence:' are Turbulence's own");
        assert!(Call::parse(&spec(
            TAG,
            json!({"resource_arn": WEB, "tags": [{"key": "turbulence:opt-in", "value": "true"}]}),
        ))
        .is_err());
    }

    #[tokio::test]
    async fn placement_and_deployment_configuration_are_put_back() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 2));
        let spread = call(
            PLACEMENT,
            json!({"cluster": "c", "service": "web", "placement_type": "spread", "placement_field": "attribute:ecs.availability-zone"}),
        );
        let out = t.run(&spread).await.unwrap();
        assert_eq!(t.ecs.placement("c", "web")[0].kind, "spread");
        undo(&mut t, out).await;
        assert!(t.ecs.placement("c", "web").is_empty());
        let e = Call::parse(&spec(
            PLACEMENT,
            json!({"cluster": "c", "service": "web", "placement_type": "binpack"}),
        ))
        .unwrap_err();
        assert!(
            e.contains("'placement_field'") && e.contains("binpack"),
            "{e}"
        );

        let tight = call(
            DEPLOYMENT,
            json!({"cluster": "c", "service": "web", "maximum_percent": 100, "minimum_healthy_percent": 0}),
        );
        let out = t.run(&tight).await.unwrap();
        assert_eq!(t.ecs.deployment_configuration("c", "web"), Some((100, 0)));
        undo(&mut t, out).await;
        assert_eq!(t.ecs.deployment_configuration("c", "web"), Some((200, 100)));
        let e = Call::parse(&spec(
            DEPLOYMENT,
            json!({"cluster": "c", "service": "web", "maximum_percent": 50, "minimum_healthy_percent": 60}),
        ))
        .unwrap_err();
        assert_eq!(e, "argument 'minimum_healthy_percent' of chaosaws.ecs.actions.set_service_deployment_configuration must be at most 'maximum_percent' (50), found 60");
    }

    #[tokio::test]
    async fn draining_instances_is_capped_and_put_back() {
        let mut t = T::new(FakeEcs::default().with_instances("c", 4));
        let drain = |n: usize| {
            let ids: Vec<String> = (0..n).map(|i| format!("ci-{i}")).collect();
            call(
                INSTANCES_STATE,
                json!({"cluster": "c", "container_instances": ids, "status": "DRAINING"}),
            )
        };
        let caps = BlastRadius::default();
        assert!(t.preflight(&drain(2), &caps).await.is_ok());
        let e = t.preflight(&drain(3), &caps).await.unwrap_err();
        assert_eq!(e, ActivityError::Refused("draining 3 of the 4 ACTIVE container instances of cluster 'c' is over the blast-radius cap of 50% of ACTIVE container instances".into()));
        let out = t.run(&drain(2)).await.unwrap();
        assert_eq!(
            t.ecs.instance_states("c"),
            ["DRAINING", "DRAINING", "ACTIVE", "ACTIVE"]
        );
        undo(&mut t, out).await;
        assert_eq!(t.ecs.instance_states("c"), ["ACTIVE"; 4]);
        assert_eq!(drain(1).touches()[0].to_string(), "ECS cluster 'c'");
    }

    #[tokio::test]
    async fn the_probes_answer_as_chaosaws_does() {
        let mut t = T::new(FakeEcs::with_service("c", "web", 2));
        let args = json!({"cluster": "c", "service": "web"});
        let deploying = call("chaosaws.ecs.probes.service_is_deploying", args.clone());
        assert_eq!(t.run(&deploying).await.unwrap().output, json!(false));
        t.ecs.set_deployments("c", "web", 2);
        assert_eq!(t.run(&deploying).await.unwrap().output, json!(true));
        let service = t
            .run(&call("chaosaws.ecs.probes.describe_service", args))
            .await
            .unwrap()
            .output;
        assert_eq!(service["services"][0]["runningCount"], 2);
        let cluster = t
            .run(&call(
                "chaosaws.ecs.probes.describe_cluster",
                json!({"cluster": "c"}),
            ))
            .await
            .unwrap()
            .output;
        assert_eq!(cluster["clusters"][0]["runningTasksCount"], 2);
        let tasks = t
            .run(&call(
                "chaosaws.ecs.probes.describe_tasks",
                json!({"cluster": "c"}),
            ))
            .await
            .unwrap()
            .output;
        assert_eq!(tasks["tasks"].as_array().unwrap().len(), 2);
        assert_eq!(tasks["tasks"][0]["group"], "service:web");
    }
}
