//! What must hold before Turbulence touches anything, and the records that
//! let anything it touched be undone even when the run itself is gone.
//!
//! - [`Deployment`]: the deployment's guard settings, put into every run by
//!   the state machine definition (a run cannot loosen them).
//! - [`Resource`]: what an action changes, for opt-in tags and locks (the
//!   catalogue's typed references).
//! - [`BlastRadius`]: how many tasks one stop may take.
//! - [`Lock`] and [`RunRecord`]: SSM parameters under [`LOCK_PREFIX`] and
//!   [`RUN_PREFIX`], one lock table for the whole account.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::state::Compensation;

pub use activities::catalogue::Resource;
use activities::guard::number;
pub use activities::guard::{kill_switch_is_set, BlastRadius, Lock, LOCK_PREFIX};
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
    fn run_parameters_are_valid_ssm_names() {
        assert_eq!(
            RunRecord::parameter("arn:aws:states:r:1:execution:machine:run-7").as_deref(),
            Some("/turbulence/runs/machine/run-7")
        );
        assert_eq!(RunRecord::parameter("nonsense"), None);
    }
}
