//! `turbulence validate`: the checks Plan makes before anything runs —
//! [`Experiment::parse`] then [`Plan::new`] — offline. What Plan checks
//! against AWS (abort alarms exist and are not firing, the guards, the
//! locks) needs the account and is left to the run.

use std::path::Path;

use experiment::plan::Records;
use experiment::{Experiment, Plan};
use serde_json::Value;

use crate::files::{self, MAX_EXPERIMENT_FILE_BYTES};
use crate::vars::Vars;
use crate::Error;

/// A valid experiment, as Plan would run it.
#[derive(Debug)]
pub struct Valid {
    pub experiment: Experiment,
    pub plan: Plan,
}

impl Valid {
    /// `ok (9 steps, 1 rollback)`.
    pub fn summary(&self) -> String {
        format!(
            "ok ({}, {})",
            plural(self.plan.steps.len(), "step"),
            plural(self.plan.rollbacks.len(), "rollback")
        )
    }
}

impl Valid {
    /// What the run will do beyond the steps the summary counts, one line
    /// each: how long it is expected to take.
    pub fn notes(&self) -> Vec<String> {
        let plan = &self.plan;
        let mut waited_ms: u64 = 0;
        let mut attacked_s: f64 = 0.0;
        for step in plan.steps.iter().filter(|s| s.background.is_none()) {
            waited_ms += step.duration_ms.unwrap_or(0);
            let attack = step
                .call
                .as_ref()
                .and_then(|c| experiment::Call::parse(c).ok())
                .filter(|call| call.name() == experiment::attack::ATTACK)
                .and_then(|call| {
                    load::AttackSpec::from_json(experiment::attack::spec_of(&call)).ok()
                });
            for stage in attack.iter().flat_map(|a| &a.stages) {
                attacked_s += stage.duration_s.unwrap_or(0.0);
            }
        }
        let total = waited_ms as f64 / 1000.0 + attacked_s;
        let mut parts = Vec::new();
        if waited_ms > 0 {
            parts.push(format!("{} of pauses", human(waited_ms as f64 / 1000.0)));
        }
        if attacked_s > 0.0 {
            parts.push(format!("{} of load attacks", human(attacked_s)));
        }
        let scale = plan.settings.time_scale;
        let mut line = if parts.is_empty() {
            "expected duration: the probes' and actions' own time (no pauses)".to_string()
        } else {
            format!(
                "expected duration: about {} ({}; plus the probes' and actions' own time)",
                human(total),
                parts.join(", ")
            )
        };
        if scale < 1.0 && waited_ms > 0 {
            line.push_str(&format!(
                "; pauses time-scaled by {scale} from {}",
                human(waited_ms as f64 / 1000.0 / scale)
            ));
        }
        let in_background = plan.steps.iter().filter(|s| s.background.is_some()).count();
        if in_background > 0 {
            line.push_str("; background activities run beside it");
        }
        let mut notes = vec![line];
        notes.extend(self.recorded_rollbacks());
        notes
    }

    /// The rollbacks Turbulence records itself, beside the experiment's
    /// own: each action's undo (from its catalogue declaration), written
    /// before its change, and the release of every target's lock.
    fn recorded_rollbacks(&self) -> Vec<String> {
        use experiment::catalogue::Revert;
        let mut notes = Vec::new();
        let mut locked = std::collections::BTreeSet::new();
        for (name, call) in self.plan.calls() {
            locked.extend(call.touches());
            if let Revert::By(undos) = call.activity.undo {
                notes.push(format!(
                    "rollback Turbulence records before '{name}' changes anything: {} (the rollbacks run it, or the janitor if the run is stopped)",
                    undos.join(" or ")
                ));
            }
        }
        if !locked.is_empty() {
            let targets: Vec<String> = locked.iter().map(ToString::to_string).collect();
            notes.push(format!(
                "rollback Turbulence records at the start: release the lock on {}",
                targets.join(", ")
            ));
        }
        notes
    }
}

/// `1 h 2 min 30 s`, `6.3 s`.
fn human(seconds: f64) -> String {
    if seconds < 60.0 {
        let rounded = (seconds * 10.0).round() / 10.0;
        return format!("{rounded} s");
    }
    let total = seconds.round() as u64;
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h} h"));
    }
    if m > 0 {
        parts.push(format!("{m} min"));
    }
    if s > 0 {
        parts.push(format!("{s} s"));
    }
    parts.join(" ")
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// What is known offline of the deployment the experiment will run in.
#[derive(Debug, Clone, Default)]
pub struct Offline {
    /// Its `DefaultAbortAlarms`; `None`: unknown, so whether the experiment
    /// has an abort alarm is left to Plan.
    pub default_abort_alarms: Option<Vec<String>>,
    /// The Region it runs in (`--region`, `AWS_REGION`); `None`: unknown,
    /// so `aws_region` is left to Plan.
    pub region: Option<String>,
    /// Whether it has a journal bucket (`JournalBucket`), which lets a
    /// continuous hypothesis have more than 48 rounds; `None`: unknown, so
    /// that is left to Plan (only what no deployment runs is refused).
    pub journal_bucket: Option<bool>,
}

impl Offline {
    /// `turbulence validate`: no deployment defaults and no journal bucket
    /// unless given.
    pub fn validate(
        default_abort_alarms: Vec<String>,
        region: Option<String>,
        journal_bucket: bool,
    ) -> Offline {
        Offline {
            default_abort_alarms: Some(default_abort_alarms),
            region,
            journal_bucket: Some(journal_bucket),
        }
    }
}

/// Validates an experiment document. The message names the activity and
/// the field at fault (Plan's own words).
pub fn check_document(doc: &Value, offline: &Offline) -> Result<Valid, String> {
    // The validator is not expected to panic on any document; should it,
    // the user gets a line about it rather than a crash.
    std::panic::catch_unwind(|| {
        let experiment = Experiment::parse(doc).map_err(|e| e.0)?;
        if let Some(defaults) = &offline.default_abort_alarms {
            experiment.check_abort_alarms(defaults).map_err(|e| e.0)?;
        }
        check_region(&experiment, offline.region.as_deref())?;
        let records = match offline.journal_bucket {
            Some(false) => Records::InState,
            Some(true) | None => Records::Spilled,
        };
        let plan = Plan::keeping(&experiment, records).map_err(|e| e.0)?;
        plan.concurrent_stops()?;
        Ok(Valid { experiment, plan })
    })
    .unwrap_or_else(|_| {
        Err(
            "internal error: the validator panicked (a bug: please report it with this file)"
                .into(),
        )
    })
}

/// `configuration.aws_region` against the Region the run will act in, as
/// Plan checks it, when that Region is known here.
fn check_region(experiment: &Experiment, region: Option<&str>) -> Result<(), String> {
    let (Some(wanted), Some(region)) = (experiment.region.as_ref(), region) else {
        return Ok(());
    };
    // A `${name}` left to the run (configuration from env or SSM).
    if wanted.as_str().is_some_and(|w| w.starts_with("${")) {
        return Ok(());
    }
    let execution = format!("arn:aws:states:{region}:000000000000:execution:validate:validate");
    experiment::guards::check_region(&execution, Some(wanted))
}

/// Reads (at most [`MAX_EXPERIMENT_FILE_BYTES`]), parses and validates an
/// experiment file. The error names the file.
pub fn check_file(path: &Path, offline: &Offline, vars: &Vars) -> Result<(Value, Valid), Error> {
    let doc = vars.apply(files::read_json(
        path,
        MAX_EXPERIMENT_FILE_BYTES,
        "an experiment file",
    )?);
    let valid = check_document(&doc, offline).map_err(|message| Error::Invalid {
        path: files::display(path),
        message,
    })?;
    Ok((doc, valid))
}

/// The line `turbulence validate` prints for one file:
/// `FILE: ok (N steps, M rollbacks)` (then `; left to the run: ...` when
/// Plan will check its targets against the account), `FILE: invalid:
/// <message>`, or why the file could not be read as an experiment at all.
pub fn line(path: &Path, result: &Result<(Value, Valid), Error>) -> String {
    let name = files::display(path);
    match result {
        Ok((_, valid)) => match valid.plan.left_to_the_run() {
            left if left.is_empty() => format!("{name}: {}", valid.summary()),
            left => format!(
                "{name}: {}; left to the run: {}",
                valid.summary(),
                left.join("; ")
            ),
        },
        // The message without the file name in front: the line has it.
        Err(Error::Invalid { message, .. }) => format!("{name}: invalid: {message}"),
        Err(Error::Read { source, .. }) => format!("{name}: cannot read: {source}"),
        Err(Error::TooLarge { limit, .. }) => format!(
            "{name}: larger than {limit} bytes (an experiment may be at most {} bytes)",
            experiment::model::MAX_EXPERIMENT_BYTES
        ),
        Err(Error::Json { source, .. }) => format!("{name}: not valid JSON: {source}"),
        // Its own message names the file.
        Err(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    fn any() -> Offline {
        Offline::validate(vec![], None, false)
    }

    fn check_document_t(doc: &Value) -> Result<Valid, String> {
        check_document(doc, &any())
    }

    fn experiments_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments")
    }

    #[test]
    fn concurrent_stops_of_the_same_tasks_are_refused_offline() {
        let stop = |name: &str, background: bool| {
            json!({"type": "action", "name": name, "background": background,
                "provider": {"type": "python", "module": "chaosaws.ecs.actions",
                    "func": "stop_random_tasks",
                    "arguments": {"cluster": "c", "service": "web", "task_count": 1}}})
        };
        let doc = |method: Value| {
            json!({"title": "t", "description": "d", "method": method,
            "extensions": [{"name": "turbulence", "without_abort_alarms": true}]})
        };
        let e = check_document_t(&doc(json!([stop("a", true), stop("b", false)]))).unwrap_err();
        assert!(
            e.contains("'a' and 'b' both take from ECS service 'web'"),
            "{e}"
        );
        assert!(check_document_t(&doc(json!([stop("a", false), stop("b", false)]))).is_ok());
    }

    #[test]
    fn the_shipped_experiments_are_valid() {
        let mut seen = 0;
        for entry in std::fs::read_dir(experiments_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let result = check_file(&path, &any(), &Vars::default());
            let text = line(&path, &result);
            assert!(result.is_ok(), "{text}");
            assert!(text.contains(": ok ("), "{text}");
            seen += 1;
        }
        assert!(seen >= 2, "expected the shipped experiments, found {seen}");
    }

    #[test]
    fn validate_says_how_long_the_run_will_take() {
        let path = experiments_dir().join("ecs-random-task.json");
        let (_, valid) = check_file(&path, &any(), &Vars::default()).unwrap();
        assert_eq!(
            valid.notes()[0],
            "expected duration: about 1 h 2 min 30 s (1 h 2 min 30 s of pauses; plus the probes' and actions' own time)"
        );
        let path = experiments_dir().join("api-abuse.json");
        let (_, valid) = check_file(&path, &any(), &Vars::default()).unwrap();
        assert_eq!(
            valid.notes()[0],
            "expected duration: about 9 min (9 min of load attacks; plus the probes' and actions' own time)"
        );
        assert_eq!(human(6.25), "6.3 s");
        assert_eq!(human(3750.0), "1 h 2 min 30 s");
    }

    #[test]
    fn validate_lists_the_rollbacks_turbulence_records_itself() {
        let path = experiments_dir().join("ecs-random-task.json");
        let (_, valid) = check_file(&path, &any(), &Vars::default()).unwrap();
        assert_eq!(
            valid.notes()[1..],
            [
                "rollback Turbulence records before 'scale-service-to-zero' changes anything: chaosaws.ecs.actions.update_desired_count (the rollbacks run it, or the janitor if the run is stopped)",
                "rollback Turbulence records at the start: release the lock on ECS service 'person-detector' of cluster 'ml-moderation'",
            ]
        );
        // A probe-only experiment changes nothing: no rollback to record.
        let doc = serde_json::json!({"title": "t", "description": "d", "method": [
            {"type": "probe", "name": "p", "provider": {"type": "python",
                "module": "chaosaws.cloudwatch.probes", "func": "get_alarm_state_value",
                "arguments": {"alarm_name": "a"}}}]});
        let file = std::env::temp_dir().join(format!("probe-only-{}.json", std::process::id()));
        std::fs::write(&file, doc.to_string()).unwrap();
        let (_, valid) = check_file(&file, &any(), &Vars::default()).unwrap();
        let _ = std::fs::remove_file(&file);
        assert_eq!(valid.notes().len(), 1, "{:?}", valid.notes());
    }

    #[test]
    fn the_ecs_experiment_counts_its_steps() {
        let path = experiments_dir().join("ecs-random-task.json");
        let (_, valid) = check_file(&path, &any(), &Vars::default()).unwrap();
        assert_eq!(
            valid.summary(),
            format!(
                "ok ({} steps, {} rollback{})",
                valid.plan.steps.len(),
                valid.plan.rollbacks.len(),
                if valid.plan.rollbacks.len() == 1 {
                    ""
                } else {
                    "s"
                }
            )
        );
        assert!(valid.plan.steps.len() >= 5);
    }

    #[test]
    fn the_lambda_experiment_says_its_target_check_is_left_to_the_run() {
        let path = experiments_dir().join("lambda-fault-injection.json");
        let text = line(&path, &check_file(&path, &any(), &Vars::default()));
        assert!(
            text.ends_with(
                "; left to the run: that Lambda function 'turbulence-moderation' reads '/turbulence/faults/moderation' (the turbulence-extension layer with its wrapper, or crates/inject)"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_local_smoke_experiment_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/experiment-local-smoke.json");
        let result = check_file(&path, &any(), &Vars::default());
        assert!(
            line(&path, &result).ends_with(": ok (4 steps, 0 rollbacks)"),
            "{}",
            line(&path, &result)
        );
    }

    fn ecs_doc() -> Value {
        let text = std::fs::read_to_string(experiments_dir().join("ecs-random-task.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn invalid_documents_are_refused_naming_the_field() {
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), "experiment: must be a JSON object"),
            (json!({"description": "d", "method": []}), "title"),
            (
                json!({"title": "t", "description": "d", "method": [], "rollback": []}),
                "unknown key 'rollback' (did you mean 'rollbacks'?",
            ),
            (
                {
                    let mut d = ecs_doc();
                    d["method"][0]["provider"]["func"] = json!("no_such_func");
                    d
                },
                "no_such_func",
            ),
            (
                {
                    let mut d = ecs_doc();
                    let exts = d["extensions"].as_array_mut().unwrap();
                    for e in exts.iter_mut() {
                        if e["name"] == "turbulence" {
                            e["time_scale"] = json!(3);
                        }
                    }
                    d
                },
                "time_scale: must be at most 1",
            ),
        ];
        for (doc, needle) in cases {
            let err = check_document(&doc, &any()).unwrap_err();
            assert!(err.contains(needle), "{needle:?} not in {err:?}");
        }
    }

    fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "turbulence-cli-validate-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn files_that_are_not_experiments_get_one_line_each() {
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty.json", b"".to_vec(), "not valid JSON: EOF"),
            ("trailing.json", b"{\"title\": ".to_vec(), "not valid JSON"),
            (
                "binary.json",
                vec![0xff, 0xfe, 0x00, 0x01],
                "not UTF-8 text (the first 0 bytes are; then byte 0xff)",
            ),
            (
                "latin1.json",
                b"{\"title\": \"caf\xe9\"}".to_vec(),
                "not UTF-8 text (the first 14 bytes are; then byte 0xe9)",
            ),
            (
                "deep.json",
                "[".repeat(10_000).into_bytes(),
                "recursion limit",
            ),
            (
                "huge.json",
                vec![b' '; (MAX_EXPERIMENT_FILE_BYTES + 10) as usize],
                "larger than 1048576 bytes",
            ),
            (
                "big-but-under-the-cap.json",
                format!(
                    "{{\"title\": \"{}\", \"description\": \"d\", \"method\": []}}",
                    "x".repeat(100_000)
                )
                .into_bytes(),
                "over the 65536-byte limit",
            ),
            (
                "bom.json",
                // Read past the BOM: the experiment's own fault is what is named.
                b"\xEF\xBB\xBF{\"title\":\"t\",\"description\":\"d\",\"method\":[]}".to_vec(),
                "invalid: experiment: nothing to run",
            ),
        ];
        for (name, bytes, needle) in cases {
            let path = temp_file(name, &bytes);
            let text = line(&path, &check_file(&path, &any(), &Vars::default()));
            assert!(text.starts_with(&path.display().to_string()), "{text}");
            assert!(text.contains(needle), "{needle:?} not in {text:?}");
            let _ = std::fs::remove_file(&path);
        }
        let missing = Path::new("/nonexistent/turbulence/experiment.json");
        let text = line(missing, &check_file(missing, &any(), &Vars::default()));
        assert!(
            text.starts_with("/nonexistent/turbulence/experiment.json: cannot read:"),
            "{text}"
        );
    }

    #[test]
    fn odd_values_never_panic() {
        let odd = [
            json!(null),
            json!(1e308),
            json!("text"),
            json!({"title": 1, "description": [], "method": {}}),
            json!({"title": "t", "description": "d", "method": [null, 1, "x", [], {}]}),
            json!({"title": "t", "description": "d", "method": [{"type": "action", "name": "a",
                "provider": {"type": "python", "module": "chaosaws.ecs.actions", "func": "update_desired_count",
                "arguments": {"cluster": "c", "service": "s", "desired_count": -1e300}},
                "pauses": {"before": -1, "after": 1e308}}]}),
            json!({"title": "t", "description": "d", "method": [], "extensions": [
                {"name": "turbulence", "time_scale": -5, "poll_interval_seconds": "x", "wait_chunk_seconds": null}]}),
            json!({"title": "t", "description": "d", "method": [], "steady-state-hypothesis":
                {"title": "h", "probes": [{"ref": "nothing"}]}}),
        ];
        for doc in odd {
            let _ = check_document(&doc, &any());
        }
    }
}
