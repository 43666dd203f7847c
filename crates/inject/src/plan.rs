//! A validated configuration compiled for the hot path: durations in
//! milliseconds, regexes built once, disabled modes dropped. Deciding what
//! to inject for one invocation reads it and rolls the dice; the event's
//! JSON is made only when a mode that fired has match rules.

use crate::config::{FaultConfig, MatchRule, Operator};
use crate::dice::{between, fires, Dice};
use crate::response::FaultResponse;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Latency never runs into the deadline closer than this: the handler
/// still has to run and the runtime to post its response.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(100);

/// What a configuration amounts to.
pub(crate) enum Compiled {
    Active(Arc<Plan>),
    /// Nothing to inject, and why (logged once).
    Off(String),
}

/// A configuration compiled for deciding invocations: what
/// [`Injector::current`](crate::Injector::current) hands out.
pub struct Plan {
    expires_at: Option<SystemTime>,
    latency: Option<Gate<(u64, u64)>>,
    timeout: Option<Gate<u64>>,
    status: Option<Gate<u16>>,
    exception: Option<Gate<String>>,
    /// For the log: what is active.
    pub(crate) summary: String,
    expiry_logged: AtomicBool,
}

struct Gate<P> {
    percentage: f64,
    rules: Vec<Rule>,
    params: P,
}

struct Rule {
    path: Vec<String>,
    test: Test,
}

enum Test {
    Eq(Value),
    Exists,
    StartsWith(String),
    Regex(regex_lite::Regex),
    /// A regex that did not compile (validate() prevents it): never holds.
    Never,
}

/// One invocation's faults, in failure-lambda's order: wait, then answer
/// a status, or fail, or call the handler.
#[derive(Debug, PartialEq)]
pub struct Decision<R> {
    /// Sleep this long first (already capped below the deadline).
    pub delay: Option<Duration>,
    pub outcome: Outcome<R>,
}

#[derive(Debug, PartialEq)]
pub enum Outcome<R> {
    /// Run the handler.
    Handler,
    /// Answer this instead of the handler (the statuscode mode).
    Respond(R),
    /// Fail with an `InjectedFault` error carrying this message.
    Raise(String),
}

/// Deadlines before this (2001-09-09) are not wall-clock times: unknown.
/// `Context::default()` has 0, and `cargo lambda watch` sends a constant
/// 600000 (ten minutes, as a duration); taken as times they would cap every
/// delay at zero.
pub(crate) const PLAUSIBLE_DEADLINE_MS: u64 = 1_000_000_000_000;

/// Per-call inputs from a front end.
pub(crate) struct Roll<'a, F> {
    /// Makes the event's JSON (called at most once, only for match rules).
    pub event: F,
    /// The invocation's deadline (`Context::deadline`, ms since the epoch;
    /// unknown when below [`PLAUSIBLE_DEADLINE_MS`]).
    pub deadline_ms: u64,
    pub now: SystemTime,
    pub dice: &'a dyn Dice,
    /// Set once the "response type cannot carry a status" note is logged.
    pub status_note: &'a AtomicBool,
}

impl Compiled {
    /// `config` must have passed `validate()`.
    pub fn new(config: &FaultConfig, now: SystemTime) -> Compiled {
        let expires_at = config.expires_at.map(SystemTime::from);
        if let (Some(at), Some(when)) = (config.expires_at, expires_at) {
            if when <= now {
                return Compiled::Off(format!("configuration expired at {at}"));
            }
        }
        let mut summary = Vec::new();
        let latency = config.latency.as_ref().filter(|f| f.enabled).map(|f| {
            let (min, max) = (f.params.min_latency as u64, f.params.max_latency as u64);
            summary.push(format!("latency {min}-{max} ms at {}%", f.percentage));
            gate(f.percentage, &f.matches, (min, max))
        });
        let timeout = config.timeout.as_ref().filter(|f| f.enabled).map(|f| {
            let buffer = f.params.timeout_buffer_ms as u64;
            summary.push(format!("timeout (buffer {buffer} ms) at {}%", f.percentage));
            gate(f.percentage, &f.matches, buffer)
        });
        let status = config.statuscode.as_ref().filter(|f| f.enabled).map(|f| {
            // validate() keeps it in 100..=599.
            let code = u16::try_from(f.params.status_code).unwrap_or(500);
            summary.push(format!("statuscode {code} at {}%", f.percentage));
            gate(f.percentage, &f.matches, code)
        });
        let exception = config.exception.as_ref().filter(|f| f.enabled).map(|f| {
            summary.push(format!("exception at {}%", f.percentage));
            gate(f.percentage, &f.matches, f.params.exception_msg.clone())
        });
        if !config.ignored.is_empty() {
            summary.push(format!(
                "not injected by this layer: {}",
                config.ignored.join(", ")
            ));
        }
        if latency.is_none() && timeout.is_none() && status.is_none() && exception.is_none() {
            return Compiled::Off(match summary.is_empty() {
                true => "no failure mode enabled".to_string(),
                false => format!(
                    "no injectable failure mode enabled ({})",
                    summary.join("; ")
                ),
            });
        }
        if let Some(at) = config.expires_at {
            summary.push(format!("until {at}"));
        }
        Compiled::Active(Arc::new(Plan {
            expires_at,
            latency,
            timeout,
            status,
            exception,
            summary: summary.join("; "),
            expiry_logged: AtomicBool::new(false),
        }))
    }
}

fn gate<P>(percentage: f64, rules: &[MatchRule], params: P) -> Gate<P> {
    Gate {
        percentage,
        rules: rules.iter().map(Rule::new).collect(),
        params,
    }
}

impl Rule {
    fn new(rule: &MatchRule) -> Rule {
        let text = rule.value.as_str().unwrap_or_default();
        let test = match rule.operator {
            Operator::Eq => Test::Eq(rule.value.clone()),
            Operator::Exists => Test::Exists,
            Operator::StartsWith => Test::StartsWith(text.to_string()),
            Operator::Regex => regex_lite::Regex::new(text).map_or(Test::Never, Test::Regex),
        };
        Rule {
            path: rule.path.split('.').map(str::to_string).collect(),
            test,
        }
    }

    fn holds(&self, event: &Value) -> bool {
        let Some(actual) = lookup(event, &self.path).filter(|v| !v.is_null()) else {
            return false;
        };
        match &self.test {
            Test::Exists => true,
            Test::Eq(Value::String(s)) => text(actual) == s.as_str(),
            Test::Eq(expected) => match (expected.as_f64(), actual.as_f64()) {
                (Some(a), Some(b)) => a == b,
                _ => expected == actual,
            },
            Test::StartsWith(prefix) => text(actual).starts_with(prefix.as_str()),
            Test::Regex(re) => re.is_match(&text(actual)),
            Test::Never => false,
        }
    }
}

fn lookup<'v>(event: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(event, |v, key| match v {
        Value::Object(obj) => obj.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// The text an event value is compared as: strings as they are, anything
/// else as its JSON.
fn text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

impl Plan {
    pub(crate) fn decide<R: FaultResponse, F: FnOnce() -> Option<Value>>(
        &self,
        roll: Roll<'_, F>,
    ) -> Decision<R> {
        let mut decision = Decision {
            delay: None,
            outcome: Outcome::Handler,
        };
        if self.expires_at.is_some_and(|at| at <= roll.now) {
            if !self.expiry_logged.swap(true, Ordering::Relaxed) {
                tracing::info!(
                    fault_injection = "off",
                    "fault configuration expired; injecting nothing"
                );
            }
            return decision;
        }
        // The event as JSON, made once and only if a rule needs it.
        let mut make = Some(roll.event);
        let mut event: Option<Option<Value>> = None;
        let mut passes = |percentage: f64, rules: &[Rule]| {
            if !fires(percentage, roll.dice) {
                return false;
            }
            if rules.is_empty() {
                return true;
            }
            let json = event.get_or_insert_with(|| make.take().and_then(|f| f()));
            // An event that is not JSON matches nothing.
            json.as_ref()
                .is_some_and(|json| rules.iter().all(|r| r.holds(json)))
        };
        let remaining = (roll.deadline_ms > PLAUSIBLE_DEADLINE_MS).then(|| {
            let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(roll.deadline_ms);
            deadline.duration_since(roll.now).unwrap_or_default()
        });

        let mut delay = Duration::ZERO;
        if let Some(g) = &self.latency {
            if passes(g.percentage, &g.rules) {
                let (min, max) = g.params;
                let mut ms = Duration::from_millis(between(min, max, roll.dice));
                if let Some(left) = remaining {
                    ms = ms.min(left.saturating_sub(DEADLINE_MARGIN));
                }
                tracing::info!(
                    fault = "latency",
                    delay_ms = ms.as_millis() as u64,
                    "injecting latency"
                );
                delay = ms;
            }
        }
        if let Some(g) = &self.timeout {
            if passes(g.percentage, &g.rules) {
                match remaining {
                    Some(left) => {
                        let until = left.saturating_sub(Duration::from_millis(g.params));
                        tracing::info!(
                            fault = "timeout",
                            delay_ms = until.as_millis() as u64,
                            "injecting timeout: sleeping until the buffer before the deadline"
                        );
                        delay = delay.max(until);
                    }
                    None => {
                        tracing::info!(fault = "timeout", "no deadline known; timeout not injected")
                    }
                }
            }
        }
        if !delay.is_zero() {
            decision.delay = Some(delay);
        }
        if let Some(g) = &self.status {
            if passes(g.percentage, &g.rules) {
                match R::injected_status(g.params) {
                    Some(response) => {
                        tracing::info!(
                            fault = "statuscode",
                            status_code = g.params,
                            "injecting status code"
                        );
                        decision.outcome = Outcome::Respond(response);
                        return decision;
                    }
                    None if !roll.status_note.swap(true, Ordering::Relaxed) => tracing::warn!(
                        fault = "statuscode",
                        response_type = std::any::type_name::<R>(),
                        "the handler's response type cannot carry a status code; \
                         statuscode is not injected"
                    ),
                    None => {}
                }
            }
        }
        if let Some(g) = &self.exception {
            if passes(g.percentage, &g.rules) {
                tracing::info!(fault = "exception", message = %g.params, "injecting exception");
                decision.outcome = Outcome::Raise(g.params.clone());
            }
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(path: &str, operator: Operator, value: Value) -> Rule {
        Rule::new(&MatchRule {
            path: path.into(),
            operator,
            value,
        })
    }

    #[test]
    fn match_operators() {
        let event = json!({"requestContext": {"http": {"method": "POST"}},
                           "headers": {"x-chaos": "yes", "n": 5},
                           "Records": [{"body": "error: disk"}], "nil": null});
        assert!(rule("requestContext.http.method", Operator::Eq, json!("POST")).holds(&event));
        assert!(!rule("requestContext.http.method", Operator::Eq, json!("GET")).holds(&event));
        // A string value compares with the text of numbers, like failure-lambda.
        assert!(rule("headers.n", Operator::Eq, json!("5")).holds(&event));
        assert!(rule("headers.n", Operator::Eq, json!(5.0)).holds(&event));
        assert!(rule("headers.x-chaos", Operator::Exists, Value::Null).holds(&event));
        assert!(!rule("headers.absent", Operator::Exists, Value::Null).holds(&event));
        assert!(!rule("nil", Operator::Exists, Value::Null).holds(&event));
        assert!(rule("Records.0.body", Operator::StartsWith, json!("error")).holds(&event));
        assert!(!rule("Records.1.body", Operator::StartsWith, json!("error")).holds(&event));
        assert!(rule("Records.0.body", Operator::Regex, json!("^err.*d[a-z]+$")).holds(&event));
        assert!(!rule("Records.0.body", Operator::Regex, json!("^disk")).holds(&event));
        assert!(!rule("headers.x-chaos.deeper", Operator::Eq, json!("yes")).holds(&event));
    }
}
