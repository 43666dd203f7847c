//! The ECS port over aws-sdk-ecs.

use std::collections::BTreeMap;

use activities::ports::{AwsError, Ecs, Service, Task};
use async_trait::async_trait;
use aws_sdk_ecs::types::DesiredStatus;

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
                status: s.status().unwrap_or_default().to_string(),
                desired_count: s.desired_count(),
                running_count: s.running_count(),
                pending_count: s.pending_count(),
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
}
