//! Chaos Toolkit tolerances: does a probe's output stay within what the
//! steady-state hypothesis allows?

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
            Value::Number(n) => return Err(format!("a number tolerance must be a whole number, found {n}")),
            Value::Array(items) => {
                if items.len() != 2 {
                    return Err(format!("a list tolerance needs exactly two bounds [low, high], found {} items", items.len()));
                }
                bounds(items)?;
            }
            Value::Object(o) => match o.get("type").and_then(Value::as_str) {
                Some("range") => {
                    let r = o
                        .get("range")
                        .and_then(Value::as_array)
                        .ok_or("a 'range' tolerance needs 'range': [low, high]")?;
                    if r.len() != 2 {
                        return Err("a 'range' tolerance needs 'range': [low, high]".into());
                    }
                    bounds(r)?;
                    if let Some(t) = o.get("target") {
                        if !t.is_string() {
                            return Err("'target' must be a key name".into());
                        }
                    }
                }
                Some(t @ ("regex" | "jsonpath" | "probe")) => {
                    return Err(format!("tolerance type '{t}' is not supported yet (supported: true/false, a number, a string, [low, high], range)"))
                }
                Some(t) => return Err(format!("unknown tolerance type '{t}' (supported: range)")),
                None => return Err("an object tolerance needs a 'type'".into()),
            },
            Value::Null => return Err("a tolerance must not be null".into()),
        }
        Ok(Tolerance(v.clone()))
    }

    pub fn as_value(&self) -> &Value {
        &self.0
    }

    /// Judge `output`. Follows chaostoolkit-lib: a bool or string compares
    /// for equality; a number compares for equality, against `status` when
    /// the output is an http/process result; `[a, b]` is an inclusive range,
    /// but membership when the output carries a `status`.
    pub fn met(&self, output: &Value) -> bool {
        let status = output.get("status");
        match &self.0 {
            Value::Bool(b) => output.as_bool() == Some(*b),
            Value::String(s) => output.as_str() == Some(s.as_str()),
            Value::Number(n) => match status {
                Some(st) => numbers_equal(st, &Value::Number(n.clone())),
                None => numbers_equal(output, &Value::Number(n.clone())),
            },
            Value::Array(items) => match status {
                Some(st) => items.iter().any(|i| numbers_equal(st, i)),
                None => in_range(output, items),
            },
            Value::Object(o) => {
                let target = match o.get("target").and_then(Value::as_str) {
                    Some(key) => output.get(key),
                    None => Some(output),
                };
                match (o.get("range").and_then(Value::as_array), target) {
                    (Some(r), Some(t)) => in_range(t, r),
                    _ => false,
                }
            }
            Value::Null => false,
        }
    }
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

fn numbers_equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn in_range(v: &Value, range: &[Value]) -> bool {
    match (v.as_f64(), bounds(range)) {
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
        assert!(!t(json!(3)).met(&json!(2)));
    }

    #[test]
    fn list_is_a_range_or_status_membership() {
        assert!(t(json!([1, 5])).met(&json!(5)));
        assert!(!t(json!([1, 5])).met(&json!(6)));
        assert!(t(json!([200, 204])).met(&json!({"status": 204})));
        // Membership, not range, for statuses: 201 is between but not listed.
        assert!(!t(json!([200, 204])).met(&json!({"status": 201})));
    }

    #[test]
    fn range_object_reads_its_target() {
        let tol = t(json!({"type": "range", "range": [0, 0.5], "target": "ratio"}));
        assert!(tol.met(&json!({"ratio": 0.25})));
        assert!(!tol.met(&json!({"ratio": 0.75})));
        assert!(!tol.met(&json!({"other": 0.25})));
    }

    #[test]
    fn string_tolerance_is_equality() {
        assert!(t(json!("OK")).met(&json!("OK")));
        assert!(!t(json!("OK")).met(&json!("ALARM")));
    }

    #[test]
    fn malformed_tolerances_are_refused() {
        assert!(Tolerance::parse(&json!([5, 1]))
            .unwrap_err()
            .contains("reversed"));
        assert!(Tolerance::parse(&json!([1])).is_err());
        assert!(Tolerance::parse(&json!({"type": "nope"}))
            .unwrap_err()
            .contains("unknown tolerance type 'nope'"));
        assert!(Tolerance::parse(&json!(1.5)).is_err());
        assert!(Tolerance::parse(&json!(null)).is_err());
        assert!(Tolerance::parse(&json!({"type": "range", "range": ["a", 2]})).is_err());
    }
}
