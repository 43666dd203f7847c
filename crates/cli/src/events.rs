//! Execution history events, flattened to what progress lines and journal
//! extraction look at. Built from the SDK's `HistoryEvent` (see
//! [`crate::aws`]) or from the JSON `GetExecutionHistory` returns (what
//! `aws stepfunctions get-execution-history` prints), so fixtures are real
//! histories.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: i64,
    /// The history event type, e.g. `TaskStateEntered`, `ExecutionFailed`.
    pub kind: String,
    /// Seconds since the Unix epoch.
    pub timestamp: f64,
    /// The state's name, for `*StateEntered` / `*StateExited` events.
    pub state: Option<String>,
    /// The state's input (entered), its output (exited) or the execution's
    /// input/output (`ExecutionStarted`/`ExecutionSucceeded`), when JSON.
    pub data: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl Event {
    pub fn is_state_entered(&self) -> bool {
        self.kind.ends_with("StateEntered")
    }

    pub fn is_state_exited(&self) -> bool {
        self.kind.ends_with("StateExited")
    }

    /// `ExecutionSucceeded`, `ExecutionFailed`, `ExecutionAborted`,
    /// `ExecutionTimedOut`: the execution is over.
    pub fn ends_execution(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "ExecutionSucceeded" | "ExecutionFailed" | "ExecutionAborted" | "ExecutionTimedOut"
        )
    }

    /// One event of `GetExecutionHistory`'s JSON. Its details are in the one
    /// `...EventDetails` member, whatever the event type.
    pub fn from_api_json(v: &Value) -> Option<Event> {
        let o = v.as_object()?;
        let id = o.get("id")?.as_i64()?;
        let kind = o.get("type")?.as_str()?.to_string();
        let timestamp = match o.get("timestamp") {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
            Some(Value::String(s)) => parse_time(s).unwrap_or(0.0),
            _ => 0.0,
        };
        let empty = Map::new();
        let details = o
            .iter()
            .find(|(k, _)| k.ends_with("EventDetails"))
            .and_then(|(_, v)| v.as_object())
            .unwrap_or(&empty);
        let text = |key: &str| details.get(key).and_then(Value::as_str).map(str::to_string);
        let data = text("input")
            .or_else(|| text("output"))
            .and_then(|s| serde_json::from_str(&s).ok());
        Some(Event {
            id,
            state: if kind.ends_with("StateEntered") || kind.ends_with("StateExited") {
                text("name")
            } else {
                None
            },
            kind,
            timestamp,
            data,
            error: text("error"),
            cause: text("cause"),
        })
    }
}

/// A whole `GetExecutionHistory` response (`{"events": [...]}`) or a bare
/// list of events, oldest first.
pub fn history_from_api_json(v: &Value) -> Result<Vec<Event>, String> {
    let list = v
        .get("events")
        .unwrap_or(v)
        .as_array()
        .ok_or("history: expected {\"events\": [...]} or a list of events")?;
    let mut events = list
        .iter()
        .enumerate()
        .map(|(i, e)| {
            Event::from_api_json(e)
                .ok_or_else(|| format!("history: events[{i}] has no numeric id or no type"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    events.sort_by_key(|e| e.id);
    Ok(events)
}

pub use report::parse_time;

/// A real history under `tests/fixtures/`, for the tests of what reads one.
#[cfg(test)]
pub(crate) fn fixture(name: &str) -> Vec<Event> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    history_from_api_json(&serde_json::from_str(&text).unwrap()).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_details_of_any_event_type() {
        let e = Event::from_api_json(&json!({
            "id": 7, "type": "TaskStateEntered", "timestamp": 1795648579.5, "previousEventId": 6,
            "stateEnteredEventDetails": {"name": "Probe", "input": "{\"cursor\": 2}"}
        }))
        .unwrap();
        assert_eq!(e.state.as_deref(), Some("Probe"));
        assert_eq!(e.data, Some(json!({"cursor": 2})));
        assert_eq!(e.timestamp, 1795648579.5);

        let e = Event::from_api_json(&json!({
            "id": 9, "type": "ExecutionFailed", "timestamp": "2026-01-01T00:00:01Z",
            "executionFailedEventDetails": {"error": "ActivityFailed", "cause": "boom"}
        }))
        .unwrap();
        assert!(e.ends_execution());
        assert_eq!(e.state, None);
        assert_eq!(e.error.as_deref(), Some("ActivityFailed"));
        assert_eq!(e.cause.as_deref(), Some("boom"));
        assert_eq!(e.timestamp, 1767225601.0);
    }

    #[test]
    fn a_history_is_sorted_by_id_and_bad_events_are_named() {
        let h = history_from_api_json(&json!({"events": [
            {"id": 2, "type": "PassStateEntered", "timestamp": 2},
            {"id": 1, "type": "ExecutionStarted", "timestamp": 1}
        ]}))
        .unwrap();
        assert_eq!(h.iter().map(|e| e.id).collect::<Vec<_>>(), vec![1, 2]);
        let err =
            history_from_api_json(&json!([{"id": 1, "type": "X"}, {"type": "Y"}])).unwrap_err();
        assert!(err.contains("events[1]"), "{err}");
    }
}
