//! Progress lines of a run, a pure function of its history events: what
//! `turbulence run` prints while it follows an execution.
//!
//! Every Task state's input is the state document, so the step about to run
//! is `plan.steps[cursor]` (its kind is `next.kind`, a wait's time left is
//! `next.remaining_ms`), and its output carries the record the step added.
//!
//! ```text
//! [   0.0s] started: 'The ML service recovers from a stopped task'
//! [   0.3s] Plan      ok: 7 steps (2 probes, 2 actions, 3 waits), 0 rollbacks declared
//! [   0.4s] Probe     before  all-desired-tasks-running
//! [   0.6s]             succeeded, tolerance met (0.12 s): true
//! [   1.0s] Wait      method  pause after 'scale-service-to-zero': 6.0 s (until 12:00:07 UTC)
//! [   2.0s] Wait      method  pause after 'scale-service-to-zero': 5.0 s left
//! ```

use serde_json::Value;

use crate::events::Event;

/// Longest output shown on a progress line.
const OUTPUT_CHARS: usize = 100;
/// Longest error message shown on a progress line.
const MESSAGE_CHARS: usize = 400;

/// Turns history events into progress lines, remembering what it has seen
/// so it can be fed the same events again (or only the new ones).
#[derive(Debug, Default, Clone)]
pub struct Progress {
    last_id: i64,
    started_at: Option<f64>,
    /// The task state in flight and the step it runs.
    current: Option<InFlight>,
    /// The wait step (cursor) last announced, so a wait's later chunks say
    /// "left" instead of announcing it again.
    wait_cursor: Option<u64>,
    /// The join was announced; its later chunks are not.
    joining: bool,
    finished: bool,
}

#[derive(Debug, Clone)]
struct InFlight {
    state: String,
    /// `next.kind` of its input: `fork` and `join` run in the Action and
    /// Wait states.
    next: String,
    records: usize,
    rollbacks: usize,
}

impl Progress {
    pub fn new() -> Self {
        Self::default()
    }

    /// Id of the newest event seen.
    pub fn last_id(&self) -> i64 {
        self.last_id
    }

    /// Whether the execution-ending event was seen.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Lines for the events newer than any seen before (ids increase).
    pub fn feed(&mut self, events: &[Event]) -> Vec<String> {
        let mut lines = Vec::new();
        for e in events {
            if e.id <= self.last_id {
                continue;
            }
            self.last_id = e.id;
            let start = *self.started_at.get_or_insert(e.timestamp);
            let at = (e.timestamp - start).max(0.0);
            for text in self.describe(e) {
                lines.push(format!("[{at:>6.1}s] {text}"));
            }
        }
        lines
    }

    fn describe(&mut self, e: &Event) -> Vec<String> {
        let state = e.state.as_deref().unwrap_or("");
        let data = e.data.as_ref();
        match e.kind.as_str() {
            "ExecutionStarted" => vec![started(data)],
            "TaskStateEntered" => {
                let input = data.unwrap_or(&Value::Null);
                self.current = Some(InFlight {
                    state: state.to_string(),
                    next: input
                        .pointer("/next/kind")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    records: len(input, "records"),
                    rollbacks: len(input, "rollbacks"),
                });
                self.entered(state, input, e.timestamp)
                    .into_iter()
                    .collect()
            }
            "TaskStateExited" => {
                let current = self.current.take();
                let output = data.unwrap_or(&Value::Null);
                self.exited(state, output, current.as_ref())
                    .into_iter()
                    .collect()
            }
            "TaskFailed"
            | "TaskTimedOut"
            | "LambdaFunctionFailed"
            | "LambdaFunctionTimedOut"
            | "TaskStartFailed"
            | "TaskSubmitFailed" => {
                let state = self
                    .current
                    .as_ref()
                    .map(|c| c.state.as_str())
                    .unwrap_or("Task");
                vec![format!(
                    "{:<9} {}",
                    state,
                    error_text("error", e.error.as_deref(), e.cause.as_deref())
                )]
            }
            "ExecutionSucceeded" => {
                self.finished = true;
                vec!["execution SUCCEEDED".into()]
            }
            "ExecutionFailed" => {
                self.finished = true;
                vec![format!(
                    "execution FAILED: {}",
                    error_text("", e.error.as_deref(), e.cause.as_deref()).trim_start_matches(": ")
                )]
            }
            "ExecutionAborted" => {
                self.finished = true;
                vec!["execution ABORTED (stopped with StopExecution; the janitor runs the rollbacks)"
                    .into()]
            }
            "ExecutionTimedOut" => {
                self.finished = true;
                vec!["execution TIMED_OUT (the janitor runs the rollbacks)".into()]
            }
            _ => Vec::new(),
        }
    }

    fn entered(&mut self, state: &str, input: &Value, at: f64) -> Option<String> {
        match input.pointer("/next/kind").and_then(Value::as_str) {
            Some("fork") if state == "Action" => {
                let cursor = input.get("cursor").and_then(Value::as_u64);
                let step = cursor.and_then(|c| input.pointer(&format!("/plan/steps/{c}")));
                let name = step.and_then(|s| text(s, "name")).unwrap_or("?");
                return Some(format!(
                    "{:<9} {:<7} {name}: starting it in the background",
                    "Fork", "method"
                ));
            }
            Some("join") if state == "Wait" => {
                if std::mem::replace(&mut self.joining, true) {
                    return None;
                }
                let pending = pending_background(input);
                return Some(format!(
                    "{:<9} waiting for {}: {}",
                    "Join",
                    plural(pending.len(), "background activity"),
                    pending.join(", ")
                ));
            }
            _ => {}
        }
        match state {
            "Plan" => Some(format!(
                "{:<9} checking the experiment, its abort alarms and the guards",
                "Plan"
            )),
            "Probe" | "Action" | "Wait" => {
                let cursor = input.get("cursor").and_then(Value::as_u64);
                let step = current_step(input);
                let phase = step.and_then(|s| text(s, "phase")).unwrap_or("?");
                let name = step.and_then(|s| text(s, "name")).unwrap_or("?");
                let head = format!("{state:<9} {phase:<7} {name}");
                if state != "Wait" {
                    self.wait_cursor = None;
                    return Some(match round_of(input) {
                        Some((k, n)) => format!("{head} (round {k} of {n})"),
                        None => head,
                    });
                }
                let remaining = input
                    .pointer("/next/remaining_ms")
                    .and_then(Value::as_u64)
                    .or_else(|| {
                        step.and_then(|s| s.get("duration_ms"))
                            .and_then(Value::as_u64)
                    })
                    .unwrap_or(0);
                let secs = remaining as f64 / 1000.0;
                if self.wait_cursor.is_some() && self.wait_cursor == cursor {
                    Some(format!("{head}: {secs:.1} s left"))
                } else {
                    self.wait_cursor = cursor;
                    Some(format!("{head}: {secs:.1} s (until {})", clock(at + secs)))
                }
            }
            "Rollback" => {
                let index = len(input, "rollbacks");
                Some(match rollback_queue(input).get(index) {
                    Some(name) => format!("{:<9} {name}", "Rollback"),
                    None if index == 0 => format!("{:<9} nothing to roll back", "Rollback"),
                    None => format!("{:<9} nothing left to roll back", "Rollback"),
                })
            }
            "Journal" => Some(format!("{:<9} writing the journal", "Journal")),
            _ => None,
        }
    }

    fn exited(
        &mut self,
        state: &str,
        output: &Value,
        entered: Option<&InFlight>,
    ) -> Option<String> {
        let indent = " ".repeat(12);
        match entered.map(|c| c.next.as_str()) {
            Some("fork") if output.get("error").is_none() => {
                let started = output.get("background").and_then(Value::as_array)?.last()?;
                return Some(format!(
                    "{indent}running as execution {}",
                    text(started, "execution").unwrap_or("?")
                ));
            }
            Some("join") => {
                if output.pointer("/next/kind").and_then(Value::as_str) == Some("join") {
                    return None;
                }
                self.joining = false;
                if output.get("error").is_some() {
                    return None;
                }
                return Some(format!("{indent}every background activity is back"));
            }
            _ => {}
        }
        match state {
            // A caught error: the TaskFailed line said it already.
            "Plan" | "Probe" | "Action" | "Wait" if output.get("error").is_some() => None,
            "Plan" => {
                let steps = output.pointer("/plan/steps").and_then(Value::as_array)?;
                let count = |kind: &str| {
                    steps
                        .iter()
                        .filter(|s| s.get("kind").and_then(Value::as_str) == Some(kind))
                        .count()
                };
                let rollbacks = output
                    .pointer("/plan/rollbacks")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let alarms: Vec<&str> = output
                    .pointer("/plan/settings/abort_alarms")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let background: std::collections::BTreeSet<u64> = steps
                    .iter()
                    .filter_map(|s| s.get("background").and_then(Value::as_u64))
                    .collect();
                let rounds: u64 = steps
                    .iter()
                    .filter_map(|s| s.get("rounds").and_then(Value::as_u64))
                    .sum();
                let rounds = if rounds > 0 {
                    format!(
                        "; {} of the hypothesis during the method",
                        plural(rounds as usize, "round")
                    )
                } else {
                    String::new()
                };
                Some(format!(
                    "{:<9} ok: {} ({}, {}, {}{}{rounds}), {} declared{}",
                    "Plan",
                    plural(steps.len(), "step"),
                    plural(count("probe"), "probe"),
                    plural(count("action"), "action"),
                    plural(count("wait"), "wait"),
                    if background.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; {} in the background",
                            plural(background.len(), "activity")
                        )
                    },
                    plural(rollbacks, "rollback"),
                    if alarms.is_empty() {
                        String::new()
                    } else {
                        format!(", abort alarms: {}", alarms.join(", "))
                    }
                ))
            }
            "Probe" | "Action" => {
                let before = entered.map_or(0, |c| c.records);
                let records = output.get("records").and_then(Value::as_array)?;
                if records.len() <= before {
                    return None;
                }
                records.last().map(|r| format!("{indent}{}", outcome(r)))
            }
            "Wait" => {
                // Still on the same wait: the next chunk's entry says how much is left.
                if output.pointer("/next/kind").and_then(Value::as_str) == Some("wait")
                    && output.get("cursor") == self.wait_cursor.map(Value::from).as_ref()
                {
                    return None;
                }
                self.wait_cursor = None;
                Some(format!("{indent}waited"))
            }
            "Rollback" => {
                let before = entered.map_or(0, |c| c.rollbacks);
                let rollbacks = output.get("rollbacks").and_then(Value::as_array);
                match rollbacks {
                    Some(r) if r.len() > before => {
                        r.last().map(|r| format!("{indent}{}", outcome(r)))
                    }
                    _ => None,
                }
            }
            "Journal" => {
                let o = output.get("outcome")?;
                let status = text(o, "status").unwrap_or("?");
                let deviated = o.get("deviated").and_then(Value::as_bool) == Some(true);
                let mut line = format!(
                    "{indent}status {status}{}",
                    if deviated { ", deviated" } else { "" }
                );
                if let Some(error) = text(o, "error") {
                    line.push_str(&format!(
                        " ({error}: {})",
                        truncate(text(o, "cause").unwrap_or(""), MESSAGE_CHARS)
                    ));
                }
                Some(line)
            }
            _ => None,
        }
    }
}

/// The names of the background activities not yet taken in.
fn pending_background(state: &Value) -> Vec<&str> {
    state
        .get("background")
        .and_then(Value::as_array)
        .map(|b| {
            b.iter()
                .filter(|c| c.get("joined").and_then(Value::as_bool) != Some(true))
                .filter_map(|c| text(c, "name"))
                .collect()
        })
        .unwrap_or_default()
}

/// Progress lines of a whole history at once.
pub fn lines(events: &[Event]) -> Vec<String> {
    Progress::new().feed(events)
}

fn started(input: Option<&Value>) -> String {
    let input = input.unwrap_or(&Value::Null);
    if let Some(title) = text(input, "title") {
        format!("started: '{}'", truncate(title, 200))
    } else if let Some(p) = text(input, "experiment_parameter") {
        format!("started: the experiment in SSM parameter {p}")
    } else {
        "started".into()
    }
}

/// `succeeded, tolerance met (0.12 s): true` for a journal-shaped record.
fn outcome(r: &Value) -> String {
    let status = text(r, "status").unwrap_or("?");
    let mut s = status.to_string();
    match r.get("tolerance_met").and_then(Value::as_bool) {
        Some(true) => s.push_str(", tolerance met"),
        Some(false) => s.push_str(", tolerance NOT met"),
        None => {}
    }
    if let Some(d) = r.get("duration").and_then(Value::as_f64) {
        s.push_str(&format!(" ({d:.2} s)"));
    }
    if let Some(x) = text(r, "exception") {
        s.push_str(&format!(": {}", truncate(x, MESSAGE_CHARS)));
    } else if let Some(o) = r.get("output").filter(|o| !o.is_null()) {
        s.push_str(&format!(": {}", truncate(&o.to_string(), OUTPUT_CHARS)));
    }
    s
}

/// The step a Task state's input runs: the step under the cursor, or the
/// probe of the hypothesis round under way there.
fn current_step(input: &Value) -> Option<&Value> {
    match input.pointer("/next/round/probe").and_then(Value::as_u64) {
        Some(p) => input.pointer(&format!("/plan/during/{p}")),
        None => {
            let cursor = input.get("cursor").and_then(Value::as_u64)?;
            input.pointer(&format!("/plan/steps/{cursor}"))
        }
    }
}

/// (this round, all rounds) of the step under the cursor, while a round of
/// the hypothesis runs.
fn round_of(input: &Value) -> Option<(u64, u64)> {
    input.pointer("/next/round/probe")?;
    let done = input
        .pointer("/next/round/done")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let cursor = input.get("cursor").and_then(Value::as_u64)?;
    let rounds = input
        .pointer(&format!("/plan/steps/{cursor}/rounds"))
        .and_then(Value::as_u64)?;
    Some((done + 1, rounds))
}

/// The rollback queue's names, as the action function works through it:
/// recorded compensations newest first, then the plan's rollbacks.
fn rollback_queue(state: &Value) -> Vec<String> {
    let names = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|c| text(c, "name").unwrap_or("?").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut queue = names(state.get("compensations"));
    queue.reverse();
    queue.extend(names(state.pointer("/plan/rollbacks")));
    queue
}

/// `ActivityFailed: action 'x' failed: ...`: the message inside a Lambda
/// error's cause when there is one.
fn error_text(prefix: &str, error: Option<&str>, cause: Option<&str>) -> String {
    let error = error.unwrap_or("error");
    let message = cause
        .map(|c| {
            experiment::CaughtError {
                error: error.to_string(),
                cause: c.to_string(),
            }
            .report()
            .message
        })
        .unwrap_or_default();
    let head = if prefix.is_empty() {
        error.to_string()
    } else {
        format!("{prefix} {error}")
    };
    if message.is_empty() {
        head
    } else {
        format!("{head}: {}", truncate(&message, MESSAGE_CHARS))
    }
}

fn plural(n: usize, what: &str) -> String {
    match (n, what.strip_suffix('y')) {
        (1, _) => format!("1 {what}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {what}s"),
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn len(v: &Value, key: &str) -> usize {
    v.get(key).and_then(Value::as_array).map_or(0, Vec::len)
}

/// At most `max` characters, one line.
pub fn truncate(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut t: String = one_line.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// `12:00:07 UTC` for seconds since the epoch.
fn clock(epoch_s: f64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(epoch_s.round() as i64) {
        Ok(t) => format!("{:02}:{:02}:{:02} UTC", t.hour(), t.minute(), t.second()),
        Err(_) => "?".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::fixture;

    /// The lines without their `[   1.2s] ` time prefix.
    fn bodies(lines: &[String]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.split_once("s] ").map_or(l.as_str(), |x| x.1).to_string())
            .collect()
    }

    #[test]
    fn a_completed_run_reads_step_by_step() {
        let events = fixture("history-completed.json");
        let lines = lines(&events);
        let b = bodies(&lines);
        let expected_prefixes = [
            "started: 'The ML service recovers from a stopped task and from being scaled to zero'",
            "Plan      checking the experiment",
            "Plan      ok: 6 steps (2 probes, 2 actions, 2 waits), 0 rollbacks declared, abort alarms: ",
            "Probe     before  all-desired-tasks-running",
            "            succeeded, tolerance met (",
            "Action    method  stop-random-task",
            "            succeeded (",
            "Wait      method  pause after 'stop-random-task': 0.2 s (until ",
            "            waited",
            "Action    method  scale-service-to-zero",
            "            succeeded (",
            "Wait      method  pause after 'scale-service-to-zero': 6.0 s (until 23:16:26 UTC)",
            "Wait      method  pause after 'scale-service-to-zero': 5.0 s left",
        ];
        for (i, p) in expected_prefixes.iter().enumerate() {
            assert!(
                b[i].starts_with(p),
                "line {i}: {:?} does not start with {p:?}\n{}",
                b[i],
                lines.join("\n")
            );
        }
        let expected_tail = [
            "Wait      method  pause after 'scale-service-to-zero': 1.0 s left",
            "            waited",
            "Probe     after   all-desired-tasks-running",
            "            succeeded, tolerance met (0.02 s): true",
            "Rollback  restore desired count of 'happy-31602-356b14453-svc' to 3",
            "            succeeded (0.02 s): {\"desired_count\":3,",
            "Rollback  release the lock on ECS service 'happy-31602-356b14453-svc'",
            "            succeeded (0.01 s): ",
            "Journal   writing the journal",
            "            status completed",
            "execution SUCCEEDED",
        ];
        let tail = &b[b.len() - expected_tail.len()..];
        for (line, p) in tail.iter().zip(expected_tail) {
            assert!(
                line.starts_with(p),
                "{line:?} does not start with {p:?}\n{}",
                lines.join("\n")
            );
        }
        // Times are relative to the start and never go back.
        assert!(lines[0].starts_with("[   0.0s] "));
        let times: Vec<f64> = lines
            .iter()
            .map(|l| l[1..7].trim().parse().unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    }

    #[test]
    fn a_failed_action_shows_the_error_the_rollbacks_and_the_outcome() {
        let b = bodies(&lines(&fixture("history-failed.json")));
        let text = b.join("\n");
        assert!(
            text.contains("Action    error ActivityFailed: action 'stop-random-task' in the method failed: no running tasks in service"),
            "{text}"
        );
        let error_at = b
            .iter()
            .position(|l| l.contains("error ActivityFailed"))
            .unwrap();
        assert!(b[error_at + 1].starts_with("Rollback  "), "{text}");
        assert!(
            text.contains("            status failed (ActivityFailed: action 'stop-random-task' in the method failed"),
            "{text}"
        );
        assert!(
            b.last()
                .unwrap()
                .starts_with("execution FAILED: ActivityFailed: action 'stop-random-task'"),
            "{text}"
        );
    }

    #[test]
    fn feeding_again_prints_only_new_lines() {
        let events = fixture("history-completed.json");
        let mut p = Progress::new();
        let (first, rest) = events.split_at(20);
        let mut all = p.feed(first);
        assert!(!p.finished());
        // A poll returns everything again, plus the new events.
        all.extend(p.feed(first));
        all.extend(p.feed(&events));
        assert!(p.finished());
        assert_eq!(p.last_id(), rest.last().unwrap().id);
        assert_eq!(all, lines(&events));
        assert!(p.feed(&events).is_empty());
    }

    #[test]
    fn a_parameter_run_and_odd_inputs_do_not_panic() {
        let ev = |id: i64, kind: &str, state: Option<&str>, data: Value| Event {
            id,
            kind: kind.into(),
            timestamp: id as f64,
            state: state.map(str::to_string),
            data: Some(data),
            error: None,
            cause: None,
        };
        let events = vec![
            ev(
                1,
                "ExecutionStarted",
                None,
                serde_json::json!({"experiment_parameter": "/x/y"}),
            ),
            ev(
                2,
                "TaskStateEntered",
                Some("Wait"),
                serde_json::json!({"cursor": 99, "plan": {"steps": 3}}),
            ),
            ev(3, "TaskStateExited", Some("Wait"), serde_json::json!(null)),
            ev(
                4,
                "TaskStateEntered",
                Some("Rollback"),
                serde_json::json!([]),
            ),
            ev(
                5,
                "TaskStateExited",
                Some("Journal"),
                serde_json::json!({"outcome": 1}),
            ),
            Event {
                error: Some("States.Timeout".into()),
                ..ev(6, "ExecutionTimedOut", None, Value::Null)
            },
        ];
        let b = bodies(&lines(&events));
        assert_eq!(b[0], "started: the experiment in SSM parameter /x/y");
        assert!(b[1].starts_with("Wait      ?       ?: 0.0 s"), "{b:?}");
        assert!(
            b.iter().any(|l| l.contains("nothing to roll back")),
            "{b:?}"
        );
        assert!(
            b.last().unwrap().starts_with("execution TIMED_OUT"),
            "{b:?}"
        );
    }

    #[test]
    fn background_activities_are_forked_and_joined() {
        let ev = |id: i64, kind: &str, state: &str, data: Value| Event {
            id,
            kind: kind.into(),
            timestamp: id as f64,
            state: Some(state.into()),
            data: Some(data),
            error: None,
            cause: None,
        };
        let steps = serde_json::json!([
            {"phase": "method", "kind": "action", "name": "scale-down", "background": 0},
            {"phase": "method", "kind": "probe", "name": "describe"}
        ]);
        let child = |joined: bool| {
            serde_json::json!([{"group": 0, "name": "scale-down",
                "execution": "arn:aws:states:r:1:execution:m:run-bg0", "digest": "d", "joined": joined}])
        };
        let state = |next: &str, cursor: u64, joined: Option<bool>| {
            let mut s = serde_json::json!({"plan": {"steps": steps}, "cursor": cursor,
                "next": {"kind": next}, "records": []});
            if let Some(j) = joined {
                s["background"] = child(j);
            }
            s
        };
        let events = vec![
            ev(1, "TaskStateEntered", "Action", state("fork", 0, None)),
            ev(
                2,
                "TaskStateExited",
                "Action",
                state("probe", 1, Some(false)),
            ),
            ev(3, "TaskStateEntered", "Wait", state("join", 2, Some(false))),
            ev(4, "TaskStateExited", "Wait", state("join", 2, Some(false))),
            ev(5, "TaskStateEntered", "Wait", state("join", 2, Some(false))),
            ev(6, "TaskStateExited", "Wait", state("done", 2, Some(true))),
        ];
        let b = bodies(&lines(&events));
        assert_eq!(
            b,
            [
                "Fork      method  scale-down: starting it in the background",
                "            running as execution arn:aws:states:r:1:execution:m:run-bg0",
                "Join      waiting for 1 background activity: scale-down",
                "            every background activity is back",
            ]
        );
    }

    #[test]
    fn truncation_counts_characters_and_flattens_lines() {
        assert_eq!(truncate("héllo\nworld", 20), "héllo world");
        assert_eq!(plural(2, "background activity"), "2 background activities");
        assert_eq!(plural(0, "probe"), "0 probes");
        assert_eq!(truncate("ééééé", 3), "éé…");
    }
}
