//! The journal of a finished execution, and what `chaos run` would exit
//! with for it.
//!
//! A run that completes ends in a Succeed state whose output is the
//! journal. Every other run ends in a Fail state (no output): its journal is
//! the output of the last `Journal` state in the history (`{journal,
//! outcome}`), the same document the dead-letter queue got.

use serde_json::Value;

use crate::events::Event;
use crate::exit;

/// How an execution ended, as DescribeExecution says.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    /// `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED` (or `RUNNING`).
    pub status: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// The output of the last `Journal` state in `events`: its `journal`.
pub fn from_history(events: &[Event]) -> Option<&Value> {
    events
        .iter()
        .filter(|e| e.is_state_exited() && e.state.as_deref() == Some("Journal"))
        .max_by_key(|e| e.id)
        .and_then(|e| e.data.as_ref())
        .and_then(|d| d.get("journal"))
        .filter(|j| j.is_object())
}

/// The journal of an execution: its output when it succeeded, else the
/// last `Journal` state's. The error says why there is none.
pub fn of_execution(arn: &str, ended: &Ended, events: &[Event]) -> Result<Value, String> {
    if ended.status == "SUCCEEDED" {
        if let Some(j) = ended
            .output
            .as_deref()
            .and_then(|o| serde_json::from_str::<Value>(o).ok())
            .filter(Value::is_object)
        {
            return Ok(j);
        }
    }
    if let Some(j) = from_history(events) {
        return Ok(j.clone());
    }
    if ended.status == "RUNNING" || ended.status == "PENDING_REDRIVE" {
        return Err(format!(
            "execution {arn} is still {}: its journal is written when it ends",
            ended.status
        ));
    }
    let why = match (&ended.error, &ended.cause) {
        (Some(e), Some(c)) => format!(" ({e}: {c})"),
        (Some(e), None) => format!(" ({e})"),
        _ => String::new(),
    };
    Err(format!(
        "execution {arn} ended {}{why} without a journal: its Journal state never completed (see its history in the Step Functions console)",
        ended.status
    ))
}

/// `chaos run`'s exit code for a journal: 0 when the status is
/// `completed` and the run did not deviate, 1 otherwise.
pub fn exit_code(journal: &Value) -> u8 {
    let completed = journal.get("status").and_then(Value::as_str) == Some("completed");
    let deviated = journal.get("deviated").and_then(Value::as_bool) == Some(true);
    if completed && !deviated {
        exit::OK
    } else {
        exit::NOT_COMPLETED
    }
}

/// `status failed, deviated (SteadyStateDeviated: ...)`: one line for people.
pub fn summary(journal: &Value) -> String {
    let status = journal
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let mut s = format!("status {status}");
    if journal.get("deviated").and_then(Value::as_bool) == Some(true) {
        s.push_str(", deviated");
    }
    let t = journal.get("turbulence");
    if let Some(e) = t.and_then(|t| t.get("error")).and_then(Value::as_str) {
        s.push_str(&format!(" ({e}"));
        if let Some(c) = t.and_then(|t| t.get("cause")).and_then(Value::as_str) {
            s.push_str(&format!(": {}", crate::progress::truncate(c, 400)));
        }
        s.push(')');
    }
    s
}

/// A journal given in another wrapping: the `Journal` state's output
/// (`{journal, outcome}`) or a dead-letter message (`{execution, error,
/// cause, journal}`). Anything else is returned as it is.
pub fn unwrap(doc: Value) -> Value {
    match doc {
        Value::Object(mut o)
            if !o.contains_key("status") && o.get("journal").is_some_and(Value::is_object) =>
        {
            o.remove("journal").unwrap_or(Value::Null)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::fixture;
    use serde_json::json;

    fn ended(status: &str, output: Option<&str>) -> Ended {
        Ended {
            status: status.into(),
            output: output.map(str::to_string),
            error: None,
            cause: None,
        }
    }

    #[test]
    fn a_failed_run_has_its_journal_in_the_history() {
        let events = fixture("history-failed.json");
        let j = of_execution("arn:x", &ended("FAILED", None), &events).unwrap();
        assert_eq!(j["status"], "failed");
        assert_eq!(j["turbulence"]["error"], "ActivityFailed");
        assert_eq!(exit_code(&j), 1);
        assert!(summary(&j).starts_with("status failed (ActivityFailed: action 'stop-random-task'"));
    }

    #[test]
    fn a_succeeded_run_has_its_journal_as_output() {
        let events = fixture("history-completed.json");
        let output = events
            .iter()
            .find(|e| e.kind == "ExecutionSucceeded")
            .and_then(|e| e.data.clone())
            .unwrap();
        let j = of_execution("arn:x", &ended("SUCCEEDED", Some(&output.to_string())), &[]).unwrap();
        assert_eq!(j["status"], "completed");
        assert_eq!(exit_code(&j), 0);
        // The history has the same journal.
        assert_eq!(from_history(&events), Some(&j));
    }

    #[test]
    fn no_journal_says_why() {
        let e = of_execution(
            "arn:x",
            &Ended {
                error: Some("States.Runtime".into()),
                cause: Some("boom".into()),
                ..ended("FAILED", None)
            },
            &[],
        )
        .unwrap_err();
        assert!(
            e.contains("arn:x ended FAILED (States.Runtime: boom) without a journal"),
            "{e}"
        );
        let e = of_execution("arn:x", &ended("RUNNING", None), &[]).unwrap_err();
        assert!(e.contains("still RUNNING"), "{e}");
    }

    #[test]
    fn exit_codes_follow_chaos_run() {
        assert_eq!(
            exit_code(&json!({"status": "completed", "deviated": false})),
            0
        );
        assert_eq!(
            exit_code(&json!({"status": "completed", "deviated": true})),
            1
        );
        assert_eq!(exit_code(&json!({"status": "aborted"})), 1);
        assert_eq!(exit_code(&json!({})), 1);
    }

    #[test]
    fn wrapped_journals_are_unwrapped() {
        let j = json!({"status": "failed"});
        assert_eq!(unwrap(json!({"journal": j, "outcome": {}})), j);
        assert_eq!(
            unwrap(json!({"execution": "a", "error": "E", "journal": j})),
            j
        );
        assert_eq!(unwrap(j.clone()), j);
    }
}
