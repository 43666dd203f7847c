//! The probes and actions Turbulence runs, behind narrow ports.
//!
//! [`run`] executes one catalogued [`Call`] against the ports and returns its
//! output and, for an action that changed something, the call that undoes it.

pub mod aws;
pub mod ports;

use std::collections::BTreeMap;

use experiment::catalogue::TaskCount;
use experiment::{Call, CallSpec};
use rand::seq::IndexedRandom;
use rand::RngCore;
use serde_json::{json, Value};

pub use ports::{Alarms, AwsError, DeadLetters, Ecs};

/// The AWS the activities reach.
pub struct Ports<'a> {
    pub ecs: &'a dyn Ecs,
    pub alarms: &'a dyn Alarms,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActivityError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The activity ran but could not do what it was asked.
    #[error("{0}")]
    Failed(String),
}

impl ActivityError {
    pub fn is_throttled(&self) -> bool {
        matches!(self, ActivityError::Aws(AwsError::Throttled(_)))
    }
}

/// An undo: a name for the journal and the call that makes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Undo {
    pub name: String,
    pub call: CallSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub output: Value,
    /// Facts behind the output worth a line in the journal (e.g. counts).
    pub detail: Option<Value>,
    pub undo: Option<Undo>,
}

impl Outcome {
    fn output(output: Value) -> Self {
        Outcome {
            output,
            detail: None,
            undo: None,
        }
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

pub async fn run(
    call: &Call,
    ports: &Ports<'_>,
    baselines: &mut BTreeMap<String, Value>,
    rng: &mut (dyn RngCore + Send),
) -> Result<Outcome, ActivityError> {
    match call {
        Call::EcsStopRandomTasks {
            cluster,
            service,
            count,
            reason,
        } => {
            if let Some(s) = service {
                let svc = ports.ecs.describe_service(cluster, s).await?;
                remember_desired(baselines, cluster, s, svc.desired_count);
            }
            let tasks = ports.ecs.running_tasks(cluster, service.as_deref()).await?;
            let of = match service {
                Some(s) => format!("service '{s}' of cluster '{cluster}'"),
                None => format!("cluster '{cluster}'"),
            };
            let n = match *count {
                TaskCount::Count(n) => n as usize,
                // At least one task: a percentage that rounds to none would
                // make the experiment a silent no-op.
                TaskCount::Percent(p) => (tasks.len() * p as usize).div_ceil(100).max(1),
            };
            if tasks.is_empty() {
                return Err(ActivityError::Failed(format!("no running tasks in {of}")));
            }
            if n > tasks.len() {
                return Err(ActivityError::Failed(format!(
                    "asked to stop {n} tasks but {of} has only {} running",
                    tasks.len()
                )));
            }
            let chosen: Vec<String> = tasks
                .choose_multiple(rng, n)
                .map(|t| t.arn.clone())
                .collect();
            for arn in &chosen {
                ports.ecs.stop_task(cluster, arn, reason).await?;
            }
            Ok(Outcome {
                output: json!(chosen),
                detail: Some(json!({"running_before": tasks.len(), "stopped": chosen.len()})),
                undo: None,
            })
        }
        Call::EcsUpdateDesiredCount {
            cluster,
            service,
            desired_count,
        } => {
            let before = ports.ecs.describe_service(cluster, service).await?;
            remember_desired(baselines, cluster, service, before.desired_count);
            ports
                .ecs
                .update_desired_count(cluster, service, *desired_count)
                .await?;
            // Restore the count read just now, not what autoscaling may set
            // meanwhile: the rollback must put back what we found.
            let undo = (before.desired_count != *desired_count).then(|| Undo {
                name: format!("restore desired count of '{service}' to {}", before.desired_count),
                call: CallSpec {
                    function: "chaosaws.ecs.actions.update_desired_count".into(),
                    arguments: json!({"cluster": cluster, "service": service, "desired_count": before.desired_count})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                },
            });
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
        Call::EcsAreAllDesiredTasksRunning { cluster, service } => {
            let svc = ports.ecs.describe_service(cluster, service).await?;
            let expected = remember_desired(baselines, cluster, service, svc.desired_count);
            let running = ports.ecs.running_tasks(cluster, Some(service)).await?.len() as i64;
            // Against the count recorded before the method: after the method
            // set desiredCount to 0, "0 of 0 running" must not pass. A service
            // that wanted no tasks has nothing to be steady about.
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
        Call::EcsDescribeService { cluster, service } => {
            let s = ports.ecs.describe_service(cluster, service).await?;
            Ok(Outcome::output(json!({
                "serviceName": s.name,
                "status": s.status,
                "desiredCount": s.desired_count,
                "runningCount": s.running_count,
                "pendingCount": s.pending_count,
            })))
        }
        Call::CloudWatchGetAlarmStateValue { alarm_name } => {
            let states = ports
                .alarms
                .states(std::slice::from_ref(alarm_name))
                .await?;
            states
                .get(alarm_name)
                .map(|s| Outcome::output(json!(s)))
                .ok_or_else(|| {
                    ActivityError::Failed(format!("alarm '{alarm_name}' does not exist"))
                })
        }
    }
}

/// The named alarms that are in ALARM now.
pub async fn firing(alarms: &dyn Alarms, names: &[String]) -> Result<Vec<String>, AwsError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let states = alarms.states(names).await?;
    Ok(names
        .iter()
        .filter(|n| states.get(*n).map(String::as_str) == Some("ALARM"))
        .cloned()
        .collect())
}

/// The named alarms that do not exist.
pub async fn missing(alarms: &dyn Alarms, names: &[String]) -> Result<Vec<String>, AwsError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let states = alarms.states(names).await?;
    Ok(names
        .iter()
        .filter(|n| !states.contains_key(*n))
        .cloned()
        .collect())
}

#[cfg(any(test, feature = "fake"))]
pub mod fake;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{FakeAlarms, FakeEcs};
    use rand::SeedableRng;

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    #[tokio::test]
    async fn stops_the_asked_number_of_running_tasks() {
        let ecs = FakeEcs::with_service("c", "web", 3);
        let alarms = FakeAlarms::default();
        let ports = Ports {
            ecs: &ecs,
            alarms: &alarms,
        };
        let mut baselines = BTreeMap::new();
        let call = Call::EcsStopRandomTasks {
            cluster: "c".into(),
            service: Some("web".into()),
            count: TaskCount::Count(1),
            reason: "chaos".into(),
        };
        let out = run(&call, &ports, &mut baselines, &mut rng())
            .await
            .unwrap();
        let stopped: Vec<String> = serde_json::from_value(out.output).unwrap();
        assert_eq!(stopped.len(), 1);
        assert_eq!(ecs.stopped(), stopped);
        assert_eq!(baselines[&desired_count_key("c", "web")], json!(3));
        assert!(out.undo.is_none());
    }

    #[tokio::test]
    async fn stopping_more_tasks_than_run_fails_without_stopping_any() {
        let ecs = FakeEcs::with_service("c", "web", 2);
        let alarms = FakeAlarms::default();
        let ports = Ports {
            ecs: &ecs,
            alarms: &alarms,
        };
        let call = Call::EcsStopRandomTasks {
            cluster: "c".into(),
            service: Some("web".into()),
            count: TaskCount::Count(3),
            reason: "chaos".into(),
        };
        let err = run(&call, &ports, &mut BTreeMap::new(), &mut rng())
            .await
            .unwrap_err();
        assert_eq!(
            err,
            ActivityError::Failed(
                "asked to stop 3 tasks but service 'web' of cluster 'c' has only 2 running".into()
            )
        );
        assert!(ecs.stopped().is_empty());
    }

    #[tokio::test]
    async fn percent_rounds_up_to_at_least_one_task() {
        let ecs = FakeEcs::with_service("c", "web", 3);
        let alarms = FakeAlarms::default();
        let ports = Ports {
            ecs: &ecs,
            alarms: &alarms,
        };
        let call = Call::EcsStopRandomTasks {
            cluster: "c".into(),
            service: Some("web".into()),
            count: TaskCount::Percent(10),
            reason: "chaos".into(),
        };
        run(&call, &ports, &mut BTreeMap::new(), &mut rng())
            .await
            .unwrap();
        assert_eq!(ecs.stopped().len(), 1);
    }

    #[tokio::test]
    async fn update_desired_count_records_the_count_it_found_as_undo() {
        let ecs = FakeEcs::with_service("c", "web", 3);
        let alarms = FakeAlarms::default();
        let ports = Ports {
            ecs: &ecs,
            alarms: &alarms,
        };
        let call = Call::EcsUpdateDesiredCount {
            cluster: "c".into(),
            service: "web".into(),
            desired_count: 0,
        };
        let out = run(&call, &ports, &mut BTreeMap::new(), &mut rng())
            .await
            .unwrap();
        assert_eq!(ecs.desired("c", "web"), 0);
        let undo = out.undo.unwrap();
        assert_eq!(undo.call.arguments["desired_count"], json!(3));
        // The undo is itself a valid catalogued call.
        assert_eq!(
            Call::parse(&undo.call).unwrap(),
            Call::EcsUpdateDesiredCount {
                cluster: "c".into(),
                service: "web".into(),
                desired_count: 3
            }
        );
    }

    #[tokio::test]
    async fn all_running_compares_against_the_count_before_the_method() {
        let ecs = FakeEcs::with_service("c", "web", 3);
        let alarms = FakeAlarms::default();
        let ports = Ports {
            ecs: &ecs,
            alarms: &alarms,
        };
        let mut baselines = BTreeMap::new();
        let probe = Call::EcsAreAllDesiredTasksRunning {
            cluster: "c".into(),
            service: "web".into(),
        };
        assert_eq!(
            run(&probe, &ports, &mut baselines, &mut rng())
                .await
                .unwrap()
                .output,
            json!(true)
        );

        // The method scales the service to zero: 0 running of 0 desired.
        let zero = Call::EcsUpdateDesiredCount {
            cluster: "c".into(),
            service: "web".into(),
            desired_count: 0,
        };
        run(&zero, &ports, &mut baselines, &mut rng())
            .await
            .unwrap();
        ecs.set_running("c", "web", 0);
        let out = run(&probe, &ports, &mut baselines, &mut rng())
            .await
            .unwrap();
        assert_eq!(out.output, json!(false), "0 == 0 must not pass");
        assert_eq!(out.detail.unwrap()["expected"], json!(3));

        // Autoscaling brought it back.
        ecs.set_desired("c", "web", 3);
        ecs.set_running("c", "web", 3);
        assert_eq!(
            run(&probe, &ports, &mut baselines, &mut rng())
                .await
                .unwrap()
                .output,
            json!(true)
        );
    }

    #[tokio::test]
    async fn a_service_that_wants_no_tasks_is_not_steady() {
        let ecs = FakeEcs::with_service("c", "web", 0);
        let alarms = FakeAlarms::default();
        let ports = Ports {
            ecs: &ecs,
            alarms: &alarms,
        };
        let probe = Call::EcsAreAllDesiredTasksRunning {
            cluster: "c".into(),
            service: "web".into(),
        };
        assert_eq!(
            run(&probe, &ports, &mut BTreeMap::new(), &mut rng())
                .await
                .unwrap()
                .output,
            json!(false)
        );
    }

    #[tokio::test]
    async fn firing_and_missing_alarms() {
        let alarms = FakeAlarms::default();
        alarms.set("a", "OK");
        alarms.set("b", "ALARM");
        let names = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(
            firing(&alarms, &names).await.unwrap(),
            vec!["b".to_string()]
        );
        assert_eq!(
            missing(&alarms, &names).await.unwrap(),
            vec!["c".to_string()]
        );
        assert_eq!(alarms.calls(), 2);
        assert!(firing(&alarms, &[]).await.unwrap().is_empty());
        assert_eq!(alarms.calls(), 2, "no alarms, no call");
    }
}
