//! The attack as written in an experiment, the limits of the deployment,
//! and validation: nothing is sent until an attack has passed it.

use crate::client::{check_url, CheckedUrl};
use crate::error::LoadError;
use crate::template::{prepare, Expect, Parts, Prepared, StatusSet, Template};
use http::Method;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Most stages an attack may have (keeps the report bounded).
pub const MAX_STAGES: usize = 16;
/// Most request templates an attack may have (keeps the report bounded).
pub const MAX_REQUESTS: usize = 16;
/// Longest request timeout: 60 s (the latency histograms' range).
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// Default request timeout: 5 s.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;

/// An attack: the `arguments` of a load activity.
///
/// ```json
/// {"target": "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
///  "stages": [{"users": 10, "duration_s": 120}, {"users": 50, "duration_s": 180},
///             {"users": 100, "duration_s": 240}],
///  "requests": [
///    {"name": "invalid-token", "template": "invalid_token", "path": "/moderate",
///     "body": {"image_url": "https://example.com/a.jpg"}},
///    {"name": "malformed", "template": "malformed_json", "path": "/moderate",
///     "headers": {"Authorization": "Bearer ${api_token}"}}],
///  "stop": {"max_violations": 50, "max_5xx": 50},
///  "timeout_ms": 5000,
///  "max_rps": 500}
/// ```
///
/// Stages run one after the other; during a stage `users` virtual users
/// each loop "send, read the whole response, check it, repeat" for
/// `duration_s`. User *i* sends `requests[i % requests.len()]`
/// (round-robin). Every response is checked against its request's
/// `expect`; a status outside it, and any 5xx, is a *violation*.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackSpec {
    /// Base URL, `http(s)://host[:port][/base-path]`; its host must be on
    /// the deployment's allow-list. Request paths are appended to the base
    /// path.
    pub target: String,
    /// The load stages, in order (1 to 16).
    pub stages: Vec<Stage>,
    /// The request templates users send (1 to 16).
    pub requests: Vec<RequestSpec>,
    /// When to stop before the stages are over.
    #[serde(default, skip_serializing_if = "StopRules::is_empty")]
    pub stop: StopRules,
    /// Per-request timeout, connecting included, in milliseconds (default
    /// 5000, at most 60000). A timeout counts as an error, not a violation.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Cap on requests per second across all users (a token bucket);
    /// defaults to, and may not exceed, the deployment's `Limits::max_rps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rps: Option<f64>,
    /// Check the target's TLS certificate (https only; default true).
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub verify_tls: bool,
    /// Set by [`crate::plan_shares`]: this spec is one share of a larger
    /// attack. Not written by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<Share>,
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

fn default_true() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// One load stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Concurrent users (at least 1, at most `Limits::max_users`).
    pub users: Option<u32>,
    /// How long the stage lasts, in seconds (fractions allowed; more than
    /// 0, at most `Limits::max_stage_duration`).
    pub duration_s: Option<f64>,
    /// Index of this invocation's first user, set by [`crate::plan_shares`]
    /// so that round-robin assignment stays global across shares.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub first_user: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One kind of request the users send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// Name in reports (default: the template's name); unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `malformed_json`, `wrong_content_type`, `missing_token`,
    /// `invalid_token`, `expired_token`, `oversized_body` or `custom`.
    pub template: String,
    /// HTTP method (default POST; GET for `custom`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Path and query appended to the target's base path (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Headers sent with every request of this template (e.g. a valid
    /// `Authorization` so a malformed payload gets past authentication);
    /// the auth templates replace `Authorization`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The well-formed body the template starts from: a string is sent as
    /// is, anything else as JSON. Default `{}` (`custom`: empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// `invalid_token`: the bearer token sent (default
    /// `turbulence-invalid-token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `wrong_content_type`: the content type sent (default `text/plain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `oversized_body`: body size in bytes (default 1 MiB + 1, at most 8 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Accepted statuses: codes (`401`) or classes (`"4xx"`); 5xx is never
    /// accepted. Default per template: 401/403 for the token templates,
    /// 400 for `malformed_json`, 400/415 for `wrong_content_type`, 400/413
    /// for `oversized_body`, `"2xx"` for `custom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Vec<Expect>>,
}

/// Early stop thresholds; each is off when absent. The attack stops as
/// soon as a count goes *over* its maximum.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopRules {
    /// Most violations (unexpected statuses, 5xx included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_violations: Option<u64>,
    /// Most 5xx responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_5xx: Option<u64>,
    /// Most transport errors (connect, TLS, timeout, I/O, protocol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_errors: Option<u64>,
}

impl StopRules {
    fn is_empty(&self) -> bool {
        *self == StopRules::default()
    }
}

/// Where a share sits in a fanned-out attack (see [`crate::plan_shares`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Share {
    /// Shares of the same wave run concurrently; waves run in order.
    pub wave: u32,
    /// This share's index in its wave.
    pub index: u32,
    /// How many shares the wave has.
    pub of: u32,
    /// Index, in the whole attack, of this share's first stage.
    pub first_stage: u32,
}

/// What the deployment allows, whatever the experiment says.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Hosts that may be attacked: exact names/addresses or `*.suffix`.
    pub allowed_hosts: Vec<String>,
    /// Most concurrent users in a stage (default 200).
    pub max_users: u32,
    /// Hard cap on requests per second (default 1000).
    pub max_rps: f64,
    /// Longest stage (default 14 min: one stage must fit one Lambda
    /// invocation, whose limit is 15 min).
    pub max_stage_duration: Duration,
    /// Most requests an attack may send: `max_rps × total duration` must
    /// not exceed it (default 1,000,000).
    pub max_total_requests: u64,
    /// Loopback and link-local targets allowed (the local stack only: see
    /// [`crate::reach`]). Default: never.
    pub allow_loopback: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            allowed_hosts: Vec::new(),
            max_users: 200,
            max_rps: 1000.0,
            max_stage_duration: Duration::from_secs(14 * 60),
            max_total_requests: 1_000_000,
            allow_loopback: false,
        }
    }
}

impl AttackSpec {
    /// Reads a spec from JSON (an activity's `arguments`).
    pub fn from_json(value: serde_json::Value) -> Result<AttackSpec, LoadError> {
        serde_json::from_value(value).map_err(|e| LoadError::Spec {
            what: "attack",
            message: e.to_string(),
        })
    }

    /// Checks the spec against `limits` and prepares every request. Nothing
    /// is sent: an attack that fails here never starts.
    pub fn validate(&self, limits: &Limits) -> Result<ValidAttack, LoadError> {
        let target = check_url("target", &self.target, limits)?;
        if target.path_and_query.contains('?') {
            return Err(LoadError::invalid(
                "target",
                json_str(&self.target),
                "the target cannot have a query string; put it in each request's path",
            ));
        }

        if self.stages.is_empty() || self.stages.len() > MAX_STAGES {
            return Err(LoadError::invalid(
                "stages",
                format!("<{} stages>", self.stages.len()),
                format!("an attack needs 1 to {MAX_STAGES} stages"),
            ));
        }
        let mut stages = Vec::with_capacity(self.stages.len());
        for (i, stage) in self.stages.iter().enumerate() {
            stages.push(check_stage(i, stage, limits)?);
        }

        if self.requests.is_empty() || self.requests.len() > MAX_REQUESTS {
            return Err(LoadError::invalid(
                "requests",
                format!("<{} requests>", self.requests.len()),
                format!("an attack needs 1 to {MAX_REQUESTS} requests"),
            ));
        }
        let base_path = target.path_and_query.trim_end_matches('/');
        let mut requests = Vec::with_capacity(self.requests.len());
        let mut prepared = Vec::with_capacity(self.requests.len());
        for (i, request) in self.requests.iter().enumerate() {
            let (normal, ready) = check_request(i, request, base_path, target.authority.as_str())?;
            if let Some(j) = requests
                .iter()
                .position(|r: &RequestSpec| r.name == normal.name)
            {
                return Err(LoadError::invalid(
                    format!("requests[{i}].name"),
                    json_str(normal.name.as_deref().unwrap_or_default()),
                    format!("requests[{j}] has the same name; names must be unique"),
                ));
            }
            requests.push(normal);
            prepared.push(ready);
        }

        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            return Err(LoadError::invalid(
                "timeout_ms",
                self.timeout_ms,
                format!("must be between 1 and {MAX_TIMEOUT_MS}"),
            ));
        }

        let max_rps = self.max_rps.unwrap_or(limits.max_rps);
        if !max_rps.is_finite() || max_rps <= 0.0 {
            return Err(LoadError::invalid(
                "max_rps",
                max_rps,
                "must be a positive number",
            ));
        }
        if max_rps > limits.max_rps {
            return Err(LoadError::invalid(
                "max_rps",
                max_rps,
                format!("over this deployment's cap of {}", limits.max_rps),
            ));
        }

        let total_s: f64 = stages.iter().map(|s| s.duration_s.unwrap_or(0.0)).sum();
        let worst_case = (max_rps * total_s).ceil();
        if worst_case > limits.max_total_requests as f64 {
            return Err(LoadError::invalid(
                "max_rps",
                max_rps,
                format!(
                    "{max_rps} rps for {total_s} s could send {worst_case} requests, \
                     over this deployment's cap of {}; lower max_rps or shorten the stages",
                    limits.max_total_requests
                ),
            ));
        }

        let spec = AttackSpec {
            target: self.target.clone(),
            stages,
            requests,
            stop: self.stop.clone(),
            timeout_ms: self.timeout_ms,
            max_rps: Some(max_rps),
            verify_tls: self.verify_tls,
            share: self.share,
        };
        Ok(ValidAttack {
            spec,
            target,
            requests: prepared.into(),
            max_rps,
            limits: limits.clone(),
        })
    }
}

fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn check_stage(i: usize, stage: &Stage, limits: &Limits) -> Result<Stage, LoadError> {
    let users = stage.users.ok_or_else(|| {
        LoadError::invalid(
            format!("stages[{i}].users"),
            "null",
            "missing; how many users?",
        )
    })?;
    if users == 0 {
        return Err(LoadError::invalid(
            format!("stages[{i}].users"),
            users,
            "a stage needs at least 1 user",
        ));
    }
    if users > limits.max_users {
        return Err(LoadError::invalid(
            format!("stages[{i}].users"),
            users,
            format!("over this deployment's cap of {} users", limits.max_users),
        ));
    }
    let duration = stage.duration_s.ok_or_else(|| {
        LoadError::invalid(
            format!("stages[{i}].duration_s"),
            "null",
            "missing; how many seconds?",
        )
    })?;
    if !duration.is_finite() || duration <= 0.0 {
        return Err(LoadError::invalid(
            format!("stages[{i}].duration_s"),
            duration,
            "must be more than 0 seconds",
        ));
    }
    let max = limits.max_stage_duration.as_secs_f64();
    if duration > max {
        return Err(LoadError::invalid(
            format!("stages[{i}].duration_s"),
            duration,
            format!("over the longest stage allowed ({max} s: one stage must fit one invocation); split it"),
        ));
    }
    Ok(stage.clone())
}

fn check_request(
    i: usize,
    r: &RequestSpec,
    base_path: &str,
    host: &str,
) -> Result<(RequestSpec, Prepared), LoadError> {
    let field = format!("requests[{i}]");
    let template = Template::parse(&r.template).ok_or_else(|| {
        let known: Vec<&str> = Template::ALL.iter().map(|t| t.as_str()).collect();
        LoadError::invalid(
            format!("{field}.template"),
            json_str(&r.template),
            format!("unknown template; one of {}", known.join(", ")),
        )
    })?;
    let name = r.name.clone().unwrap_or_else(|| template.to_string());
    if name.is_empty() || name.len() > 64 {
        return Err(LoadError::invalid(
            format!("{field}.name"),
            json_str(&name),
            "must be 1 to 64 characters",
        ));
    }
    let method_text = r
        .method
        .clone()
        .unwrap_or_else(|| template.default_method().to_string())
        .to_ascii_uppercase();
    let method = Method::from_bytes(method_text.as_bytes()).map_err(|_| {
        LoadError::invalid(
            format!("{field}.method"),
            json_str(&method_text),
            "not an HTTP method",
        )
    })?;
    let path = r.path.clone().unwrap_or_else(|| "/".to_string());
    if !path.starts_with('/') {
        return Err(LoadError::invalid(
            format!("{field}.path"),
            json_str(&path),
            "must start with /",
        ));
    }
    let expect = r
        .expect
        .clone()
        .unwrap_or_else(|| template.default_expect());
    let expect_set = StatusSet::from_expect(&format!("{field}.expect"), &expect)?;
    for (key, set) in [
        (
            "token",
            r.token.is_some() && template != Template::InvalidToken,
        ),
        (
            "content_type",
            r.content_type.is_some() && template != Template::WrongContentType,
        ),
        (
            "size_bytes",
            r.size_bytes.is_some() && template != Template::OversizedBody,
        ),
    ] {
        if set {
            return Err(LoadError::invalid(
                format!("{field}.{key}"),
                "…",
                format!("not used by template {template}; remove it"),
            ));
        }
    }
    let prepared = prepare(Parts {
        field: &field,
        name: name.clone(),
        template,
        method,
        path_and_query: format!("{base_path}{path}"),
        host,
        headers: &r.headers,
        body: r.body.as_ref(),
        token: r.token.as_deref(),
        content_type: r.content_type.as_deref(),
        size_bytes: r.size_bytes,
        expect: expect.clone(),
        expect_set,
    })?;
    let normal = RequestSpec {
        name: Some(name),
        template: template.to_string(),
        method: Some(method_text),
        path: Some(path),
        expect: Some(expect),
        ..r.clone()
    };
    Ok((normal, prepared))
}

/// An attack that passed validation, with its requests prepared. Run it
/// with [`ValidAttack::run`](crate::ValidAttack::run).
#[derive(Debug, Clone)]
pub struct ValidAttack {
    pub(crate) spec: AttackSpec,
    pub(crate) target: CheckedUrl,
    pub(crate) requests: Arc<[Prepared]>,
    pub(crate) max_rps: f64,
    pub(crate) limits: Limits,
}

impl ValidAttack {
    /// The spec with every default filled in (names, methods, paths,
    /// expectations, `max_rps`).
    pub fn spec(&self) -> &AttackSpec {
        &self.spec
    }

    /// The limits it was validated against.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The sum of the stage durations.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(
            self.spec
                .stages
                .iter()
                .map(|s| s.duration_s.unwrap_or(0.0))
                .sum(),
        )
    }

    /// The largest stage's users.
    pub fn peak_users(&self) -> u32 {
        self.spec
            .stages
            .iter()
            .map(|s| s.users.unwrap_or(0))
            .max()
            .unwrap_or(0)
    }

    /// The effective rate cap.
    pub fn max_rps(&self) -> f64 {
        self.max_rps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> Limits {
        Limits {
            allowed_hosts: vec![
                "127.0.0.1".into(),
                "*.execute-api.eu-west-1.amazonaws.com".into(),
            ],
            // The local stack's opt-out: the target is on loopback.
            allow_loopback: true,
            ..Limits::default()
        }
    }

    fn base() -> serde_json::Value {
        json!({
            "target": "http://127.0.0.1:8080/prod/",
            "stages": [{"users": 10, "duration_s": 120}, {"users": 50, "duration_s": 180}, {"users": 100, "duration_s": 240}],
            "requests": [
                {"name": "invalid-token", "template": "invalid_token", "method": "post", "path": "/moderate", "expect": [401, 403]},
                {"name": "malformed", "template": "malformed_json", "path": "/moderate?v=1"}
            ],
            "stop": {"max_violations": 50, "max_5xx": 50},
            "timeout_ms": 5000,
            "max_rps": 500
        })
    }

    fn error_of(edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut spec = base();
        edit(&mut spec);
        match AttackSpec::from_json(spec) {
            Err(e) => e.to_string(),
            Ok(spec) => spec.validate(&limits()).unwrap_err().to_string(),
        }
    }

    #[test]
    fn the_write_up_attack_is_valid_and_normalised() {
        let attack = AttackSpec::from_json(base())
            .unwrap()
            .validate(&limits())
            .unwrap();
        assert_eq!(attack.duration(), Duration::from_secs(540));
        assert_eq!(attack.peak_users(), 100);
        let spec = attack.spec();
        assert_eq!(spec.requests[0].method.as_deref(), Some("POST"));
        assert_eq!(spec.requests[1].expect, Some(vec![Expect::Code(400)]));
        assert_eq!(attack.requests[0].uri, "/prod/moderate");
        assert_eq!(attack.requests[1].uri, "/prod/moderate?v=1");
        // A normalised spec round-trips and validates to the same thing.
        let again = AttackSpec::from_json(serde_json::to_value(spec).unwrap())
            .unwrap()
            .validate(&limits())
            .unwrap();
        assert_eq!(again.spec(), spec);
    }

    #[test]
    fn every_bad_field_is_named_with_its_value() {
        type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|s| s["target"] = json!("https://example.com")),
             "target: host `example.com` is not allow-listed (allowed: 127.0.0.1, *.execute-api.eu-west-1.amazonaws.com)"),
            (Box::new(|s| s["target"] = json!("ftp://127.0.0.1/")),
             "target = \"ftp://127.0.0.1/\": scheme `ftp` is not supported; use http:// or https://"),
            (Box::new(|s| s["target"] = json!("not a url")), "target = \"not a url\": not a URL"),
            (Box::new(|s| s["target"] = json!("http://127.0.0.1/?a=1")), "target = \"http://127.0.0.1/?a=1\": the target cannot have a query string"),
            (Box::new(|s| s["stages"] = json!([])), "stages = <0 stages>: an attack needs 1 to 16 stages"),
            (Box::new(|s| s["stages"][1]["duration_s"] = json!(0)), "stages[1].duration_s = 0: must be more than 0 seconds"),
            (Box::new(|s| { s["stages"][2].as_object_mut().unwrap().remove("duration_s"); }),
             "stages[2].duration_s = null: missing; how many seconds?"),
            (Box::new(|s| s["stages"][2]["duration_s"] = json!(900)),
             "stages[2].duration_s = 900: over the longest stage allowed (840 s"),
            (Box::new(|s| s["stages"][0]["users"] = json!(0)), "stages[0].users = 0: a stage needs at least 1 user"),
            (Box::new(|s| { s["stages"][0].as_object_mut().unwrap().remove("users"); }), "stages[0].users = null: missing"),
            (Box::new(|s| s["stages"][2]["users"] = json!(201)), "stages[2].users = 201: over this deployment's cap of 200 users"),
            (Box::new(|s| s["max_rps"] = json!(5000)), "max_rps = 5000: over this deployment's cap of 1000"),
            (Box::new(|s| s["max_rps"] = json!(0)), "max_rps = 0: must be a positive number"),
            (Box::new(|s| s["stages"] = json!([{"users": 1, "duration_s": 840}, {"users": 1, "duration_s": 840}, {"users": 1, "duration_s": 840}])),
             "max_rps = 500: 500 rps for 2520 s could send 1260000 requests, over this deployment's cap of 1000000"),
            (Box::new(|s| { s["stages"] = json!([{"users": 1, "duration_s": 840}, {"users": 1, "duration_s": 840}]); s["max_rps"] = json!(1000); }),
             "max_rps = 1000: 1000 rps for 1680 s could send 1680000 requests, over this deployment's cap of 1000000"),
            (Box::new(|s| s["requests"] = json!([])), "requests = <0 requests>: an attack needs 1 to 16 requests"),
            (Box::new(|s| s["requests"][1]["template"] = json!("sql_injection")),
             "requests[1].template = \"sql_injection\": unknown template; one of malformed_json, wrong_content_type, missing_token, invalid_token, expired_token, oversized_body, custom"),
            (Box::new(|s| s["requests"][0]["expect"] = json!([401, 500])),
             "requests[0].expect[1] = 500: a 5xx status is always a violation"),
            (Box::new(|s| s["requests"][0]["expect"] = json!([1000])), "requests[0].expect[0] = 1000: not an HTTP status code"),
            (Box::new(|s| s["requests"][0]["expect"] = json!([])), "requests[0].expect = []"),
            (Box::new(|s| s["requests"][1]["name"] = json!("invalid-token")),
             "requests[1].name = \"invalid-token\": requests[0] has the same name"),
            (Box::new(|s| s["requests"][1]["path"] = json!("moderate")), "requests[1].path = \"moderate\": must start with /"),
            (Box::new(|s| s["requests"][1]["method"] = json!("GE T")), "requests[1].method = \"GE T\": not an HTTP method"),
            (Box::new(|s| s["requests"][1]["headers"] = json!({"bad header": "x"})), "requests[1].headers.bad header = \"bad header\": not a valid header name"),
            (Box::new(|s| s["requests"][1]["size_bytes"] = json!(10)), "requests[1].size_bytes = …: not used by template malformed_json"),
            (Box::new(|s| s["requests"][1] = json!({"template": "oversized_body", "size_bytes": 100_000_000})),
             "requests[1].size_bytes = 100000000: must be between 16 and 8388608"),
            (Box::new(|s| s["timeout_ms"] = json!(0)), "timeout_ms = 0: must be between 1 and 60000"),
            (Box::new(|s| s["stagez"] = json!([])), "invalid attack: unknown field `stagez`"),
            (Box::new(|s| s["stages"][0]["users"] = json!(-1)), "invalid attack: invalid value: integer `-1`"),
        ];
        for (edit, expected) in cases {
            let err = error_of(edit);
            assert!(
                err.starts_with(expected),
                "expected `{expected}`, got `{err}`"
            );
        }
    }
}
