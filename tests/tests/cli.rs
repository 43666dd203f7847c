//! The `turbulence` command against the local stack: `validate`, `run`
//! (follow, journal, exit code like `chaos run`), `journal` and `report`.

use std::path::PathBuf;
use std::process::Command;

use local::{AlarmState, LocalStack, Stack};
use serde_json::{json, Value};

fn binary() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| local::workspace_root().join("target"));
    let bin = target.join("debug/turbulence");
    assert!(
        bin.exists(),
        "{} is missing: `cargo build -p turbulence-cli` (scripts/test builds it)",
        bin.display()
    );
    bin
}

async fn setup(name: &str) -> (LocalStack, Stack) {
    LocalStack::for_tests_with_stack(name).await
}

/// A probe-only experiment on the stack's abort alarm, with a short pause.
fn smoke(stack: &Stack, tolerance: &str) -> Value {
    let probe = json!({
        "type": "probe", "name": "abort-alarm-is-ok", "tolerance": tolerance,
        "provider": {"type": "python", "module": "chaosaws.cloudwatch.probes",
            "func": "get_alarm_state_value", "arguments": {"alarm_name": stack.abort_alarm}}
    });
    json!({
        "title": "CLI smoke", "description": "reads the abort alarm around a pause",
        "extensions": [{"name": "turbulence", "time_scale": 0.01, "poll_interval_seconds": 0.5}],
        "steady-state-hypothesis": {"title": "alarm OK", "probes": [probe]},
        "method": [{"type": "probe", "name": "read", "pauses": {"after": 100},
            "provider": {"type": "python", "module": "chaosaws.cloudwatch.probes",
                "func": "get_alarm_state_value", "arguments": {"alarm_name": stack.abort_alarm}}}]
    })
}

fn run_cli(local: &LocalStack, stack: &Stack, doc: &Value, dir: &std::path::Path) -> (i32, String) {
    let file = dir.join("experiment.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = Command::new(binary())
        .args([
            "run",
            file.to_str().unwrap(),
            "--endpoint-url",
            local.endpoint(),
        ])
        .args(["--state-machine-arn", &stack.state_machine_arn])
        .args(["--journal-path", dir.join("journal.json").to_str().unwrap()])
        .args(["--poll-seconds", "0.5"])
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("turbulence run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_follows_writes_the_journal_and_exits_like_chaos_run() {
    let (local, stack) = setup("cli").await;
    let dir = tempdir("cli-run");

    let out = Command::new(binary())
        .args(["validate"])
        .arg(local::workspace_root().join("experiments/ecs-random-task.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let (code, text) =
        tokio::task::block_in_place(|| run_cli(&local, &stack, &smoke(&stack, "OK"), &dir));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("abort-alarm-is-ok"),
        "progress names the steps: {text}"
    );
    let journal: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("journal.json")).unwrap()).unwrap();
    assert_eq!(journal["status"], "completed");
    // A journal from the local stack has the shape of one chaoslib writes.
    let check = Command::new(local::workspace_root().join("scripts/ctk-journal-check"))
        .arg(dir.join("journal.json"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(said.lines().any(|l| l.starts_with("ok")), "{said}");

    // A deviated run exits 1, as `chaos run` does.
    local
        .set_alarm_state(&stack.abort_alarm, AlarmState::Ok)
        .await
        .unwrap();
    let (code, text) =
        tokio::task::block_in_place(|| run_cli(&local, &stack, &smoke(&stack, "ALARM"), &dir));
    assert_eq!(code, 1, "{text}");

    // The report of the journal renders.
    let html = report(&dir);
    assert!(html.contains("abort-alarm-is-ok"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A background probe beside the method: `run` shows it forked and
/// joined, and the journal keeps Chaos Toolkit's shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_shows_background_activities_forked_and_joined() {
    let (local, stack) = setup("cli-bg").await;
    let dir = tempdir("cli-background");
    let mut doc = smoke(&stack, "OK");
    let mut beside = doc["method"][0].clone();
    beside["name"] = json!("read-beside");
    beside["background"] = json!(true);
    doc["method"].as_array_mut().unwrap().insert(0, beside);
    let (code, text) = tokio::task::block_in_place(|| run_cli(&local, &stack, &doc, &dir));
    println!("{text}");
    assert_eq!(code, 0, "{text}");
    for line in [
        "Plan      ok: 6 steps (4 probes, 0 actions, 2 waits; 1 activity in the background)",
        "Fork      method  read-beside: starting it in the background",
        "running as execution ",
        "Join      waiting for 1 background activity: read-beside",
        "every background activity is back",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    let journal: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("journal.json")).unwrap()).unwrap();
    let names: Vec<&str> = journal["run"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["activity"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["read", "read-beside"]);
    let check = Command::new(local::workspace_root().join("scripts/ctk-journal-check"))
        .arg(dir.join("journal.json"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The journal function charts the target over the run: the abort alarm's
/// metric with its threshold and the moment it fired, and a metric probe's
/// metric; `report` draws them beside the verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_journal_carries_the_target_over_time_and_its_report_charts_it() {
    use aws_sdk_cloudwatch::types::MetricDatum;
    let (local, stack) = setup("series").await;
    let dir = tempdir("cli-series");
    let probe_namespace = format!("Turbulence/{}", stack.prefix);
    for (namespace, metric, value) in [
        ("Turbulence/Local", "AbortSignal", 0.0),
        (probe_namespace.as_str(), "Latency", 42.0),
    ] {
        local
            .cloudwatch()
            .put_metric_data()
            .namespace(namespace)
            .metric_data(
                MetricDatum::builder()
                    .metric_name(metric)
                    .value(value)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    // CloudWatch keeps whole seconds: a window ending in the second a
    // datapoint was put leaves it out.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let latency = json!({
        "type": "probe", "name": "latency-is-low", "tolerance": {"type": "range", "range": [0, 100]},
        "provider": {"type": "python", "module": "chaosaws.cloudwatch.probes", "func": "get_metric_statistics",
            "arguments": {"namespace": probe_namespace, "metric_name": "Latency", "statistic": "Maximum", "duration": 300}}
    });
    let doc = json!({
        "title": "series", "description": "the target over time",
        "extensions": [{"name": "turbulence", "abort_alarms": [stack.abort_alarm],
            "time_scale": 0.1, "poll_interval_seconds": 0.5}],
        "steady-state-hypothesis": {"title": "fast", "probes": [latency]},
        "method": [{"type": "probe", "name": "read", "pauses": {"after": 60},
            "provider": {"type": "python", "module": "chaosaws.cloudwatch.probes",
                "func": "get_alarm_state_value", "arguments": {"alarm_name": stack.abort_alarm}}}]
    });
    let execution = local.start_execution(&stack, &doc).await.unwrap();
    // The abort alarm fires in the method's pause.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    local
        .set_alarm_state(&stack.abort_alarm, AlarmState::Alarm)
        .await
        .unwrap();
    let done = local
        .wait_for(&execution, std::time::Duration::from_secs(120))
        .await
        .unwrap();
    assert!(!done.succeeded(), "the alarm aborts the run: {done:?}");
    let history = local.history(&execution).await.unwrap();
    let journal = local::journal(&history)
        .expect("a Journal state ran")
        .clone();
    let series = journal["turbulence"]["metrics"]
        .as_array()
        .unwrap_or_else(|| panic!("no series in {}", journal["turbulence"]));
    let alarm = series
        .iter()
        .find(|s| s["source"] == "abort alarm")
        .unwrap_or_else(|| panic!("the abort alarm's metric: {series:?}"));
    assert!(
        alarm["title"]
            .as_str()
            .unwrap()
            .contains(&stack.abort_alarm),
        "{alarm}"
    );
    assert!(alarm["threshold"].is_number(), "{alarm}");
    assert!(
        alarm["fired_at"].is_string(),
        "it fired during the run: {alarm}"
    );
    assert!(
        !alarm["lines"][0]["points"].as_array().unwrap().is_empty(),
        "{alarm}"
    );
    let probe = series
        .iter()
        .find(|s| s["source"] == "metric probe")
        .unwrap_or_else(|| panic!("the metric probe's metric: {series:?}"));
    assert_eq!(probe["lines"][0]["points"][0][1], json!(42.0), "{probe}");

    std::fs::write(dir.join("journal.json"), journal.to_string()).unwrap();
    let html = report(&dir);
    let target = &html[html
        .find("<section id=\"target\"")
        .expect("the target section")..];
    assert!(
        target.contains(&stack.abort_alarm) && target.contains("Latency"),
        "{target}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `turbulence report DIR/journal.json --out DIR/report.html`: the HTML.
fn report(dir: &std::path::Path) -> String {
    let out = Command::new(binary())
        .args(["report"])
        .arg(dir.join("journal.json"))
        .args(["--out", dir.join("report.html").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::read_to_string(dir.join("report.html")).unwrap()
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(local::unique_name(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every exit code of every command (`turbulence_cli::exit::COMMANDS`),
/// each produced for real; each command's `--help` and the README's table
/// say the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exit_code_of_every_command_is_what_help_and_the_readme_say() {
    use turbulence_cli::exit;
    let (local, stack) = setup("cli-exits").await;
    let dir = tempdir("cli-exits");
    let shipped = local::workspace_root().join("experiments/ecs-random-task.json");
    let file = |name: &str, text: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let invalid = file(
        "invalid.json",
        br#"{"title": "t", "description": "d", "method": [], "rollback": []}"#,
    );
    let not_utf8 = file("latin1.json", b"{\"title\": \"caf\xe9\"}");
    let smoke_ok = file("smoke-ok.json", smoke(&stack, "OK").to_string().as_bytes());
    let smoke_deviates = file(
        "smoke-alarm.json",
        smoke(&stack, "ALARM").to_string().as_bytes(),
    );
    let journal_path = dir.join("journal.json");
    let journal = journal_path.to_str().unwrap().to_string();
    let machine = stack.state_machine_arn.clone();
    let no_such_execution = machine.replacen(":stateMachine:", ":execution:", 1) + ":never-started";
    let endpoint = local.endpoint().to_string();
    let run = |file: &str| -> Vec<String> {
        [
            "run",
            file,
            "--endpoint-url",
            &endpoint,
            "--state-machine-arn",
            &machine,
            "--journal-path",
            &journal,
            "--poll-seconds",
            "0.5",
        ]
        .map(String::from)
        .to_vec()
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cases: Vec<(&str, u8, Vec<String>)> = vec![
        (
            "validate",
            exit::OK,
            args(&["validate", shipped.to_str().unwrap()]),
        ),
        (
            "validate",
            exit::NOT_COMPLETED,
            args(&["validate", &invalid]),
        ),
        ("validate", exit::USAGE, args(&["validate"])),
        ("validate", exit::ERROR, args(&["validate", &not_utf8])),
        ("run", exit::OK, run(&smoke_ok)),
        ("run", exit::NOT_COMPLETED, run(&smoke_deviates)),
        (
            "run",
            exit::USAGE,
            args(&[
                "run",
                &smoke_ok,
                "--state-machine-arn",
                "turbulence-experiment",
            ]),
        ),
        (
            "run",
            exit::ERROR,
            args(&[
                "run",
                &smoke_ok,
                "--state-machine-arn",
                &machine,
                "--endpoint-url",
                "http://127.0.0.1:1",
            ]),
        ),
        (
            "journal",
            exit::USAGE,
            args(&["journal", "arn:aws:states:nope"]),
        ),
        (
            "journal",
            exit::ERROR,
            args(&["journal", &no_such_execution, "--endpoint-url", &endpoint]),
        ),
        ("report", exit::USAGE, args(&["report"])),
        (
            "report",
            exit::ERROR,
            args(&[
                "report",
                &not_utf8,
                "--out",
                dir.join("r.html").to_str().unwrap(),
            ]),
        ),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (command, expected, argv) in &cases {
        let out = tokio::task::block_in_place(|| {
            Command::new(binary())
                .args(argv)
                .env("AWS_REGION", "us-east-1")
                .output()
                .unwrap()
        });
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(i32::from(*expected)),
            "turbulence {argv:?}:\n{said}"
        );
        seen.insert((*command, *expected));
        // The journal of the successful run feeds journal 0 and report 0.
        if (*command, *expected) == ("run", exit::OK) {
            let written: Value =
                serde_json::from_str(&std::fs::read_to_string(&journal_path).unwrap()).unwrap();
            let execution = written["turbulence"]["execution"]
                .as_str()
                .unwrap()
                .to_string();
            let journal_out = dir.join("fetched.json");
            let fetched = Command::new(binary())
                .args([
                    "journal",
                    &execution,
                    "--endpoint-url",
                    &endpoint,
                    "--out",
                    journal_out.to_str().unwrap(),
                ])
                .env("AWS_REGION", "us-east-1")
                .output()
                .unwrap();
            assert_eq!(fetched.status.code(), Some(0), "{fetched:?}");
            seen.insert(("journal", exit::OK));
            let report = Command::new(binary())
                .args([
                    "report",
                    journal_out.to_str().unwrap(),
                    "--out",
                    dir.join("report.html").to_str().unwrap(),
                ])
                .output()
                .unwrap();
            assert_eq!(report.status.code(), Some(0), "{report:?}");
            seen.insert(("report", exit::OK));
        }
    }
    // Ctrl-C while following: 130, and the execution goes on.
    let mut following = std::process::Command::new(binary())
        .args(run(&smoke_ok))
        .env("AWS_REGION", "us-east-1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(following.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert!(first.starts_with("execution arn:"), "{first}");
    let interrupt = Command::new("kill")
        .args(["-INT", &following.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    let status = tokio::task::block_in_place(|| following.wait().unwrap());
    assert_eq!(status.code(), Some(i32::from(exit::INTERRUPTED)));
    seen.insert(("run", exit::INTERRUPTED));
    // The execution was left running: it ends by itself, completed.
    let execution = first.trim().trim_start_matches("execution ").to_string();
    let done = local
        .wait_for(&execution, std::time::Duration::from_secs(240))
        .await
        .unwrap();
    assert!(done.succeeded(), "{done:?}");

    for (command, codes) in exit::COMMANDS {
        for (code, _) in *codes {
            assert!(
                seen.contains(&(*command, *code)),
                "no case makes `turbulence {command}` exit {code}"
            );
        }
        let help = Command::new(binary())
            .args([command, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&help.stdout);
        assert!(
            help.contains(&exit::help(command)),
            "`turbulence {command} --help`:\n{help}"
        );
    }
    let readme = std::fs::read_to_string(local::workspace_root().join("README.md")).unwrap();
    assert!(
        readme.contains(&exit::markdown()),
        "README.md must hold this table:\n{}",
        exit::markdown()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--var` and `--var-file` point the shipped ECS experiment, unedited, at
/// a service of another name, with the stack's alarm and compressed time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vars_point_the_shipped_ecs_experiment_at_another_service() {
    let (local, stack) = setup("cli-vars").await;
    // Auto scaling brings it back after the scale to zero.
    let mut spec = local::EcsTargetSpec::new(format!("{}-renamed", stack.prefix), 3);
    spec.min_capacity = Some(3);
    let target = local.create_ecs_target(&spec).await.unwrap();
    let dir = tempdir("cli-vars");
    let var_file = dir.join("vars.json");
    std::fs::write(
        &var_file,
        json!({"configuration": {"cluster": target.cluster, "abort_alarm": stack.abort_alarm}})
            .to_string(),
    )
    .unwrap();
    let shipped = local::workspace_root().join("experiments/ecs-random-task.json");
    let out = tokio::task::block_in_place(|| {
        Command::new(binary())
            .arg("run")
            .arg(&shipped)
            .args(["--var-file", var_file.to_str().unwrap()])
            .args(["--var", &format!("service={}", target.service)])
            .args(["--var", "time_scale:float=0.0016667"])
            .args([
                "--endpoint-url",
                local.endpoint(),
                "--state-machine-arn",
                &stack.state_machine_arn,
            ])
            .args([
                "--journal-path",
                dir.join("journal.json").to_str().unwrap(),
                "--poll-seconds",
                "0.5",
            ])
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap()
    });
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let journal: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("journal.json")).unwrap()).unwrap();
    assert_eq!(journal["status"], "completed");
    let stop = &journal["run"][0];
    assert_eq!(stop["activity"]["name"], "stop-random-task");
    assert_eq!(
        stop["activity"]["provider"]["arguments"]["service"],
        json!(target.service)
    );
    assert_eq!(
        stop["activity"]["provider"]["arguments"]["cluster"],
        json!(target.cluster)
    );
    assert_eq!(local.desired_count(&target).await.unwrap(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}
