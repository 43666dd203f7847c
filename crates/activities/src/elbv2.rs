//! Elastic Load Balancing (v2): chaosaws's `elbv2` module.

use std::collections::BTreeMap;

use async_trait::async_trait;
use rand::seq::IndexedRandom;
use serde_json::{json, Value};

use crate::catalogue::{
    flag, json as any_json, read, spec, tagged, text, texts, Activity, Call, Module, OptIn,
    Refusal, Resource, ResourceType, Revert,
};
use crate::guard::BlastRadius;
use crate::ports::{unavailable, AwsError, Unavailable};
use crate::{preflight, run, ActivityError, Context, Outcome, Ports, Undo};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    pub name: String,
    pub arn: String,
}

/// A registered target and its health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    pub id: String,
    pub port: Option<i32>,
    /// healthy, unhealthy, initial, draining, unused, unavailable
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancer {
    pub name: String,
    pub arn: String,
    /// application, network or gateway.
    pub kind: String,
    pub security_groups: Vec<String>,
    pub subnets: Vec<String>,
}

/// What the elbv2 activities need of Elastic Load Balancing.
#[async_trait]
pub trait LoadBalancing: Send + Sync {
    /// The target groups of these names; a missing one is NotFound.
    async fn target_groups(&self, names: &[String]) -> Result<Vec<TargetGroup>, AwsError>;
    async fn target_health(&self, target_group_arn: &str) -> Result<Vec<TargetHealth>, AwsError>;
    async fn deregister_targets(
        &self,
        target_group_arn: &str,
        targets: &[(String, Option<i32>)],
    ) -> Result<(), AwsError>;
    async fn register_targets(
        &self,
        target_group_arn: &str,
        targets: &[(String, Option<i32>)],
    ) -> Result<(), AwsError>;
    /// The load balancers of these names (or ARNs).
    async fn load_balancers(&self, names: &[String]) -> Result<Vec<LoadBalancer>, AwsError>;
    async fn set_security_groups(&self, arn: &str, groups: &[String]) -> Result<(), AwsError>;
    async fn set_subnets(&self, arn: &str, subnets: &[String]) -> Result<(), AwsError>;
    /// Whether access logs are on, and to which bucket.
    async fn access_log(&self, arn: &str) -> Result<(bool, Option<String>), AwsError>;
    async fn set_access_log(
        &self,
        arn: &str,
        enabled: bool,
        bucket: Option<&str>,
    ) -> Result<(), AwsError>;
    async fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsError>;
}

#[async_trait]
impl LoadBalancing for Unavailable {
    async fn target_groups(&self, _: &[String]) -> Result<Vec<TargetGroup>, AwsError> {
        Err(unavailable("Elastic Load Balancing"))
    }
    async fn target_health(&self, _: &str) -> Result<Vec<TargetHealth>, AwsError> {
        Err(unavailable("Elastic Load Balancing"))
    }
    async fn deregister_targets(
        &self,
        _: &str,
        _: &[(String, Option<i32>)],
    ) -> Result<(), AwsError> {
        Err(unavailable("Elastic Load Balancing"))
    }
    async fn register_targets(&self, _: &str, _: &[(String, Option<i32>)]) -> Result<(), AwsError> {
        Err(unavailable("Elastic Load Balancing"))
    }
    async fn load_balancers(&self, _: &[String]) -> Result<Vec<LoadBalancer>, AwsError> {
        Err(unavailable("Elastic Load Balancing"))
    }
    async fn set_security_groups(&self, _: &str, _: &[String]) -> Result<(), AwsError> {
        Err(unavailable("Elastic Load Balancing"))
    }
    async fn set_subnets(&self, _: &str, _: &[String]) -> Result<(), AwsError> {
        Err(unavailable("Elastic Load Balancing"))
    }
    async fn access_log(&self, _: &str) -> Result<(bool, Option<String>), AwsError> {
        Err(unavailable("Elastic Load Balancing"))
    }
    async fn set_access_log(&self, _: &str, _: bool, _: Option<&str>) -> Result<(), AwsError> {
        Err(unavailable("Elastic Load Balancing"))
    }
    async fn tags(&self, _: &str) -> Result<BTreeMap<String, String>, AwsError> {
        Err(unavailable("Elastic Load Balancing"))
    }
}

fn target_group_tags<'a>(
    r: &'a Resource,
    ports: &'a Ports<'a>,
) -> futures_util::future::BoxFuture<'a, Result<BTreeMap<String, String>, AwsError>> {
    Box::pin(async move {
        let group = target_group(ports, &r.id).await?;
        ports.load_balancing.tags(&group.arn).await
    })
}

fn load_balancer_tags<'a>(
    r: &'a Resource,
    ports: &'a Ports<'a>,
) -> futures_util::future::BoxFuture<'a, Result<BTreeMap<String, String>, AwsError>> {
    Box::pin(async move {
        let lb = ports
            .load_balancing
            .load_balancers(std::slice::from_ref(&r.id))
            .await?;
        let arn = lb
            .first()
            .map(|l| l.arn.clone())
            .ok_or_else(|| AwsError::NotFound(format!("no load balancer '{}'", r.id)))?;
        ports.load_balancing.tags(&arn).await
    })
}

/// A target group, by name.
pub static TARGET_GROUP: ResourceType = ResourceType {
    service: "elbv2",
    name: "target-group",
    noun: "target group",
    parent: None,
    lock: "elbv2-tg",
    opt_in: OptIn::Tag {
        read: target_group_tags,
        iam: &[
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTags",
        ],
    },
};

/// A load balancer, by name or ARN.
pub static LOAD_BALANCER: ResourceType = ResourceType {
    service: "elbv2",
    name: "load-balancer",
    noun: "load balancer",
    parent: None,
    lock: "elbv2-lb",
    opt_in: OptIn::Tag {
        read: load_balancer_tags,
        iam: &[
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:DescribeTags",
        ],
    },
};

const DEREGISTER: &str = "chaosaws.elbv2.actions.deregister_target";
const REGISTER: &str = "turbulence.elbv2.actions.register_targets";
const SECURITY_GROUPS: &str = "chaosaws.elbv2.actions.set_security_groups";
const SUBNETS: &str = "chaosaws.elbv2.actions.set_subnets";
const RESTORE_NETWORK: &str = "turbulence.elbv2.actions.restore_load_balancer_network";
const ACCESS_LOG: &str = "chaosaws.elbv2.actions.enable_access_log";

pub static MODULE: Module = Module {
    service: "elbv2",
    title: "Elastic Load Balancing",
    activities: &[
        Activity::action(DEREGISTER, run!(deregister_target))
            .doc("Deregisters one random target of the target group (checked against the blast radius as one of its targets); the undo registers it again. Output: the target group's ARN and the target.")
            .params(&[text("tg_name")])
            .touches(&[&TARGET_GROUP], target_group_named)
            .undo(Revert::By(&[REGISTER]))
            .iam(&[
                read("elasticloadbalancing:DescribeTargetGroups"),
                read("elasticloadbalancing:DescribeTargetHealth"),
                tagged("elasticloadbalancing:DeregisterTargets"),
            ])
            .preflight(
                preflight!(one_target_within_blast_radius),
                &[
                    read("elasticloadbalancing:DescribeTargetGroups"),
                    read("elasticloadbalancing:DescribeTargetHealth"),
                ],
            )
            .example(r#"{"tg_name": "web"}"#),
        Activity::action(REGISTER, run!(register_targets))
            .doc("Registers targets again (the undo of deregister_target).")
            .params(&[text("target_group_arn"), any_json("targets").doc("`[{\"Id\", \"Port\"}]`")])
            .touches(&[&TARGET_GROUP], target_group_of_arn)
            .undo(Revert::NotNeeded("it undoes deregister_target"))
            .iam(&[tagged("elasticloadbalancing:RegisterTargets")])
            .example(r#"{"target_group_arn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/0123456789abcdef", "targets": [{"Id": "i-0123456789abcdef0", "Port": 80}]}"#)
            .internal(),
        Activity::action(SECURITY_GROUPS, run!(set_security_groups))
            .doc("Sets the security groups of application load balancers (network ones are refused, as chaosaws does); the undo puts back each one's groups. Output: per load balancer, `LoadBalancerArn` and `SecurityGroupIds`.")
            .params(&[texts("load_balancer_names"), texts("security_group_ids")])
            .touches(&[&LOAD_BALANCER], load_balancers_named)
            .undo(Revert::By(&[RESTORE_NETWORK]))
            .iam(&[
                read("elasticloadbalancing:DescribeLoadBalancers"),
                tagged("elasticloadbalancing:SetSecurityGroups"),
            ])
            .example(r#"{"load_balancer_names": ["web"], "security_group_ids": ["sg-0123456789abcdef0"]}"#),
        Activity::action(SUBNETS, run!(set_subnets))
            .doc("Sets the subnets of application load balancers (network ones are refused, as chaosaws does); the undo puts back each one's subnets.")
            .params(&[texts("load_balancer_names"), texts("subnet_ids")])
            .touches(&[&LOAD_BALANCER], load_balancers_named)
            .undo(Revert::By(&[RESTORE_NETWORK]))
            .iam(&[
                read("elasticloadbalancing:DescribeLoadBalancers"),
                tagged("elasticloadbalancing:SetSubnets"),
            ])
            .example(r#"{"load_balancer_names": ["web"], "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]}"#),
        Activity::action(RESTORE_NETWORK, run!(restore_load_balancer_network))
            .doc("Puts back load balancers' security groups and subnets as set_security_groups or set_subnets found them (their undo).")
            .params(&[any_json("load_balancers").doc("`[{\"arn\", \"security_groups\"?, \"subnets\"?}]`")])
            .touches(&[&LOAD_BALANCER], load_balancers_restored)
            .undo(Revert::NotNeeded("it undoes set_security_groups and set_subnets"))
            .iam(&[
                tagged("elasticloadbalancing:SetSecurityGroups"),
                tagged("elasticloadbalancing:SetSubnets"),
            ])
            .example(r#"{"load_balancers": [{"arn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/0123456789abcdef", "security_groups": ["sg-0123456789abcdef0"]}]}"#)
            .internal(),
        Activity::action(ACCESS_LOG, run!(enable_access_log))
            .doc("Turns a load balancer's access logs on (to `bucket_name`) or off; the undo puts back what it found. Output: whether they are on.")
            .params(&[
                text("load_balancer_arn"),
                flag("enable").or_bool(false),
                text("bucket_name").optional(),
            ])
            .check(bucket_when_enabling)
            .touches(&[&LOAD_BALANCER], load_balancer_of_arn)
            .undo(Revert::By(&[ACCESS_LOG]))
            .iam(&[
                read("elasticloadbalancing:DescribeLoadBalancerAttributes"),
                tagged("elasticloadbalancing:ModifyLoadBalancerAttributes"),
            ])
            .example(r#"{"load_balancer_arn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/0123456789abcdef", "enable": false}"#),
        Activity::probe("chaosaws.elbv2.probes.targets_health_count", run!(targets_health_count))
            .doc("Per target group, how many targets are in each state: `{\"web\": {\"healthy\": 2, \"unhealthy\": 1}}`.")
            .params(&[texts("tg_names")])
            .iam(&[
                read("elasticloadbalancing:DescribeTargetGroups"),
                read("elasticloadbalancing:DescribeTargetHealth"),
            ])
            .example(r#"{"tg_names": ["web"]}"#),
        Activity::probe("chaosaws.elbv2.probes.all_targets_healthy", run!(all_targets_healthy))
            .doc("`true` when every target of every named group is healthy.")
            .params(&[texts("tg_names")])
            .iam(&[
                read("elasticloadbalancing:DescribeTargetGroups"),
                read("elasticloadbalancing:DescribeTargetHealth"),
            ])
            .example(r#"{"tg_names": ["web"]}"#),
        Activity::probe("chaosaws.elbv2.probes.is_access_log_enabled", run!(is_access_log_enabled))
            .doc("Whether the load balancer's access logs are on.")
            .params(&[text("load_balancer_arn")])
            .iam(&[read("elasticloadbalancing:DescribeLoadBalancerAttributes")])
            .example(r#"{"load_balancer_arn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/0123456789abcdef"}"#),
    ],
    refused: &[Refusal::destructive(
        "chaosaws.elbv2.actions.delete_load_balancer",
        "the load balancer, its listeners and its DNS name are gone",
    )],
};

fn target_group_named(c: &Call) -> Vec<Resource> {
    vec![TARGET_GROUP.of(c.text("tg_name"))]
}

/// A target group ARN's name: `targetgroup/<name>/<id>`.
fn target_group_of_arn(c: &Call) -> Vec<Resource> {
    let arn = c.text("target_group_arn");
    let name = arn.split('/').nth(1).unwrap_or(arn);
    vec![TARGET_GROUP.of(name)]
}

fn load_balancers_named(c: &Call) -> Vec<Resource> {
    c.texts("load_balancer_names")
        .into_iter()
        .map(|n| LOAD_BALANCER.of(n))
        .collect()
}

fn load_balancer_of_arn(c: &Call) -> Vec<Resource> {
    vec![LOAD_BALANCER.of(c.text("load_balancer_arn"))]
}

fn load_balancers_restored(c: &Call) -> Vec<Resource> {
    c.value("load_balancers")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.get("arn").and_then(Value::as_str))
        .map(|arn| LOAD_BALANCER.of(arn))
        .collect()
}

fn bucket_when_enabling(c: &Call) -> Result<(), String> {
    if c.flag("enable") && c.opt_text("bucket_name").is_none() {
        return Err(c.err("bucket_name", "is required to enable access logs"));
    }
    Ok(())
}

async fn target_group(ports: &Ports<'_>, name: &str) -> Result<TargetGroup, AwsError> {
    ports
        .load_balancing
        .target_groups(&[name.to_string()])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| AwsError::NotFound(format!("no target group '{name}'")))
}

async fn one_target_within_blast_radius(
    c: &Call,
    ports: &Ports<'_>,
    caps: &BlastRadius,
) -> Result<(), ActivityError> {
    let name = c.text("tg_name");
    let group = target_group(ports, name).await?;
    let targets = ports.load_balancing.target_health(&group.arn).await?;
    caps.check_share(
        "deregistering",
        1,
        targets.len(),
        "targets",
        &format!("target group '{name}'"),
    )
    .map_err(ActivityError::Refused)
}

fn targets_json(targets: &[(String, Option<i32>)]) -> Value {
    Value::Array(
        targets
            .iter()
            .map(|(id, port)| json!({"Id": id, "Port": port}))
            .collect(),
    )
}

async fn deregister_target(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let name = c.text("tg_name");
    let group = target_group(ports, name).await?;
    let targets = ports.load_balancing.target_health(&group.arn).await?;
    let of = format!("target group '{name}'");
    // Again here, not only at Plan: targets may have gone since.
    ctx.blast_radius
        .check_share("deregistering", 1, targets.len(), "targets", &of)
        .map_err(ActivityError::Refused)?;
    let chosen = targets
        .choose(&mut *ctx.rng)
        .ok_or_else(|| ActivityError::Failed(format!("no targets in {of}")))?;
    let target = vec![(chosen.id.clone(), chosen.port)];
    let undo = Undo {
        name: format!("register target '{}' in {of} again", chosen.id),
        call: spec(
            REGISTER,
            json!({"target_group_arn": group.arn, "targets": targets_json(&target)}),
        ),
    };
    ctx.undo_log.will_change(&undo).await?;
    ports
        .load_balancing
        .deregister_targets(&group.arn, &target)
        .await?;
    Ok(Outcome {
        output: json!({"TargetGroupArn": group.arn, "Targets": targets_json(&target)}),
        detail: Some(json!({"targets_before": targets.len()})),
        undo: Some(undo),
    })
}

async fn register_targets(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let arn = c.text("target_group_arn");
    let targets: Vec<(String, Option<i32>)> = c
        .value("targets")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                t.get("Id")?.as_str()?.to_string(),
                t.get("Port")
                    .and_then(Value::as_i64)
                    .and_then(|p| i32::try_from(p).ok()),
            ))
        })
        .collect();
    ports.load_balancing.register_targets(arn, &targets).await?;
    Ok(Outcome::output(
        json!({"TargetGroupArn": arn, "Targets": targets_json(&targets)}),
    ))
}

/// The application load balancers of a call; a network one is refused.
async fn application_load_balancers(
    c: &Call,
    ports: &Ports<'_>,
) -> Result<Vec<LoadBalancer>, ActivityError> {
    let names: Vec<String> = c
        .texts("load_balancer_names")
        .into_iter()
        .map(str::to_string)
        .collect();
    let found = ports.load_balancing.load_balancers(&names).await?;
    if let Some(lb) = found.iter().find(|l| l.kind != "application") {
        return Err(ActivityError::Failed(format!(
            "load balancer '{}' is a {} load balancer: only application load balancers have security groups and subnets to change",
            lb.name, lb.kind
        )));
    }
    Ok(found)
}

/// Set one network setting (security groups or subnets) of each load
/// balancer, the undo that puts back what each had on record first.
async fn set_network(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
    security_groups: bool,
) -> Result<Outcome, ActivityError> {
    let (param, key) = if security_groups {
        ("security_group_ids", "security_groups")
    } else {
        ("subnet_ids", "subnets")
    };
    let wanted: Vec<String> = c.texts(param).into_iter().map(str::to_string).collect();
    let lbs = application_load_balancers(c, ports).await?;
    let found = |l: &LoadBalancer| {
        if security_groups {
            l.security_groups.clone()
        } else {
            l.subnets.clone()
        }
    };
    let restore: Vec<Value> = lbs
        .iter()
        .filter(|l| found(l) != wanted)
        .map(|l| json!({"arn": l.arn, key: found(l)}))
        .collect();
    let undo = (!restore.is_empty()).then(|| Undo {
        name: format!("put back the {key} of {} load balancers", restore.len()),
        call: spec(RESTORE_NETWORK, json!({"load_balancers": restore})),
    });
    if let Some(undo) = &undo {
        ctx.undo_log.will_change(undo).await?;
    }
    let mut results = Vec::new();
    for lb in &lbs {
        if security_groups {
            ports
                .load_balancing
                .set_security_groups(&lb.arn, &wanted)
                .await?;
        } else {
            ports.load_balancing.set_subnets(&lb.arn, &wanted).await?;
        }
        results.push(json!({"LoadBalancerArn": lb.arn, param: wanted}));
    }
    Ok(Outcome {
        output: Value::Array(results),
        detail: None,
        undo,
    })
}

async fn set_security_groups(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    set_network(c, ports, ctx, true).await
}

async fn set_subnets(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    set_network(c, ports, ctx, false).await
}

async fn restore_load_balancer_network(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let strings = |v: &Value| -> Option<Vec<String>> {
        v.as_array().map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
    };
    let mut restored = Vec::new();
    for lb in c.value("load_balancers").as_array().into_iter().flatten() {
        let Some(arn) = lb.get("arn").and_then(Value::as_str) else {
            continue;
        };
        if let Some(groups) = lb.get("security_groups").and_then(strings) {
            ports
                .load_balancing
                .set_security_groups(arn, &groups)
                .await?;
        }
        if let Some(subnets) = lb.get("subnets").and_then(strings) {
            ports.load_balancing.set_subnets(arn, &subnets).await?;
        }
        restored.push(arn.to_string());
    }
    Ok(Outcome::output(json!({"restored": restored})))
}

async fn enable_access_log(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let arn = c.text("load_balancer_arn");
    let (enable, bucket) = (c.flag("enable"), c.opt_text("bucket_name"));
    let (was, was_bucket) = ports.load_balancing.access_log(arn).await?;
    let undo = (was != enable || (enable && was_bucket.as_deref() != bucket)).then(|| {
        let mut args = json!({"load_balancer_arn": arn, "enable": was});
        if let Some(b) = &was_bucket {
            args["bucket_name"] = json!(b);
        }
        Undo {
            name: format!(
                "turn the access logs of '{arn}' {} again",
                if was { "on" } else { "off" }
            ),
            call: spec(ACCESS_LOG, args),
        }
    });
    if let Some(undo) = &undo {
        ctx.undo_log.will_change(undo).await?;
    }
    ports
        .load_balancing
        .set_access_log(arn, enable, bucket)
        .await?;
    Ok(Outcome {
        output: json!(enable),
        detail: Some(json!({"previous": was})),
        undo,
    })
}

/// Every named target group's targets, by name.
async fn health_of(
    c: &Call,
    ports: &Ports<'_>,
) -> Result<BTreeMap<String, Vec<TargetHealth>>, ActivityError> {
    let names: Vec<String> = c
        .texts("tg_names")
        .into_iter()
        .map(str::to_string)
        .collect();
    let mut health = BTreeMap::new();
    for group in ports.load_balancing.target_groups(&names).await? {
        let targets = ports.load_balancing.target_health(&group.arn).await?;
        health.insert(group.name, targets);
    }
    Ok(health)
}

async fn targets_health_count(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let mut counts = serde_json::Map::new();
    for (name, targets) in health_of(c, ports).await? {
        let mut states: BTreeMap<String, u64> = BTreeMap::new();
        for t in targets {
            *states.entry(t.state).or_default() += 1;
        }
        counts.insert(name, json!(states));
    }
    Ok(Outcome::output(Value::Object(counts)))
}

async fn all_targets_healthy(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let health = health_of(c, ports).await?;
    let unhealthy: Vec<String> = health
        .iter()
        .flat_map(|(g, targets)| {
            targets
                .iter()
                .filter(|t| t.state != "healthy")
                .map(move |t| format!("{g}/{}: {}", t.id, t.state))
        })
        .collect();
    Ok(Outcome {
        output: json!(unhealthy.is_empty()),
        detail: (!unhealthy.is_empty()).then(|| json!({"not_healthy": unhealthy})),
        undo: None,
    })
}

async fn is_access_log_enabled(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let (on, _) = ports
        .load_balancing
        .access_log(c.text("load_balancer_arn"))
        .await?;
    Ok(Outcome::output(json!(on)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{FakeEcs, FakeLoadBalancing};
    use crate::testing::{call, T};

    fn with_targets(n: usize) -> T {
        let mut t = T::new(FakeEcs::default());
        t.load_balancing = FakeLoadBalancing::default()
            .with_target_group("web", n)
            .with_load_balancer("front", "application");
        t
    }

    #[tokio::test]
    async fn a_deregistered_target_is_registered_again_by_the_undo() {
        let mut t = with_targets(3);
        let out = t
            .run(&call(DEREGISTER, json!({"tg_name": "web"})))
            .await
            .unwrap();
        assert_eq!(t.load_balancing.registered("web").len(), 2);
        let undo = out.undo.unwrap();
        assert_eq!(t.undo_log.undos(), vec![undo.clone()], "logged first");
        t.run(&Call::parse(&undo.call).unwrap()).await.unwrap();
        assert_eq!(t.load_balancing.registered("web").len(), 3);
    }

    #[tokio::test]
    async fn the_last_target_is_over_the_blast_radius() {
        let mut t = with_targets(1);
        t.blast_radius = BlastRadius::default();
        let one = call(DEREGISTER, json!({"tg_name": "web"}));
        let e = t
            .preflight(&one, &BlastRadius::default())
            .await
            .unwrap_err();
        assert_eq!(e, ActivityError::Refused("deregistering 1 of the 1 targets of target group 'web' is over the blast-radius cap of 50% of targets".into()));
        assert!(t.run(&one).await.is_err());
        assert_eq!(t.load_balancing.registered("web").len(), 1);
    }

    #[tokio::test]
    async fn security_groups_and_subnets_are_put_back() {
        let mut t = with_targets(2);
        let sg = call(
            SECURITY_GROUPS,
            json!({"load_balancer_names": ["front"], "security_group_ids": ["sg-chaos"]}),
        );
        let out = t.run(&sg).await.unwrap();
        assert_eq!(t.load_balancing.network("front").0, ["sg-chaos"]);
        t.run(&Call::parse(&out.undo.unwrap().call).unwrap())
            .await
            .unwrap();
        assert_eq!(t.load_balancing.network("front").0, ["sg-1"]);
        let subnets = call(
            SUBNETS,
            json!({"load_balancer_names": ["front"], "subnet_ids": ["subnet-x"]}),
        );
        let out = t.run(&subnets).await.unwrap();
        t.run(&Call::parse(&out.undo.unwrap().call).unwrap())
            .await
            .unwrap();
        assert_eq!(
            t.load_balancing.network("front").1,
            ["subnet-1", "subnet-2"]
        );
    }

    #[tokio::test]
    async fn a_network_load_balancer_is_refused() {
        let mut t = T::new(FakeEcs::default());
        t.load_balancing = FakeLoadBalancing::default().with_load_balancer("nlb", "network");
        let sg = call(
            SECURITY_GROUPS,
            json!({"load_balancer_names": ["nlb"], "security_group_ids": ["sg-chaos"]}),
        );
        let e = t.run(&sg).await.unwrap_err();
        assert!(e.to_string().contains("is a network load balancer"), "{e}");
        assert!(t.undo_log.undos().is_empty());
    }

    #[tokio::test]
    async fn access_logs_are_switched_and_switched_back() {
        let mut t = with_targets(2);
        let arn = t.load_balancing.arn_of("front");
        let on = call(
            ACCESS_LOG,
            json!({"load_balancer_arn": arn, "enable": true, "bucket_name": "logs"}),
        );
        let out = t.run(&on).await.unwrap();
        let probe = call(
            "chaosaws.elbv2.probes.is_access_log_enabled",
            json!({"load_balancer_arn": arn}),
        );
        assert_eq!(t.run(&probe).await.unwrap().output, json!(true));
        t.run(&Call::parse(&out.undo.unwrap().call).unwrap())
            .await
            .unwrap();
        assert_eq!(t.run(&probe).await.unwrap().output, json!(false));
        let e = Call::parse(&spec(
            ACCESS_LOG,
            json!({"load_balancer_arn": arn, "enable": true}),
        ))
        .unwrap_err();
        assert_eq!(e, "argument 'bucket_name' of chaosaws.elbv2.actions.enable_access_log is required to enable access logs");
    }

    #[tokio::test]
    async fn target_health_is_counted_by_state() {
        let mut t = with_targets(3);
        t.load_balancing.set_state("web", 0, "unhealthy");
        let count = call(
            "chaosaws.elbv2.probes.targets_health_count",
            json!({"tg_names": ["web"]}),
        );
        assert_eq!(
            t.run(&count).await.unwrap().output,
            json!({"web": {"healthy": 2, "unhealthy": 1}})
        );
        let all = call(
            "chaosaws.elbv2.probes.all_targets_healthy",
            json!({"tg_names": ["web"]}),
        );
        assert_eq!(t.run(&all).await.unwrap().output, json!(false));
    }
}
