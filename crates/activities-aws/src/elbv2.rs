//! The Elastic Load Balancing (v2) port over aws-sdk-elasticloadbalancingv2.

use std::collections::BTreeMap;

use activities::elbv2::{LoadBalancer, LoadBalancing, TargetGroup, TargetHealth};
use activities::ports::AwsError;
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{LoadBalancerAttribute, TargetDescription};

use crate::classify;

pub struct AwsLoadBalancing(pub aws_sdk_elasticloadbalancingv2::Client);

const ACCESS_LOGS: &str = "access_logs.s3.enabled";
const ACCESS_LOGS_BUCKET: &str = "access_logs.s3.bucket";

fn descriptions(targets: &[(String, Option<i32>)]) -> Vec<TargetDescription> {
    targets
        .iter()
        .map(|(id, port)| TargetDescription::builder().id(id).set_port(*port).build())
        .collect()
}

fn attribute(key: &str, value: &str) -> LoadBalancerAttribute {
    LoadBalancerAttribute::builder()
        .key(key)
        .value(value)
        .build()
}

#[async_trait]
impl LoadBalancing for AwsLoadBalancing {
    async fn target_groups(&self, names: &[String]) -> Result<Vec<TargetGroup>, AwsError> {
        let out = self
            .0
            .describe_target_groups()
            .set_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(s) if s.is_target_group_not_found_exception() => {
                    AwsError::NotFound(format!("target groups {names:?}: not found"))
                }
                _ => classify("elasticloadbalancing:DescribeTargetGroups", e),
            })?;
        Ok(out
            .target_groups()
            .iter()
            .map(|g| TargetGroup {
                name: g.target_group_name().unwrap_or_default().to_string(),
                arn: g.target_group_arn().unwrap_or_default().to_string(),
            })
            .collect())
    }

    async fn target_health(&self, target_group_arn: &str) -> Result<Vec<TargetHealth>, AwsError> {
        let out = self
            .0
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|e| classify("elasticloadbalancing:DescribeTargetHealth", e))?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .filter_map(|d| {
                let target = d.target()?;
                Some(TargetHealth {
                    id: target.id()?.to_string(),
                    port: target.port(),
                    state: d
                        .target_health()
                        .and_then(|h| h.state())
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|| "unavailable".into()),
                })
            })
            .collect())
    }

    async fn deregister_targets(
        &self,
        target_group_arn: &str,
        targets: &[(String, Option<i32>)],
    ) -> Result<(), AwsError> {
        self.0
            .deregister_targets()
            .target_group_arn(target_group_arn)
            .set_targets(Some(descriptions(targets)))
            .send()
            .await
            .map_err(|e| classify("elasticloadbalancing:DeregisterTargets", e))?;
        Ok(())
    }

    async fn register_targets(
        &self,
        target_group_arn: &str,
        targets: &[(String, Option<i32>)],
    ) -> Result<(), AwsError> {
        self.0
            .register_targets()
            .target_group_arn(target_group_arn)
            .set_targets(Some(descriptions(targets)))
            .send()
            .await
            .map_err(|e| classify("elasticloadbalancing:RegisterTargets", e))?;
        Ok(())
    }

    async fn load_balancers(&self, names: &[String]) -> Result<Vec<LoadBalancer>, AwsError> {
        // DescribeLoadBalancers takes names or ARNs, not both in one call.
        let (arns, plain): (Vec<String>, Vec<String>) =
            names.iter().cloned().partition(|n| n.starts_with("arn:"));
        let mut found = Vec::new();
        for (by_arn, list) in [(true, arns), (false, plain)] {
            if list.is_empty() {
                continue;
            }
            let request = self.0.describe_load_balancers();
            let request = if by_arn {
                request.set_load_balancer_arns(Some(list.clone()))
            } else {
                request.set_names(Some(list.clone()))
            };
            let out = request
                .send()
                .await
                .map_err(|e| match e.as_service_error() {
                    Some(s) if s.is_load_balancer_not_found_exception() => {
                        AwsError::NotFound(format!("load balancers {list:?}: not found"))
                    }
                    _ => classify("elasticloadbalancing:DescribeLoadBalancers", e),
                })?;
            found.extend(out.load_balancers().iter().map(|l| {
                LoadBalancer {
                    name: l.load_balancer_name().unwrap_or_default().to_string(),
                    arn: l.load_balancer_arn().unwrap_or_default().to_string(),
                    kind: l
                        .r#type()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    security_groups: l.security_groups().to_vec(),
                    subnets: l
                        .availability_zones()
                        .iter()
                        .filter_map(|z| z.subnet_id().map(str::to_string))
                        .collect(),
                }
            }));
        }
        Ok(found)
    }

    async fn set_security_groups(&self, arn: &str, groups: &[String]) -> Result<(), AwsError> {
        self.0
            .set_security_groups()
            .load_balancer_arn(arn)
            .set_security_groups(Some(groups.to_vec()))
            .send()
            .await
            .map_err(|e| classify("elasticloadbalancing:SetSecurityGroups", e))?;
        Ok(())
    }

    async fn set_subnets(&self, arn: &str, subnets: &[String]) -> Result<(), AwsError> {
        self.0
            .set_subnets()
            .load_balancer_arn(arn)
            .set_subnets(Some(subnets.to_vec()))
            .send()
            .await
            .map_err(|e| classify("elasticloadbalancing:SetSubnets", e))?;
        Ok(())
    }

    async fn access_log(&self, arn: &str) -> Result<(bool, Option<String>), AwsError> {
        let out = self
            .0
            .describe_load_balancer_attributes()
            .load_balancer_arn(arn)
            .send()
            .await
            .map_err(|e| classify("elasticloadbalancing:DescribeLoadBalancerAttributes", e))?;
        let value = |key: &str| {
            out.attributes()
                .iter()
                .find(|a| a.key() == Some(key))
                .and_then(|a| a.value())
                .map(str::to_string)
        };
        let bucket = value(ACCESS_LOGS_BUCKET).filter(|b| !b.is_empty());
        Ok((value(ACCESS_LOGS).as_deref() == Some("true"), bucket))
    }

    async fn set_access_log(
        &self,
        arn: &str,
        enabled: bool,
        bucket: Option<&str>,
    ) -> Result<(), AwsError> {
        let mut attributes = vec![attribute(
            ACCESS_LOGS,
            if enabled { "true" } else { "false" },
        )];
        if let Some(bucket) = bucket {
            attributes.push(attribute(ACCESS_LOGS_BUCKET, bucket));
        }
        self.0
            .modify_load_balancer_attributes()
            .load_balancer_arn(arn)
            .set_attributes(Some(attributes))
            .send()
            .await
            .map_err(|e| classify("elasticloadbalancing:ModifyLoadBalancerAttributes", e))?;
        Ok(())
    }

    async fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let out = self
            .0
            .describe_tags()
            .resource_arns(arn)
            .send()
            .await
            .map_err(|e| classify("elasticloadbalancing:DescribeTags", e))?;
        Ok(out
            .tag_descriptions()
            .iter()
            .flat_map(|d| d.tags())
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
            .collect())
    }
}
