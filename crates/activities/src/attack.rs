//! Load attacks as activities: run one (or one share of one), stop it when
//! an abort alarm fires or the kill switch is set, and leave what it found
//! for `turbulence.load.probes.expectations_met` to judge.

use std::collections::BTreeMap;
use std::time::Duration;

use load::{AttackReport, AttackSpec, StopReason};
use serde_json::{json, Value};

use crate::catalogue::{
    flag, int, json as any_json, number, parsed_host, text, Activity, Call, Module, OptIn,
    Resource, ResourceType, Revert,
};
use crate::{run, ActivityError, AwsError, Context, Outcome, Ports, Watch};

/// An API a load attack goes to: `host:port`. Fenced by the deployment's
/// host allow-list, not a tag; locked, so one attack per API at a time.
pub static HOST: ResourceType = ResourceType {
    service: "load",
    name: "host",
    noun: "host",
    parent: None,
    lock: "host",
    opt_in: OptIn::Fenced("the LoadAllowedHosts allow-list, checked at Plan"),
};

pub const ATTACK: &str = "turbulence.load.actions.attack";

pub static MODULE: Module = Module {
    service: "load",
    title: "Load attacks (Turbulence)",
    activities: &[
        Activity::action(ATTACK, run!(attack))
            .doc("Closed-loop users on keep-alive HTTP/1.1; every response classified against its request's expectation (a 5XX always violates it). Output: counts per status and class, latency p50/p90/p99/max per stage, violations with up to 3 request/response samples per request. Stops early on a `stop` threshold, an abort alarm or the kill switch, and says why. Refused at Plan off the host allow-list or over `LoadMaxUsers` / `LoadMaxRequestsPerSecond`; a stage is at most 14 min; over 100 users a stage fans out over a Map of invocations whose reports are merged.")
            .params(&[
                text("target"),
                any_json("stages").doc("`[{users, duration_s}]`"),
                any_json("requests").doc("templates `missing_token`, `invalid_token`, `expired_token`, `malformed_json`, `wrong_content_type`, `oversized_body`, `custom`, each with its `expect`"),
                any_json("stop").optional().doc("`max_violations`, `max_5xx`, `max_errors`"),
                int("timeout_ms", 1, i64::MAX).optional(),
                number("max_rps", 0.0, f64::MAX).optional(),
                flag("verify_tls").optional(),
            ])
            .check(valid_attack)
            .touches(&[&HOST], host)
            .undo(Revert::NotNeeded("requests change nothing Turbulence can put back; the attack ends with its step"))
            .example(r#"{"target": "https://api.example.com/moderate", "stages": [{"users": 10, "duration_s": 120}], "requests": [{"template": "invalid_token", "expect": [401, 403]}]}"#),
        Activity::probe("turbulence.load.probes.expectations_met", run!(expectations))
            .doc("`true` when no attack (or the named one) saw a violated expectation, also before any ran; when `false`, its detail lists the violations (`invalid-token: expected 401 or 403, saw 500 ×812`) and samples.")
            .params(&[text("attack").optional().doc("an attack activity's name")])
            .example(r#"{"attack": "abuse the API"}"#),
    ],
    refused: &[],
};

/// The attack's spec: its arguments.
pub fn spec_of(c: &Call) -> Value {
    Value::Object(c.arguments().clone())
}

/// The shape, with the deployment's limits set aside: Plan checks those
/// (hosts, users, rate) before anything runs.
fn valid_attack(c: &Call) -> Result<(), String> {
    let parsed = AttackSpec::from_json(spec_of(c)).map_err(|e| format!("{ATTACK}: {e}"))?;
    let open = load::Limits {
        allowed_hosts: vec![parsed_host(&parsed.target).unwrap_or_default()],
        max_users: u32::MAX,
        max_rps: 1e9,
        max_total_requests: u64::MAX,
        allow_loopback: true,
        ..Default::default()
    };
    parsed
        .validate(&open)
        .map(|_| ())
        .map_err(|e| format!("{ATTACK}: {e}"))
}

/// Locked per host and port: one attack per API at a time.
fn host(c: &Call) -> Vec<Resource> {
    let url = c.text("target");
    let Some(host) = parsed_host(url) else {
        return Vec::new();
    };
    let https = url.starts_with("https://");
    let port = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .and_then(|authority| authority.rsplit_once(':'))
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .unwrap_or(if https { 443 } else { 80 });
    vec![HOST.of(format!("{host}:{port}"))]
}

async fn attack(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    run_attack(&spec_of(c), ports, ctx).await
}

async fn expectations(
    c: &Call,
    _: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    expectations_met(ctx.baselines, c.opt_text("attack"))
}

/// The most users one invocation runs; more fan out over a Map of
/// invocations (see `load::plan_shares`).
pub const MAX_USERS_PER_INVOCATION: u32 = 100;

/// The baseline key under which an attack leaves its findings.
pub fn findings_key(step: &str) -> String {
    format!("load:{step}")
}

/// Polls the abort alarms, the kill switch and the run for the attack.
struct Signal<'a> {
    ports: &'a Ports<'a>,
    watch: Watch<'a>,
}

#[async_trait::async_trait]
impl load::StopSignal for Signal<'_> {
    async fn check(&self) -> Option<String> {
        match self.watch.stop_reason(self.ports).await {
            Ok(reason) => reason,
            // Load on an API nobody can watch is load nobody can stop.
            Err(AwsError::Throttled(e) | AwsError::NotFound(e) | AwsError::Other(e)) => {
                Some(format!("cannot check the abort alarms: {e}"))
            }
        }
    }
}

/// Validate an attack against the deployment's limits: the refusal says
/// which field and why, before any request is sent.
pub fn validate(spec: &Value, limits: &load::Limits) -> Result<load::ValidAttack, String> {
    AttackSpec::from_json(spec.clone())
        .and_then(|s| s.validate(limits))
        .map_err(|e| e.to_string())
}

/// Run a whole attack in this invocation.
pub async fn run_attack(
    spec: &Value,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let report = run_share(spec, ports, ctx.load_limits, ctx.watch(), ctx.poll_interval).await?;
    outcome(report, ctx.baselines, ctx.step)
}

/// Run one share (or a whole attack) and report; an abort is in the
/// report's stop reason, not an error, so merged shares keep their counts.
pub async fn run_share(
    spec: &Value,
    ports: &Ports<'_>,
    limits: &load::Limits,
    watch: Watch<'_>,
    poll_interval: Duration,
) -> Result<AttackReport, ActivityError> {
    let attack = validate(spec, limits).map_err(ActivityError::Refused)?;
    let watch = Signal { ports, watch };
    tracing::info!(target = %attack.spec().target, users = attack.peak_users(), seconds = attack.duration().as_secs_f64(), "attack starts");
    let report = attack.run(&watch, poll_interval).await;
    tracing::info!(stop = ?report.stop_reason, requests = report.totals.requests, violations = report.violation_count(), "attack done");
    Ok(report)
}

/// The outcome of a finished attack: its report as output, its findings
/// left for the expectations probe; an abort is an error.
pub fn outcome(
    report: AttackReport,
    baselines: &mut BTreeMap<String, Value>,
    step: &str,
) -> Result<Outcome, ActivityError> {
    if let StopReason::Aborted { reason } = &report.stop_reason {
        return Err(ActivityError::Aborted(reason.clone()));
    }
    let samples: Vec<Value> = report
        .requests
        .iter()
        .flat_map(|t| {
            t.samples.iter().take(1).map(move |s| {
                json!({"request_name": t.name, "request": s.request, "response": s.response, "expected": s.expected})
            })
        })
        .take(load::MAX_SAMPLES)
        .collect();
    baselines.insert(
        findings_key(step),
        json!({"violations": report.violations, "samples": samples}),
    );
    Ok(Outcome {
        detail: Some(json!({
            "stop_reason": report.stop_reason,
            "requests": report.totals.requests,
            "violations": report.violation_count(),
        })),
        output: serde_json::to_value(&report).unwrap_or(Value::Null),
        undo: None,
    })
}

/// `turbulence.load.probes.expectations_met`: true when no attack (or the
/// named one) saw a violated expectation — also before any attack ran, so
/// it serves as a hypothesis probe before and after the method; the
/// violations and a few request/response samples are the detail.
pub fn expectations_met(
    baselines: &BTreeMap<String, Value>,
    attack: Option<&str>,
) -> Result<Outcome, ActivityError> {
    let findings: Vec<&Value> = match attack {
        Some(name) => baselines.get(&findings_key(name)).into_iter().collect(),
        None => baselines
            .iter()
            .filter(|(k, _)| k.starts_with("load:"))
            .map(|(_, v)| v)
            .collect(),
    };
    if findings.is_empty() {
        // Before the method no attack has run: nothing was violated yet.
        return Ok(Outcome {
            output: json!(true),
            detail: Some(json!({"attacks": 0})),
            undo: None,
        });
    }
    let violations: Vec<Value> = findings
        .iter()
        .flat_map(|f| f["violations"].as_array().cloned().unwrap_or_default())
        .collect();
    let samples: Vec<Value> = findings
        .iter()
        .flat_map(|f| f["samples"].as_array().cloned().unwrap_or_default())
        .take(load::MAX_SAMPLES)
        .collect();
    let met = violations.is_empty();
    Ok(Outcome {
        output: json!(met),
        detail: (!met).then(|| json!({"violations": violations, "samples": samples})),
        undo: None,
    })
}
