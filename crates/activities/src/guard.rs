//! The guards' reads and writes of AWS: opt-in tags and target locks.

use experiment::guards::{Lock, Target};
use serde_json::json;

use crate::ports::{AwsError, Parameters};
use crate::{spec, Ports, Undo};

/// Whether a target carries the opt-in tag with the value `true`.
pub async fn opted_in(ports: &Ports<'_>, target: &Target, tag: &str) -> Result<bool, AwsError> {
    let tags = match target {
        Target::EcsService { cluster, service } => ports.ecs.tags(cluster, Some(service)).await?,
        Target::EcsCluster { cluster } => ports.ecs.tags(cluster, None).await?,
        Target::Function { name } => ports.functions.tags(name).await?,
        Target::Parameter { .. } | Target::Host { .. } => return Ok(true),
    };
    Ok(tags
        .get(tag)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")))
}

/// Take the lock of a target for an execution. `Err(holder)` inside when
/// another execution holds it and it has not expired. Taking a lock this
/// execution already holds succeeds, so a retried Plan does not lock itself
/// out.
pub async fn take_lock(
    parameters: &dyn Parameters,
    target: &Target,
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
pub fn release_undo(target: &Target, execution: &str) -> Undo {
    Undo {
        name: format!("release the lock on {target}"),
        call: spec(
            "turbulence.guards.actions.release_lock",
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
            expires_at: experiment::timestamp(at),
        }
    }

    #[tokio::test]
    async fn a_lock_is_held_until_released_or_expired() {
        let p = FakeParameters::default();
        let now = time::OffsetDateTime::now_utc();
        let t = Target::EcsService {
            cluster: "c".into(),
            service: "s".into(),
        };
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
}
