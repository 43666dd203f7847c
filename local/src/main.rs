//! `turbulence-local`: deploy Turbulence into the local stack and run the ECS
//! demo experiment there. Start the stack first: `scripts/stack start`.
//!
//!     turbulence-local deploy [--endpoint URL]
//!     turbulence-local demo [--endpoint URL] [--experiment FILE]
//!                           [--time-scale 1/600] [--timeout-secs 600]
//!                           [--reconciler on|tasks-only|off]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use local::{EcsTarget, EcsTargetSpec, LocalStack, Reconciler, Stack};
use serde_json::{json, Value};

const USAGE: &str = "usage:
  turbulence-local deploy [--endpoint URL]
      deploy the functions and a stack named `demo` into the local stack
  turbulence-local demo [--endpoint URL] [--experiment FILE] [--time-scale X]
                        [--timeout-secs N] [--reconciler on|tasks-only|off]
      deploy, create an ECS service (3 tasks, MinCapacity 3), run the ECS
      experiment against it and print its journal (exit 1 if the run failed).
      --time-scale (default 1/600) compresses every wait; --reconciler picks
      what the local ECS stand-in does: scheduler + auto scaling (on, the
      default), scheduler only (tasks-only), nothing (off)
The endpoint defaults to $TURBULENCE_ENDPOINT (`scripts/stack start`, then
`source .local-stack/env`).";

/// The ECS task-failure experiment (the write-up's second experiment).
const DEFAULT_EXPERIMENT: &str = include_str!("../../experiments/ecs-random-task.json");
const DEFAULT_TIME_SCALE: f64 = 1.0 / 600.0;

struct Args {
    command: String,
    endpoint: Option<String>,
    experiment: Option<PathBuf>,
    time_scale: f64,
    timeout: Duration,
    reconciler: Reconciler,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let command = it.next().ok_or("missing command")?;
    if command == "-h" || command == "--help" {
        return Err(String::new());
    }
    let mut args = Args {
        command,
        endpoint: None,
        experiment: None,
        time_scale: DEFAULT_TIME_SCALE,
        timeout: Duration::from_secs(600),
        reconciler: Reconciler::On,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--endpoint" => args.endpoint = Some(value()?),
            "--experiment" => args.experiment = Some(PathBuf::from(value()?)),
            "--time-scale" => args.time_scale = parse_scale(&value()?)?,
            "--timeout-secs" => {
                let v = value()?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("--timeout-secs: not a number: {v}"))?;
                args.timeout = Duration::from_secs(secs);
            }
            "--reconciler" => {
                args.reconciler = match value()?.as_str() {
                    "on" => Reconciler::On,
                    "tasks-only" => Reconciler::TasksOnly,
                    "off" => Reconciler::Off,
                    other => {
                        return Err(format!("--reconciler: on, tasks-only or off, not {other}"))
                    }
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// `0.01` or `1/600`.
fn parse_scale(s: &str) -> Result<f64, String> {
    let v = match s.split_once('/') {
        Some((a, b)) => {
            let a: f64 = a
                .trim()
                .parse()
                .map_err(|_| format!("--time-scale: bad number {a}"))?;
            let b: f64 = b
                .trim()
                .parse()
                .map_err(|_| format!("--time-scale: bad number {b}"))?;
            a / b
        }
        None => s
            .trim()
            .parse()
            .map_err(|_| format!("--time-scale: bad number {s}"))?,
    };
    if v.is_finite() && v > 0.0 && v <= 1.0 {
        Ok(v)
    } else {
        Err(format!("--time-scale must be in (0, 1], got {s}"))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("error: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let ls = match &args.endpoint {
        Some(url) => LocalStack::connect(url).await?,
        None => LocalStack::from_env().await?,
    };
    match args.command.as_str() {
        "deploy" => {
            let stack = ls.deploy_stack("demo").await?;
            eprintln!("deployed into {}", ls.endpoint());
            println!("{}", serde_json::to_string_pretty(&stack_json(&stack))?);
            Ok(ExitCode::SUCCESS)
        }
        "demo" => demo(&ls, &args).await,
        other => Err(format!("unknown command {other}\n{USAGE}").into()),
    }
}

fn stack_json(stack: &Stack) -> Value {
    json!({
        "state_machine_arn": stack.state_machine_arn,
        "dead_letter_queue_url": stack.dlq_url,
        "abort_alarm": stack.abort_alarm,
        // What the shipped Lambda experiment takes with --var on this stack.
        "moderation_function": stack.moderation_function,
        "moderation_fault_parameter": stack.moderation_fault_parameter(),
    })
}

async fn demo(ls: &LocalStack, args: &Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let experiment_text = match &args.experiment {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => DEFAULT_EXPERIMENT.to_string(),
    };
    let experiment: Value =
        serde_json::from_str(&experiment_text).map_err(|e| format!("experiment: {e}"))?;

    eprintln!(
        "deploying the functions and the `demo` stack into {} ...",
        ls.endpoint()
    );
    let stack = ls.deploy_stack("demo").await?;

    // A fresh target per run: ECS names cannot be reused while services exist.
    let prefix = format!("demo-{}", unix_millis());
    let mut spec = EcsTargetSpec::new(&prefix, 3);
    spec.min_capacity = Some(3);
    spec.reconciler = args.reconciler;
    eprintln!(
        "creating ECS service {prefix}/{prefix}-svc (3 tasks, MinCapacity 3, stand-in {:?}) ...",
        args.reconciler
    );
    let target = ls.create_ecs_target(&spec).await?;

    let input = for_target(experiment, &target, &stack.abort_alarm, args.time_scale)?;
    let execution = ls.start_execution(&stack, &input).await?;
    eprintln!("started {execution}");

    let finished = follow(ls, &target, &execution, args.timeout).await?;
    let events = ls.history(&execution).await?;
    let journal = local::journal(&events)
        .cloned()
        .or_else(|| finished.output.clone());
    match journal {
        Some(j) => println!("{}", serde_json::to_string_pretty(&j)?),
        None => eprintln!("(no journal: the Journal state never completed)"),
    }
    eprintln!(
        "execution {}{}{} after {} state transitions",
        finished.status,
        finished
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default(),
        finished
            .cause
            .as_deref()
            .map(|c| format!(" ({})", truncate(c, 300)))
            .unwrap_or_default(),
        local::states_entered(&events).len(),
    );
    if !finished.succeeded() {
        let dead = ls.dlq_messages(&stack).await.unwrap_or_default();
        eprintln!(
            "the demo stack's dead-letter queue now holds {} message(s)",
            dead.len()
        );
    }
    Ok(if finished.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Points the experiment at the demo target: `configuration.cluster` and
/// `.service`, and the `turbulence` extension's abort alarm and time scale.
fn for_target(
    mut experiment: Value,
    target: &EcsTarget,
    alarm: &str,
    time_scale: f64,
) -> Result<Value, String> {
    let doc = experiment
        .as_object_mut()
        .ok_or("experiment: not a JSON object")?;
    let configuration = doc.entry("configuration").or_insert_with(|| json!({}));
    let configuration = configuration
        .as_object_mut()
        .ok_or("experiment: configuration is not an object")?;
    configuration.insert("cluster".into(), json!(target.cluster));
    configuration.insert("service".into(), json!(target.service));

    let extensions = doc.entry("extensions").or_insert_with(|| json!([]));
    let extensions = extensions
        .as_array_mut()
        .ok_or("experiment: extensions is not a list")?;
    let position = extensions
        .iter()
        .position(|e| e.get("name").and_then(Value::as_str) == Some("turbulence"));
    let index = match position {
        Some(i) => i,
        None => {
            extensions.push(json!({"name": "turbulence"}));
            extensions.len() - 1
        }
    };
    let ext = extensions[index]
        .as_object_mut()
        .ok_or("experiment: turbulence extension is not an object")?;
    ext.insert("abort_alarms".into(), json!([alarm]));
    ext.insert("time_scale".into(), json!(time_scale));
    Ok(experiment)
}

/// Waits for the execution, printing each state entered and each change of
/// the target's desired/running counts to stderr.
async fn follow(
    ls: &LocalStack,
    target: &EcsTarget,
    execution: &str,
    timeout: Duration,
) -> Result<local::Finished, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut printed = 0usize;
    let mut last_counts = None;
    let mut seen_states: BTreeMap<String, usize> = BTreeMap::new();
    loop {
        let done = ls.poll(execution).await?;
        let events = ls.history(execution).await?;
        for e in events.iter().skip(printed) {
            let at = started.elapsed().as_secs_f64();
            if let (true, Some(state)) = (e.is_state_entered(), e.state.as_deref()) {
                let n = seen_states.entry(state.to_string()).or_default();
                *n += 1;
                let times = if *n > 1 {
                    format!(" #{n}")
                } else {
                    String::new()
                };
                eprintln!(
                    "[{at:>6.1}s] {state}{times}{}",
                    entered_summary(state, e.data.as_ref())
                );
            }
            if let (true, Some(state)) = (e.is_state_exited(), e.state.as_deref()) {
                if let Some(line) = exited_summary(state, e.data.as_ref()) {
                    eprintln!("[{at:>6.1}s]   {line}");
                }
            }
            if let Some(err) = &e.error {
                eprintln!("[{at:>6.1}s]   {}: {err}", e.kind);
            }
        }
        printed = events.len();
        let counts = (
            ls.desired_count(target).await?,
            ls.running_tasks(target).await?.len(),
        );
        if last_counts != Some(counts) {
            eprintln!(
                "[{:>6.1}s]   ecs {}: desiredCount {}, {} task(s) RUNNING",
                started.elapsed().as_secs_f64(),
                target.service,
                counts.0,
                counts.1
            );
            last_counts = Some(counts);
        }
        if let Some(done) = done {
            return Ok(done);
        }
        if started.elapsed() >= timeout {
            return Err(format!("execution still running after {timeout:?}: {execution}").into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What a Probe/Action/Wait state is about to do: the planned step at the
/// state's cursor (best effort: the state's shape belongs to the engine).
fn entered_summary(state: &str, input: Option<&Value>) -> String {
    let Some(input) = input else {
        return String::new();
    };
    let wait_left = input.pointer("/next/remaining_ms").and_then(Value::as_u64);
    let step = input
        .get("cursor")
        .and_then(Value::as_u64)
        .and_then(|c| input.pointer(&format!("/plan/steps/{c}")));
    match (state, step) {
        ("Probe" | "Action", Some(step)) => format!(
            "  {} {}",
            step.get("phase").and_then(Value::as_str).unwrap_or(""),
            step.get("name").and_then(Value::as_str).unwrap_or("")
        ),
        ("Wait", _) => wait_left
            .map(|ms| format!("  {:.1}s left", ms as f64 / 1000.0))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The outcome of a Probe/Action/Rollback: its newest record (best effort).
fn exited_summary(state: &str, output: Option<&Value>) -> Option<String> {
    let output = output?;
    let key = match state {
        "Probe" | "Action" => "records",
        "Rollback" => "rollbacks",
        _ => return None,
    };
    // A caught error: the TaskFailed line already said it, and `records`
    // is the state's input, not something this step produced.
    if state != "Rollback" && output.get("error").is_some() {
        return None;
    }
    let last = output.get(key)?.as_array()?.last()?;
    let mut line = format!(
        "{} '{}': {}",
        last.get("kind").and_then(Value::as_str).unwrap_or("step"),
        last.get("name").and_then(Value::as_str).unwrap_or("?"),
        last.get("status").and_then(Value::as_str).unwrap_or("?")
    );
    if let Some(met) = last.get("tolerance_met").and_then(Value::as_bool) {
        line.push_str(if met {
            ", tolerance met"
        } else {
            ", tolerance NOT met"
        });
    }
    if let Some(detail) = last.get("detail").filter(|d| !d.is_null()) {
        line.push_str(&format!(" {}", truncate(&detail.to_string(), 200)));
    }
    Some(line)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

fn unix_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales() {
        assert!((parse_scale("1/600").unwrap() - 1.0 / 600.0).abs() < 1e-12);
        assert_eq!(parse_scale("0.5").unwrap(), 0.5);
        assert!(parse_scale("2").is_err());
        assert!(parse_scale("0").is_err());
        assert!(parse_scale("x/2").is_err());
    }

    #[test]
    fn experiment_is_pointed_at_the_target() {
        let target = EcsTarget {
            cluster: "c".into(),
            service: "s".into(),
            task_definition_arn: "td".into(),
        };
        let e = json!({
            "configuration": {"cluster": "${cluster}", "other": 1},
            "extensions": [{"name": "chaosiq"}, {"name": "turbulence", "abort_alarms": ["x"], "poll_interval_seconds": 5}]
        });
        let out = for_target(e, &target, "a", 0.25).unwrap();
        assert_eq!(
            out["configuration"],
            json!({"cluster": "c", "service": "s", "other": 1})
        );
        assert_eq!(
            out["extensions"][1],
            json!({"name": "turbulence", "abort_alarms": ["a"], "time_scale": 0.25, "poll_interval_seconds": 5})
        );
        let out = for_target(json!({}), &target, "a", 0.5).unwrap();
        assert_eq!(
            out["extensions"],
            json!([{"name": "turbulence", "abort_alarms": ["a"], "time_scale": 0.5}])
        );
    }
}
