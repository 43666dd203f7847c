//! The ECS port over aws-sdk-ecs.

use std::collections::BTreeMap;

use activities::ecs::{Cluster, ContainerInstance, Deployment, Placement, TaskInfo};
use activities::ports::{AwsError, Ecs, Service, Task};
use async_trait::async_trait;
use aws_sdk_ecs::types::{DesiredStatus, PlacementStrategy, PlacementStrategyType};

use crate::classify;

pub struct AwsEcs(pub aws_sdk_ecs::Client);

#[async_trait]
impl Ecs for AwsEcs {
    async fn describe_service(&self, cluster: &str, service: &str) -> Result<Service, AwsError> {
        let out = self
            .0
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| classify("ecs:DescribeServices", e))?;
        let found = out
            .services()
            .iter()
            .find(|s| s.service_name() == Some(service) || s.service_arn() == Some(service));
        match found {
            Some(s) if s.status() != Some("INACTIVE") => Ok(Service {
                name: s.service_name().unwrap_or(service).to_string(),
                arn: s.service_arn().unwrap_or_default().to_string(),
                status: s.status().unwrap_or_default().to_string(),
                desired_count: s.desired_count(),
                running_count: s.running_count(),
                pending_count: s.pending_count(),
                deployments: s
                    .deployments()
                    .iter()
                    .map(|d| Deployment {
                        status: d.status().unwrap_or_default().to_string(),
                        desired_count: d.desired_count(),
                        running_count: d.running_count(),
                        rollout_state: d.rollout_state().map(|r| r.as_str().to_string()),
                    })
                    .collect(),
                deployment_configuration: s
                    .deployment_configuration()
                    .and_then(|c| Some((c.maximum_percent()?, c.minimum_healthy_percent()?))),
                placement_strategy: s
                    .placement_strategy()
                    .iter()
                    .filter_map(|p| {
                        Some(Placement {
                            kind: p.r#type()?.as_str().to_string(),
                            field: p.field().map(str::to_string),
                        })
                    })
                    .collect(),
            }),
            _ => Err(AwsError::NotFound(format!(
                "service '{service}' not found in cluster '{cluster}'"
            ))),
        }
    }

    async fn running_tasks(
        &self,
        cluster: &str,
        service: Option<&str>,
    ) -> Result<Vec<Task>, AwsError> {
        let mut arns = Vec::new();
        let mut pages = self
            .0
            .list_tasks()
            .cluster(cluster)
            .set_service_name(service.map(str::to_string))
            .desired_status(DesiredStatus::Running)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ecs:ListTasks", e))?;
            arns.extend(page.task_arns().iter().cloned());
        }
        let group = service.map(|s| format!("service:{s}"));
        let mut tasks = Vec::new();
        // DescribeTasks takes at most 100 tasks a call.
        for batch in arns.chunks(100) {
            let out = self
                .0
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| classify("ecs:DescribeTasks", e))?;
            for t in out.tasks() {
                let in_service = match &group {
                    Some(g) => t.group() == Some(g.as_str()),
                    None => true,
                };
                if in_service && t.last_status() == Some("RUNNING") {
                    if let Some(arn) = t.task_arn() {
                        tasks.push(Task {
                            arn: arn.to_string(),
                            last_status: "RUNNING".into(),
                        });
                    }
                }
            }
        }
        Ok(tasks)
    }

    async fn stop_task(&self, cluster: &str, task_arn: &str, reason: &str) -> Result<(), AwsError> {
        self.0
            .stop_task()
            .cluster(cluster)
            .task(task_arn)
            .reason(reason)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ecs:StopTask", e))
    }

    async fn update_desired_count(
        &self,
        cluster: &str,
        service: &str,
        desired_count: i32,
    ) -> Result<(), AwsError> {
        self.0
            .update_service()
            .cluster(cluster)
            .service(service)
            .desired_count(desired_count)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ecs:UpdateService", e))
    }

    async fn tags(
        &self,
        cluster: &str,
        service: Option<&str>,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        use aws_sdk_ecs::types::{ClusterField, ServiceField};
        let tags = match service {
            Some(service) => {
                let out = self
                    .0
                    .describe_services()
                    .cluster(cluster)
                    .services(service)
                    .include(ServiceField::Tags)
                    .send()
                    .await
                    .map_err(|e| classify("ecs:DescribeServices", e))?;
                let s = out
                    .services()
                    .iter()
                    .find(|s| s.service_name() == Some(service) || s.service_arn() == Some(service))
                    .ok_or_else(|| {
                        AwsError::NotFound(format!(
                            "service '{service}' not found in cluster '{cluster}'"
                        ))
                    })?;
                s.tags().to_vec()
            }
            None => {
                let out = self
                    .0
                    .describe_clusters()
                    .clusters(cluster)
                    .include(ClusterField::Tags)
                    .send()
                    .await
                    .map_err(|e| classify("ecs:DescribeClusters", e))?;
                let c = out
                    .clusters()
                    .first()
                    .ok_or_else(|| AwsError::NotFound(format!("cluster '{cluster}' not found")))?;
                c.tags().to_vec()
            }
        };
        Ok(tags
            .into_iter()
            .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
            .collect())
    }

    async fn task_tags(
        &self,
        cluster: &str,
        task: &str,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        let out = self
            .0
            .describe_tasks()
            .cluster(cluster)
            .tasks(task)
            .include(aws_sdk_ecs::types::TaskField::Tags)
            .send()
            .await
            .map_err(|e| classify("ecs:DescribeTasks", e))?;
        let t = out.tasks().first().ok_or_else(|| {
            AwsError::NotFound(format!("task '{task}' not found in cluster '{cluster}'"))
        })?;
        Ok(tag_map(t.tags()))
    }

    async fn describe_cluster(&self, cluster: &str) -> Result<Cluster, AwsError> {
        let out = self
            .0
            .describe_clusters()
            .clusters(cluster)
            .send()
            .await
            .map_err(|e| classify("ecs:DescribeClusters", e))?;
        let c = out
            .clusters()
            .first()
            .ok_or_else(|| AwsError::NotFound(format!("cluster '{cluster}' not found")))?;
        Ok(Cluster {
            name: c.cluster_name().unwrap_or(cluster).to_string(),
            arn: c.cluster_arn().unwrap_or_default().to_string(),
            status: c.status().unwrap_or_default().to_string(),
            running_tasks: c.running_tasks_count(),
            pending_tasks: c.pending_tasks_count(),
            active_services: c.active_services_count(),
            container_instances: c.registered_container_instances_count(),
        })
    }

    async fn tasks(&self, cluster: &str) -> Result<Vec<TaskInfo>, AwsError> {
        let mut arns = Vec::new();
        let mut pages = self
            .0
            .list_tasks()
            .cluster(cluster)
            .desired_status(DesiredStatus::Running)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ecs:ListTasks", e))?;
            arns.extend(page.task_arns().iter().cloned());
        }
        let mut tasks = Vec::new();
        for batch in arns.chunks(100) {
            let out = self
                .0
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| classify("ecs:DescribeTasks", e))?;
            // ListTasks' filter, again: moto ignores it.
            let running = out
                .tasks()
                .iter()
                .filter(|t| t.desired_status() == Some("RUNNING"));
            tasks.extend(running.map(|t| TaskInfo {
                arn: t.task_arn().unwrap_or_default().to_string(),
                last_status: t.last_status().unwrap_or_default().to_string(),
                desired_status: t.desired_status().unwrap_or_default().to_string(),
                group: t.group().map(str::to_string),
                health_status: t.health_status().map(|h| h.as_str().to_string()),
                task_definition: t.task_definition_arn().map(str::to_string),
            }));
        }
        Ok(tasks)
    }

    async fn update_deployment_configuration(
        &self,
        cluster: &str,
        service: &str,
        maximum_percent: i32,
        minimum_healthy_percent: i32,
    ) -> Result<(), AwsError> {
        let configuration = aws_sdk_ecs::types::DeploymentConfiguration::builder()
            .maximum_percent(maximum_percent)
            .minimum_healthy_percent(minimum_healthy_percent)
            .build();
        self.0
            .update_service()
            .cluster(cluster)
            .service(service)
            .deployment_configuration(configuration)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ecs:UpdateService", e))
    }

    async fn update_placement_strategy(
        &self,
        cluster: &str,
        service: &str,
        strategy: &[Placement],
    ) -> Result<(), AwsError> {
        let strategy = strategy
            .iter()
            .map(|p| {
                PlacementStrategy::builder()
                    .r#type(PlacementStrategyType::from(p.kind.as_str()))
                    .set_field(p.field.clone())
                    .build()
            })
            .collect();
        self.0
            .update_service()
            .cluster(cluster)
            .service(service)
            .set_placement_strategy(Some(strategy))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ecs:UpdateService", e))
    }

    async fn resource_tags(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let out = self
            .0
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| classify("ecs:ListTagsForResource", e))?;
        Ok(tag_map(out.tags()))
    }

    async fn tag_resource(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let tags = tags
            .iter()
            .map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build())
            .collect();
        self.0
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ecs:TagResource", e))
    }

    async fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<(), AwsError> {
        self.0
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ecs:UntagResource", e))
    }

    async fn container_instances(&self, cluster: &str) -> Result<Vec<ContainerInstance>, AwsError> {
        let mut arns = Vec::new();
        let mut pages = self
            .0
            .list_container_instances()
            .cluster(cluster)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ecs:ListContainerInstances", e))?;
            arns.extend(page.container_instance_arns().iter().cloned());
        }
        let mut found = Vec::new();
        for batch in arns.chunks(100) {
            let out = self
                .0
                .describe_container_instances()
                .cluster(cluster)
                .set_container_instances(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| classify("ecs:DescribeContainerInstances", e))?;
            found.extend(out.container_instances().iter().map(|i| ContainerInstance {
                arn: i.container_instance_arn().unwrap_or_default().to_string(),
                status: i.status().unwrap_or_default().to_string(),
            }));
        }
        Ok(found)
    }

    async fn set_container_instances_state(
        &self,
        cluster: &str,
        instances: &[String],
        status: &str,
    ) -> Result<(), AwsError> {
        self.0
            .update_container_instances_state()
            .cluster(cluster)
            .set_container_instances(Some(instances.to_vec()))
            .status(aws_sdk_ecs::types::ContainerInstanceStatus::from(status))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ecs:UpdateContainerInstancesState", e))
    }
}

fn tag_map(tags: &[aws_sdk_ecs::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}
