//! The corpus of invalid experiments in `tests/invalid/`: each
//! `NNN-name.json` goes through `Experiment::parse`, the abort-alarm check
//! and `Plan::new` (as the plan function does) and must be refused with the message its sibling
//! `NNN-name.expect` gives (a substring of the whole message), and never
//! panic.
//!
//! - A file that is not JSON yields `json: <serde_json's error>`, which is
//!   what `Plan` reports for an experiment read from an SSM parameter.
//! - An `.expect` whose first line is `ACCEPTED` records a known gap: the
//!   experiment is accepted today, and the next line says what it should be
//!   refused with. When validation learns to refuse it, this test fails:
//!   replace the `.expect` with the new message.
//!
//! Every message must name where the fault is: it starts with the
//! experiment, a top-level field, an activity, a probe, a rollback or a
//! pause.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use experiment::model::MAX_EXPERIMENT_BYTES;
use experiment::{Experiment, Plan};
use serde_json::{json, Value};

/// Where a message may start: each names the place at fault.
const PLACES: &[&str] = &[
    "json: ",
    "experiment: ",
    "experiment.",
    "configuration",
    "secrets",
    "controls",
    "runtime",
    "extensions",
    "steady-state-hypothesis",
    "method",
    "rollbacks",
    "activity '",
    "probe '",
    "rollback '",
    "pause before '",
    "pause after '",
];

#[derive(Debug, PartialEq)]
enum Outcome {
    Refused(String),
    Accepted,
    Panicked(String),
}

/// What the plan function would answer for this document.
fn judge(text: &str) -> Outcome {
    let doc: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Outcome::Refused(format!("json: {e}")),
    };
    judge_value(&doc)
}

fn judge_value(doc: &Value) -> Outcome {
    let run = catch_unwind(AssertUnwindSafe(|| {
        // As the plan function, in a deployment without default abort alarms.
        Experiment::parse(doc).and_then(|e| {
            e.check_abort_alarms(&[])?;
            Plan::new(&e)
        })
    }));
    match run {
        Ok(Ok(_)) => Outcome::Accepted,
        Ok(Err(invalid)) => Outcome::Refused(invalid.0),
        Err(panic) => Outcome::Panicked(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a non-string panic".into()),
        ),
    }
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_invalid_experiment_is_refused_with_its_message() {
    let files = corpus();
    assert!(
        files.len() >= 40,
        "only {} cases in the corpus",
        files.len()
    );
    let mut problems = Vec::new();
    let mut gaps = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(file).unwrap();
        let expect_file = file.with_extension("expect");
        let expect = fs::read_to_string(&expect_file)
            .unwrap_or_else(|e| panic!("{}: {e}", expect_file.display()));
        let mut lines = expect.lines();
        let first = lines.next().unwrap_or_default();
        let outcome = judge(&text);
        println!("{name}: {outcome:?}");
        match (&outcome, first) {
            (Outcome::Panicked(p), _) => problems.push(format!("{name}: PANICKED: {p}")),
            (Outcome::Accepted, "ACCEPTED") => {
                gaps.push(format!("{name}: {}", lines.next().unwrap_or_default()))
            }
            (Outcome::Refused(msg), "ACCEPTED") => {
                problems.push(format!("{name}: now refused (update its .expect): {msg}"))
            }
            (Outcome::Accepted, want) => {
                problems.push(format!("{name}: accepted, expected: {want}"))
            }
            (Outcome::Refused(msg), want) => {
                if !msg.contains(want) {
                    problems.push(format!(
                        "{name}: wrong message\n    expected: {want}\n    actual:   {msg}"
                    ));
                }
                if !PLACES.iter().any(|p| msg.starts_with(p)) {
                    problems.push(format!("{name}: the message names no place: {msg}"));
                }
            }
        }
    }
    if !gaps.is_empty() {
        println!("known gaps (accepted, should be refused):");
        for g in &gaps {
            println!("  {g}");
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} cases:\n{}",
        problems.len(),
        files.len(),
        problems.join("\n")
    );
}

/// The corpus's base experiment must itself be valid, so each case fails
/// for its own reason only.
#[test]
fn the_corpus_base_is_valid() {
    let text = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid/002-title-missing.json"),
    )
    .unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    doc["title"] = json!("restored");
    assert_eq!(judge_value(&doc), Outcome::Accepted);
}

fn base() -> Value {
    let text = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid/002-title-missing.json"),
    )
    .unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    doc["title"] = json!("t");
    doc
}

#[test]
fn oversized_experiment_is_refused_before_anything_else() {
    let mut doc = base();
    doc["description"] = json!("x".repeat(MAX_EXPERIMENT_BYTES));
    // Even with another fault, the size is what is reported.
    doc["method"] = json!("not a list");
    match judge_value(&doc) {
        Outcome::Refused(msg) => {
            assert!(msg.starts_with("experiment: "), "{msg}");
            assert!(msg.ends_with("bytes is over the 65536-byte limit"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
}

/// `n` nested lists around `inner`, built without recursion.
fn nested(n: usize, inner: Value) -> Value {
    (0..n).fold(inner, |v, _| Value::Array(vec![v]))
}

/// Drop a deep value without recursing (serde_json's drop recurses).
fn drop_flat(mut v: Value) {
    let mut stack = Vec::new();
    loop {
        match &mut v {
            Value::Array(items) => stack.append(items),
            Value::Object(map) => stack.extend(std::mem::take(map).into_iter().map(|(_, v)| v)),
            _ => {}
        }
        match stack.pop() {
            Some(next) => v = next,
            None => return,
        }
    }
}

#[test]
fn deep_nesting_is_stopped_by_json_and_handled_below_its_limit() {
    // 10,000 nested lists never reach Plan: serde_json stops at depth 128,
    // and the plan function reports that (for an experiment in an SSM
    // parameter: "experiment_parameter: '<name>' does not hold JSON: ...";
    // inline in the execution input, the Lambda runtime refuses the event).
    let text = format!(
        "{{\"title\": \"t\", \"description\": \"d\", \"method\": {}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_eq!(
        judge(&text),
        Outcome::Refused("json: recursion limit exceeded at line 1 column 172".into())
    );
    // The deepest document serde_json accepts is refused with a message.
    for depth in [100, 120] {
        let mut doc = base();
        doc["method"][0]["provider"]["arguments"]["reason"] = nested(depth, json!("deep"));
        let text = serde_json::to_string(&doc).unwrap();
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            judge_value(&reparsed),
            Outcome::Refused(
                "activity 'stop-one': argument 'reason' of chaosaws.ecs.actions.stop_random_tasks must be a string, found a list".into()
            ),
            "depth {depth}"
        );
        drop_flat(doc);
        drop_flat(reparsed);
    }
}

/// Values built in memory are not bound by serde_json's limit: Plan's input
/// never is one, but the library should not overflow its stack on one either.
/// Runs in a child process so an overflow fails this test, not the run.
///
/// Ignored while it fails: `Experiment::parse` starts with
/// `serde_json::to_vec(doc)` (the size check), which recurses and overflows a
/// 2 MiB stack near 5,000 levels in a debug build (so does `Value::clone`).
/// A non-recursive depth check before it would fix it.
#[test]
#[ignore = "Experiment::parse overflows the stack on 10,000 nested lists built in memory"]
fn ten_thousand_nested_lists_in_memory_do_not_overflow_the_stack() {
    if std::env::var_os("INVALID_DEEP_CHILD").is_some() {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "deep_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("INVALID_DEEP_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the child failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("deep child: "), "{stdout}");
}

#[test]
#[ignore = "run in a child process by ten_thousand_nested_lists_in_memory_do_not_overflow_the_stack"]
fn deep_child() {
    // On a thread with the default test stack (2 MiB).
    let outcome = std::thread::spawn(|| {
        let mut doc = base();
        doc["method"][0]["provider"]["arguments"]["reason"] = nested(10_000, json!("deep"));
        let outcome = judge_value(&doc);
        drop_flat(doc);
        outcome
    })
    .join()
    .unwrap();
    println!("deep child: {outcome:?}");
    assert!(matches!(outcome, Outcome::Refused(_)), "{outcome:?}");
}
