//! The guards' reads and writes of AWS: opt-in tags, target locks, the
//! blast radius and the kill switch, and the lock release Plan records as
//! every run's last undo.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};

use crate::catalogue::{
    custom, read, scoped, spec, text, Activity, Call, Module, OptIn, Resource, Revert,
};
use crate::ports::{AwsError, Parameters};
use crate::{run, ActivityError, Context, Outcome, Ports, Undo};

/// Where locks live: one per target, for the whole account and every stack
/// deployed in it, so two deployments cannot run chaos on one service.
pub const LOCK_PREFIX: &str = "/turbulence/locks/";

const RELEASE_LOCK: &str = "turbulence.guards.actions.release_lock";

pub static MODULE: Module = Module {
    service: "guards",
    title: "Turbulence's guards",
    activities: &[Activity::action(RELEASE_LOCK, run!(release))
        .doc("Deletes a target's lock if this execution holds it. Plan records one per lock it takes.")
        .params(&[
            custom(
                "parameter_name",
                "SSM parameter name",
                crate::ssm::parameter_name,
            ),
            text("execution"),
        ])
        .undo(Revert::NotNeeded("it undoes the lock Plan took"))
        .iam(&[
            read("ssm:GetParameter"),
            scoped("ssm:DeleteParameter", "granted only under /turbulence/locks/"),
        ])
        .example(r#"{"parameter_name": "/turbulence/locks/ecs/shop/web", "execution": "arn:aws:states:eu-west-1:123456789012:execution:turbulence:run-1"}"#)
        .internal()],
    refused: &[],
};

async fn release(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let parameter_name = c.text("parameter_name");
    let released = release_lock(ports.parameters, parameter_name, c.text("execution")).await?;
    Ok(Outcome::output(
        json!({"parameter_name": parameter_name, "released": released}),
    ))
}

/// Whether a resource carries the opt-in tag with the value `true`
/// (resources fenced another way need none).
pub async fn opted_in(ports: &Ports<'_>, target: &Resource, tag: &str) -> Result<bool, AwsError> {
    let OptIn::Tag { read, .. } = target.ty.opt_in else {
        return Ok(true);
    };
    let tags = read(target, ports).await?;
    Ok(tags
        .get(tag)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")))
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

/// How much of a service one task stop may take.
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
        self.check_share("stopping", stopping, running, "running tasks", of)
    }

    /// Refuse `taking` (`verb`: stopping, draining, ...) of the `total`
    /// `things` of `of` when that is over either cap.
    pub fn check_share(
        &self,
        verb: &str,
        taking: usize,
        total: usize,
        things: &str,
        of: &str,
    ) -> Result<(), String> {
        let left = total.saturating_sub(taking);
        if taking * 100 > total * self.max_task_percent as usize {
            return Err(format!(
                "{verb} {taking} of the {total} {things} of {of} is over the blast-radius cap of {}% of {things}",
                self.max_task_percent
            ));
        }
        if left < self.min_remaining_tasks as usize {
            return Err(format!(
                "{verb} {taking} of the {total} {things} of {of} would leave {left}, fewer than the {} that must remain",
                self.min_remaining_tasks
            ));
        }
        Ok(())
    }
}

/// A number, or a string holding one (template substitutions are strings).
pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| serde::de::Error::custom("expected a whole number"))
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

/// Take the lock of a target for an execution. `Err(holder)` inside when
/// another execution holds it and it has not expired. Taking a lock this
/// execution already holds succeeds, so a retried Plan does not lock itself
/// out.
pub async fn take_lock(
    parameters: &dyn Parameters,
    target: &Resource,
    lock: &Lock,
    now: time::OffsetDateTime,
) -> Result<Result<(), Lock>, AwsError> {
    let name = target.lock_parameter();
    let value = json!(lock).to_string();
    // Two tries: the second after removing an expired lock.
    for _ in 0..2 {
        if parameters.create(&name, &value).await? {
            return Ok(Ok(()));
        }
        let Some(text) = parameters.get(&name).await? else {
            // Released between our write and our read: try again.
            continue;
        };
        match serde_json::from_str::<Lock>(&text) {
            Ok(held) if held.execution == lock.execution => return Ok(Ok(())),
            Ok(held) if !held.expired(now) => return Ok(Err(held)),
            // Expired, or not a lock we can read: a crashed run left it.
            _ => {
                tracing::warn!(lock = %name, held = %text, "removing an expired lock");
                parameters.delete(&name).await?;
            }
        }
    }
    Err(AwsError::Other(format!(
        "could not take the lock '{name}': it keeps changing"
    )))
}

/// Delete a lock if `execution` holds it; `false` when it was not held by
/// it (already released, expired and taken over, or never taken).
pub async fn release_lock(
    parameters: &dyn Parameters,
    name: &str,
    execution: &str,
) -> Result<bool, AwsError> {
    let Some(text) = parameters.get(name).await? else {
        return Ok(false);
    };
    match serde_json::from_str::<Lock>(&text) {
        Ok(held) if held.execution == execution => parameters.delete(name).await,
        _ => Ok(false),
    }
}

/// The compensation that releases a lock: recorded by Plan before any
/// change, so it runs last.
pub fn release_undo(target: &Resource, execution: &str) -> Undo {
    Undo {
        name: format!("release the lock on {target}"),
        call: spec(
            RELEASE_LOCK,
            json!({"parameter_name": target.lock_parameter(), "execution": execution}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeParameters;

    fn lock(execution: &str, at: time::OffsetDateTime) -> Lock {
        Lock {
            execution: execution.into(),
            expires_at: crate::timestamp(at),
        }
    }

    #[tokio::test]
    async fn a_lock_is_held_until_released_or_expired() {
        let p = FakeParameters::default();
        let now = time::OffsetDateTime::now_utc();
        let t = crate::ecs::SERVICE.within("c", "s");
        let later = now + time::Duration::hours(1);
        assert_eq!(take_lock(&p, &t, &lock("a", later), now).await, Ok(Ok(())));
        // Plan retried: the same execution takes it again.
        assert_eq!(take_lock(&p, &t, &lock("a", later), now).await, Ok(Ok(())));
        assert_eq!(
            take_lock(&p, &t, &lock("b", later), now).await,
            Ok(Err(lock("a", later)))
        );
        // Only the holder releases it.
        assert_eq!(release_lock(&p, &t.lock_parameter(), "b").await, Ok(false));
        assert_eq!(release_lock(&p, &t.lock_parameter(), "a").await, Ok(true));
        assert_eq!(release_lock(&p, &t.lock_parameter(), "a").await, Ok(false));
        assert_eq!(take_lock(&p, &t, &lock("b", later), now).await, Ok(Ok(())));
        // Past its expiry, a crashed run's lock is taken over.
        let after = later + time::Duration::seconds(1);
        assert_eq!(
            take_lock(&p, &t, &lock("c", after + time::Duration::hours(1)), after).await,
            Ok(Ok(()))
        );
        assert!(p.value(&t.lock_parameter()).unwrap().contains("\"c\""));
    }

    #[test]
    fn lock_parameters_are_valid_ssm_names() {
        let f = crate::awslambda::FUNCTION.of("arn:aws:lambda:eu-west-1:1:function:f");
        assert_eq!(
            f.lock_parameter(),
            "/turbulence/locks/lambda/arn_aws_lambda_eu-west-1_1_function_f"
        );
        let p = crate::ssm::PARAMETER.of("/turbulence/faults/x");
        assert_eq!(
            p.lock_parameter(),
            "/turbulence/locks/ssm/turbulence/faults/x"
        );
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
