//! Fanning a large attack out over several Lambda invocations.

use crate::spec::{AttackSpec, Share, Stage, StopRules, ValidAttack};

/// Splits an attack into shares, each small enough for one invocation.
///
/// - If the whole attack fits one invocation (its total duration is within
///   `Limits::max_stage_duration` and no stage has more users than
///   `max_users_per_invocation`), there is one share: the attack itself.
/// - Otherwise each stage becomes a *wave* (`share.wave` = stage index) of
///   `ceil(users / max_users_per_invocation)` concurrent shares. Users are
///   split as evenly as possible, and each share's `first_user` keeps the
///   round-robin assignment of templates global. `max_rps` and the `stop`
///   thresholds are split in proportion to users (thresholds rounded up,
///   so each share stops no later than the whole would have).
///
/// Run the shares of a wave concurrently and the waves in order, stopping
/// when a wave's merged report ([`crate::merge`]) has a stop reason other
/// than `completed`; merge every report at the end. Each share validates
/// against the same limits as the whole.
pub fn plan_shares(attack: &ValidAttack, max_users_per_invocation: u32) -> Vec<AttackSpec> {
    let cap = max_users_per_invocation.max(1);
    let spec = attack.spec();
    if attack.peak_users() <= cap && attack.duration() <= attack.limits().max_stage_duration {
        return vec![AttackSpec {
            share: Some(Share {
                wave: 0,
                index: 0,
                of: 1,
                first_stage: 0,
            }),
            ..spec.clone()
        }];
    }
    let max_rps = attack.max_rps();
    let mut shares = Vec::new();
    for (i, stage) in spec.stages.iter().enumerate() {
        let users = stage.users.unwrap_or(0).max(1);
        let of = users.div_ceil(cap);
        let mut first_user = stage.first_user;
        for index in 0..of {
            let share_users = users / of + u32::from(index < users % of);
            let fraction = f64::from(share_users) / f64::from(users);
            let part = |max: Option<u64>| max.map(|m| (m as f64 * fraction).ceil() as u64);
            shares.push(AttackSpec {
                stages: vec![Stage {
                    users: Some(share_users),
                    duration_s: stage.duration_s,
                    first_user,
                }],
                max_rps: Some(max_rps * fraction),
                stop: StopRules {
                    max_violations: part(spec.stop.max_violations),
                    max_5xx: part(spec.stop.max_5xx),
                    max_errors: part(spec.stop.max_errors),
                },
                share: Some(Share {
                    wave: i as u32,
                    index,
                    of,
                    first_stage: i as u32,
                }),
                ..spec.clone()
            });
            first_user += share_users;
        }
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Limits;
    use serde_json::json;

    fn write_up() -> ValidAttack {
        AttackSpec::from_json(json!({
            "target": "http://127.0.0.1:8080",
            "stages": [{"users": 10, "duration_s": 120}, {"users": 50, "duration_s": 180}, {"users": 100, "duration_s": 240}],
            "requests": [{"template": "invalid_token"}, {"template": "malformed_json"}, {"template": "missing_token"}],
            "stop": {"max_violations": 50, "max_5xx": 50},
            "max_rps": 500
        }))
        .unwrap()
        .validate(&Limits {
            allowed_hosts: vec!["127.0.0.1".into()],
            // The local stack's opt-out: the target is on loopback.
            allow_loopback: true,
            ..Limits::default()
        })
        .unwrap()
    }

    #[test]
    fn an_attack_that_fits_one_invocation_is_one_share() {
        let shares = plan_shares(&write_up(), 100);
        assert_eq!(shares.len(), 1);
        assert_eq!(shares[0].stages, write_up().spec().stages);
        assert_eq!(shares[0].share.unwrap().of, 1);
    }

    #[test]
    fn users_over_the_cap_are_split_and_rps_follows() {
        let attack = write_up();
        let shares = plan_shares(&attack, 40);
        // Waves: 10 → 1 share; 50 → 2 (25 + 25); 100 → 3 (34 + 33 + 33).
        let layout: Vec<(u32, u32, u32, u32)> = shares
            .iter()
            .map(|s| {
                let share = s.share.unwrap();
                (
                    share.wave,
                    share.index,
                    s.stages[0].users.unwrap(),
                    s.stages[0].first_user,
                )
            })
            .collect();
        assert_eq!(
            layout,
            vec![
                (0, 0, 10, 0),
                (1, 0, 25, 0),
                (1, 1, 25, 25),
                (2, 0, 34, 0),
                (2, 1, 33, 34),
                (2, 2, 33, 67)
            ]
        );
        let wave2: Vec<&AttackSpec> = shares
            .iter()
            .filter(|s| s.share.unwrap().wave == 2)
            .collect();
        let rps: f64 = wave2.iter().map(|s| s.max_rps.unwrap()).sum();
        assert!((rps - 500.0).abs() < 1e-9, "{rps}");
        assert_eq!(wave2[0].max_rps, Some(170.0));
        assert_eq!(wave2[0].stop.max_violations, Some(17));
        assert_eq!(wave2[2].stop.max_5xx, Some(17));
        // Every share is a valid attack under the same limits.
        for share in &shares {
            let valid = share.validate(attack.limits()).unwrap();
            assert_eq!(valid.spec().share, share.share);
        }
    }

    #[test]
    fn an_attack_longer_than_an_invocation_is_one_wave_per_stage() {
        let attack = AttackSpec::from_json(json!({
            "target": "http://127.0.0.1:8080",
            "stages": [{"users": 5, "duration_s": 600}, {"users": 5, "duration_s": 600}],
            "requests": [{"template": "invalid_token"}],
            "max_rps": 10
        }))
        .unwrap()
        .validate(&Limits {
            allowed_hosts: vec!["127.0.0.1".into()],
            // The local stack's opt-out: the target is on loopback.
            allow_loopback: true,
            ..Limits::default()
        })
        .unwrap();
        let shares = plan_shares(&attack, 100);
        assert_eq!(shares.len(), 2);
        assert_eq!(shares[1].share.unwrap().first_stage, 1);
        assert_eq!(shares[1].max_rps, Some(10.0));
    }
}
