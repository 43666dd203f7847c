//! The handlers behind the Lambda functions. Each takes the state document
//! the state machine passes and returns it updated; failures are [`Failure`]s
//! whose names the state machine's Catch and Retry match.
//!
//! - [`plan`]: validate and expand the experiment, check its abort alarms
//!   and the guards, take the target locks.
//! - [`step`]: run the probe or action under the cursor.
//! - [`rollback`]: run the next rollback.
//! - [`wait`]: wait up to one chunk of a pause, polling the abort alarms.
//! - [`finish`]: build the journal; send failures to the dead-letter queue.
//! - [`janitor`]: undo what an execution that ended without its rollbacks
//!   changed; sweep what is left over.

pub mod attack;
mod background;
pub mod failure;
mod guard;
pub mod janitor;
pub mod lambda;
pub mod series;

use std::time::Duration;

use activities::{
    ActivityError, Alarms, Context, DeadLetters, Metrics, NoUndoLog, Parameters, Ports, Watch,
};
use experiment::guards::Deployment;
use experiment::journal::{self, Finished};
use experiment::plan::{Phase, Step, StepKind};
use experiment::{
    Call, Compensation, ErrorReport, Experiment, NextKind, Plan, Record, RunStatus, State,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::time::Instant;
use tracing::Instrument;

pub use failure::Failure;

/// What the action function receives: run the step under the cursor, the
/// next rollback, one share of a fanned-out load attack, or the end of a
/// wave of shares.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum ActionRequest {
    Run { state: State },
    Rollback { state: State },
    Share(attack::ShareRequest),
    Wave { state: State },
}

/// Validate the experiment, check its abort alarms exist and none is firing,
/// check the guards, take the targets' locks, and point the state at the
/// first step. Changes nothing but the locks and the run record.
pub async fn plan(state: State, ports: &Ports<'_>) -> Result<State, Failure> {
    let span = run_span(&state, "plan");
    costed(plan_in(state, ports).instrument(span)).await
}

/// Count the invocation and its time in the state's cost.
async fn costed(
    run: impl std::future::Future<Output = Result<State, Failure>>,
) -> Result<State, Failure> {
    let clock = std::time::Instant::now();
    run.await.map(|mut s| {
        s.cost.add(clock.elapsed());
        s
    })
}

/// The SSM parameter an execution input names instead of carrying the
/// experiment (what a schedule sends: `{"experiment_parameter": "/..."}`).
fn experiment_reference(input: &Value) -> Result<Option<String>, Failure> {
    let Some(obj) = input.as_object() else {
        return Ok(None);
    };
    let Some(name) = obj.get("experiment_parameter") else {
        return Ok(None);
    };
    if obj.len() != 1 {
        return Err(Failure::Invalid(
            "experiment_parameter: an input naming an experiment parameter must hold nothing else"
                .into(),
        ));
    }
    match name.as_str() {
        Some(n)
            if !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c)) =>
        {
            Ok(Some(n.to_string()))
        }
        _ => Err(Failure::Invalid(format!(
            "experiment_parameter: not an SSM parameter name: {name}"
        ))),
    }
}

async fn plan_in(mut state: State, ports: &Ports<'_>) -> Result<State, Failure> {
    if let Some(inner) = state
        .experiment
        .get(experiment::background::INPUT_KEY)
        .cloned()
    {
        return background::child_plan(state, &inner, ports).await;
    }
    let (alarms, parameters) = (ports.alarms, ports.parameters);
    if let Some(name) = experiment_reference(&state.experiment)? {
        let text = parameters
            .get(&name)
            .await
            .map_err(|e| Failure::from_aws("reading the experiment parameter", e))?
            .ok_or_else(|| {
                Failure::Invalid(format!(
                    "experiment_parameter: no SSM parameter named '{name}'"
                ))
            })?;
        state.experiment = serde_json::from_str(&text).map_err(|e| {
            Failure::Invalid(format!(
                "experiment_parameter: '{name}' does not hold JSON: {e}"
            ))
        })?;
        tracing::info!(parameter = %name, "experiment loaded");
        state.experiment_parameter = Some(name);
    }
    let lookups = lookups(&state.experiment, ports).await?;
    let experiment =
        Experiment::parse_with(&state.experiment, &lookups).map_err(|e| Failure::Invalid(e.0))?;
    let deployment = guard::deployment(&state)?;
    experiment
        .check_abort_alarms(&deployment.default_abort_alarms)
        .map_err(|e| Failure::Invalid(e.0))?;
    experiment::guards::check_region(&state.execution, experiment.region.as_ref())
        .map_err(Failure::Refused)?;
    let mut plan = Plan::new(&experiment).map_err(|e| Failure::Invalid(e.0))?;
    for name in &deployment.default_abort_alarms {
        if !plan.settings.abort_alarms.contains(name) {
            plan.settings.abort_alarms.push(name.clone());
        }
    }
    let names = &plan.settings.abort_alarms;
    let missing = activities::missing(alarms, names)
        .await
        .map_err(|e| Failure::from_aws("checking the abort alarms", e))?;
    if !missing.is_empty() {
        return Err(Failure::Invalid(format!(
            "extensions.turbulence.abort_alarms: no CloudWatch alarm named {}",
            quoted(&missing)
        )));
    }
    // The kill switch is a guard here (GuardRefused), checked next.
    let watch = Watch {
        abort_alarms: names,
        ..Watch::default()
    };
    ensure_calm(ports, watch, "before anything ran").await?;
    let targets = guard::check(&state, &plan, ports).await?;
    attack::plan_attacks(&mut plan, &load_limits(Some(deployment), ports)).await?;
    tracing::info!(
        execution = %state.execution,
        title = %plan.title,
        steps = plan.steps.len(),
        targets = targets.len(),
        time_scale = plan.settings.time_scale,
        "planned"
    );
    let now = OffsetDateTime::now_utc();
    state.plan = Some(plan);
    state.started_at = Some(experiment::timestamp(now));
    state.point_at(0);
    // A dry run of the actions changes nothing: nothing to lock or undo.
    if dry_run(&state, StepKind::Action).is_none() {
        guard::lock(&mut state, &targets, parameters, now).await?;
    }
    Ok(state)
}

/// What the experiment's configuration names outside itself: the
/// environment (read at cold start) and SSM parameters.
async fn lookups(doc: &Value, ports: &Ports<'_>) -> Result<experiment::Lookups, Failure> {
    let mut ssm = std::collections::BTreeMap::new();
    for name in experiment::model::ssm_references(doc) {
        if let Some(v) = ports
            .parameters
            .get(&name)
            .await
            .map_err(|e| Failure::from_aws("reading configuration from SSM", e))?
        {
            ssm.insert(name, v);
        }
    }
    Ok(experiment::Lookups {
        env: ports.environment.clone(),
        ssm,
        offline: false,
    })
}

/// Fill `${secret}` placeholders of a call from where the secrets live,
/// for this call only: the state keeps the placeholders.
async fn with_secrets(
    spec: &experiment::CallSpec,
    secrets: &std::collections::BTreeMap<String, experiment::SecretRef>,
    ports: &Ports<'_>,
) -> Result<experiment::CallSpec, Failure> {
    if secrets.is_empty() {
        return Ok(spec.clone());
    }
    let text = serde_json::to_string(&spec.arguments).unwrap_or_default();
    let mut values = std::collections::BTreeMap::new();
    for (name, r) in secrets {
        if !text.contains(&format!("${{{name}}}")) {
            continue;
        }
        let value = match r {
            experiment::SecretRef::Literal { value } => value.clone(),
            experiment::SecretRef::Env { key } => {
                ports.environment.get(key).cloned().ok_or_else(|| {
                    Failure::Invalid(format!(
                        "secret '{name}': environment variable '{key}' is not set in this function"
                    ))
                })?
            }
            experiment::SecretRef::Ssm { name: param } => ports
                .parameters
                .get(param)
                .await
                .map_err(|e| Failure::from_aws("reading a secret from SSM", e))?
                .ok_or_else(|| {
                    Failure::Invalid(format!(
                        "secret '{name}': SSM parameter '{param}' does not exist"
                    ))
                })?,
        };
        values.insert(name.clone(), value);
    }
    Ok(experiment::CallSpec {
        function: spec.function.clone(),
        arguments: spec
            .arguments
            .iter()
            .map(|(k, v)| (k.clone(), fill(v, &values)))
            .collect(),
    })
}

fn fill(v: &Value, values: &std::collections::BTreeMap<String, String>) -> Value {
    match v {
        Value::String(s) => {
            let mut out = s.clone();
            for (name, value) in values {
                out = out.replace(&format!("${{{name}}}"), value);
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| fill(i, values)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, i)| (k.clone(), fill(i, values)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The span every log line of one invocation is in: which execution, which
/// experiment, which step, so a line in CloudWatch Logs stands on its own.
fn run_span(state: &State, function: &'static str) -> tracing::Span {
    let title = state
        .plan
        .as_ref()
        .map(|p| p.title.as_str())
        .or_else(|| state.experiment.get("title").and_then(Value::as_str))
        .unwrap_or("");
    let step = match function {
        "plan" | "journal" => function.to_string(),
        "rollback" => state
            .next_rollback()
            .map_or_else(|| "rollback".into(), |r| r.name),
        _ => state
            .current_step()
            .map_or_else(|| function.to_string(), |s| s.name.clone()),
    };
    tracing::info_span!(
        "turbulence",
        execution = %state.execution,
        experiment = %title,
        function,
        step = %step,
    )
}

/// Fail with `ExperimentAborted` when any abort alarm is in ALARM or the
/// kill switch is set.
async fn ensure_calm(ports: &Ports<'_>, watch: Watch<'_>, when: &str) -> Result<(), Failure> {
    let reason = watch
        .stop_reason(ports)
        .await
        .map_err(|e| Failure::from_aws("checking the abort alarms and the kill switch", e))?;
    match reason {
        None => Ok(()),
        Some(reason) => Err(Failure::Aborted(ErrorReport {
            message: format!("{reason} {when}"),
            record: None,
        })),
    }
}

/// Where load attacks and http probes may go, and how hard: the
/// deployment's limits, plus the local stack's opt-out of the loopback
/// guard (`load::reach::ALLOW_LOOPBACK_VAR` in the function's environment,
/// read at cold start).
pub(crate) fn load_limits(deployment: Option<&Deployment>, ports: &Ports<'_>) -> load::Limits {
    let mut limits = deployment.map(Deployment::load_limits).unwrap_or_default();
    limits.allow_loopback = ports
        .environment
        .get(load::reach::ALLOW_LOOPBACK_VAR)
        .is_some_and(|v| v == "true");
    limits
}

/// The executions long work of this state runs for: the run and, for a
/// background activity, the run that started it. Either one over, the work
/// stops.
fn runs(state: &State) -> Vec<String> {
    std::iter::once(state.execution.clone())
        .chain(state.parent.clone())
        .collect()
}

/// The kill switch parameter of the run, if the state names one.
fn kill_switch(state: &State) -> Option<String> {
    state
        .deployment
        .as_ref()
        .map(|d| d.kill_switch_parameter.clone())
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The run's dry-run mode, when it skips steps of this kind.
fn dry_run(state: &State, kind: StepKind) -> Option<experiment::model::DryRun> {
    use experiment::model::DryRun as D;
    let mode = state.plan.as_ref()?.dry_run?;
    matches!(
        (mode, kind),
        (D::Probes, StepKind::Probe)
            | (D::Actions, StepKind::Action)
            | (D::Activities, StepKind::Probe | StepKind::Action)
            | (D::Pause, StepKind::Wait)
    )
    .then_some(mode)
}

/// The step under the cursor (or the probe of the hypothesis round under
/// way there), checked to be of the kind the caller runs, and the plan's
/// settings.
fn current(state: &State, kinds: &[StepKind]) -> Result<(Step, experiment::Settings), Failure> {
    let plan = state.plan.as_ref().ok_or_else(|| {
        Failure::StateInvalid("the state has no plan; Plan must run first".into())
    })?;
    let step = state.current_step().ok_or_else(|| {
        Failure::StateInvalid(format!(
            "cursor {} ({:?}) is past the last step ({}, {} in a round)",
            state.cursor,
            state.next.round,
            plan.steps.len(),
            plan.during.len()
        ))
    })?;
    if !kinds.contains(&step.kind) {
        return Err(Failure::StateInvalid(format!(
            "step {} '{}' is a {:?}, not a {:?}",
            state.cursor, step.name, step.kind, kinds
        )));
    }
    Ok((step.clone(), plan.settings.clone()))
}

fn phase_text(phase: Phase) -> &'static str {
    match phase {
        Phase::Before => "before the method",
        Phase::Method => "in the method",
        Phase::During => "during the method",
        Phase::After => "after the method",
        Phase::Rollback => "in the rollbacks",
    }
}

/// Run the probe or action under the cursor: check the abort alarms, run
/// it, judge a hypothesis probe's tolerance, record what undoes an action.
pub async fn step(
    state: State,
    ports: &Ports<'_>,
    rng: &mut (dyn RngCore + Send),
) -> Result<State, Failure> {
    let span = run_span(&state, "step");
    if state.next.kind == NextKind::Fork {
        return costed(fork(state, ports).instrument(span)).await;
    }
    costed(step_in(state, ports, rng).instrument(span)).await
}

/// Start the background activity under the cursor, once the alarms and the
/// kill switch allow it, as any action.
async fn fork(state: State, ports: &Ports<'_>) -> Result<State, Failure> {
    let alarms = state
        .plan
        .as_ref()
        .map(|p| p.settings.abort_alarms.clone())
        .unwrap_or_default();
    let what = state
        .plan
        .as_ref()
        .and_then(|p| p.steps.get(state.cursor))
        .map_or_else(String::new, |s| format!("before '{}'", s.name));
    let kill_switch = kill_switch(&state);
    let watch = Watch {
        abort_alarms: &alarms,
        kill_switch: kill_switch.as_deref(),
        runs: &[],
    };
    ensure_calm(ports, watch, &what).await?;
    background::fork(state, ports).await
}

async fn step_in(
    mut state: State,
    ports: &Ports<'_>,
    rng: &mut (dyn RngCore + Send),
) -> Result<State, Failure> {
    let (step, settings) = current(&state, &[StepKind::Probe, StepKind::Action])?;
    let kill_switch = kill_switch(&state);
    let before = Watch {
        abort_alarms: &settings.abort_alarms,
        kill_switch: kill_switch.as_deref(),
        runs: &[],
    };
    ensure_calm(ports, before, &format!("before '{}'", step.name)).await?;
    let spec = step
        .call
        .clone()
        .ok_or_else(|| Failure::StateInvalid(format!("step '{}' has no call", step.name)))?;
    if let Some(mode) = dry_run(&state, step.kind) {
        // What would be called is the record; nothing is.
        let now = OffsetDateTime::now_utc();
        let result = Ok(activities::Outcome {
            output: Value::Null,
            detail: Some(json!({"dry_run": mode})),
            undo: None,
        });
        let mut step = step.clone();
        step.tolerance = None;
        return record_outcome(state, &step, spec, now, Duration::ZERO, result);
    }
    let live = with_secrets(&spec, &plan_secrets(&state), ports).await?;
    let call = Call::parse(&live)
        .map_err(|e| Failure::Invalid(format!("activity '{}': {e}", step.name)))?;

    let start = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let time_left = state.time_left();
    let run_log = guard::RunLog::new(&state, &step.name, ports.parameters);
    let blast_radius = state
        .deployment
        .as_ref()
        .map(|d| d.blast_radius)
        .unwrap_or_default();
    let load_limits = load_limits(state.deployment.as_ref(), ports);
    let runs = runs(&state);
    let mut ctx = Context {
        baselines: &mut state.baselines,
        rng,
        now: start,
        experiment_time_left: time_left,
        abort_alarms: &settings.abort_alarms,
        kill_switch: kill_switch.as_deref(),
        runs: &runs,
        poll_interval: Duration::from_millis(settings.poll_interval_ms),
        undo_log: match &run_log {
            Some(log) => log,
            None => &NoUndoLog,
        },
        blast_radius,
        load_limits: &load_limits,
        step: &step.name,
    };
    let mut result = activities::run(&call, ports, &mut ctx).await;
    let elapsed = clock.elapsed();
    // A probe tolerance is a second call, judged here and folded into the
    // outcome's detail so record_outcome reads it like any tolerance.
    if let (Some(provider), Ok(outcome)) =
        (step.tolerance.as_ref().and_then(|t| t.probe()), &mut result)
    {
        let met = judge_by_probe(
            provider,
            &outcome.output,
            &plan_secrets(&state),
            ports,
            &load_limits,
        )
        .await;
        let verdict =
            json!({"tolerance_probe": met.as_ref().map(|_| "met").unwrap_or_else(|e| e.as_str())});
        outcome.detail = Some(match outcome.detail.take() {
            Some(d) => json!({"detail": d, "tolerance_probe": verdict["tolerance_probe"]}),
            None => verdict,
        });
    }
    record_outcome(state, &step, spec, start, elapsed, result)
}

fn plan_secrets(state: &State) -> std::collections::BTreeMap<String, experiment::SecretRef> {
    state
        .plan
        .as_ref()
        .map(|p| p.secrets.clone())
        .unwrap_or_default()
}

/// Run a probe tolerance's http provider with the output as `value` in its
/// body: met when it answers below 400, as Chaos Toolkit's http provider
/// raises on 400 and above.
async fn judge_by_probe(
    provider: &serde_json::Map<String, Value>,
    output: &Value,
    secrets: &std::collections::BTreeMap<String, experiment::SecretRef>,
    ports: &Ports<'_>,
    limits: &load::Limits,
) -> Result<(), String> {
    let mut arguments: serde_json::Map<String, Value> = provider
        .iter()
        .filter(|(k, _)| k.as_str() != "type")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut body = arguments
        .remove("arguments")
        .and_then(|a| a.as_object().cloned())
        .unwrap_or_default();
    body.insert("value".into(), output.clone());
    arguments.insert("arguments".into(), Value::Object(body));
    let spec = experiment::CallSpec {
        function: experiment::catalogue::HTTP.into(),
        arguments,
    };
    let live = with_secrets(&spec, secrets, ports)
        .await
        .map_err(|e| e.to_string())?;
    let call = Call::parse(&live).map_err(|e| format!("tolerance probe: {e}"))?;
    let probe = load::http::HttpProbe::from_json(activities::http::request(&call))
        .map_err(|e| e.to_string())?;
    match probe.run(limits).await {
        Ok(out) if out.status < 400 => Ok(()),
        Ok(out) => Err(format!("tolerance probe answered {}", out.status)),
        Err(e) => Err(format!("tolerance probe failed: {e}")),
    }
}

/// Record what a probe or action did: its journal entry, what undoes it,
/// its tolerance judged; or the failure that stops the method.
fn record_outcome(
    mut state: State,
    step: &Step,
    spec: experiment::CallSpec,
    start: OffsetDateTime,
    elapsed: Duration,
    result: Result<activities::Outcome, ActivityError>,
) -> Result<State, Failure> {
    let mut record = Record {
        phase: step.phase,
        name: step.name.clone(),
        kind: step.kind,
        function: spec.function.clone(),
        arguments: spec.arguments.clone(),
        status: RunStatus::Succeeded,
        output: Value::Null,
        detail: None,
        tolerance: step.tolerance.as_ref().map(|t| t.as_value().clone()),
        tolerance_met: None,
        exception: None,
        start: experiment::timestamp(start),
        end: String::new(),
        duration: 0.0,
    };
    record.end = experiment::timestamp(OffsetDateTime::now_utc());
    record.duration = elapsed.as_secs_f64();
    let what = match step.kind {
        StepKind::Action => "action",
        _ => "probe",
    };

    let outcome = match result {
        Ok(o) => o,
        Err(e) if e.is_throttled() => {
            // Nothing changed; the state machine retries the step.
            return Err(Failure::Throttled(format!("{what} '{}': {e}", step.name)));
        }
        Err(ActivityError::Refused(e)) => {
            record.status = RunStatus::Failed;
            record.exception = Some(e.clone());
            return Err(Failure::Refused(format!("{what} '{}': {e}", step.name)));
        }
        Err(ActivityError::Aborted(reason)) => {
            record.status = RunStatus::Failed;
            let message = format!("{reason} during '{}'", step.name);
            record.exception = Some(message.clone());
            return Err(Failure::Aborted(ErrorReport {
                message,
                record: Some(Box::new(record)),
            }));
        }
        Err(e) => {
            record.status = RunStatus::Failed;
            record.exception = Some(e.to_string());
            tracing::warn!(execution = %state.execution, step = %step.name, error = %e, "activity failed");
            return Err(Failure::ActivityFailed(ErrorReport {
                message: format!(
                    "{what} '{}' {} failed: {e}",
                    step.name,
                    phase_text(step.phase)
                ),
                record: Some(Box::new(record)),
            }));
        }
    };
    record.output = outcome.output;
    record.detail = outcome.detail;
    if let Some(undo) = outcome.undo {
        state.compensations.push(Compensation {
            for_action: step.name.clone(),
            name: undo.name,
            call: undo.call,
        });
    }
    if let Some(tolerance) = &step.tolerance {
        let met = match tolerance.probe() {
            Some(_) => {
                record
                    .detail
                    .as_ref()
                    .and_then(|d| d.get("tolerance_probe"))
                    .and_then(Value::as_str)
                    == Some("met")
            }
            None => tolerance.met(&record.output),
        };
        record.tolerance_met = Some(met);
        if !met {
            let detail = record
                .detail
                .as_ref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            let message = format!(
                "steady-state probe '{}' {} returned {}{detail}, outside its tolerance {}",
                step.name,
                phase_text(step.phase),
                record.output,
                tolerance.as_value()
            );
            tracing::warn!(execution = %state.execution, step = %step.name, %message, "steady state not met");
            return Err(Failure::Deviated(ErrorReport {
                message,
                record: Some(Box::new(record)),
            }));
        }
    }
    tracing::info!(
        execution = %state.execution,
        step = %step.name,
        kind = what,
        output = %record.output,
        "step done"
    );
    state.records.push(record);
    state.step_done();
    Ok(state)
}

/// Run the next rollback, if any: recorded compensations newest first, then
/// the experiment's own rollbacks. A rollback that fails is recorded and the
/// next one still runs; abort alarms do not stop rollbacks.
pub async fn rollback(
    state: State,
    ports: &Ports<'_>,
    rng: &mut (dyn RngCore + Send),
) -> Result<State, Failure> {
    let span = run_span(&state, "rollback");
    costed(rollback_in(state, ports, rng).instrument(span)).await
}

async fn rollback_in(
    mut state: State,
    ports: &Ports<'_>,
    rng: &mut (dyn RngCore + Send),
) -> Result<State, Failure> {
    if state.parent.is_some() {
        return Ok(background::hand_back(state));
    }
    if state.background.iter().any(|b| !b.joined) {
        background::abandon(&mut state, ports).await?;
    }
    if state.rollbacks.is_empty() {
        match guard::logged_compensations(&state, ports.parameters).await {
            Ok(Some(logged)) => {
                tracing::warn!(
                    logged = logged.len(),
                    in_state = state.compensations.len(),
                    "the run record holds undos the state lost; running them too"
                );
                state.compensations = logged;
            }
            Ok(None) => {}
            Err(e) if matches!(e, activities::AwsError::Throttled(_)) => {
                return Err(Failure::from_aws("reading the run record", e));
            }
            Err(e) => tracing::error!(error = %e, "cannot read the run record"),
        }
    }
    let Some(item) = state.next_rollback() else {
        state.next.kind = NextKind::Done;
        state.next.remaining_ms = None;
        return Ok(state);
    };
    let start = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let dry = dry_run(&state, StepKind::Action).is_some();
    let live = with_secrets(&item.call, &plan_secrets(&state), ports).await?;
    // Rollbacks never send load anywhere.
    let no_load = load::Limits::default();
    let mut ctx = Context {
        baselines: &mut state.baselines,
        rng,
        now: start,
        experiment_time_left: Duration::ZERO,
        // Rollbacks run whatever the alarms and the kill switch say.
        abort_alarms: &[],
        kill_switch: None,
        runs: &[],
        poll_interval: Duration::from_secs(5),
        undo_log: &NoUndoLog,
        blast_radius: Default::default(),
        load_limits: &no_load,
        step: &item.name,
    };
    let result = match Call::parse(&live) {
        _ if dry => Ok(activities::Outcome {
            output: Value::Null,
            detail: Some(json!({"dry_run": true})),
            undo: None,
        }),
        Ok(call) => activities::run(&call, ports, &mut ctx).await,
        Err(e) => Err(ActivityError::Failed(e)),
    };
    let (status, output, exception) = match result {
        Ok(o) => (RunStatus::Succeeded, o.output, None),
        // Nothing changed; the state machine retries this rollback.
        Err(e) if e.is_throttled() => {
            return Err(Failure::Throttled(format!("rollback '{}': {e}", item.name)));
        }
        Err(e) => {
            let e = e.to_string();
            tracing::error!(execution = %state.execution, rollback = %item.name, error = %e, "rollback failed");
            (RunStatus::Failed, Value::Null, Some(e))
        }
    };
    tracing::info!(execution = %state.execution, rollback = %item.name, ?status, "rollback done");
    state.rollbacks.push(Record {
        phase: Phase::Rollback,
        name: item.name,
        kind: StepKind::Action,
        function: item.call.function,
        arguments: item.call.arguments,
        status,
        output,
        detail: None,
        tolerance: None,
        tolerance_met: None,
        exception,
        start: experiment::timestamp(start),
        end: experiment::timestamp(OffsetDateTime::now_utc()),
        duration: clock.elapsed().as_secs_f64(),
    });
    state.next.kind = if state.next_rollback().is_some() {
        NextKind::Rollback
    } else {
        NextKind::Done
    };
    state.next.remaining_ms = None;
    Ok(state)
}

/// How long before the Lambda's deadline a wait chunk ends, so the function
/// always returns its state rather than being killed mid-wait.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// What one invocation of the wait function waits: up to `ms` and one wait
/// chunk, ending before the Lambda's deadline, checked every poll interval.
pub(crate) struct Chunk {
    pub length: Duration,
    end: Instant,
    poll: Duration,
}

impl Chunk {
    pub fn new(ms: u64, settings: &experiment::Settings, time_left: Option<Duration>) -> Chunk {
        let mut length = Duration::from_millis(ms.min(settings.wait_chunk_ms));
        if let Some(left) = time_left {
            length = length.min(left.saturating_sub(DEADLINE_MARGIN));
        }
        Chunk {
            length,
            end: Instant::now() + length,
            poll: Duration::from_millis(settings.poll_interval_ms.max(1)),
        }
    }

    /// Sleep until the next poll; `false`, at once, when the chunk is over.
    pub async fn next_poll(&self) -> bool {
        let now = Instant::now();
        if now >= self.end {
            return false;
        }
        tokio::time::sleep(self.poll.min(self.end - now)).await;
        true
    }
}

/// Wait up to one chunk of the pause under the cursor, checking the abort
/// alarms at the start and then every poll interval; an alarm in ALARM ends
/// the wait with `ExperimentAborted` within one interval.
pub async fn wait(
    state: State,
    ports: &Ports<'_>,
    time_left: Option<Duration>,
) -> Result<State, Failure> {
    let span = run_span(&state, "wait");
    if state.next.kind == NextKind::Join {
        return costed(background::join(state, ports, time_left).instrument(span)).await;
    }
    costed(wait_in(state, ports, time_left).instrument(span)).await
}

async fn wait_in(
    mut state: State,
    ports: &Ports<'_>,
    time_left: Option<Duration>,
) -> Result<State, Failure> {
    let (step, settings) = current(&state, &[StepKind::Wait])?;
    let remaining = state.next.remaining_ms.or(step.duration_ms).unwrap_or(0);
    // A pause with hypothesis rounds waits until the next one is due.
    let until = state.next_round_at().min(remaining);
    if dry_run(&state, StepKind::Wait).is_some() {
        tracing::info!(step = %step.name, "dry run: pause skipped");
        state.waited(until);
        return Ok(state);
    }
    let chunk = Chunk::new(remaining - until, &settings, time_left);
    let kill_switch = kill_switch(&state);
    let runs = runs(&state);
    let watch = Watch {
        abort_alarms: &settings.abort_alarms,
        kill_switch: kill_switch.as_deref(),
        runs: &runs,
    };
    loop {
        ensure_calm(ports, watch, &format!("during '{}'", step.name)).await?;
        if !chunk.next_poll().await {
            break;
        }
    }
    let waited = u64::try_from(chunk.length.as_millis()).unwrap_or(u64::MAX);
    let left = remaining.saturating_sub(waited);
    tracing::info!(execution = %state.execution, step = %step.name, waited_ms = waited, left_ms = left, "waited");
    state.waited(left);
    Ok(state)
}

/// Print an embedded-metric-format document as one stdout line, where
/// CloudWatch Logs picks it up.
fn emit_metrics(emf: &Value) {
    println!("{emf}");
}

/// Where the journal function reads the target's series from
/// ([`series::collect`]).
#[derive(Clone, Copy)]
pub struct SeriesSources<'a> {
    pub alarms: &'a dyn Alarms,
    pub metrics: &'a dyn Metrics,
}

/// Build the journal and the outcome; a run that did not complete cleanly
/// goes to the dead-letter queue with its cause.
pub async fn finish(
    state: State,
    dead_letters: &dyn DeadLetters,
    parameters: &dyn Parameters,
    sources: SeriesSources<'_>,
) -> Result<Finished, Failure> {
    let span = run_span(&state, "journal");
    finish_in(state, dead_letters, parameters, sources)
        .instrument(span)
        .await
}

async fn finish_in(
    state: State,
    dead_letters: &dyn DeadLetters,
    parameters: &dyn Parameters,
    sources: SeriesSources<'_>,
) -> Result<Finished, Failure> {
    let queue_url = guard::deployment(&state)?.dead_letter_queue_url.clone();
    finish_to(state, &queue_url, dead_letters, parameters, Some(sources)).await
}

/// Build the journal (with the target's series when `sources` are given),
/// send a failed run's to `queue_url`, and remove the run record once every
/// undo has run.
pub(crate) async fn finish_to(
    state: State,
    queue_url: &str,
    dead_letters: &dyn DeadLetters,
    parameters: &dyn Parameters,
    sources: Option<SeriesSources<'_>>,
) -> Result<Finished, Failure> {
    let now = OffsetDateTime::now_utc();
    let mut finished = journal::journal(&state, now);
    if let Some(sources) = sources {
        let start = state
            .started_at
            .as_deref()
            .and_then(activities::parse_timestamp)
            .unwrap_or(now);
        let charts = series::collect(&state, start, now, sources.alarms, sources.metrics).await;
        finished.journal["turbulence"]["metrics"] = json!(charts);
    }
    emit_metrics(&journal::metrics(&state, &finished, now));
    if let Some(error) = &finished.outcome.error {
        let body = json!({
            "execution": state.execution,
            "error": error,
            "cause": finished.outcome.cause,
            "journal": finished.journal,
        });
        dead_letters
            .send(queue_url, &body.to_string())
            .await
            .map_err(|e| Failure::from_aws("sending the journal to the dead-letter queue", e))?;
        tracing::warn!(execution = %state.execution, %error, cause = ?finished.outcome.cause, "experiment failed");
    } else {
        tracing::info!(execution = %state.execution, "experiment completed");
    }
    // Every undo ran: nothing is left for the janitor. When one failed the
    // record stays, and the janitor tries again when the execution ends.
    let all_undone = state.rollback_error.is_none()
        && state
            .rollbacks
            .iter()
            .all(|r| r.status == RunStatus::Succeeded);
    if all_undone {
        if let Some(name) = experiment::guards::RunRecord::parameter(&state.execution) {
            parameters
                .delete(&name)
                .await
                .map_err(|e| Failure::from_aws("removing the run record", e))?;
        }
    }
    Ok(finished)
}

#[cfg(test)]
mod tests;
