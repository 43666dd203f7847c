//! Chaos Toolkit tolerances: does a probe's output stay within what the
//! steady-state hypothesis allows?
//!
//! The forms and their meaning follow chaostoolkit-lib's `within_tolerance`
//! (`chaoslib/hypothesis.py`):
//!
//! - `true`/`false`, a string: equality with the output.
//! - a whole number: equality, with the output's `status` when it has one
//!   (http and process outputs).
//! - a list: when the output has a `status`, that status is one of the
//!   items; otherwise two items are an inclusive numeric range `[low, high]`
//!   and any other number of items a list of allowed values.
//! - `{"type": "range", "range": [low, high], "target": "key"}`: the output
//!   (or its `target`) is a number, or a numeric string, within the range.
//! - `{"type": "regex", "pattern": "...", "target": "key"}`: the pattern is
//!   found (Python's `re.search`) in the output or its `target`; see
//!   `tolerance/pyre.rs` for how Python patterns map to our engine.
//! - `{"type": "jsonpath", "path": "$...", "target": "key", "count": n,
//!   "expect": v}`: the path (jsonpath2's syntax, as `tolerance/jsonpath.rs`
//!   describes) is run over the output or its `target`, a JSON string being
//!   decoded first. Without `count` or `expect` it must find something;
//!   with `count` it must find exactly `count` values; with `expect` the
//!   values found must be exactly `[expect]` — or exactly `expect` when
//!   `expect` is a list (so to expect one list value, write `[[...]]`).
//! - `{"type": "probe", "name", "provider"}`: another probe, called with
//!   the output as `value` (for an `http` provider, in the JSON body), is
//!   met when it succeeds — for http, a status below 400. The engine runs
//!   it ([`Tolerance::probe`]); [`Tolerance::check`] alone cannot.
//!
//! Where Turbulence differs from chaostoolkit-lib, it does so to refuse
//! mistakes rather than pass them:
//!
//! - a `target` the output does not have fails the tolerance (CTK falls back
//!   to the whole output, so a typo in `target` can pass);
//! - a `regex` without `target` on an http output `{status, headers, body}`
//!   reads `body` (CTK raises a TypeError on the dict); a target that is not
//!   a string is matched as its JSON text (CTK raises);
//! - `count` and `expect` together are refused (CTK silently ignores
//!   `count`); so are an empty `pattern`, an empty list, unknown keys in a
//!   tolerance object, and `true` standing for 1 (Python's `True == 1`);
//! - `${name}` in a pattern or path is refused until configuration is
//!   substituted into tolerances.

mod jsonpath;
mod pyre;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::kind_of;

/// A tolerance as written; [`Tolerance::parse`] has checked its shape, and
/// [`Tolerance::met`] judges an output against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tolerance(Value);

impl Tolerance {
    pub fn parse(v: &Value) -> Result<Tolerance, String> {
        match v {
            Value::Bool(_) | Value::String(_) => {}
            Value::Number(n) if n.is_i64() || n.is_u64() => {}
            Value::Number(n) => {
                return Err(format!(
                    "a number tolerance must be a whole number, found {n}"
                ))
            }
            Value::Array(items) => list(items)?,
            Value::Object(o) => object(o)?,
            Value::Null => return Err("a tolerance must not be null".into()),
        }
        Ok(Tolerance(v.clone()))
    }

    pub fn as_value(&self) -> &Value {
        &self.0
    }

    /// The provider of a `{"type": "probe"}` tolerance, which the engine
    /// runs to judge.
    pub fn probe(&self) -> Option<&serde_json::Map<String, Value>> {
        let o = self.0.as_object()?;
        (o.get("type").and_then(Value::as_str) == Some("probe"))
            .then(|| o.get("provider").and_then(Value::as_object))
            .flatten()
    }

    /// Judge `output`: true when it is within the tolerance.
    pub fn met(&self, output: &Value) -> bool {
        self.check(output).is_ok()
    }

    /// Judge `output`, saying why it is not within the tolerance: for the
    /// deviation message and the journal.
    pub fn check(&self, output: &Value) -> Result<(), String> {
        let status = output.as_object().and_then(|o| o.get("status"));
        let ok = match &self.0 {
            Value::Bool(b) => output.as_bool() == Some(*b),
            Value::String(s) => output.as_str() == Some(s.as_str()),
            Value::Number(_) => match status {
                Some(st) => return expect_eq(st, &self.0, "status"),
                None => jsonpath::py_eq(output, &self.0),
            },
            Value::Array(items) => match status {
                Some(st) => {
                    if items.iter().any(|i| jsonpath::py_eq(st, i)) {
                        return Ok(());
                    }
                    return Err(format!("status {st} is not one of {}", self.0));
                }
                None if items.len() == 2 => in_range(output, items, false),
                None => items.iter().any(|i| jsonpath::py_eq(output, i)),
            },
            Value::Object(o) => return check_object(o, output),
            Value::Null => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("{} is not within {}", short(output), self.0))
        }
    }
}

fn expect_eq(found: &Value, want: &Value, what: &str) -> Result<(), String> {
    if jsonpath::py_eq(found, want) {
        Ok(())
    } else {
        Err(format!("{what} {found} is not {want}"))
    }
}

fn list(items: &[Value]) -> Result<(), String> {
    match items.len() {
        0 => Err("an empty list tolerance is never met".into()),
        2 => match bounds(items) {
            Ok(_) => Ok(()),
            Err(e) if items.iter().all(Value::is_number) => Err(e),
            Err(e) => Err(format!(
                "{e} (a two-item list is a range [low, high] unless the output has a \
                 'status'; to allow a set of strings use a regex tolerance such as \
                 {{\"type\": \"regex\", \"pattern\": \"^(OK|INSUFFICIENT_DATA)$\"}})"
            )),
        },
        _ => Ok(()),
    }
}

fn object(o: &Map<String, Value>) -> Result<(), String> {
    let kind = match o.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(other) => {
            return Err(format!(
                "a tolerance's 'type' must be a string, found {}",
                kind_of(other)
            ))
        }
        None => {
            return Err(
                "an object tolerance needs a 'type': range, regex, jsonpath or probe".into(),
            )
        }
    };
    match kind {
        "range" => {
            known_keys(o, kind, &["type", "range", "target"])?;
            let r = match o.get("range") {
                Some(Value::Array(r)) if r.len() == 2 => r,
                Some(Value::Array(r)) => {
                    return Err(format!(
                        "a 'range' tolerance needs 'range': [low, high], found {} items",
                        r.len()
                    ))
                }
                Some(other) => {
                    return Err(format!(
                        "a 'range' tolerance needs 'range': [low, high], found {}",
                        kind_of(other)
                    ))
                }
                None => return Err("a 'range' tolerance needs 'range': [low, high]".into()),
            };
            bounds(r)?;
            target(o)?;
        }
        "regex" => {
            known_keys(o, kind, &["type", "pattern", "target"])?;
            let pattern = text(o, "pattern", kind, "a regular expression")?;
            pyre::compile(pattern)?;
            target(o)?;
        }
        "jsonpath" => {
            known_keys(o, kind, &["type", "path", "expect", "count", "target"])?;
            let path = text(o, "path", kind, "a JSONPath such as $.items[*]")?;
            jsonpath::Path::parse(path)?;
            match o.get("count") {
                None | Some(Value::Null) => {}
                Some(Value::Number(n)) if n.is_u64() => {}
                Some(other) => {
                    return Err(format!(
                        "'count' must be a whole number ≥ 0, found {}",
                        if other.is_number() {
                            other.to_string()
                        } else {
                            kind_of(other).to_string()
                        }
                    ))
                }
            }
            if o.get("count").is_some_and(|c| !c.is_null()) && o.contains_key("expect") {
                return Err(
                    "use 'count' or 'expect', not both (with both, Chaos Toolkit ignores 'count')"
                        .into(),
                );
            }
            target(o)?;
        }
        "probe" => {
            // Its provider is checked by the experiment model, which knows
            // the catalogue; here only its shape.
            if !o.get("provider").is_some_and(Value::is_object) {
                return Err("a 'probe' tolerance needs a 'provider' object".into());
            }
        }
        t => {
            return Err(format!(
                "unknown tolerance type '{t}' (supported: range, regex, jsonpath, probe)"
            ))
        }
    }
    Ok(())
}

fn known_keys(o: &Map<String, Value>, kind: &str, keys: &[&str]) -> Result<(), String> {
    match o.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "unknown key '{k}' in a '{kind}' tolerance (expected: {})",
            keys.join(", ")
        )),
        None => Ok(()),
    }
}

/// A required, non-empty string field, without `${...}` references.
fn text<'a>(
    o: &'a Map<String, Value>,
    key: &str,
    kind: &str,
    what: &str,
) -> Result<&'a str, String> {
    let s = match o.get(key) {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(format!(
                "'{key}' must be a string ({what}), found {}",
                kind_of(other)
            ))
        }
        None => return Err(format!("a '{kind}' tolerance needs '{key}': {what}")),
    };
    if s.trim().is_empty() {
        return Err(format!("'{key}' is empty (it needs {what})"));
    }
    if let Some(reference) = reference(s) {
        return Err(format!(
            "'{key}' uses '{reference}': configuration values are not substituted into tolerances yet"
        ));
    }
    Ok(s)
}

/// The first `${name}` Chaos Toolkit would substitute (`string.Template`
/// names; `\${` in a regex and `$${` are not references).
fn reference(s: &str) -> Option<&str> {
    let bytes = s.as_bytes();
    s.match_indices("${").find_map(|(start, _)| {
        if start > 0 && matches!(bytes[start - 1], b'\\' | b'$') {
            return None;
        }
        let rest = &s[start + 2..];
        let end = rest.find('}')?;
        let name = &rest[..end];
        let ok = name
            .chars()
            .next()
            .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
            && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric());
        ok.then(|| &s[start..start + 2 + end + 1])
    })
}

fn target(o: &Map<String, Value>) -> Result<(), String> {
    match o.get("target") {
        None => Ok(()),
        Some(Value::String(t)) if !t.is_empty() => Ok(()),
        Some(Value::String(_)) => Err("'target' is empty (it names a key of the output)".into()),
        Some(other) => Err(format!(
            "'target' must be a key name of the output, found {}",
            kind_of(other)
        )),
    }
}

fn check_object(o: &Map<String, Value>, output: &Value) -> Result<(), String> {
    let kind = o.get("type").and_then(Value::as_str).unwrap_or_default();
    let target_key = o.get("target").and_then(Value::as_str);
    let target = match target_key {
        Some(key) => match output.as_object().and_then(|m| m.get(key)) {
            Some(v) => v,
            None => return Err(format!("the output has no '{key}': {}", short(output))),
        },
        // An http output's text is its body.
        None if kind == "regex" && is_http(output) => &output["body"],
        None => output,
    };
    match kind {
        "range" => {
            let r = o
                .get("range")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if in_range(target, r, true) {
                Ok(())
            } else {
                Err(format!(
                    "{} is not within the range {}",
                    short(target),
                    Value::Array(r.to_vec())
                ))
            }
        }
        "regex" => {
            let pattern = o.get("pattern").and_then(Value::as_str).unwrap_or_default();
            let rx = pyre::compile(pattern)?;
            let owned;
            let text = match target {
                Value::String(s) => s.as_str(),
                other => {
                    owned = other.to_string();
                    owned.as_str()
                }
            };
            if rx.is_match(text) {
                Ok(())
            } else {
                Err(format!(
                    "pattern \"{pattern}\" is not found in {}",
                    short(&Value::String(text.to_string()))
                ))
            }
        }
        "jsonpath" => {
            let text = o.get("path").and_then(Value::as_str).unwrap_or_default();
            let path = jsonpath::Path::parse(text)?;
            // A string (an http body, say) is decoded when it is JSON.
            let decoded;
            let doc = match target {
                Value::String(s) => match serde_json::from_str::<Value>(s) {
                    Ok(v) => {
                        decoded = v;
                        &decoded
                    }
                    Err(_) => target,
                },
                other => other,
            };
            let found = path.find(doc)?;
            let found: Vec<Value> = found.into_iter().map(|c| c.into_owned()).collect();
            let found_text = short(&Value::Array(found.clone()));
            if let Some(expect) = o.get("expect") {
                let ok = match expect {
                    Value::Array(want) => {
                        found.len() == want.len()
                            && found.iter().zip(want).all(|(f, w)| jsonpath::py_eq(f, w))
                    }
                    want => found.len() == 1 && jsonpath::py_eq(&found[0], want),
                };
                return if ok {
                    Ok(())
                } else {
                    Err(format!(
                        "jsonpath {text} found {found_text}, expected {}",
                        if expect.is_array() {
                            expect.to_string()
                        } else {
                            format!("[{expect}]")
                        }
                    ))
                };
            }
            match o.get("count").and_then(Value::as_u64) {
                Some(n) if found.len() as u64 == n => Ok(()),
                Some(n) => Err(format!(
                    "jsonpath {text} found {} values, expected {n}: {found_text}",
                    found.len()
                )),
                None if found.is_empty() => Err(format!("jsonpath {text} found nothing")),
                None => Ok(()),
            }
        }
        other => Err(format!("tolerance type '{other}' cannot be judged here")),
    }
}

fn is_http(output: &Value) -> bool {
    output
        .as_object()
        .is_some_and(|o| o.contains_key("status") && o.contains_key("body"))
}

/// A value's JSON text, cut for messages.
fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() <= 200 {
        return text;
    }
    let cut: String = text.chars().take(200).collect();
    format!("{cut}… ({} bytes)", text.len())
}

fn bounds(items: &[Value]) -> Result<(f64, f64), String> {
    match (items[0].as_f64(), items[1].as_f64()) {
        (Some(lo), Some(hi)) if lo <= hi => Ok((lo, hi)),
        (Some(lo), Some(hi)) => Err(format!("range bounds are reversed: [{lo}, {hi}]")),
        _ => Err(format!(
            "range bounds must be numbers, found [{}, {}]",
            items[0], items[1]
        )),
    }
}

/// `range` on a number — or, for a `range` tolerance as in CTK (which reads
/// the value with `Decimal`), a numeric string such as an http body "580".
fn in_range(v: &Value, range: &[Value], strings: bool) -> bool {
    if range.len() != 2 {
        return false;
    }
    let x = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if strings => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
        _ => None,
    };
    match (x, bounds(range)) {
        (Some(x), Ok((lo, hi))) => lo <= x && x <= hi,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(v: Value) -> Tolerance {
        Tolerance::parse(&v).unwrap()
    }

    fn refused(v: Value) -> String {
        Tolerance::parse(&v).unwrap_err()
    }

    fn http(status: u16, body: Value) -> Value {
        json!({"status": status, "headers": {"Content-Type": "application/json"}, "body": body})
    }

    #[test]
    fn bool_tolerance_needs_the_same_bool() {
        assert!(t(json!(true)).met(&json!(true)));
        assert!(!t(json!(true)).met(&json!(false)));
        // A probe that answered something else is not "true".
        assert!(!t(json!(true)).met(&json!("true")));
        assert!(!t(json!(true)).met(&json!(1)));
    }

    #[test]
    fn number_tolerance_compares_status_of_http_results() {
        assert!(t(json!(200)).met(&json!({"status": 200, "body": ""})));
        assert!(!t(json!(200)).met(&json!({"status": 500})));
        assert!(t(json!(3)).met(&json!(3)));
        assert!(t(json!(3)).met(&json!(3.0)));
        assert!(!t(json!(3)).met(&json!(2)));
        assert_eq!(
            t(json!(200)).check(&json!({"status": 503})).unwrap_err(),
            "status 503 is not 200"
        );
    }

    #[test]
    fn list_is_a_range_membership_or_status_membership() {
        assert!(t(json!([1, 5])).met(&json!(5)));
        assert!(!t(json!([1, 5])).met(&json!(6)));
        assert!(t(json!([200, 204])).met(&json!({"status": 204})));
        // Membership, not range, for statuses: 201 is between but not listed.
        assert!(!t(json!([200, 204])).met(&json!({"status": 201})));
        assert!(t(json!([200, 201, 204])).met(&json!({"status": 201})));
        assert!(t(json!(["OK"])).met(&json!("OK")));
        assert!(t(json!(["OK", "ALARM", "INSUFFICIENT_DATA"])).met(&json!("ALARM")));
        assert!(!t(json!([1, 2, 3])).met(&json!(4)));
        assert_eq!(
            t(json!([200, 204]))
                .check(&json!({"status": 500}))
                .unwrap_err(),
            "status 500 is not one of [200,204]"
        );
    }

    #[test]
    fn range_object_reads_its_target() {
        let tol = t(json!({"type": "range", "range": [0, 0.5], "target": "ratio"}));
        assert!(tol.met(&json!({"ratio": 0.25})));
        assert!(!tol.met(&json!({"ratio": 0.75})));
        assert_eq!(
            tol.check(&json!({"other": 0.25})).unwrap_err(),
            "the output has no 'ratio': {\"other\":0.25}"
        );
    }

    #[test]
    fn range_reads_numeric_strings_like_ctk() {
        // chaostoolkit-lib's test_tolerance_range_*: an http body "580".
        let tol = t(json!({"type": "range", "target": "body", "range": [10, 800]}));
        assert!(tol.met(&http(200, json!("580"))));
        assert!(!tol.met(&http(200, json!("1230"))));
        assert!(!tol.met(&http(200, json!("bad"))));
        let tol = t(json!({"type": "range", "target": "body", "range": [10.5, 800.89]}));
        assert!(tol.met(&http(200, json!(" 580.5 "))));
        assert!(!tol.met(&http(200, json!("NaN"))));
        // A plain two-item list stays numeric-only, as CTK compares it.
        assert!(!t(json!([1, 5])).met(&json!("3")));
    }

    #[test]
    fn string_tolerance_is_equality() {
        assert!(t(json!("OK")).met(&json!("OK")));
        assert!(!t(json!("OK")).met(&json!("ALARM")));
    }

    #[test]
    fn regex_searches_the_output_or_its_target() {
        // chaostoolkit-lib's test_tolerance_regex_*.
        let tol = t(json!({"type": "regex", "pattern": "[0-9]{2}"}));
        assert!(tol.met(&json!("you are number 87")));
        assert!(!tol.met(&json!("you are number 8")));
        let out = json!({"status": 0, "stdout": "you are number 87", "stderr": "you are number 8"});
        assert!(t(json!({"type": "regex", "target": "stdout", "pattern": "[0-9]{2}"})).met(&out));
        assert!(!t(json!({"type": "regex", "target": "stderr", "pattern": "[0-9]{2}"})).met(&out));
        let e = t(json!({"type": "regex", "target": "stdout", "pattern": "^x"}))
            .check(&out)
            .unwrap_err();
        assert_eq!(e, "pattern \"^x\" is not found in \"you are number 87\"");
    }

    #[test]
    fn regex_on_http_outputs_reads_the_body() {
        let ok = t(json!({"type": "regex", "pattern": "^healthy$"}));
        assert!(ok.met(&http(200, json!("healthy\n"))));
        assert!(!ok.met(&http(200, json!("unhealthy"))));
        let explicit = t(json!({"type": "regex", "target": "body", "pattern": "[0-9]{2}"}));
        assert!(explicit.met(&http(200, json!("you are number 87"))));
        // A JSON body (parsed by the http probe) is matched as JSON text.
        let json_body = t(json!({"type": "regex", "pattern": r#""status":"ok""#}));
        assert!(json_body.met(&http(200, json!({"status": "ok"}))));
        // Headers and status by target.
        let header =
            t(json!({"type": "regex", "target": "headers", "pattern": "application/json"}));
        assert!(header.met(&http(200, json!(""))));
        let status = t(json!({"type": "regex", "target": "status", "pattern": "^2\\d\\d$"}));
        assert!(status.met(&http(204, json!(""))));
        assert!(!status.met(&http(503, json!(""))));
        // An object that is not an http output, without a target: its JSON text.
        assert!(t(json!({"type": "regex", "pattern": "\"a\":1"})).met(&json!({"a": 1})));
    }

    #[test]
    fn jsonpath_ctk_cases() {
        // chaostoolkit-lib's test_tolerance_jsonpath_*.
        let foo = json!({"foo": [{"baz": 1}, {"baz": 2}]});
        assert!(t(json!({"type": "jsonpath", "path": "$.foo.*[?(@.baz)]"})).met(&foo));
        assert!(!t(json!({"type": "jsonpath", "path": "$.notsofoo.*[?(@.baz)].baz"})).met(&foo));
        let hello = json!({"foo": {"baz": "hello"}});
        assert!(
            t(json!({"type": "jsonpath", "path": "$.foo[?(@.baz)].baz", "expect": "hello"}))
                .met(&hello)
        );
        let list = json!({"foo": {"baz": ["hello", "bonjour"]}});
        assert!(t(json!({"type": "jsonpath", "path": "$.foo[?(@.baz)].baz", "expect": [["hello", "bonjour"]]})).met(&list));
        // expect [] passes when nothing is found.
        assert!(
            t(json!({"type": "jsonpath", "path": "$.foo[?(@.baz)].baz", "expect": []}))
                .met(&json!({"foo": {"jon": "boom"}}))
        );
        assert!(
            t(json!({"type": "jsonpath", "path": "$.foo[?(@.baz=\"hello\")]", "count": 1}))
                .met(&hello)
        );
        assert!(
            !t(json!({"type": "jsonpath", "path": "$.foo[?(@.baz=\"bonjour\")]", "count": 1}))
                .met(&hello)
        );
        let two = json!({"foo": [{"baz": "hello"}, {"baz": "bonjour"}]});
        assert!(t(json!({"type": "jsonpath", "path": "$.foo.*[?(@.baz)].baz", "expect": ["hello", "bonjour"]})).met(&two));
        assert!(
            t(json!({"type": "jsonpath", "path": "$.foo.*[?(@.baz=2)]", "count": 1})).met(&foo)
        );
        assert!(t(json!({"type": "jsonpath", "path": "$.foo.*[?(@.baz)]", "count": 2})).met(&foo));
        assert!(
            t(json!({"type": "jsonpath", "path": "$.foo.*[?(@.baz=4)]", "count": 2}))
                .met(&json!({"foo": [{"baz": 4}, {"baz": 4}]}))
        );
        // A JSON string is decoded.
        assert!(t(json!({"type": "jsonpath", "path": "$.foo[*].baz"}))
            .met(&json!("{\"foo\": [{\"baz\": 1}, {\"baz\": 2}]}")));
    }

    #[test]
    fn jsonpath_expect_is_the_whole_list_of_values() {
        let doc = json!({"items": [{"s": "up"}, {"s": "up"}]});
        // Two values found: a scalar expect wants exactly one.
        let scalar = t(json!({"type": "jsonpath", "path": "$.items[*].s", "expect": "up"}));
        assert_eq!(
            scalar.check(&doc).unwrap_err(),
            "jsonpath $.items[*].s found [\"up\",\"up\"], expected [\"up\"]"
        );
        assert!(
            t(json!({"type": "jsonpath", "path": "$.items[*].s", "expect": ["up", "up"]}))
                .met(&doc)
        );
        assert!(
            !t(json!({"type": "jsonpath", "path": "$.items[*].s", "expect": ["up"]})).met(&doc)
        );
        assert!(t(json!({"type": "jsonpath", "path": "$.items[0].s", "expect": "up"})).met(&doc));
        assert!(t(json!({"type": "jsonpath", "path": "$.n", "expect": 1})).met(&json!({"n": 1.0})));
        assert!(
            t(json!({"type": "jsonpath", "path": "$.n", "expect": null})).met(&json!({"n": null}))
        );
        let count = t(json!({"type": "jsonpath", "path": "$.items[*]", "count": 3}));
        assert_eq!(
            count.check(&doc).unwrap_err(),
            "jsonpath $.items[*] found 2 values, expected 3: [{\"s\":\"up\"},{\"s\":\"up\"}]"
        );
        assert_eq!(
            t(json!({"type": "jsonpath", "path": "$.nope"}))
                .check(&doc)
                .unwrap_err(),
            "jsonpath $.nope found nothing"
        );
        let zero = t(json!({"type": "jsonpath", "path": "$.items[?(@.s = \"down\")]", "count": 0}));
        assert!(zero.met(&doc));
    }

    #[test]
    fn jsonpath_on_http_outputs() {
        let out = http(
            200,
            json!({"services": [{"name": "api", "up": true}, {"name": "db", "up": false}]}),
        );
        // The parsed JSON body, by target.
        let down = t(
            json!({"type": "jsonpath", "target": "body", "path": "$.services[*][?(@.up = false)].name", "expect": "db"}),
        );
        assert!(down.met(&out));
        // A body that is JSON text is decoded.
        let text = http(200, json!("{\"ok\": true}"));
        assert!(
            t(json!({"type": "jsonpath", "target": "body", "path": "$.ok", "expect": true}))
                .met(&text)
        );
        // Without a target the whole output, as in CTK: status and headers too.
        assert!(t(json!({"type": "jsonpath", "path": "$.status", "expect": 200})).met(&out));
        assert!(t(json!({"type": "jsonpath", "path": "$.headers[\"Content-Type\"]", "expect": "application/json"})).met(&out));
        // A body that is not JSON stays a string.
        let plain = http(200, json!("OK"));
        assert!(
            t(json!({"type": "jsonpath", "target": "body", "path": "$", "expect": "OK"}))
                .met(&plain)
        );
        let e = t(json!({"type": "jsonpath", "target": "bdy", "path": "$"}))
            .check(&plain)
            .unwrap_err();
        // The output's key order depends on serde_json's features.
        assert!(e.starts_with("the output has no 'bdy': {"), "{e}");
    }

    #[test]
    fn jsonpath_runaway_paths_fail_instead_of_exhausting_memory() {
        let deep = (0..120).fold(json!(1), |v, _| json!([v]));
        let tol = t(json!({"type": "jsonpath", "path": "$..*..*..*"}));
        match tol.check(&deep) {
            Err(e) => assert!(e.contains("more than 100000 values"), "{e}"),
            Ok(()) => panic!("met"),
        }
    }

    #[test]
    fn malformed_tolerances_are_refused() {
        assert!(refused(json!([5, 1])).contains("reversed"));
        assert!(refused(json!([])).contains("never met"));
        assert!(refused(json!(["OK", "ALARM"])).contains("use a regex tolerance"));
        assert!(refused(json!({"type": "nope"})).contains("unknown tolerance type 'nope'"));
        assert_eq!(
            refused(json!({"type": 5})),
            "a tolerance's 'type' must be a string, found a number"
        );
        assert!(refused(json!({"range": [1, 2]})).contains("needs a 'type'"));
        assert!(refused(json!(1.5)).contains("whole number"));
        assert!(refused(json!(null)).contains("null"));
        assert!(refused(json!({"type": "range", "range": ["a", 2]})).contains("must be numbers"));
        assert!(refused(json!({"type": "range", "range": [1, 2, 3]})).contains("found 3 items"));
        assert!(refused(json!({"type": "range", "range": 5})).contains("found a number"));
        assert!(
            refused(json!({"type": "range", "range": [1, 2], "target": 3}))
                .contains("'target' must be a key name")
        );
        assert!(
            refused(json!({"type": "range", "range": [1, 2], "taget": "x"}))
                .contains("unknown key 'taget'")
        );
    }

    #[test]
    fn a_probe_tolerance_needs_a_provider_and_is_judged_by_the_engine() {
        assert_eq!(
            refused(json!({"type": "probe", "name": "p"})),
            "a 'probe' tolerance needs a 'provider' object"
        );
        let t = Tolerance::parse(
            &json!({"type": "probe", "name": "p", "provider": {"type": "http", "url": "http://x"}}),
        )
        .unwrap();
        assert_eq!(t.probe().unwrap()["url"], "http://x");
        // Without the engine it is never met.
        assert!(!t.met(&json!(true)));
    }

    #[test]
    fn malformed_regex_tolerances_are_refused() {
        assert_eq!(
            refused(json!({"type": "regex", "target": "stdout"})),
            "a 'regex' tolerance needs 'pattern': a regular expression"
        );
        assert_eq!(
            refused(json!({"type": "regex", "pattern": null})),
            "'pattern' must be a string (a regular expression), found null"
        );
        assert!(refused(json!({"type": "regex", "pattern": ""})).contains("'pattern' is empty"));
        let e = refused(json!({"type": "regex", "pattern": "[0-9"}));
        assert!(
            e.starts_with("'pattern' is not a valid regular expression: "),
            "{e}"
        );
        assert!(e.contains("of \"[0-9\""), "{e}");
        assert!(refused(json!({"type": "regex", "pattern": "(?<=a)b"})).contains("look-around"));
        assert!(
            refused(json!({"type": "regex", "pattern": "a", "target": ""}))
                .contains("'target' is empty")
        );
        assert!(
            refused(json!({"type": "regex", "pattern": "a", "patern": "b"}))
                .contains("unknown key 'patern'")
        );
        assert_eq!(
            refused(json!({"type": "regex", "pattern": "^${expected}$"})),
            "'pattern' uses '${expected}': configuration values are not substituted into tolerances yet"
        );
        // An escaped dollar before a repetition is not a reference.
        assert!(t(json!({"type": "regex", "pattern": r"^\${2}$"})).met(&json!("$$")));
    }

    #[test]
    fn malformed_jsonpath_tolerances_are_refused() {
        assert_eq!(
            refused(json!({"type": "jsonpath"})),
            "a 'jsonpath' tolerance needs 'path': a JSONPath such as $.items[*]"
        );
        assert!(refused(json!({"type": "jsonpath", "path": "  "})).contains("'path' is empty"));
        assert!(refused(json!({"type": "jsonpath", "path": 3})).contains("'path' must be a string"));
        assert!(
            refused(json!({"type": "jsonpath", "path": "$.a[?(@.b == 1)]"})).contains("not '=='")
        );
        assert_eq!(
            refused(json!({"type": "jsonpath", "path": "$.a", "count": -1})),
            "'count' must be a whole number ≥ 0, found -1"
        );
        assert!(
            refused(json!({"type": "jsonpath", "path": "$.a", "count": "2"}))
                .contains("found a string")
        );
        assert!(
            refused(json!({"type": "jsonpath", "path": "$.a", "count": 1.5})).contains("found 1.5")
        );
        assert!(
            refused(json!({"type": "jsonpath", "path": "$.a", "count": 1, "expect": 2}))
                .contains("not both")
        );
        assert!(
            refused(json!({"type": "jsonpath", "path": "$.a", "target": ["body"]}))
                .contains("found a list")
        );
        assert!(
            refused(json!({"type": "jsonpath", "path": "$.a", "expected": 1}))
                .contains("unknown key 'expected'")
        );
        // count: null is "no count", as in CTK.
        assert!(
            Tolerance::parse(&json!({"type": "jsonpath", "path": "$.a", "count": null})).is_ok()
        );
    }

    #[test]
    fn unvalidated_tolerances_from_a_state_fail_closed() {
        // A state document is deserialized without parse: shapes parse would
        // refuse must judge as not met, never panic.
        for raw in [
            json!({"type": "regex", "pattern": "("}),
            json!({"type": "jsonpath", "path": "nope"}),
            json!({"type": "range", "range": [1]}),
            json!({"type": "probe"}),
            json!({}),
            json!(null),
            json!([]),
        ] {
            let tol: Tolerance = serde_json::from_value(raw).unwrap();
            assert!(!tol.met(&json!({"status": 200, "body": "x"})));
            assert!(!tol.met(&json!(1)));
        }
    }
}
