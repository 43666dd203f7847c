//! The activities Turbulence runs natively, keyed by Chaos Toolkit's
//! `module.func` names (chaostoolkit-aws 0.35), with their arguments checked.
//!
//! A [`CallSpec`] is what the experiment wrote (after `${name}` substitution);
//! [`Call::parse`] turns it into a typed call. Plan parses every call before
//! anything runs, and the probe/action functions parse again from the same
//! spec, so there is one way from JSON to a call.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::{kind_of, ActivityType};

/// A call as written in the experiment: `module.func` and its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSpec {
    pub function: String,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

/// How many tasks `stop_random_tasks` stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskCount {
    Count(u32),
    Percent(u32),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `chaosaws.ecs.actions.stop_random_tasks`
    EcsStopRandomTasks {
        cluster: String,
        service: Option<String>,
        count: TaskCount,
        reason: String,
    },
    /// `chaosaws.ecs.actions.update_desired_count`
    EcsUpdateDesiredCount {
        cluster: String,
        service: String,
        desired_count: i32,
    },
    /// `chaosaws.ecs.probes.are_all_desired_tasks_running`, judged against the
    /// desired count recorded before the method.
    EcsAreAllDesiredTasksRunning { cluster: String, service: String },
    /// `chaosaws.ecs.probes.describe_service`
    EcsDescribeService { cluster: String, service: String },
    /// `chaosaws.cloudwatch.probes.get_alarm_state_value`
    CloudWatchGetAlarmStateValue { alarm_name: String },
}

struct Entry {
    function: &'static str,
    /// (name, required)
    params: &'static [(&'static str, bool)],
}

const CATALOGUE: &[Entry] = &[
    Entry {
        function: "chaosaws.ecs.actions.stop_random_tasks",
        params: &[
            ("cluster", true),
            ("task_count", false),
            ("task_percent", false),
            ("service", false),
            ("reason", false),
        ],
    },
    Entry {
        function: "chaosaws.ecs.actions.update_desired_count",
        params: &[
            ("cluster", true),
            ("service", true),
            ("desired_count", true),
        ],
    },
    Entry {
        function: "chaosaws.ecs.probes.are_all_desired_tasks_running",
        params: &[("cluster", true), ("service", true)],
    },
    Entry {
        function: "chaosaws.ecs.probes.describe_service",
        params: &[("cluster", true), ("service", true)],
    },
    Entry {
        function: "chaosaws.cloudwatch.probes.get_alarm_state_value",
        params: &[("alarm_name", true)],
    },
];

/// Chaos Toolkit passes these to every chaosaws function implicitly; an
/// experiment may still spell them out.
const IMPLICIT: &[&str] = &["configuration", "secrets"];

/// Every supported `module.func`, for error messages and the README.
pub fn supported() -> Vec<&'static str> {
    CATALOGUE.iter().map(|e| e.function).collect()
}

impl Call {
    pub fn parse(spec: &CallSpec) -> Result<Call, String> {
        let entry = CATALOGUE
            .iter()
            .find(|e| e.function == spec.function)
            .ok_or_else(|| {
                format!(
                    "'{}' is not supported; supported: {}",
                    spec.function,
                    supported().join(", ")
                )
            })?;
        for key in spec.arguments.keys() {
            if IMPLICIT.contains(&key.as_str()) {
                continue;
            }
            if !entry.params.iter().any(|(p, _)| p == key) {
                return Err(format!(
                    "argument '{key}' is not a parameter of {} (parameters: {})",
                    entry.function,
                    entry
                        .params
                        .iter()
                        .map(|(p, _)| *p)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        for (p, required) in entry.params {
            if *required && spec.arguments.get(*p).is_none_or(Value::is_null) {
                return Err(format!("argument '{p}' is required by {}", entry.function));
            }
        }
        let args = Args {
            function: entry.function,
            map: &spec.arguments,
        };
        Ok(match entry.function {
            "chaosaws.ecs.actions.stop_random_tasks" => {
                let count = match (args.opt_u32("task_count")?, args.opt_u32("task_percent")?) {
                    (Some(n), None) if n > 0 => TaskCount::Count(n),
                    (None, Some(p)) if (1..=100).contains(&p) => TaskCount::Percent(p),
                    (Some(_), None) => return Err(args.err("task_count", "must be at least 1")),
                    (None, Some(_)) => {
                        return Err(args.err("task_percent", "must be between 1 and 100"))
                    }
                    _ => {
                        return Err(format!(
                            "exactly one of 'task_count' and 'task_percent' is required by {}",
                            entry.function
                        ))
                    }
                };
                Call::EcsStopRandomTasks {
                    cluster: args.text("cluster")?,
                    service: args.opt_text("service")?,
                    count,
                    reason: args
                        .opt_text("reason")?
                        .unwrap_or_else(|| "Chaos Testing".into()),
                }
            }
            "chaosaws.ecs.actions.update_desired_count" => {
                let desired = args.u32("desired_count")?;
                Call::EcsUpdateDesiredCount {
                    cluster: args.text("cluster")?,
                    service: args.text("service")?,
                    desired_count: i32::try_from(desired)
                        .map_err(|_| args.err("desired_count", "is too large"))?,
                }
            }
            "chaosaws.ecs.probes.are_all_desired_tasks_running" => {
                Call::EcsAreAllDesiredTasksRunning {
                    cluster: args.text("cluster")?,
                    service: args.text("service")?,
                }
            }
            "chaosaws.ecs.probes.describe_service" => Call::EcsDescribeService {
                cluster: args.text("cluster")?,
                service: args.text("service")?,
            },
            "chaosaws.cloudwatch.probes.get_alarm_state_value" => {
                Call::CloudWatchGetAlarmStateValue {
                    alarm_name: args.text("alarm_name")?,
                }
            }
            other => return Err(format!("'{other}' has no implementation")),
        })
    }

    pub fn kind(&self) -> ActivityType {
        match self {
            Call::EcsStopRandomTasks { .. } | Call::EcsUpdateDesiredCount { .. } => {
                ActivityType::Action
            }
            Call::EcsAreAllDesiredTasksRunning { .. }
            | Call::EcsDescribeService { .. }
            | Call::CloudWatchGetAlarmStateValue { .. } => ActivityType::Probe,
        }
    }
}

struct Args<'a> {
    function: &'static str,
    map: &'a Map<String, Value>,
}

impl Args<'_> {
    fn err(&self, name: &str, msg: impl std::fmt::Display) -> String {
        format!("argument '{name}' of {} {msg}", self.function)
    }

    fn text(&self, name: &str) -> Result<String, String> {
        self.opt_text(name)?
            .ok_or_else(|| format!("argument '{name}' is required by {}", self.function))
    }

    fn opt_text(&self, name: &str) -> Result<Option<String>, String> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(Value::String(_)) => Err(self.err(name, "must not be empty")),
            Some(other) => {
                Err(self.err(name, format!("must be a string, found {}", kind_of(other))))
            }
        }
    }

    fn u32(&self, name: &str) -> Result<u32, String> {
        self.opt_u32(name)?
            .ok_or_else(|| format!("argument '{name}' is required by {}", self.function))
    }

    fn opt_u32(&self, name: &str) -> Result<Option<u32>, String> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| self.err(name, format!("must be a whole number ≥ 0, found {n}"))),
            // Chaos Toolkit configuration often arrives as strings ("3").
            Some(Value::String(s)) => {
                s.trim().parse::<u32>().map(Some).map_err(|_| {
                    self.err(name, format!("must be a whole number ≥ 0, found \"{s}\""))
                })
            }
            Some(other) => {
                Err(self.err(name, format!("must be a number, found {}", kind_of(other))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(function: &str, args: Value) -> CallSpec {
        CallSpec {
            function: function.into(),
            arguments: args.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn stop_random_tasks_needs_exactly_one_of_count_and_percent() {
        let f = "chaosaws.ecs.actions.stop_random_tasks";
        assert_eq!(
            Call::parse(&spec(f, json!({"cluster": "c", "task_count": 2}))).unwrap(),
            Call::EcsStopRandomTasks {
                cluster: "c".into(),
                service: None,
                count: TaskCount::Count(2),
                reason: "Chaos Testing".into()
            }
        );
        let both = Call::parse(&spec(
            f,
            json!({"cluster": "c", "task_count": 1, "task_percent": 5}),
        ))
        .unwrap_err();
        assert!(both.starts_with("exactly one of"), "{both}");
        let none = Call::parse(&spec(f, json!({"cluster": "c"}))).unwrap_err();
        assert!(none.starts_with("exactly one of"), "{none}");
        let pct = Call::parse(&spec(f, json!({"cluster": "c", "task_percent": 101}))).unwrap_err();
        assert!(pct.contains("between 1 and 100"), "{pct}");
    }

    #[test]
    fn numbers_given_as_strings_are_read() {
        let c = Call::parse(&spec(
            "chaosaws.ecs.actions.update_desired_count",
            json!({"cluster": "c", "service": "s", "desired_count": "0"}),
        ))
        .unwrap();
        assert_eq!(
            c,
            Call::EcsUpdateDesiredCount {
                cluster: "c".into(),
                service: "s".into(),
                desired_count: 0
            }
        );
    }

    #[test]
    fn wrong_types_and_unknown_arguments_are_named() {
        let f = "chaosaws.ecs.actions.update_desired_count";
        let e = Call::parse(&spec(
            f,
            json!({"cluster": "c", "service": "s", "desired_count": -1}),
        ))
        .unwrap_err();
        assert_eq!(e, "argument 'desired_count' of chaosaws.ecs.actions.update_desired_count must be a whole number ≥ 0, found -1");
        let e = Call::parse(&spec(
            f,
            json!({"cluster": 5, "service": "s", "desired_count": 1}),
        ))
        .unwrap_err();
        assert_eq!(e, "argument 'cluster' of chaosaws.ecs.actions.update_desired_count must be a string, found a number");
        let e = Call::parse(&spec(
            f,
            json!({"cluster": "c", "service": "s", "desired_count": 1, "force": true}),
        ))
        .unwrap_err();
        assert!(
            e.starts_with("argument 'force' is not a parameter of"),
            "{e}"
        );
    }

    #[test]
    fn implicit_configuration_argument_is_accepted() {
        let c = Call::parse(&spec(
            "chaosaws.cloudwatch.probes.get_alarm_state_value",
            json!({"alarm_name": "a", "configuration": {}}),
        ));
        assert!(c.is_ok());
    }
}
