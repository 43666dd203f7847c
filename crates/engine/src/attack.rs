//! Load attacks too big for one invocation: Plan splits them into waves of
//! shares (`load::plan_shares`); the state machine's `Attack` Map runs the
//! shares of a wave at once, each in its own action invocation ([`share`]);
//! [`wave`] merges what they reported and starts the next wave, or records
//! the whole attack as the step's outcome.

use std::time::Duration;

use activities::attack::{run_share, MAX_USERS_PER_INVOCATION};
use activities::{ActivityError, Ports};
use experiment::guards::Deployment;
use experiment::plan::{Plan, StepKind};
use experiment::{Call, ErrorReport, NextKind, State};
use load::AttackReport;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::{current, record_outcome, run_span, Failure};

/// What the Map sends each share's invocation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShareRequest {
    pub share: Value,
    pub execution: String,
    pub abort_alarms: Vec<String>,
    pub poll_interval_ms: u64,
    pub deployment: Deployment,
}

/// Check every attack and http probe against the deployment's load limits
/// (the host allow-list, and what its host resolves to now: never
/// loopback or link-local), and split each attack too big for one
/// invocation into waves.
pub(crate) async fn plan_attacks(plan: &mut Plan, limits: &load::Limits) -> Result<(), Failure> {
    for step in &mut plan.steps {
        if let Some(provider) = step.tolerance.as_ref().and_then(|t| t.probe()) {
            let url = provider.get("url").and_then(Value::as_str).unwrap_or("");
            let host = experiment::catalogue::parsed_host(url).unwrap_or_default();
            if !load::host_allowed(&limits.allowed_hosts, &host) {
                return Err(Failure::Refused(format!(
                    "activity '{}': the tolerance probe's host '{host}' is not in the load allow-list",
                    step.name
                )));
            }
            reachable(&step.name, url, limits).await?;
        }
        let Some(call) = step.call.as_ref().and_then(|c| Call::parse(c).ok()) else {
            continue;
        };
        match call.name() {
            activities::attack::ATTACK => {
                let spec = activities::attack::spec_of(&call);
                let attack = activities::attack::validate(&spec, limits)
                    .map_err(|e| Failure::Refused(format!("activity '{}': {e}", step.name)))?;
                reachable(&step.name, &attack.spec().target, limits).await?;
                let shares = load::plan_shares(&attack, MAX_USERS_PER_INVOCATION);
                if shares.len() > 1 {
                    let mut waves: Vec<Vec<Value>> = Vec::new();
                    for share in shares {
                        let wave = share.share.map_or(0, |s| s.wave as usize);
                        if waves.len() <= wave {
                            waves.resize_with(wave + 1, Vec::new);
                        }
                        waves[wave].push(serde_json::to_value(share).unwrap_or(Value::Null));
                    }
                    step.waves = Some(waves);
                }
            }
            experiment::catalogue::HTTP => {
                let url = call.text("url");
                let host = experiment::catalogue::parsed_host(url).unwrap_or_default();
                if !load::host_allowed(&limits.allowed_hosts, &host) {
                    return Err(Failure::Refused(format!(
                        "activity '{}': host '{host}' of {url} is not in the load allow-list ({})",
                        step.name,
                        if limits.allowed_hosts.is_empty() {
                            "empty: set LoadAllowedHosts".to_string()
                        } else {
                            limits.allowed_hosts.join(", ")
                        }
                    )));
                }
                reachable(&step.name, url, limits).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuse a URL whose host is, or resolves to, an address attacks and
/// probes never reach (`load::reach`).
async fn reachable(step: &str, url: &str, limits: &load::Limits) -> Result<(), Failure> {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return Ok(()); // the URL check itself names what is wrong
    };
    let Some(host) = uri.host() else {
        return Ok(());
    };
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    load::reach::check_host(host, port, limits.allow_loopback)
        .await
        .map_err(|why| {
            Failure::Refused(format!(
                "activity '{step}': {url}: {why}; attacks and probes never go there"
            ))
        })
}

/// Run one share; its report, aborted or not, is the Map's item result.
pub async fn share(request: ShareRequest, ports: &Ports<'_>) -> Result<Value, Failure> {
    let span =
        tracing::info_span!("turbulence", execution = %request.execution, function = "share");
    async {
        let limits = crate::load_limits(Some(&request.deployment), ports);
        let runs = [request.execution.clone()];
        let watch = activities::Watch {
            abort_alarms: &request.abort_alarms,
            kill_switch: Some(&request.deployment.kill_switch_parameter),
            runs: &runs,
        };
        let report = run_share(
            &request.share,
            ports,
            &limits,
            watch,
            Duration::from_millis(request.poll_interval_ms.max(1)),
        )
        .await
        .map_err(|e| match e {
            ActivityError::Refused(m) => Failure::Refused(m),
            other => Failure::ActivityFailed(ErrorReport {
                message: format!("load share: {other}"),
                record: None,
            }),
        })?;
        Ok(serde_json::to_value(report).unwrap_or(Value::Null))
    }
    .instrument(span)
    .await
}

/// Merge the wave the Map ran; start the next one, or record the attack.
pub async fn wave(state: State) -> Result<State, Failure> {
    let span = run_span(&state, "wave");
    async { wave_in(state) }.instrument(span).await
}

fn wave_in(mut state: State) -> Result<State, Failure> {
    let (step, _) = current(&state, &[StepKind::Action])?;
    let waves = step.waves.clone().ok_or_else(|| {
        Failure::StateInvalid(format!("step '{}' is not a fanned-out attack", step.name))
    })?;
    let mut progress = state
        .next
        .attack
        .take()
        .ok_or_else(|| Failure::StateInvalid("no attack under way in the state".into()))?;
    let reports = parse_reports(progress.results.take().unwrap_or_default())?;
    let wave_report = load::merge(reports)
        .ok_or_else(|| Failure::StateInvalid("the wave's shares reported nothing".into()))?;
    if progress.started_at.is_empty() {
        let began = OffsetDateTime::now_utc() - time::Duration::seconds_f64(wave_report.duration_s);
        progress.started_at = experiment::timestamp(began);
    }
    let stopped = !wave_report.stop_reason.is_completed();
    tracing::info!(wave = progress.wave, of = waves.len(), stop = ?wave_report.stop_reason, "wave done");
    progress
        .done
        .push(serde_json::to_value(&wave_report).unwrap_or(Value::Null));
    if !stopped && progress.wave + 1 < waves.len() {
        progress.wave += 1;
        progress.shares = waves[progress.wave].clone();
        state.next.kind = NextKind::Attack;
        state.next.attack = Some(progress);
        return Ok(state);
    }
    let all = parse_reports(progress.done.clone())?;
    let total = load::merge(all)
        .ok_or_else(|| Failure::StateInvalid("the attack reported nothing".into()))?;
    let start = time::OffsetDateTime::parse(
        &progress.started_at,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap_or_else(|_| OffsetDateTime::now_utc());
    let elapsed = Duration::from_secs_f64(
        (OffsetDateTime::now_utc() - start)
            .as_seconds_f64()
            .max(0.0),
    );
    let spec = step
        .call
        .clone()
        .ok_or_else(|| Failure::StateInvalid(format!("step '{}' has no call", step.name)))?;
    let result = activities::attack::outcome(total, &mut state.baselines, &step.name);
    record_outcome(state, &step, spec, start, elapsed, result)
}

fn parse_reports(values: Vec<Value>) -> Result<Vec<AttackReport>, Failure> {
    values
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::StateInvalid(format!("a share's report is unreadable: {e}")))
}
