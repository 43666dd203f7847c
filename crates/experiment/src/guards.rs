//! What must hold before Turbulence touches anything, and the records that
//! let anything it touched be undone even when the run itself is gone.
//!
//! - [`Deployment`]: the deployment's guard settings, put into every run by
//!   the state machine definition (a run cannot loosen them).
//! - [`Target`]: what an action changes, for opt-in tags and locks.
//! - [`BlastRadius`]: how many tasks one stop may take.
//! - [`Lock`] and [`RunRecord`]: SSM parameters under [`LOCK_PREFIX`] and
//!   [`RUN_PREFIX`], one lock table for the whole account.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::state::Compensation;

/// Where locks live: one per target, for the whole account and every stack
/// deployed in it, so two deployments cannot run chaos on one service.
pub const LOCK_PREFIX: &str = "/turbulence/locks/";
/// Where each run's undo log lives while it runs.
pub const RUN_PREFIX: &str = "/turbulence/runs/";

/// The deployment's guard settings (template parameters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// Accounts experiments may run in; `*` for any.
    #[serde(deserialize_with = "list")]
    pub allowed_accounts: Vec<String>,
    #[serde(deserialize_with = "list")]
    pub allowed_regions: Vec<String>,
    /// The tag an ECS service (or cluster) or Lambda function must carry,
    /// with the value `true`, to be touched.
    pub opt_in_tag: String,
    /// An SSM parameter; while it holds anything but `off`, no experiment
    /// starts and running ones abort.
    pub kill_switch_parameter: String,
    pub dead_letter_queue_url: String,
    #[serde(flatten)]
    pub blast_radius: BlastRadius,
    /// Hosts load attacks and http probes may reach (exact, or `*.suffix`);
    /// none by default.
    #[serde(default, deserialize_with = "list")]
    pub load_allowed_hosts: Vec<String>,
    /// The most concurrent users of one load stage.
    #[serde(default = "default_max_users", deserialize_with = "number")]
    pub load_max_users: u32,
    /// The hard cap on an attack's requests per second.
    #[serde(default = "default_max_rps", deserialize_with = "number")]
    pub load_max_rps: u32,
    /// Alarms that abort every experiment, beside those it names
    /// (`DefaultAbortAlarms`).
    #[serde(default, deserialize_with = "list")]
    pub default_abort_alarms: Vec<String>,
}

fn default_max_users() -> u32 {
    200
}

fn default_max_rps() -> u32 {
    1000
}

/// How much of a service one `stop_random_tasks` may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlastRadius {
    /// The most tasks stopped at once, as a percentage of those running.
    #[serde(deserialize_with = "number")]
    pub max_task_percent: u32,
    /// The fewest tasks left running afterwards.
    #[serde(deserialize_with = "number")]
    pub min_remaining_tasks: u32,
}

impl Default for BlastRadius {
    fn default() -> Self {
        BlastRadius {
            max_task_percent: 50,
            min_remaining_tasks: 1,
        }
    }
}

impl BlastRadius {
    /// Refuse stopping `stopping` of `running` tasks of `of` when that is over
    /// either cap.
    pub fn check(&self, stopping: usize, running: usize, of: &str) -> Result<(), String> {
        let left = running.saturating_sub(stopping);
        if stopping * 100 > running * self.max_task_percent as usize {
            return Err(format!(
                "stopping {stopping} of the {running} running tasks of {of} is over the blast-radius cap of {}% of running tasks",
                self.max_task_percent
            ));
        }
        if left < self.min_remaining_tasks as usize {
            return Err(format!(
                "stopping {stopping} of the {running} running tasks of {of} would leave {left}, fewer than the {} that must remain",
                self.min_remaining_tasks
            ));
        }
        Ok(())
    }
}

/// A comma-separated string (what a template parameter substitutes) or a
/// JSON list.
fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        other => {
            return Err(serde::de::Error::custom(format!(
                "expected a list, found {other}"
            )))
        }
    })
}

/// A number, or a string holding one (template substitutions are strings).
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| serde::de::Error::custom("expected a whole number"))
}

/// The parts of an execution ARN
/// (`arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionArn<'a> {
    pub region: &'a str,
    pub account: &'a str,
    pub state_machine: &'a str,
    pub name: &'a str,
}

impl<'a> ExecutionArn<'a> {
    pub fn parse(arn: &'a str) -> Option<Self> {
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            ["arn", _, "states", region, account, "execution", machine, name, ..] => {
                Some(ExecutionArn {
                    region,
                    account,
                    state_machine: machine,
                    name,
                })
            }
            _ => None,
        }
    }
}

impl Deployment {
    /// What load attacks and http probes may do here.
    pub fn load_limits(&self) -> load::Limits {
        load::Limits {
            allowed_hosts: self.load_allowed_hosts.clone(),
            max_users: self.load_max_users,
            max_rps: f64::from(self.load_max_rps),
            ..Default::default()
        }
    }

    /// Refuse an execution outside the allowed accounts and regions.
    pub fn check_place(&self, execution: &str) -> Result<(), String> {
        let arn = ExecutionArn::parse(execution)
            .ok_or_else(|| format!("'{execution}' is not an execution ARN"))?;
        let allowed = |list: &[String], v: &str| list.iter().any(|a| a == "*" || a == v);
        if !allowed(&self.allowed_accounts, arn.account) {
            return Err(format!(
                "account {} is not in the allowed accounts ({})",
                arn.account,
                self.allowed_accounts.join(", ")
            ));
        }
        if !allowed(&self.allowed_regions, arn.region) {
            return Err(format!(
                "region {} is not in the allowed regions ({})",
                arn.region,
                self.allowed_regions.join(", ")
            ));
        }
        Ok(())
    }
}

/// Refuse an experiment's `aws_region` (chaosaws's configuration key) when
/// it is not the Region the run acts in (the execution's): every call goes
/// there, so another Region would be silently ignored.
pub fn check_region(execution: &str, wanted: Option<&Value>) -> Result<(), String> {
    let Some(wanted) = wanted else { return Ok(()) };
    let arn = ExecutionArn::parse(execution)
        .ok_or_else(|| format!("'{execution}' is not an execution ARN"))?;
    match wanted.as_str() {
        Some(region) if region == arn.region => Ok(()),
        Some(region) => Err(format!(
            "configuration.aws_region is '{region}', but this Turbulence deployment runs in {} and acts only there; run the experiment from a deployment in {region}, or remove the key",
            arn.region
        )),
        None => Err(format!(
            "configuration.aws_region must be a Region name, found {wanted}"
        )),
    }
}

/// Whether a kill switch parameter's value (`None`: it does not exist)
/// stops experiments. Anything but absent, empty or `off` does: a switch
/// someone set in a hurry must not be misread.
pub fn kill_switch_is_set(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        let v = v.trim();
        !v.is_empty() && !v.eq_ignore_ascii_case("off")
    })
}

/// Something an action changes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    EcsService {
        cluster: String,
        service: String,
    },
    /// A cluster-wide task stop touches every service in it.
    EcsCluster {
        cluster: String,
    },
    Function {
        name: String,
    },
    Parameter {
        name: String,
    },
    /// An API a load attack goes to: `host:port`.
    Host {
        host: String,
    },
}

impl Target {
    /// The SSM parameter that locks this target.
    pub fn lock_parameter(&self) -> String {
        let key = match self {
            Target::EcsService { cluster, service } => format!("ecs/{cluster}/{service}"),
            Target::EcsCluster { cluster } => format!("ecs/{cluster}"),
            // A function may be named by ARN: ':' is not allowed in a name.
            Target::Function { name } => format!("lambda/{}", name.replace(':', "_")),
            Target::Parameter { name } => format!("ssm/{}", name.trim_start_matches('/')),
            Target::Host { host } => format!("host/{}", host.replace(':', "_")),
        };
        format!("{LOCK_PREFIX}{key}")
    }

    /// Whether the target must carry the opt-in tag. Parameters are fenced
    /// by IAM (a path prefix) instead: SSM writes are where faults live.
    /// Hosts are fenced by the load allow-list instead.
    pub fn needs_opt_in(&self) -> bool {
        !matches!(self, Target::Parameter { .. } | Target::Host { .. })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::EcsService { cluster, service } => {
                write!(f, "ECS service '{service}' of cluster '{cluster}'")
            }
            Target::EcsCluster { cluster } => write!(f, "ECS cluster '{cluster}'"),
            Target::Function { name } => write!(f, "Lambda function '{name}'"),
            Target::Parameter { name } => write!(f, "SSM parameter '{name}'"),
            Target::Host { host } => write!(f, "host '{host}'"),
        }
    }
}

/// What a lock parameter holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub execution: String,
    pub expires_at: String,
}

impl Lock {
    /// A lock past its expiry no longer holds: its run crashed or hung.
    pub fn expired(&self, now: time::OffsetDateTime) -> bool {
        time::OffsetDateTime::parse(
            &self.expires_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_or(true, |at| at <= now)
    }
}

/// A run's undo log: written before each change, read by the janitor when
/// the execution ended without running its own rollbacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub execution: String,
    pub dead_letter_queue_url: String,
    /// Everything that undoes what the run changed, oldest first; lock
    /// releases come first, so they run last.
    pub compensations: Vec<Compensation>,
    /// A background activity's record: the run that started it, which
    /// sends the journal (the janitor sends none for this record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The background activities' executions this run started, each with
    /// the digest of the state it was given (see [`crate::background`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ChildRun>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildRun {
    pub execution: String,
    pub digest: String,
}

impl RunRecord {
    /// The parameter of an execution's record: machine and name, as
    /// execution names are unique only per state machine.
    pub fn parameter(execution: &str) -> Option<String> {
        let arn = ExecutionArn::parse(execution)?;
        Some(format!("{RUN_PREFIX}{}/{}", arn.state_machine, arn.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_settings_arrive_as_template_strings() {
        let d: Deployment = serde_json::from_value(json!({
            "allowed_accounts": "123456789012, 210987654321",
            "allowed_regions": "eu-west-1",
            "opt_in_tag": "turbulence:opt-in",
            "kill_switch_parameter": "/turbulence/kill-switch",
            "dead_letter_queue_url": "http://q",
            "max_task_percent": "50",
            "min_remaining_tasks": "1"
        }))
        .unwrap();
        assert_eq!(d.allowed_accounts, ["123456789012", "210987654321"]);
        assert_eq!(d.blast_radius, BlastRadius::default());
        let arn = "arn:aws:states:eu-west-1:210987654321:execution:m:run-1";
        assert_eq!(d.check_place(arn), Ok(()));
        let e = d
            .check_place("arn:aws:states:us-east-1:210987654321:execution:m:run-1")
            .unwrap_err();
        assert_eq!(
            e,
            "region us-east-1 is not in the allowed regions (eu-west-1)"
        );
        let e = d
            .check_place("arn:aws:states:eu-west-1:999999999999:execution:m:run-1")
            .unwrap_err();
        assert!(e.starts_with("account 999999999999 is not"), "{e}");
    }

    #[test]
    fn blast_radius_caps_share_and_remainder() {
        let caps = BlastRadius::default();
        assert_eq!(caps.check(1, 2, "s"), Ok(()));
        let e = caps.check(2, 3, "s").unwrap_err();
        assert!(e.contains("over the blast-radius cap of 50%"), "{e}");
        let caps = BlastRadius {
            max_task_percent: 100,
            min_remaining_tasks: 2,
        };
        let e = caps.check(2, 3, "s").unwrap_err();
        assert!(e.contains("would leave 1, fewer than the 2"), "{e}");
    }

    #[test]
    fn the_kill_switch_is_set_by_anything_but_off() {
        assert!(!kill_switch_is_set(None));
        assert!(!kill_switch_is_set(Some(" OFF ")));
        assert!(!kill_switch_is_set(Some("")));
        assert!(kill_switch_is_set(Some("on")));
        assert!(kill_switch_is_set(Some("incident 4711: stop all chaos")));
    }

    #[test]
    fn lock_and_run_parameters_are_valid_ssm_names() {
        let t = Target::Function {
            name: "arn:aws:lambda:eu-west-1:1:function:f".into(),
        };
        assert_eq!(
            t.lock_parameter(),
            "/turbulence/locks/lambda/arn_aws_lambda_eu-west-1_1_function_f"
        );
        let p = Target::Parameter {
            name: "/turbulence/faults/x".into(),
        };
        assert_eq!(
            p.lock_parameter(),
            "/turbulence/locks/ssm/turbulence/faults/x"
        );
        assert_eq!(
            RunRecord::parameter("arn:aws:states:r:1:execution:machine:run-7").as_deref(),
            Some("/turbulence/runs/machine/run-7")
        );
        assert_eq!(RunRecord::parameter("nonsense"), None);
    }

    #[test]
    fn a_lock_expires() {
        let now = time::OffsetDateTime::now_utc();
        let lock = |at| Lock {
            execution: "e".into(),
            expires_at: crate::timestamp(at),
        };
        assert!(lock(now - time::Duration::seconds(1)).expired(now));
        assert!(!lock(now + time::Duration::minutes(5)).expired(now));
    }
}
