//! Amazon ECS: chaosaws's `ecs` module.

use std::collections::BTreeMap;

use async_trait::async_trait;
use rand::seq::IndexedRandom;
use serde_json::{json, Value};

use crate::catalogue::{
    int, read, spec, tagged, text, Activity, Call, Module, OptIn, Refusal, Resource, ResourceType,
    Revert, Rule,
};
use crate::guard::BlastRadius;
use crate::ports::{unavailable, AwsError, Unavailable};
use crate::{preflight, run, ActivityError, Context, Outcome, Ports, Undo};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub status: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub pending_count: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub arn: String,
    pub last_status: String,
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

const STOP_RANDOM_TASKS: &str = "chaosaws.ecs.actions.stop_random_tasks";
const UPDATE_DESIRED_COUNT: &str = "chaosaws.ecs.actions.update_desired_count";

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
            .doc("`serviceName`, `status`, `desiredCount`, `runningCount`, `pendingCount`.")
            .params(&[text("cluster"), text("service")])
            .iam(&[read("ecs:DescribeServices")])
            .example(r#"{"cluster": "shop", "service": "web"}"#),
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
        Refusal::not_native("chaosaws.ecs.actions.stop_task", "not in the catalogue yet"),
        Refusal::not_native("chaosaws.ecs.actions.tag_resource", "not in the catalogue yet"),
        Refusal::not_native("chaosaws.ecs.actions.untag_resource", "not in the catalogue yet"),
        Refusal::not_native(
            "chaosaws.ecs.actions.set_service_placement_strategy",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.ecs.actions.set_service_deployment_configuration",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.ecs.actions.update_container_instances_state",
            "not in the catalogue yet",
        ),
        Refusal::not_native("chaosaws.ecs.probes.service_is_deploying", "not in the catalogue yet"),
        Refusal::not_native("chaosaws.ecs.probes.describe_cluster", "not in the catalogue yet"),
        Refusal::not_native("chaosaws.ecs.probes.describe_tasks", "not in the catalogue yet"),
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
    Ok(Outcome::output(json!({
        "serviceName": s.name,
        "status": s.status,
        "desiredCount": s.desired_count,
        "runningCount": s.running_count,
        "pendingCount": s.pending_count,
    })))
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
}
