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
    let out = Command::new(binary())
        .args(["report"])
        .arg(dir.join("journal.json"))
        .args(["--out", dir.join("report.html").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
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

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(local::unique_name(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
