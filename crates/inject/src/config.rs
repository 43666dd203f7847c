//! The fault configuration: parse, upgrade, validate. Pure — no AWS, no
//! clock, no I/O — so the inject action can refuse a bad configuration
//! before it writes it, with the same code the layer uses to read it.
//!
//! failure-lambda 1.0's format is canonical:
//!
//! ```json
//! {"latency":    {"enabled": true, "percentage": 20, "min_latency": 100, "max_latency": 400,
//!                 "match": [{"path": "requestContext.http.method", "value": "POST"}]},
//!  "timeout":    {"enabled": false, "timeout_buffer_ms": 500},
//!  "statuscode": {"enabled": true, "percentage": 10, "status_code": 503},
//!  "exception":  {"enabled": false, "percentage": 5, "exception_msg": "boom"},
//!  "expires_at": "2026-11-25T21:00:00Z"}
//! ```
//!
//! failure-lambda 0.x (`isEnabled`, `failureMode`, `rate`...) and
//! chaos_lambda 0.3 (`is_enabled`, `fault_type`, `delay`...) are read and
//! upgraded to it. `corruption`, `diskspace` and `denylist` are accepted
//! and not injected: they are listed in [`FaultConfig::ignored`].
//! `expires_at` (RFC 3339) is Turbulence's: past it, nothing is injected.
//!
//! [`FaultConfig::parse`] checks the shape (JSON, types, known keys);
//! [`FaultConfig::validate`] checks the values (ranges, regexes). Both name
//! the field at fault, in the format the configuration was written in.

use serde_json::{Map, Value};
use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Lambda's longest timeout: no latency or buffer may exceed it.
pub const MAX_DELAY_MS: f64 = 900_000.0;
/// Longest regex accepted in a match rule.
pub const MAX_REGEX_LEN: usize = 1024;
/// failure-lambda 1.0's defaults.
pub const DEFAULT_STATUS_CODE: i64 = 500;
pub const DEFAULT_EXCEPTION_MSG: &str = "Injected exception";

/// The canonical mode names, in failure-lambda 1.0's order.
const MODES: [&str; 7] = [
    "latency",
    "timeout",
    "diskspace",
    "denylist",
    "statuscode",
    "exception",
    "corruption",
];
/// Modes read but never injected (they need OS hooks or response rewriting).
const IGNORED_MODES: [&str; 3] = ["diskspace", "denylist", "corruption"];

/// Which format a configuration was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// failure-lambda 1.0: one object per mode.
    Canonical,
    /// failure-lambda 0.x: `isEnabled`, `failureMode`, `rate` 0..1.
    FailureLambda0,
    /// chaos_lambda 0.3: `is_enabled`, `fault_type`, `rate` 0..1.
    ChaosLambda,
}

/// A parsed configuration, upgraded to failure-lambda 1.0's model. A mode
/// absent from the source is `None`; present but disabled is `enabled: false`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    pub format: Format,
    pub latency: Option<Flag<Latency>>,
    pub timeout: Option<Flag<Timeout>>,
    pub statuscode: Option<Flag<StatusCode>>,
    pub exception: Option<Flag<Exception>>,
    /// Enabled modes this crate accepts but does not inject.
    pub ignored: Vec<&'static str>,
    pub expires_at: Option<OffsetDateTime>,
}

/// One failure mode: on/off, its probability, its event conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag<P> {
    pub enabled: bool,
    /// Probability per invocation, 0–100 (default 100).
    pub percentage: f64,
    /// All must hold for the mode to fire (`match` in JSON).
    pub matches: Vec<MatchRule>,
    pub params: P,
}

/// Added delay, uniformly random between the two bounds (ms).
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    pub min_latency: f64,
    pub max_latency: f64,
}

/// Sleep until `timeout_buffer_ms` before the invocation's deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeout {
    pub timeout_buffer_ms: f64,
}

/// Answer this status without calling the handler.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusCode {
    pub status_code: i64,
}

/// Fail the invocation with this message (error type `InjectedFault`).
#[derive(Debug, Clone, PartialEq)]
pub struct Exception {
    pub exception_msg: String,
}

/// A condition on the event: the value at a dot-separated `path`
/// (array elements by index) compared with `value`.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchRule {
    pub path: String,
    pub operator: Operator,
    /// `Null` for `exists`.
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// A string `value` equals the text of the event's value (`5` matches
    /// `"5"`, as in failure-lambda); any other `value` equals it as JSON.
    Eq,
    /// The path is present and not null.
    Exists,
    /// The text of the event's value starts with `value`.
    StartsWith,
    /// The text of the event's value matches the regex `value` (regex-lite:
    /// linear time, no look-around or backreferences).
    Regex,
}

impl Operator {
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "eq",
            Operator::Exists => "exists",
            Operator::StartsWith => "startsWith",
            Operator::Regex => "regex",
        }
    }
}

/// What is wrong with a configuration, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The field as written in the source (`latency.percentage`, `rate`,
    /// `statuscode.match[0].value`); empty for the document as a whole.
    pub field: String,
    pub message: String,
}

impl ConfigError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

type Result<T> = std::result::Result<T, ConfigError>;

impl FaultConfig {
    /// Nothing configured: injects nothing.
    pub fn empty() -> Self {
        FaultConfig {
            format: Format::Canonical,
            latency: None,
            timeout: None,
            statuscode: None,
            exception: None,
            ignored: Vec::new(),
            expires_at: None,
        }
    }

    /// Parse any supported format (see the module docs). `null` and `{}`
    /// are the empty configuration. Does not check ranges: see [`validate`].
    ///
    /// [`validate`]: FaultConfig::validate
    pub fn parse(text: &str) -> Result<FaultConfig> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ConfigError::new("", format!("not valid JSON: {e}")))?;
        FaultConfig::from_json(&value)
    }

    /// [`parse`](FaultConfig::parse) from a JSON value already read.
    pub fn from_json(value: &Value) -> Result<FaultConfig> {
        let obj = match value {
            Value::Object(obj) => obj,
            Value::Null => return Ok(FaultConfig::empty()),
            other => {
                return Err(ConfigError::new(
                    "",
                    format!("must be a JSON object, not {}", kind(other)),
                ))
            }
        };
        // 0.x has a top-level `denylist` array: a mode counts as an object.
        let canonical = obj
            .iter()
            .any(|(k, v)| MODES.contains(&k.as_str()) && v.is_object());
        let zero = obj.contains_key("isEnabled") || obj.contains_key("failureMode");
        let chaos = obj.contains_key("is_enabled") || obj.contains_key("fault_type");
        let mut config = match (canonical, zero, chaos) {
            (_, true, true) | (true, true, _) | (true, _, true) => {
                return Err(ConfigError::new(
                    "",
                    "mixes formats: use failure-lambda 1.0's (latency, statuscode, ...) \
                     or one legacy format, not several",
                ))
            }
            (_, true, _) => parse_failure_lambda0(obj)?,
            (_, _, true) => parse_chaos_lambda(obj)?,
            _ => parse_canonical(obj)?,
        };
        config.expires_at = match obj.get("expires_at") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(OffsetDateTime::parse(s, &Rfc3339).map_err(|e| {
                ConfigError::new("expires_at", format!("not an RFC 3339 timestamp: {e}"))
            })?),
            Some(other) => {
                return Err(ConfigError::new(
                    "expires_at",
                    format!("must be an RFC 3339 timestamp string, not {}", kind(other)),
                ))
            }
        };
        Ok(config)
    }

    /// Check the values: percentages 0–100 (legacy `rate` 0–1), latencies
    /// 0–900000 ms with max ≥ min, status 100–599, regexes that compile.
    /// The first error found is returned, named as the source wrote it.
    pub fn validate(&self) -> Result<()> {
        let names = Names(self.format);
        if let Some(flag) = &self.latency {
            names.check_flag(flag, "latency")?;
            let Latency {
                min_latency,
                max_latency,
            } = flag.params;
            let (min_name, max_name) = (
                names.field("latency", "min_latency"),
                names.field("latency", "max_latency"),
            );
            check_delay(&min_name, min_latency)?;
            check_delay(&max_name, max_latency)?;
            if max_latency < min_latency {
                return Err(ConfigError::new(
                    max_name,
                    format!("must be at least {min_name} ({min_latency}), got {max_latency}"),
                ));
            }
        }
        if let Some(flag) = &self.timeout {
            names.check_flag(flag, "timeout")?;
            check_delay(
                &names.field("timeout", "timeout_buffer_ms"),
                flag.params.timeout_buffer_ms,
            )?;
        }
        if let Some(flag) = &self.statuscode {
            names.check_flag(flag, "statuscode")?;
            let code = flag.params.status_code;
            if !(100..=599).contains(&code) {
                return Err(ConfigError::new(
                    names.field("statuscode", "status_code"),
                    format!("must be an HTTP status code (100-599), got {code}"),
                ));
            }
        }
        if let Some(flag) = &self.exception {
            names.check_flag(flag, "exception")?;
        }
        Ok(())
    }

    /// Parse and validate: what the layer does with what it reads.
    pub fn parse_valid(text: &str) -> Result<FaultConfig> {
        let config = FaultConfig::parse(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Whether `expires_at` is at or before `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Whether any injectable mode is enabled.
    pub fn is_enabled(&self) -> bool {
        self.latency.as_ref().is_some_and(|f| f.enabled)
            || self.timeout.as_ref().is_some_and(|f| f.enabled)
            || self.statuscode.as_ref().is_some_and(|f| f.enabled)
            || self.exception.as_ref().is_some_and(|f| f.enabled)
    }

    /// The configuration in failure-lambda 1.0's format (legacy ones
    /// upgraded; ignored modes dropped).
    pub fn to_canonical(&self) -> Value {
        let mut out = Map::new();
        let flag = |enabled: bool, percentage: f64, matches: &[MatchRule]| {
            let mut m = Map::new();
            m.insert("enabled".into(), enabled.into());
            m.insert("percentage".into(), number(percentage));
            if !matches.is_empty() {
                let rules = matches.iter().map(MatchRule::to_json).collect();
                m.insert("match".into(), Value::Array(rules));
            }
            m
        };
        if let Some(f) = &self.latency {
            let mut m = flag(f.enabled, f.percentage, &f.matches);
            m.insert("min_latency".into(), number(f.params.min_latency));
            m.insert("max_latency".into(), number(f.params.max_latency));
            out.insert("latency".into(), Value::Object(m));
        }
        if let Some(f) = &self.timeout {
            let mut m = flag(f.enabled, f.percentage, &f.matches);
            m.insert(
                "timeout_buffer_ms".into(),
                number(f.params.timeout_buffer_ms),
            );
            out.insert("timeout".into(), Value::Object(m));
        }
        if let Some(f) = &self.statuscode {
            let mut m = flag(f.enabled, f.percentage, &f.matches);
            m.insert("status_code".into(), f.params.status_code.into());
            out.insert("statuscode".into(), Value::Object(m));
        }
        if let Some(f) = &self.exception {
            let mut m = flag(f.enabled, f.percentage, &f.matches);
            m.insert(
                "exception_msg".into(),
                f.params.exception_msg.clone().into(),
            );
            out.insert("exception".into(), Value::Object(m));
        }
        if let Some(at) = self.expires_at.and_then(|at| at.format(&Rfc3339).ok()) {
            out.insert("expires_at".into(), at.into());
        }
        Value::Object(out)
    }
}

impl MatchRule {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("path".into(), self.path.clone().into());
        m.insert("operator".into(), self.operator.as_str().into());
        if self.operator != Operator::Exists {
            m.insert("value".into(), self.value.clone());
        }
        Value::Object(m)
    }
}

/// Field names and percentage wording as the source format spells them.
struct Names(Format);

impl Names {
    fn field(&self, mode: &str, field: &str) -> String {
        let legacy = match (self.0, field) {
            (Format::Canonical, _) => None,
            (_, "percentage") => Some("rate"),
            (Format::FailureLambda0, "min_latency") => Some("minLatency"),
            (Format::FailureLambda0, "max_latency") => Some("maxLatency"),
            (Format::FailureLambda0, "status_code") => Some("statusCode"),
            (Format::FailureLambda0, "exception_msg") => Some("exceptionMsg"),
            (Format::ChaosLambda, "min_latency" | "max_latency") => Some("delay"),
            (Format::ChaosLambda, "status_code") => Some("error_code"),
            (Format::ChaosLambda, "exception_msg") => Some("exception_msg"),
            _ => None,
        };
        match legacy {
            Some(name) => name.to_string(),
            None => format!("{mode}.{field}"),
        }
    }

    fn check_flag<P>(&self, flag: &Flag<P>, mode: &str) -> Result<()> {
        let p = flag.percentage;
        if !(0.0..=100.0).contains(&p) {
            let name = self.field(mode, "percentage");
            return Err(match self.0 {
                Format::Canonical => {
                    ConfigError::new(name, format!("must be between 0 and 100, got {p}"))
                }
                _ => ConfigError::new(name, format!("must be between 0 and 1, got {}", p / 100.0)),
            });
        }
        for (i, rule) in flag.matches.iter().enumerate() {
            if rule.operator == Operator::Regex {
                let pattern = rule.value.as_str().unwrap_or_default();
                let field = format!("{mode}.match[{i}].value");
                if pattern.len() > MAX_REGEX_LEN {
                    return Err(ConfigError::new(
                        field,
                        format!("regex longer than {MAX_REGEX_LEN} characters"),
                    ));
                }
                regex_lite::Regex::new(pattern)
                    .map_err(|e| ConfigError::new(field, format!("invalid regex: {e}")))?;
            }
        }
        Ok(())
    }
}

fn check_delay(name: &str, ms: f64) -> Result<()> {
    if !(0.0..=MAX_DELAY_MS).contains(&ms) {
        return Err(ConfigError::new(
            name,
            format!("must be between 0 and {MAX_DELAY_MS} ms (Lambda's 15-minute limit), got {ms}"),
        ));
    }
    Ok(())
}

// ---- failure-lambda 1.0 -------------------------------------------------

fn parse_canonical(obj: &Map<String, Value>) -> Result<FaultConfig> {
    let mut config = FaultConfig::empty();
    for (key, value) in obj {
        let mode = key.as_str();
        if mode == "expires_at" {
            continue;
        }
        if !MODES.contains(&mode) {
            return Err(ConfigError::new(
                mode,
                format!(
                    "unknown failure mode (known: {}, expires_at)",
                    MODES.join(", ")
                ),
            ));
        }
        let Value::Object(fields) = value else {
            return Err(ConfigError::new(
                mode,
                format!("must be an object, not {}", kind(value)),
            ));
        };
        let fields = Fields { mode, obj: fields };
        match mode {
            "latency" => {
                fields.only(&["min_latency", "max_latency"])?;
                let min = fields.number("min_latency")?.unwrap_or(0.0);
                // Only a minimum: a fixed delay (failure-lambda would use 0).
                let max = fields.number("max_latency")?.unwrap_or(min);
                config.latency = Some(fields.flag(Latency {
                    min_latency: min,
                    max_latency: max,
                })?);
            }
            "timeout" => {
                fields.only(&["timeout_buffer_ms"])?;
                let buffer = fields.number("timeout_buffer_ms")?.unwrap_or(0.0);
                config.timeout = Some(fields.flag(Timeout {
                    timeout_buffer_ms: buffer,
                })?);
            }
            "statuscode" => {
                fields.only(&["status_code"])?;
                let code = fields
                    .integer("status_code")?
                    .unwrap_or(DEFAULT_STATUS_CODE);
                config.statuscode = Some(fields.flag(StatusCode { status_code: code })?);
            }
            "exception" => {
                fields.only(&["exception_msg"])?;
                let msg = fields.string("exception_msg")?;
                config.exception = Some(fields.flag(Exception {
                    exception_msg: msg.unwrap_or_else(|| DEFAULT_EXCEPTION_MSG.to_string()),
                })?);
            }
            // diskspace, denylist, corruption: their own fields are not read.
            ignored => {
                if fields.bool("enabled")?.unwrap_or(false) {
                    config
                        .ignored
                        .extend(IGNORED_MODES.iter().copied().find(|m| *m == ignored));
                }
            }
        }
    }
    Ok(config)
}

/// A mode's object, for typed reads that name `mode.field` on error.
struct Fields<'a> {
    mode: &'a str,
    obj: &'a Map<String, Value>,
}

impl Fields<'_> {
    fn name(&self, field: &str) -> String {
        format!("{}.{field}", self.mode)
    }

    /// Reject keys other than the common ones and `specific`.
    fn only(&self, specific: &[&str]) -> Result<()> {
        for key in self.obj.keys() {
            let common = ["enabled", "percentage", "match"].contains(&key.as_str());
            if !common && !specific.contains(&key.as_str()) {
                let mut known = vec!["enabled", "percentage", "match"];
                known.extend_from_slice(specific);
                return Err(ConfigError::new(
                    self.name(key),
                    format!("unknown field (known: {})", known.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn flag<P>(&self, params: P) -> Result<Flag<P>> {
        let enabled = self.bool("enabled")?.ok_or_else(|| {
            ConfigError::new(self.name("enabled"), "missing: must be true or false")
        })?;
        Ok(Flag {
            enabled,
            percentage: self.number("percentage")?.unwrap_or(100.0),
            matches: self.matches()?,
            params,
        })
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }

    fn bool(&self, field: &str) -> Result<Option<bool>> {
        self.get(field)
            .map(|v| {
                v.as_bool().ok_or_else(|| {
                    ConfigError::new(
                        self.name(field),
                        format!("must be true or false, not {}", kind(v)),
                    )
                })
            })
            .transpose()
    }

    fn number(&self, field: &str) -> Result<Option<f64>> {
        self.get(field)
            .map(|v| {
                v.as_f64().ok_or_else(|| {
                    ConfigError::new(
                        self.name(field),
                        format!("must be a number, not {}", kind(v)),
                    )
                })
            })
            .transpose()
    }

    fn integer(&self, field: &str) -> Result<Option<i64>> {
        self.get(field)
            .map(|v| {
                v.as_i64().ok_or_else(|| {
                    ConfigError::new(
                        self.name(field),
                        format!("must be an integer, not {}", kind(v)),
                    )
                })
            })
            .transpose()
    }

    fn string(&self, field: &str) -> Result<Option<String>> {
        self.get(field)
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    ConfigError::new(
                        self.name(field),
                        format!("must be a string, not {}", kind(v)),
                    )
                })
            })
            .transpose()
    }

    fn matches(&self) -> Result<Vec<MatchRule>> {
        let Some(value) = self.get("match") else {
            return Ok(Vec::new());
        };
        let Value::Array(rules) = value else {
            return Err(ConfigError::new(
                self.name("match"),
                format!("must be an array of conditions, not {}", kind(value)),
            ));
        };
        rules
            .iter()
            .enumerate()
            .map(|(i, rule)| parse_rule(&format!("{}.match[{i}]", self.mode), rule))
            .collect()
    }
}

fn parse_rule(name: &str, rule: &Value) -> Result<MatchRule> {
    let Value::Object(obj) = rule else {
        return Err(ConfigError::new(
            name,
            format!(
                "must be an object with path, value, operator, not {}",
                kind(rule)
            ),
        ));
    };
    if let Some(key) = obj
        .keys()
        .find(|k| !["path", "value", "operator"].contains(&k.as_str()))
    {
        return Err(ConfigError::new(
            format!("{name}.{key}"),
            "unknown field (known: path, value, operator)",
        ));
    }
    let path = match obj.get("path") {
        Some(Value::String(p)) if !p.is_empty() => p.clone(),
        Some(Value::String(_)) => return Err(ConfigError::new(format!("{name}.path"), "is empty")),
        Some(v) => {
            return Err(ConfigError::new(
                format!("{name}.path"),
                format!("must be a string, not {}", kind(v)),
            ))
        }
        None => return Err(ConfigError::new(format!("{name}.path"), "missing")),
    };
    let operator = match obj.get("operator") {
        None | Some(Value::Null) => Operator::Eq,
        Some(Value::String(op)) => match op.as_str() {
            "eq" => Operator::Eq,
            "exists" => Operator::Exists,
            "startsWith" => Operator::StartsWith,
            "regex" => Operator::Regex,
            other => {
                return Err(ConfigError::new(
                    format!("{name}.operator"),
                    format!("unknown operator '{other}' (known: eq, exists, startsWith, regex)"),
                ))
            }
        },
        Some(v) => {
            return Err(ConfigError::new(
                format!("{name}.operator"),
                format!("must be a string, not {}", kind(v)),
            ))
        }
    };
    let value = obj.get("value").cloned().unwrap_or(Value::Null);
    match operator {
        Operator::Exists => {}
        Operator::Eq if value.is_null() => {
            return Err(ConfigError::new(
                format!("{name}.value"),
                "missing (required unless the operator is exists)",
            ))
        }
        Operator::StartsWith | Operator::Regex if !value.is_string() => {
            return Err(ConfigError::new(
                format!("{name}.value"),
                format!(
                    "must be a string for {}, not {}",
                    operator.as_str(),
                    kind(&value)
                ),
            ))
        }
        _ => {}
    }
    Ok(MatchRule {
        path,
        operator,
        value,
    })
}

// ---- legacy formats -------------------------------------------------------

/// A legacy document's keys, read by their own names.
struct Legacy<'a>(&'a Map<String, Value>);

impl Legacy<'_> {
    fn only(&self, known: &[&str]) -> Result<()> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(key) => Err(ConfigError::new(
                key.as_str(),
                format!("unknown field (known: {})", known.join(", ")),
            )),
            None => Ok(()),
        }
    }

    fn fields(&self) -> Fields<'_> {
        Fields {
            mode: "",
            obj: self.0,
        }
    }

    // Fields' readers name `.{field}`; legacy names have no mode prefix.
    fn map<T>(r: Result<T>) -> Result<T> {
        r.map_err(|mut e| {
            e.field = e.field.trim_start_matches('.').to_string();
            e
        })
    }

    fn bool(&self, field: &str) -> Result<Option<bool>> {
        Self::map(self.fields().bool(field))
    }
    fn number(&self, field: &str) -> Result<Option<f64>> {
        Self::map(self.fields().number(field))
    }
    fn integer(&self, field: &str) -> Result<Option<i64>> {
        Self::map(self.fields().integer(field))
    }
    fn string(&self, field: &str) -> Result<Option<String>> {
        Self::map(self.fields().string(field))
    }

    fn flag<P>(&self, enabled: bool, params: P) -> Result<Flag<P>> {
        Ok(Flag {
            enabled,
            percentage: self.number("rate")?.unwrap_or(1.0) * 100.0,
            matches: Vec::new(),
            params,
        })
    }
}

/// The one mode a legacy document configures, in the canonical model.
enum LegacyMode {
    Latency(Latency),
    StatusCode(StatusCode),
    Exception(Exception),
    /// A mode Turbulence accepts but cannot inject (needs OS hooks).
    Ignored(&'static str),
}

impl Legacy<'_> {
    /// The configuration a legacy document describes: at most one mode,
    /// with the document's `rate` and enabled flag.
    fn config(
        &self,
        format: Format,
        enabled: bool,
        mode: Option<LegacyMode>,
    ) -> Result<FaultConfig> {
        let mut config = FaultConfig {
            format,
            ..FaultConfig::empty()
        };
        match mode {
            None => {}
            Some(LegacyMode::Latency(p)) => config.latency = Some(self.flag(enabled, p)?),
            Some(LegacyMode::StatusCode(p)) => config.statuscode = Some(self.flag(enabled, p)?),
            Some(LegacyMode::Exception(p)) => config.exception = Some(self.flag(enabled, p)?),
            Some(LegacyMode::Ignored(name)) if enabled => config.ignored.push(name),
            Some(LegacyMode::Ignored(_)) => {}
        }
        Ok(config)
    }
}

fn exception(msg: Option<String>) -> Exception {
    Exception {
        exception_msg: msg.unwrap_or_else(|| DEFAULT_EXCEPTION_MSG.to_string()),
    }
}

fn parse_failure_lambda0(obj: &Map<String, Value>) -> Result<FaultConfig> {
    let doc = Legacy(obj);
    doc.only(&[
        "isEnabled",
        "failureMode",
        "rate",
        "minLatency",
        "maxLatency",
        "exceptionMsg",
        "statusCode",
        "diskSpace",
        "denylist",
        "expires_at",
    ])?;
    let enabled = doc.bool("isEnabled")?.unwrap_or(false);
    // Type-check every field: 0.x documents carry them all, whatever the mode.
    let min = doc.number("minLatency")?.unwrap_or(0.0);
    let max = doc.number("maxLatency")?.unwrap_or(min);
    let code = doc.integer("statusCode")?.unwrap_or(DEFAULT_STATUS_CODE);
    let msg = doc.string("exceptionMsg")?;
    let mode = match doc.string("failureMode")?.as_deref() {
        None if !enabled => None,
        None => return Err(ConfigError::new("failureMode", "missing")),
        Some("latency") => Some(LegacyMode::Latency(Latency {
            min_latency: min,
            max_latency: max,
        })),
        Some("statuscode") => Some(LegacyMode::StatusCode(StatusCode { status_code: code })),
        Some("exception") => Some(LegacyMode::Exception(exception(msg))),
        Some("diskspace") => Some(LegacyMode::Ignored("diskspace")),
        Some("denylist") => Some(LegacyMode::Ignored("denylist")),
        Some(other) => {
            return Err(ConfigError::new(
                "failureMode",
                format!(
                    "unknown failure mode '{other}' (known: latency, exception, statuscode, diskspace, denylist)"
                ),
            ))
        }
    };
    doc.config(Format::FailureLambda0, enabled, mode)
}

fn parse_chaos_lambda(obj: &Map<String, Value>) -> Result<FaultConfig> {
    let doc = Legacy(obj);
    doc.only(&[
        "is_enabled",
        "fault_type",
        "delay",
        "error_code",
        "exception_msg",
        "rate",
        "expires_at",
    ])?;
    let enabled = doc.bool("is_enabled")?.unwrap_or(false);
    let delay = doc.number("delay")?.unwrap_or(0.0);
    let code = doc.integer("error_code")?.unwrap_or(DEFAULT_STATUS_CODE);
    let msg = doc.string("exception_msg")?;
    let mode = match doc.string("fault_type")?.as_deref() {
        None if !enabled => None,
        None => return Err(ConfigError::new("fault_type", "missing")),
        Some("latency") => Some(LegacyMode::Latency(Latency {
            min_latency: delay,
            max_latency: delay,
        })),
        Some("status_code") => Some(LegacyMode::StatusCode(StatusCode { status_code: code })),
        Some("exception") => Some(LegacyMode::Exception(exception(msg))),
        Some(other) => {
            return Err(ConfigError::new(
                "fault_type",
                format!("unknown failure mode '{other}' (known: latency, exception, status_code)"),
            ))
        }
    };
    doc.config(Format::ChaosLambda, enabled, mode)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Integral values as JSON integers, so `20` stays `20`, not `20.0`.
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests;
