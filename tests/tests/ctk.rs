//! Chaos Toolkit itself as the referee (pinned in tools/ctk-requirements.txt,
//! installed into .tools/ctk-venv by the scripts on first use):
//!
//! - `chaos validate` accepts every shipped experiment it can load
//!   (`scripts/ctk-validate`), and refuses one we break on purpose, so the
//!   check is not vacuous;
//! - a journal built by `experiment::journal::journal` has the shape of one
//!   chaoslib writes (`scripts/ctk-journal-check`), for a completed run and
//!   for a run that failed in its method;
//! - the catalogue against the installed chaostoolkit-aws: every catalogued
//!   `chaosaws.*` activity has the installed function's argument names and
//!   required-ness, every installed function is either catalogued or
//!   refused with its reason, and `chaos validate` accepts an experiment
//!   calling every catalogued chaosaws function with its example arguments.
//!
//! Nothing reaches the network but PyPI, once, for the install.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use experiment::plan::{Phase, StepKind};
use experiment::{CaughtError, ErrorReport, Experiment, Plan, Record, RunStatus, State};
use serde_json::{json, Map, Value};

/// Differences chaoslib would notice that Turbulence keeps for now, as
/// `scripts/ctk-journal-check` words them. An entry that no longer shows up
/// fails the test, so this list only shrinks.
const KNOWN_DIFFERENCES: &[&str] = &[];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Install the venv once for the whole test binary.
fn setup() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let out = run(Command::new(root().join("scripts/ctk-validate")).arg("--setup"));
        assert!(out.status.success(), "installing Chaos Toolkit failed");
    });
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn chaos_validate_accepts_the_shipped_experiments() {
    setup();
    let out = run(&mut Command::new(root().join("scripts/ctk-validate")));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scripts/ctk-validate failed:\n{stdout}"
    );
    assert!(
        stdout.contains("ok    experiments/ecs-random-task.json"),
        "{stdout}"
    );
    // Every file is either validated or skipped with its reason.
    let files = std::fs::read_dir(root().join("experiments"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    let lines = stdout
        .lines()
        .filter(|l| l.starts_with("ok    ") || l.starts_with("skip  "))
        .count();
    assert_eq!(lines, files, "{stdout}");
}

#[test]
fn chaos_validate_refuses_a_broken_experiment() {
    setup();
    let mut doc: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("experiments/ecs-random-task.json")).unwrap(),
    )
    .unwrap();
    // chaostoolkit-aws's stop_random_tasks has no such parameter.
    doc["method"][0]["provider"]["arguments"]["task_countt"] = json!(1);
    let dir = tempdir("ctk-validate");
    let file = dir.join("broken.json");
    std::fs::write(&file, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let out = run(Command::new(root().join("scripts/ctk-validate")).arg(&file));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("FAIL") && stdout.contains("task_countt"),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Every public function of the installed chaostoolkit-aws (its modules'
/// `__all__`): its arguments, besides `configuration` and `secrets`, with
/// whether each is required (has no default).
fn chaosaws_signatures() -> std::collections::BTreeMap<String, Vec<(String, bool)>> {
    setup();
    const SCRIPT: &str = r#"
import importlib, inspect, json, pkgutil, chaosaws
out = {}
for m in sorted(pkgutil.iter_modules(chaosaws.__path__)):
    if not m.ispkg:
        continue
    for kind in ("actions", "probes"):
        name = f"chaosaws.{m.name}.{kind}"
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        for f in getattr(mod, "__all__", []):
            sig = inspect.signature(getattr(mod, f))
            out[f"{name}.{f}"] = [
                [p.name, p.default is inspect.Parameter.empty]
                for p in sig.parameters.values()
                if p.name not in ("configuration", "secrets")
            ]
print(json.dumps(out))
"#;
    let python = root().join(".tools/ctk-venv/bin/python");
    let out = Command::new(python)
        .args(["-c", SCRIPT])
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .expect("the ctk venv's python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the signatures are JSON")
}

#[test]
fn catalogued_chaosaws_activities_have_the_installed_signatures() {
    let installed = chaosaws_signatures();
    let mut problems = Vec::new();
    for a in experiment::catalogue::doc::native_chaosaws() {
        let Some(signature) = installed.get(a.name) else {
            problems.push(format!("{}: chaostoolkit-aws has no such function", a.name));
            continue;
        };
        let ours: std::collections::BTreeMap<&str, bool> =
            a.params.iter().map(|p| (p.name, p.required)).collect();
        let theirs: std::collections::BTreeMap<&str, bool> = signature
            .iter()
            .map(|(name, required)| (name.as_str(), *required))
            .collect();
        for (name, required) in &theirs {
            match ours.get(name) {
                None => problems.push(format!("{}: lacks chaosaws's argument '{name}'", a.name)),
                Some(r) if r != required => problems.push(format!(
                    "{}: '{name}' is {} here, {} in chaosaws",
                    a.name,
                    if *r { "required" } else { "optional" },
                    if *required { "required" } else { "optional" },
                )),
                Some(_) => {}
            }
        }
        for name in ours.keys().filter(|n| !theirs.contains_key(*n)) {
            problems.push(format!(
                "{}: '{name}' is not an argument of chaosaws's function",
                a.name
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_chaosaws_function_is_catalogued_or_refused_with_its_reason() {
    use experiment::catalogue;
    let installed: std::collections::BTreeSet<String> = chaosaws_signatures().into_keys().collect();
    let known: std::collections::BTreeSet<String> = catalogue::doc::native_chaosaws()
        .into_iter()
        .map(|a| a.name.to_string())
        .chain(catalogue::refusals().map(|r| r.name.to_string()))
        .collect();
    let unaccounted: Vec<&String> = installed.difference(&known).collect();
    let unknown: Vec<&String> = known.difference(&installed).collect();
    assert!(
        unaccounted.is_empty() && unknown.is_empty(),
        "installed but neither catalogued nor refused: {unaccounted:?}; catalogued or refused but not installed: {unknown:?}"
    );
    assert_eq!(
        installed.len(),
        154,
        "chaostoolkit-aws 0.35.1 has 154 functions"
    );
}

#[test]
fn chaos_validate_accepts_every_catalogued_chaosaws_function() {
    setup();
    let method: Vec<Value> = experiment::catalogue::doc::native_chaosaws()
        .into_iter()
        .map(|a| {
            json!({
                "type": match a.kind {
                    experiment::catalogue::Kind::Probe => "probe",
                    _ => "action",
                },
                "name": a.name,
                "provider": experiment::catalogue::doc::provider_example(a),
            })
        })
        .collect();
    let doc = json!({
        "title": "every catalogued chaosaws function",
        "description": "each with its example arguments",
        "method": method,
    });
    let dir = tempdir("ctk-catalogue");
    let file = dir.join("catalogue.json");
    std::fs::write(&file, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let out = run(Command::new(root().join("scripts/ctk-validate")).arg(&file));
    assert!(
        out.status.success(),
        "chaos validate refused the catalogue's examples:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_completed_run_journal_has_chaos_toolkits_shape() {
    let state = completed_run();
    check_journal("completed", &state);
}

#[test]
fn a_failed_run_journal_has_chaos_toolkits_shape() {
    let mut state = completed_run();
    let after = state.records.pop().unwrap();
    assert_eq!(after.phase, Phase::After);
    let mut failed = state.records.pop().unwrap();
    failed.status = RunStatus::Failed;
    failed.output = Value::Null;
    failed.exception = Some("ECS StopTask: AccessDeniedException".into());
    let report = ErrorReport {
        message: "action 'stop-random-task' failed".into(),
        record: Some(Box::new(failed)),
    };
    state.error = Some(CaughtError {
        error: "ActivityFailed".into(),
        cause: json!({
            "errorType": "ActivityFailed",
            "errorMessage": serde_json::to_string(&report).unwrap(),
        })
        .to_string(),
    });
    check_journal("failed", &state);
}

fn check_journal(name: &str, state: &State) {
    setup();
    // 2026-01-01T00:10:00Z, as time's serde tuple (the `time` crate is not a
    // dependency of this package): year, ordinal day, h, m, s, ns, offset.
    let now = serde_json::from_value(json!([2026, 1, 0, 10, 0, 0, 0, 0, 0])).unwrap();
    let finished = experiment::journal::journal(state, now);
    assert_eq!(finished.journal["end"], "2026-01-01T00:10:00Z");
    let dir = tempdir("ctk-journal");
    let file = dir.join(format!("{name}.json"));
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&finished.journal).unwrap(),
    )
    .unwrap();
    let out = run(Command::new(root().join("scripts/ctk-journal-check")).arg(&file));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    std::fs::remove_dir_all(&dir).ok();
    let problems: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("problem: "))
        .collect();
    let unknown: Vec<&&str> = problems
        .iter()
        .filter(|p| !KNOWN_DIFFERENCES.contains(p))
        .collect();
    let gone: Vec<&&str> = KNOWN_DIFFERENCES
        .iter()
        .filter(|k| !problems.contains(k))
        .collect();
    assert!(
        unknown.is_empty() && gone.is_empty(),
        "{name} journal: new differences from Chaos Toolkit's shape: {unknown:?}; \
         known differences that are gone (remove them from KNOWN_DIFFERENCES): {gone:?}\n{stdout}"
    );
    assert!(
        out.status.success() == problems.is_empty(),
        "scripts/ctk-journal-check exited {} :\n{stdout}",
        out.status
    );
}

fn tempdir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "turbulence-{what}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The shipped ECS experiment, run to completion: steady before, stop a
/// task, scale to zero, steady after, one rollback.
fn completed_run() -> State {
    let experiment: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("experiments/ecs-random-task.json")).unwrap(),
    )
    .unwrap();
    let plan = Plan::new(&Experiment::parse(&experiment).unwrap()).unwrap();
    let args = |extra: Value| -> Map<String, Value> {
        let mut m = json!({"cluster": "ml-moderation", "service": "person-detector"})
            .as_object()
            .unwrap()
            .clone();
        m.extend(extra.as_object().unwrap().clone());
        m
    };
    let record = |phase, name: &str, kind, function: &str, arguments, output, minute: u32| Record {
        phase,
        name: name.into(),
        kind,
        function: function.into(),
        arguments,
        status: RunStatus::Succeeded,
        output,
        detail: None,
        tolerance: None,
        tolerance_met: None,
        exception: None,
        start: format!("2026-01-01T00:0{minute}:00Z"),
        end: format!("2026-01-01T00:0{minute}:01.5Z"),
        duration: 1.5,
    };
    let probe = |phase, minute| Record {
        tolerance: Some(json!(true)),
        tolerance_met: Some(true),
        detail: Some(json!({"running": 2, "desired": 2})),
        ..record(
            phase,
            "all-desired-tasks-running",
            StepKind::Probe,
            "chaosaws.ecs.probes.are_all_desired_tasks_running",
            args(json!({})),
            json!(true),
            minute,
        )
    };
    State {
        experiment,
        execution: "arn:aws:states:us-east-1:123456789012:execution:turbulence:run-1".into(),
        plan: Some(plan),
        started_at: Some("2026-01-01T00:00:00Z".into()),
        records: vec![
            probe(Phase::Before, 1),
            record(
                Phase::Method,
                "stop-random-task",
                StepKind::Action,
                "chaosaws.ecs.actions.stop_random_tasks",
                args(json!({"task_count": 1, "reason": "Turbulence: random task failure"})),
                json!({"stopped": ["arn:aws:ecs:us-east-1:123456789012:task/ml-moderation/abc"]}),
                2,
            ),
            record(
                Phase::Method,
                "scale-service-to-zero",
                StepKind::Action,
                "chaosaws.ecs.actions.update_desired_count",
                args(json!({"desired_count": 0})),
                json!({"desiredCount": 0}),
                3,
            ),
            probe(Phase::After, 8),
        ],
        rollbacks: vec![Record {
            phase: Phase::Rollback,
            ..record(
                Phase::Rollback,
                "restore-desired-count",
                StepKind::Action,
                "chaosaws.ecs.actions.update_desired_count",
                args(json!({"desired_count": 2})),
                json!({"desiredCount": 2}),
                9,
            )
        }],
        ..Default::default()
    }
}

/// Tolerances judged by chaoslib's own `within_tolerance` (after its
/// `ensure_hypothesis_tolerance_is_valid`) and by ours must agree, except
/// where tolerance.rs documents a difference (`differs` says which).
#[test]
fn tolerances_agree_with_chaoslib() {
    setup();
    let http = |body: Value| json!({"status": 200, "headers": {"Content-Type": "application/json"}, "body": body});
    let items = json!({"items": [
        {"n": 1, "up": true, "name": "a", "a": 1, "b": 2},
        {"n": 5, "up": false, "name": "b", "a": 1, "b": 0, "c": 3},
        {"n": 9.5, "name": "c"}
    ]});
    let five = json!([0, 1, 2, 3, 4]);
    let jp = |path: &str, extra: Value| {
        let mut t = json!({"type": "jsonpath", "path": path});
        t.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        t
    };
    let rx = |pattern: &str| json!({"type": "regex", "pattern": pattern});
    // (tolerance, output, why ours differs — None when it must not)
    let cases: Vec<(Value, Value, Option<&str>)> = vec![
        // Plain values.
        (json!(true), json!(true), None),
        (json!(true), json!(false), None),
        (json!("OK"), json!("OK"), None),
        (json!(200), json!({"status": 200}), None),
        (json!(200), json!({"status": 503}), None),
        (json!(3), json!(3.0), None),
        (json!([200, 201]), json!({"status": 201}), None),
        (json!([200, 204]), json!({"status": 201}), None),
        (json!([1, 5]), json!(5), None),
        (json!([1, 5]), json!(6), None),
        (json!([1, 2, 3]), json!(2), None),
        (json!(true), json!(1), Some("Python's True == 1")),
        // Ranges, with CTK's numeric strings.
        (
            json!({"type": "range", "range": [10, 800], "target": "body"}),
            http(json!("580")),
            None,
        ),
        (
            json!({"type": "range", "range": [10, 800], "target": "body"}),
            http(json!("1230")),
            None,
        ),
        (
            json!({"type": "range", "range": [10.5, 800.89], "target": "body"}),
            http(json!("580.5")),
            None,
        ),
        (
            json!({"type": "range", "range": [6, 8], "target": "body"}),
            http(json!("bad")),
            None,
        ),
        // Regexes: Python syntax that regex-lite reads differently.
        (rx("[0-9]{2}"), json!("you are number 87"), None),
        (rx("[0-9]{2}"), json!("you are number 8"), None),
        (
            rx(r#"{"status":\s*"ok"}"#),
            json!(r#"{"status": "ok"}"#),
            None,
        ),
        (rx("^OK$"), json!("OK\n"), None),
        (rx("^OK$"), json!("OK\n\n"), None),
        (rx(r"^OK\Z"), json!("OK\n"), None),
        (rx("^a{,2}$"), json!("aa"), None),
        (rx("^a{,2}$"), json!("aaa"), None),
        (rx("^a{2,}$"), json!("aaaa"), None),
        (rx("^x{}$"), json!("x{}"), None),
        (rx("^{x}$"), json!("{x}"), None),
        (rx(r"\<b\>"), json!("<b>"), None),
        (rx("^[[]$"), json!("["), None),
        (rx("^[a&&b]+$"), json!("a&b"), None),
        (rx("^[]a]+$"), json!("]a"), None),
        (rx(r"(?P<code>\d+) OK"), json!("200 OK"), None),
        (rx("(?i)healthy"), json!("HEALTHY"), None),
        (rx(r"^\${2}$"), json!("$$"), None),
        (rx("[0-9"), json!("x"), None),
        (
            json!({"type": "regex", "target": "stdout", "pattern": "[0-9]{2}"}),
            json!({"status": 0, "stdout": "you are number 87", "stderr": ""}),
            None,
        ),
        (
            json!({"type": "regex", "target": "stderr", "pattern": "[0-9]{2}"}),
            json!({"status": 0, "stdout": "you are number 87", "stderr": "8"}),
            None,
        ),
        (
            rx("(?<=a)b"),
            json!("ab"),
            Some("regex-lite has no look-around"),
        ),
        (
            rx("^a*+b"),
            json!("aab"),
            Some("possessive quantifiers are refused"),
        ),
        (
            rx("^ok$"),
            http(json!("ok")),
            Some("CTK raises on a dict; ours reads the body"),
        ),
        (
            rx(r"\d"),
            json!("٣"),
            Some("\\d is ASCII-only in regex-lite"),
        ),
        // JSONPath: chaostoolkit-lib's own cases.
        (
            jp("$.foo.*[?(@.baz)]", json!({})),
            json!({"foo": [{"baz": 1}, {"baz": 2}]}),
            None,
        ),
        (
            jp("$.notsofoo.*[?(@.baz)].baz", json!({})),
            json!({"foo": [{"baz": 1}]}),
            None,
        ),
        (
            jp("$.foo[?(@.baz)].baz", json!({"expect": "hello"})),
            json!({"foo": {"baz": "hello"}}),
            None,
        ),
        (
            jp(
                "$.foo[?(@.baz)].baz",
                json!({"expect": [["hello", "bonjour"]]}),
            ),
            json!({"foo": {"baz": ["hello", "bonjour"]}}),
            None,
        ),
        (
            jp("$.foo[?(@.baz)].baz", json!({"expect": []})),
            json!({"foo": {"jon": "boom"}}),
            None,
        ),
        (
            jp("$.foo[?(@.baz=\"hello\")]", json!({"count": 1})),
            json!({"foo": {"baz": "hello"}}),
            None,
        ),
        (
            jp("$.foo[?(@.baz=\"bonjour\")]", json!({"count": 1})),
            json!({"foo": {"baz": "hello"}}),
            None,
        ),
        (
            jp(
                "$.foo.*[?(@.baz)].baz",
                json!({"expect": ["hello", "bonjour"]}),
            ),
            json!({"foo": [{"baz": "hello"}, {"baz": "bonjour"}]}),
            None,
        ),
        (
            jp("$.foo.*[?(@.baz=2)]", json!({"count": 1})),
            json!({"foo": [{"baz": 1}, {"baz": 2}]}),
            None,
        ),
        (
            jp("$.foo[*].baz", json!({})),
            json!("{\"foo\": [{\"baz\": 1}, {\"baz\": 2}]}"),
            None,
        ),
        (jp("", json!({})), json!({}), None),
        // JSONPath: filters, operators, precedence, slices, functions.
        (
            jp("$.items[*][?(@.n > 1)]", json!({"count": 2})),
            items.clone(),
            None,
        ),
        (
            jp(
                "$.items[*][?(@.n >= 5 and @.n <= 5)].name",
                json!({"expect": "b"}),
            ),
            items.clone(),
            None,
        ),
        (
            jp(
                "$.items[*][?(@.n < 2 or @.n > 9)].name",
                json!({"expect": ["a", "c"]}),
            ),
            items.clone(),
            None,
        ),
        (
            jp(
                "$.items[*][?(@.a = 1 and @.b = 2 or @.c = 3)].name",
                json!({"expect": ["a", "b"]}),
            ),
            items.clone(),
            None,
        ),
        (
            jp("$.items[*][?(not @.up)].name", json!({"expect": "c"})),
            items.clone(),
            None,
        ),
        (
            jp("$.items[*][?(@.up = false)].name", json!({"expect": "b"})),
            items.clone(),
            None,
        ),
        (
            jp("$.items[*][?(@.n != 1)]", json!({"count": 2})),
            items.clone(),
            None,
        ),
        (
            jp("$.items[*][?(@.n = 1.0)].name", json!({"expect": "a"})),
            items.clone(),
            None,
        ),
        (
            jp(
                "$.items[*][?(@.name = $.items[2].name)].n",
                json!({"expect": 9.5}),
            ),
            items.clone(),
            None,
        ),
        (
            jp("$.items[*][?(@.name < \"z\")]", json!({"count": 0})),
            items.clone(),
            None,
        ),
        (
            jp("$.items[*].name", json!({"expect": "a"})),
            items.clone(),
            None,
        ),
        (
            jp("$.items.length()", json!({"expect": 3})),
            items.clone(),
            None,
        ),
        (
            jp("$.items[0].name.length()", json!({"expect": 1})),
            items.clone(),
            None,
        ),
        (
            jp("$.items[2].keys()", json!({"expect": [["n", "name"]]})),
            items.clone(),
            None,
        ),
        (
            jp("$.items[*][?(@.up = 1)]", json!({"count": 1})),
            items.clone(),
            Some("Python's True == 1"),
        ),
        (jp("$[1:3]", json!({"expect": [1, 2]})), five.clone(), None),
        (jp("$[:2]", json!({"expect": [0, 1]})), five.clone(), None),
        (jp("$[-2:]", json!({"expect": [3, 4]})), five.clone(), None),
        (
            jp("$[::2]", json!({"expect": [0, 2, 4]})),
            five.clone(),
            None,
        ),
        (
            jp("$[3:0:-1]", json!({"expect": [3, 2, 1]})),
            five.clone(),
            None,
        ),
        (jp("$[::-1]", json!({"expect": []})), five.clone(), None),
        (
            jp("$[-7:2]", json!({"expect": [0, 1, 2, 0, 1]})),
            json!([0, 1, 2]),
            None,
        ),
        (jp("$[0,2]", json!({"expect": [0, 2]})), five.clone(), None),
        (
            jp("$[9:0:-1]", json!({"expect": [4, 3, 2, 1]})),
            five.clone(),
            None,
        ),
        (
            jp("$[2:-10:-1]", json!({"expect": [2, 1, 0, 2, 1, 0]})),
            json!([0, 1, 2]),
            None,
        ),
        (jp("$[-2:-1]", json!({"expect": [3]})), five.clone(), None),
        (jp("$[?(1)]", json!({"count": 1})), five.clone(), None),
        (jp("$[?(\"\")]", json!({"count": 0})), five.clone(), None),
        (
            jp("$.items[*][?(true and @.up)].name", json!({"expect": "a"})),
            items.clone(),
            None,
        ),
        (
            jp("$..x", json!({"expect": [0, 1, 2]})),
            json!({"a": {"b": {"x": 2}, "x": 1}, "x": 0}),
            None,
        ),
        (
            jp("$[\"c-d\"]", json!({"expect": 4})),
            json!({"c-d": 4}),
            None,
        ),
        (
            jp("$.status", json!({"expect": 200})),
            http(json!("x")),
            None,
        ),
        (
            jp(
                "$.services[*][?(@.up = false)].name",
                json!({"target": "body", "expect": "db"}),
            ),
            http(json!({"services": [{"name": "api", "up": true}, {"name": "db", "up": false}]})),
            None,
        ),
        // Paths both refuse.
        (jp("$.a[?(@.b == 1)]", json!({})), json!({}), None),
        (jp("$['a']", json!({})), json!({}), None),
        (jp("$.a-b", json!({})), json!({}), None),
        (jp("$.a[name]", json!({})), json!({}), None),
    ];
    let ours: Vec<String> = cases
        .iter()
        .map(|(t, output, _)| match experiment::Tolerance::parse(t) {
            Err(_) => "invalid".to_string(),
            Ok(tol) => tol.met(output).to_string(),
        })
        .collect();
    let dir = tempdir("ctk-tolerances");
    let file = dir.join("cases.json");
    let table: Vec<Value> = cases.iter().map(|(t, o, _)| json!([t, o])).collect();
    std::fs::write(&file, serde_json::to_string(&table).unwrap()).unwrap();
    let python = root().join(".tools/ctk-venv/bin/python");
    let out = run(Command::new(python)
        .arg("-c")
        .arg(CHAOSLIB_JUDGE)
        .arg(&file));
    std::fs::remove_dir_all(&dir).ok();
    assert!(out.status.success(), "the chaoslib judge failed");
    let theirs: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs.len(), cases.len());
    let mut problems = Vec::new();
    for (i, ((t, output, differs), (o, c))) in
        cases.iter().zip(ours.iter().zip(&theirs)).enumerate()
    {
        let agree = o == c;
        match differs {
            None if !agree => {
                problems.push(format!("case {i}: {t} on {output}: ours {o}, chaoslib {c}"))
            }
            Some(why) if agree => problems.push(format!(
                "case {i}: {t} on {output}: both {o}, but it is listed as differing ({why})"
            )),
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Reads `[[tolerance, output], ...]` and prints, for each, "invalid" when
/// chaoslib's validation refuses the tolerance, else whether
/// `within_tolerance` holds ("error" when it raises).
const CHAOSLIB_JUDGE: &str = r#"
import json, sys
from chaoslib.exceptions import InvalidActivity
from chaoslib.hypothesis import ensure_hypothesis_tolerance_is_valid, within_tolerance
results = []
for tolerance, output in json.load(open(sys.argv[1])):
    try:
        ensure_hypothesis_tolerance_is_valid(tolerance)
    except InvalidActivity:
        results.append("invalid")
        continue
    try:
        results.append("true" if within_tolerance(tolerance, value=output) else "false")
    except Exception:
        results.append("error")
print(json.dumps(results))
"#;
