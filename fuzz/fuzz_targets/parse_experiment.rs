//! Arbitrary bytes into everything that reads an experiment: as JSON when
//! they parse (`Experiment::parse` + `Plan::new`, the document as a
//! tolerance judged against itself, and as arguments of every catalogue
//! function), otherwise as text (a regex pattern and a JSONPath). Nothing may
//! panic, overflow its stack or run away; refusals are fine.

#![no_main]

use experiment::catalogue::supported;
use experiment::{Call, CallSpec, Experiment, Plan, Tolerance};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    match serde_json::from_slice::<Value>(data) {
        Ok(doc) => document(&doc),
        Err(_) => {
            if let Ok(text) = std::str::from_utf8(data) {
                for t in [
                    json!({"type": "regex", "pattern": text}),
                    json!({"type": "jsonpath", "path": text}),
                    json!({"type": "jsonpath", "path": text, "target": "body", "count": 1}),
                ] {
                    tolerance(&t, &sample());
                }
            }
        }
    }
});

fn document(doc: &Value) {
    if let Ok(e) = Experiment::parse(doc) {
        let _ = Plan::new(&e);
    }
    tolerance(doc, doc);
    // {"tolerance": ..., "output": ...} seeds exercise the judging.
    if let (Some(t), Some(output)) = (doc.get("tolerance"), doc.get("output")) {
        tolerance(t, output);
    }
    if let Some(arguments) = doc.as_object() {
        let named = doc.get("function").and_then(Value::as_str);
        for function in named.into_iter().chain(supported()) {
            let _ = Call::parse(&CallSpec {
                function: function.to_string(),
                arguments: arguments.clone(),
            });
        }
    }
}

fn tolerance(t: &Value, output: &Value) {
    if let Ok(tol) = Tolerance::parse(t) {
        let _ = tol.check(output);
        let _ = tol.check(&sample());
    }
    // A tolerance read back from a state document is not re-validated.
    let unchecked: Tolerance = serde_json::from_value(t.clone()).expect("transparent");
    let _ = unchecked.check(output);
}

fn sample() -> Value {
    json!({
        "status": 200,
        "headers": {"Content-Type": "application/json"},
        "body": "{\"items\": [{\"a\": 1, \"b\": \"x\"}, {\"a\": 2.5, \"b\": null}], \"s\": \"text\\n\"}"
    })
}
