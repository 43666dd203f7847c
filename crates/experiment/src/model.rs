//! The experiment document: a Chaos Toolkit experiment, validated.
//!
//! Validation walks the JSON by hand rather than through serde derive so every
//! message names the activity and the field at fault, which is what a user
//! fixing an experiment needs.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::catalogue::{Call, CallSpec};
use crate::tolerance::Tolerance;

/// Why an experiment was refused. The text names the activity and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    fn at(place: &str, msg: impl std::fmt::Display) -> Self {
        Invalid(format!("{place}: {msg}"))
    }
}

/// Probes observe; actions change something.
pub use activities::catalogue::ActivityType;

/// One activity of the hypothesis, the method or the rollbacks.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub name: String,
    pub kind: ActivityType,
    pub call: CallSpec,
    pub tolerance: Option<Tolerance>,
    /// Seconds to pause before and after, as written (not yet time-scaled).
    pub pause_before: Option<f64>,
    pub pause_after: Option<f64>,
    /// Run alongside what follows it in the method (a child execution),
    /// joined before the hypothesis is checked after the method.
    pub background: bool,
}

/// Turbulence's own settings, from the `extensions` entry named `turbulence`.
#[derive(Debug, Clone, PartialEq)]
pub struct Extension {
    pub abort_alarms: Vec<String>,
    pub poll_interval_seconds: Option<f64>,
    pub wait_chunk_seconds: Option<f64>,
    pub time_scale: Option<f64>,
    pub dry_run: Option<DryRun>,
    /// Stated by the experiment: it changes something with no abort alarm
    /// (as FIS's `aws:none` stop condition). Without it, such an experiment
    /// is refused unless the deployment has default abort alarms.
    pub without_abort_alarms: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    pub title: String,
    pub description: String,
    pub hypothesis_title: Option<String>,
    pub hypothesis: Vec<Activity>,
    pub method: Vec<Activity>,
    pub rollbacks: Vec<Activity>,
    pub extension: Extension,
    pub runtime: Runtime,
    /// What was accepted but ignored (e.g. `controls`), for the journal.
    pub warnings: Vec<String>,
    /// Secret names usable as `${name}`, and where their values live; the
    /// values are read only where a call is made, so they never reach the
    /// state, the logs or the journal.
    pub secrets: BTreeMap<String, SecretRef>,
    /// `configuration.aws_region` as chaosaws reads it (after lookups; a
    /// `${name}` when it is left to the run). Plan refuses a Region it
    /// does not act in.
    pub region: Option<Value>,
}

/// Where a secret's value lives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SecretRef {
    /// An environment variable of the probe and action functions.
    Env { key: String },
    /// An SSM parameter (SecureString), read with decryption.
    Ssm { name: String },
    /// Written in the experiment itself (kept out of the journal).
    Literal { value: String },
}

/// `runtime.rollbacks.strategy`: when the experiment's own rollbacks run.
/// Compensations (what undoes Turbulence's changes) always run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RollbackStrategy {
    /// Turbulence's `default` is `always` (Chaos Toolkit's skips rollbacks
    /// when a run failed or was interrupted).
    #[default]
    Always,
    Never,
    /// Only when the steady state deviated after the method.
    Deviated,
}

/// `runtime.hypothesis.strategy`: when the steady-state hypothesis is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HypothesisStrategy {
    #[default]
    Default,
    BeforeMethodOnly,
    AfterMethodOnly,
    DuringMethodOnly,
    /// Before, during (after each method activity and every `frequency`
    /// seconds of its pauses) and after.
    Continuously,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Runtime {
    pub rollbacks: RollbackStrategy,
    pub hypothesis: HypothesisStrategy,
    /// Seconds between checks during pauses (`continuously`).
    pub frequency_seconds: Option<f64>,
}

/// Chaos Toolkit's dry-run modes: what is not really called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DryRun {
    Probes,
    Actions,
    Activities,
    Pause,
}

/// The biggest experiment document accepted; Step Functions state is capped
/// at 256 KB and the state carries the experiment and its results.
pub const MAX_EXPERIMENT_BYTES: usize = 64 * 1024;

const TOP_LEVEL_KEYS: &[&str] = &[
    "version",
    "title",
    "description",
    "tags",
    "contributions",
    "configuration",
    "secrets",
    "extensions",
    "controls",
    "runtime",
    "steady-state-hypothesis",
    "method",
    "rollbacks",
];

impl Experiment {
    /// Validate an experiment document and resolve `${name}` references to
    /// its configuration.
    /// Parse with nothing looked up (configuration from the environment or
    /// SSM stands in as `${name}`): Plan's checks, offline.
    pub fn parse(doc: &Value) -> Result<Experiment, Invalid> {
        Self::parse_with(doc, &Lookups::offline())
    }

    /// Parse, filling configuration from what Plan looked up.
    pub fn parse_with(doc: &Value, resolved: &Lookups) -> Result<Experiment, Invalid> {
        let size = serde_json::to_vec(doc)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > MAX_EXPERIMENT_BYTES {
            return Err(Invalid(format!(
                "experiment: {size} bytes is over the {MAX_EXPERIMENT_BYTES}-byte limit"
            )));
        }
        let top = doc
            .as_object()
            .ok_or_else(|| Invalid("experiment: must be a JSON object".into()))?;
        let mut warnings = unknown_keys(top)?;
        metadata(top)?;
        let title = required_text(top, "title", "experiment")?;
        let description = required_text(top, "description", "experiment")?;
        match top.get("controls") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                let names: Vec<String> = list
                    .iter()
                    .map(|c| {
                        c.get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("(unnamed)")
                            .to_string()
                    })
                    .collect();
                warnings.push(format!(
                    "controls are not supported and were ignored: {}",
                    names.join(", ")
                ));
            }
            Some(other) => {
                return Err(Invalid::at(
                    "experiment.controls",
                    format!("must be a list, found {}", kind_of(other)),
                ))
            }
        }
        let (secrets, secret_names) = secrets(top.get("secrets"), resolved)?;
        let mut config = configuration(top.get("configuration"), resolved)?;
        for name in &secret_names {
            if config.contains_key(name) {
                return Err(Invalid::at(
                    &format!("secrets: '{name}'"),
                    "is also a configuration key; a name means one thing",
                ));
            }
            // Left as written: the value is filled in where the call is made.
            config.insert(name.clone(), Value::String(format!("${{{name}}}")));
        }
        let region = config.get("aws_region").cloned();
        let runtime = runtime(top.get("runtime"))?;
        let extension = extension(top.get("extensions"), &config)?;
        let defs = definitions(top);
        let ctx = Ctx {
            config: &config,
            defs: &defs,
        };

        let (hypothesis_title, hypothesis) = match top.get("steady-state-hypothesis") {
            None | Some(Value::Null) => (None, Vec::new()),
            Some(Value::Object(h)) => {
                let title = required_text(h, "title", "steady-state-hypothesis")?;
                let probes = match h.get("probes") {
                    None => Vec::new(),
                    Some(Value::Array(items)) => items
                        .iter()
                        .enumerate()
                        .map(|(i, a)| {
                            activity(a, &format!("steady-state-hypothesis.probes[{i}]"), &ctx)
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                    Some(_) => {
                        return Err(Invalid::at(
                            "steady-state-hypothesis.probes",
                            "must be a list of probes",
                        ))
                    }
                };
                for p in &probes {
                    if p.kind != ActivityType::Probe {
                        return Err(Invalid::at(
                            &format!("probe '{}'", p.name),
                            "the steady-state hypothesis holds only probes",
                        ));
                    }
                    if p.tolerance.is_none() {
                        return Err(Invalid::at(
                            &format!("probe '{}'", p.name),
                            "field 'tolerance' is required in the steady-state hypothesis",
                        ));
                    }
                }
                (Some(title), probes)
            }
            Some(_) => {
                return Err(Invalid::at(
                    "steady-state-hypothesis",
                    "must be an object with 'title' and 'probes'",
                ))
            }
        };

        let method = match top.get("method") {
            None => return Err(Invalid::at("experiment", "field 'method' is required")),
            Some(v) => activities(v, "method", &ctx)?,
        };
        let rollbacks = match top.get("rollbacks") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => activities(v, "rollbacks", &ctx)?,
        };
        if method.is_empty() && hypothesis.is_empty() {
            return Err(Invalid::at(
                "experiment",
                "nothing to run ('method' is empty and there is no steady-state hypothesis)",
            ));
        }
        background_warnings(&hypothesis, &rollbacks, &mut warnings);
        let in_background = method.iter().filter(|a| a.background).count();
        if in_background > MAX_BACKGROUND_ACTIVITIES {
            return Err(Invalid::at(
                "method",
                format!(
                    "{in_background} activities run in the background; at most {MAX_BACKGROUND_ACTIVITIES} may (each is an execution of its own)"
                ),
            ));
        }
        for r in &rollbacks {
            if r.kind != ActivityType::Action {
                return Err(Invalid::at(
                    &format!("rollback '{}'", r.name),
                    "rollbacks hold only actions",
                ));
            }
        }
        Ok(Experiment {
            title,
            description,
            hypothesis_title,
            hypothesis,
            method,
            rollbacks,
            extension,
            runtime,
            warnings,
            secrets,
            region,
        })
    }

    /// The first method activity that changes something, unless a dry run
    /// calls no action: what an abort alarm must watch over.
    pub fn first_change(&self) -> Option<&Activity> {
        if matches!(
            self.extension.dry_run,
            Some(DryRun::Actions | DryRun::Activities)
        ) {
            return None;
        }
        self.method.iter().find(|a| a.kind == ActivityType::Action)
    }

    /// Refuse an experiment that changes something with no abort alarm to
    /// stop it: none named, none the deployment adds (`defaults`, its
    /// `DefaultAbortAlarms`), and no explicit `without_abort_alarms`.
    pub fn check_abort_alarms(&self, defaults: &[String]) -> Result<(), Invalid> {
        let ext = &self.extension;
        if !ext.abort_alarms.is_empty() || !defaults.is_empty() || ext.without_abort_alarms {
            return Ok(());
        }
        let Some(change) = self.first_change() else {
            return Ok(());
        };
        Err(Invalid(format!(
            "extensions.turbulence.abort_alarms: the experiment changes something (action '{}') and names no abort alarm, so nothing would stop it if the system degrades; name a CloudWatch alarm in the 'turbulence' extension's \"abort_alarms\", deploy with the DefaultAbortAlarms parameter, or state \"without_abort_alarms\": true in the extension to run without one",
            change.name
        )))
    }
}

/// Top-level keys Chaos Toolkit does not define change nothing: they are
/// accepted with a warning. One that misspells a key that does change
/// something (`rollback`, `steady_state_hypothesis`) is refused, as the
/// part it names would silently not run.
fn unknown_keys(top: &Map<String, Value>) -> Result<Vec<String>, Invalid> {
    let mut warnings = Vec::new();
    for key in top.keys() {
        if TOP_LEVEL_KEYS.contains(&key.as_str()) {
            continue;
        }
        if let Some(meant) = crate::suggest::closest(key, TOP_LEVEL_KEYS.iter().copied()) {
            return Err(Invalid::at(
                "experiment",
                format!(
                    "unknown key '{key}' (did you mean '{meant}'? as written, it would be ignored)"
                ),
            ));
        }
        warnings.push(format!(
            "top-level key '{key}' is not part of the Chaos Toolkit format and was ignored"
        ));
    }
    Ok(warnings)
}

fn required_text(obj: &Map<String, Value>, key: &str, place: &str) -> Result<String, Invalid> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(Invalid::at(place, format!("field '{key}' is empty"))),
        Some(other) => Err(Invalid::at(
            place,
            format!("field '{key}' must be a string, found {}", kind_of(other)),
        )),
        None => Err(Invalid::at(place, format!("field '{key}' is required"))),
    }
}

pub(crate) use activities::catalogue::kind_of;

/// What Plan looked up for configuration that is not written out:
/// environment variables (of the Plan function, read once at cold start)
/// and SSM parameters. Offline (validation without AWS), unknown values
/// stand in as `${name}` text.
#[derive(Debug, Clone, Default)]
pub struct Lookups {
    pub env: BTreeMap<String, String>,
    pub ssm: BTreeMap<String, String>,
    pub offline: bool,
}

impl Lookups {
    /// Offline validation: nothing is looked up.
    pub fn offline() -> Lookups {
        Lookups {
            offline: true,
            ..Default::default()
        }
    }
}

/// The SSM parameters an experiment's configuration names, for Plan to
/// read before it parses.
pub fn ssm_references(doc: &Value) -> Vec<String> {
    doc.get("configuration")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|c| c.values())
        .filter(|v| v.get("type").and_then(Value::as_str) == Some("ssm"))
        .filter_map(|v| v.get("name").and_then(Value::as_str).map(String::from))
        .collect()
}

/// Configuration values usable in `${name}` references: literals,
/// `{"type": "env", "key", "default", "env_var_type"}` as Chaos Toolkit
/// has them, and `{"type": "ssm", "name"}`.
fn configuration(v: Option<&Value>, lookups: &Lookups) -> Result<BTreeMap<String, Value>, Invalid> {
    let Some(v) = v else {
        return Ok(BTreeMap::new());
    };
    let obj = v
        .as_object()
        .ok_or_else(|| Invalid::at("configuration", "must be an object"))?;
    let mut out = BTreeMap::new();
    for (k, val) in obj {
        let here = format!("configuration.{k}");
        if let Some(why) = UNHONOURED_CONFIGURATION
            .iter()
            .find_map(|(key, why)| (key == k).then_some(why))
        {
            return Err(Invalid::at(&here, why));
        }
        let value = match val {
            Value::Object(o) if o.contains_key("type") => match o.get("type").and_then(Value::as_str) {
                Some("env") => {
                    let key = required_text(o, "key", &here)?;
                    // Checked even when the variable is unset (offline, or a default).
                    let kind = env_var_type(o.get("env_var_type"), &here)?;
                    match lookups.env.get(&key) {
                        Some(text) => typed(text, kind, &here)?,
                        None => match o.get("default") {
                            Some(d) => d.clone(),
                            None if lookups.offline => Value::String(format!("${{{k}}}")),
                            None => {
                                return Err(Invalid::at(
                                    &here,
                                    format!("environment variable '{key}' is not set and there is no 'default'"),
                                ))
                            }
                        },
                    }
                }
                Some("ssm") => {
                    let name = required_text(o, "name", &here)?;
                    match lookups.ssm.get(&name) {
                        Some(text) => Value::String(text.clone()),
                        None if lookups.offline => Value::String(format!("${{{k}}}")),
                        None => {
                            return Err(Invalid::at(
                                &here,
                                format!("SSM parameter '{name}' does not exist"),
                            ))
                        }
                    }
                }
                Some(other) => {
                    return Err(Invalid::at(
                        &here,
                        format!("configuration type '{other}' is not supported (supported: a literal, \"env\", \"ssm\")"),
                    ))
                }
                None => return Err(Invalid::at(&here, "field 'type' must be a string")),
            },
            other => other.clone(),
        };
        out.insert(k.clone(), value);
    }
    Ok(out)
}

/// chaosaws configuration keys Turbulence cannot honour: refused, so a run
/// never acts in the control plane's own account while the experiment
/// meant another.
const UNHONOURED_CONFIGURATION: &[(&str, &str)] = &[
    ("aws_role_arn", "chaosaws would assume this role and act in its account; Turbulence acts with its own function roles in the account it is deployed in, and cannot act in another account yet: run the experiment from a Turbulence deployment in the target account"),
    ("aws_profile_name", "an AWS CLI profile means nothing inside Lambda: Turbulence acts with its own function roles in the account it is deployed in; remove the key"),
];

/// chaosaws secrets Turbulence would ignore: it never acts with keys an
/// experiment carries.
const UNHONOURED_SECRETS: &[&str] = &[
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];

/// The `env_var_type` of an env configuration value (`str` when absent).
fn env_var_type<'a>(kind: Option<&'a Value>, here: &str) -> Result<&'a str, Invalid> {
    const TYPES: &[&str] = &["str", "int", "float", "bool", "json"];
    match kind {
        None | Some(Value::Null) => Ok("str"),
        Some(Value::String(k)) if TYPES.contains(&k.as_str()) => Ok(k),
        Some(other) => Err(Invalid::at(
            here,
            format!("env_var_type {other} is not one of {}", TYPES.join(", ")),
        )),
    }
}

/// An environment variable's text as its `env_var_type` says.
fn typed(text: &str, kind: &str, here: &str) -> Result<Value, Invalid> {
    let bad = |what: &str| {
        Invalid::at(
            here,
            format!("'{text}' is not {what} (env_var_type {kind})"),
        )
    };
    Ok(match kind {
        "int" => Value::from(text.trim().parse::<i64>().map_err(|_| bad("an integer"))?),
        "float" => Value::from(text.trim().parse::<f64>().map_err(|_| bad("a number"))?),
        "bool" => Value::Bool(matches!(
            text.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )),
        "json" => serde_json::from_str(text).map_err(|_| bad("JSON"))?,
        _ => Value::String(text.to_string()),
    })
}

/// `secrets`: `{scope: {name: literal | {"type": "env", "key"} | {"type":
/// "ssm", "name"}}}`. Names are usable as `${name}` in any scope's
/// activities; only where each value lives is kept.
fn secrets(
    v: Option<&Value>,
    _lookups: &Lookups,
) -> Result<(BTreeMap<String, SecretRef>, Vec<String>), Invalid> {
    let mut out = BTreeMap::new();
    let Some(v) = v else {
        return Ok((out, Vec::new()));
    };
    let scopes = v
        .as_object()
        .ok_or_else(|| Invalid::at("secrets", "must be an object of scopes"))?;
    for (scope, entries) in scopes {
        let entries = entries.as_object().ok_or_else(|| {
            Invalid::at(&format!("secrets.{scope}"), "must be an object of secrets")
        })?;
        for (name, val) in entries {
            let here = format!("secrets.{scope}.{name}");
            if UNHONOURED_SECRETS.contains(&name.as_str()) {
                return Err(Invalid::at(
                    &here,
                    "chaosaws would act with these AWS credentials; Turbulence acts only with its own function roles and would ignore them: remove the secret",
                ));
            }
            let r = match val {
                Value::String(s) => SecretRef::Literal { value: s.clone() },
                Value::Object(o) => match o.get("type").and_then(Value::as_str) {
                    Some("env") => SecretRef::Env {
                        key: required_text(o, "key", &here)?,
                    },
                    Some("ssm") => SecretRef::Ssm {
                        name: required_text(o, "name", &here)?,
                    },
                    Some(other) => {
                        return Err(Invalid::at(
                            &here,
                            format!("secret type '{other}' is not supported (supported: a string, \"env\", \"ssm\")"),
                        ))
                    }
                    None => return Err(Invalid::at(&here, "field 'type' is required")),
                },
                other => {
                    return Err(Invalid::at(
                        &here,
                        format!("must be a string or an object with 'type', found {}", kind_of(other)),
                    ))
                }
            };
            if out.insert(name.clone(), r).is_some() {
                return Err(Invalid::at(&here, "the same secret name is in two scopes"));
            }
        }
    }
    let names = out.keys().cloned().collect();
    Ok((out, names))
}

/// `runtime`: the rollback and hypothesis strategies.
fn runtime(v: Option<&Value>) -> Result<Runtime, Invalid> {
    let mut rt = Runtime::default();
    let Some(v) = v else { return Ok(rt) };
    let obj = v
        .as_object()
        .ok_or_else(|| Invalid::at("runtime", "must be an object"))?;
    if let Some(r) = obj.get("rollbacks") {
        match r.get("strategy").and_then(Value::as_str) {
            None => {}
            Some("default" | "always") => rt.rollbacks = RollbackStrategy::Always,
            Some("never") => rt.rollbacks = RollbackStrategy::Never,
            Some("deviated") => rt.rollbacks = RollbackStrategy::Deviated,
            Some(other) => {
                return Err(Invalid::at(
                    "runtime.rollbacks.strategy",
                    format!("must be one of default, always, never, deviated, found \"{other}\""),
                ))
            }
        }
    }
    if let Some(h) = obj.get("hypothesis") {
        if let Some(s) = h.get("strategy") {
            rt.hypothesis = serde_json::from_value(s.clone()).map_err(|_| {
                Invalid::at(
                    "runtime.hypothesis.strategy",
                    format!("must be one of default, before-method-only, after-method-only, during-method-only, continuously, found {s}"),
                )
            })?;
        }
        rt.frequency_seconds = positive(
            h.as_object().unwrap_or(&Map::new()),
            "frequency",
            "runtime.hypothesis",
        )?;
    }
    Ok(rt)
}

const EXTENSION_KEYS: &[&str] = &[
    "name",
    "abort_alarms",
    "poll_interval_seconds",
    "wait_chunk_seconds",
    "time_scale",
    "dry_run",
    "without_abort_alarms",
];

/// The `turbulence` extension, its values `${name}`-substituted from the
/// configuration (so `--var abort_alarm=...` points a shipped experiment at
/// your alarm).
fn extension(v: Option<&Value>, config: &BTreeMap<String, Value>) -> Result<Extension, Invalid> {
    let mut ext = Extension {
        abort_alarms: Vec::new(),
        poll_interval_seconds: None,
        wait_chunk_seconds: None,
        time_scale: None,
        dry_run: None,
        without_abort_alarms: false,
    };
    let Some(v) = v else { return Ok(ext) };
    let list = v
        .as_array()
        .ok_or_else(|| Invalid::at("extensions", "must be a list of objects with a 'name'"))?;
    let mut seen = false;
    for (i, e) in list.iter().enumerate() {
        let place = format!("extensions[{i}]");
        let obj = e
            .as_object()
            .ok_or_else(|| Invalid::at(&place, "must be an object"))?;
        let name = required_text(obj, "name", &place)?;
        if name != "turbulence" {
            // A misspelt name would drop every setting, abort alarms first.
            if crate::suggest::misspells(&name, "turbulence") {
                return Err(Invalid::at(
                    &place,
                    format!("extension '{name}' is not 'turbulence' (a typo?): as written, its settings, abort alarms among them, would be ignored; name it \"turbulence\""),
                ));
            }
            continue; // other tools' extensions are theirs to read
        }
        if seen {
            return Err(Invalid::at(
                &place,
                "only one 'turbulence' extension is allowed",
            ));
        }
        seen = true;
        let substituted = substitute(e, config).map_err(|m| Invalid::at(&place, m))?;
        let obj = substituted
            .as_object()
            .ok_or_else(|| Invalid::at(&place, "must be an object"))?;
        // Safety settings: a typo must not silently turn a guard off.
        for key in obj.keys() {
            if !EXTENSION_KEYS.contains(&key.as_str()) {
                return Err(Invalid::at(
                    &place,
                    format!(
                        "unknown key '{key}'{} (expected one of {})",
                        crate::suggest::did_you_mean(key, EXTENSION_KEYS.iter().copied()),
                        EXTENSION_KEYS.join(", ")
                    ),
                ));
            }
        }
        if let Some(a) = obj.get("abort_alarms") {
            let items = a.as_array().ok_or_else(|| {
                Invalid::at(
                    &format!("{place}.abort_alarms"),
                    "must be a list of alarm names",
                )
            })?;
            for (j, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) if !s.trim().is_empty() => ext.abort_alarms.push(s.clone()),
                    other => {
                        return Err(Invalid::at(
                            &format!("{place}.abort_alarms[{j}]"),
                            format!("must be an alarm name, found {}", kind_of(other)),
                        ))
                    }
                }
            }
            if ext.abort_alarms.len() > 100 {
                return Err(Invalid::at(
                    &format!("{place}.abort_alarms"),
                    "at most 100 alarms",
                ));
            }
        }
        ext.without_abort_alarms = match obj.get("without_abort_alarms") {
            None | Some(Value::Bool(false)) => false,
            Some(Value::Bool(true)) if !ext.abort_alarms.is_empty() => {
                return Err(Invalid::at(
                    &format!("{place}.without_abort_alarms"),
                    "is true but 'abort_alarms' names alarms: state one or the other",
                ))
            }
            Some(Value::Bool(true)) => true,
            Some(other) => {
                return Err(Invalid::at(
                    &format!("{place}.without_abort_alarms"),
                    format!("must be true or false, found {}", kind_of(other)),
                ))
            }
        };
        ext.poll_interval_seconds = positive(obj, "poll_interval_seconds", &place)?;
        ext.wait_chunk_seconds = positive(obj, "wait_chunk_seconds", &place)?;
        ext.time_scale = positive(obj, "time_scale", &place)?;
        ext.dry_run = match obj.get("dry_run") {
            None | Some(Value::Null) => None,
            Some(v) => Some(serde_json::from_value(v.clone()).map_err(|_| {
                Invalid::at(
                    &format!("{place}.dry_run"),
                    format!("must be one of \"probes\", \"actions\", \"activities\", \"pause\", found {v}"),
                )
            })?),
        };
    }
    Ok(ext)
}

fn positive(obj: &Map<String, Value>, key: &str, place: &str) -> Result<Option<f64>, Invalid> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x > 0.0 && x.is_finite() => Ok(Some(x)),
            _ => Err(Invalid::at(
                &format!("{place}.{key}"),
                format!("must be a positive number, found {v}"),
            )),
        },
    }
}

/// What activities are read with: the configuration for `${name}`, and
/// every named activity for `ref`.
struct Ctx<'a> {
    config: &'a BTreeMap<String, Value>,
    defs: &'a BTreeMap<String, Value>,
}

/// Every activity written out in full (not a `ref`), by name.
fn definitions(top: &Map<String, Value>) -> BTreeMap<String, Value> {
    let mut defs = BTreeMap::new();
    let lists = [
        top.get("steady-state-hypothesis")
            .and_then(|h| h.get("probes")),
        top.get("method"),
        top.get("rollbacks"),
    ];
    for list in lists.into_iter().flatten() {
        for a in list.as_array().into_iter().flatten() {
            if a.get("ref").is_none() {
                if let Some(name) = a.get("name").and_then(Value::as_str) {
                    defs.entry(name.to_string()).or_insert_with(|| a.clone());
                }
            }
        }
    }
    defs
}

fn activities(v: &Value, place: &str, ctx: &Ctx) -> Result<Vec<Activity>, Invalid> {
    let items = v
        .as_array()
        .ok_or_else(|| Invalid::at(place, "must be a list of activities"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, a)| activity(a, &format!("{place}[{i}]"), ctx))
        .collect()
}

fn activity(v: &Value, place: &str, ctx: &Ctx) -> Result<Activity, Invalid> {
    let config = ctx.config;
    let obj = v
        .as_object()
        .ok_or_else(|| Invalid::at(place, "an activity must be an object"))?;
    if let Some(r) = obj.get("ref") {
        let name = r
            .as_str()
            .ok_or_else(|| Invalid::at(place, "field 'ref' must be an activity's name"))?;
        if obj.len() > 1 {
            return Err(Invalid::at(
                place,
                format!("a 'ref' to '{name}' must hold nothing else"),
            ));
        }
        let target = ctx.defs.get(name).ok_or_else(|| {
            Invalid::at(
                place,
                format!(
                    "'ref' to '{name}', but no activity of the experiment is named so (a ref names an activity written out in full)"
                ),
            )
        })?;
        // Definitions hold no refs, so a ref never leads to another: no cycles.
        return activity(target, &format!("{place} (ref '{name}')"), ctx);
    }
    let name = required_text(obj, "name", place)?;
    let here = format!("activity '{name}'");
    let kind = match obj.get("type") {
        Some(Value::String(t)) if t == "probe" => ActivityType::Probe,
        Some(Value::String(t)) if t == "action" => ActivityType::Action,
        Some(other) => {
            return Err(Invalid::at(
                &here,
                format!("field 'type' must be \"probe\" or \"action\", found {other}"),
            ))
        }
        None => return Err(Invalid::at(&here, "field 'type' is required")),
    };
    match obj.get("background") {
        None | Some(Value::Bool(_)) | Some(Value::Null) => {}
        Some(other) => {
            return Err(Invalid::at(
                &here,
                format!(
                    "field 'background' must be true or false, found {}",
                    kind_of(other)
                ),
            ))
        }
    }
    let background = matches!(obj.get("background"), Some(Value::Bool(true)));
    let provider = obj
        .get("provider")
        .ok_or_else(|| Invalid::at(&here, "field 'provider' is required"))?
        .as_object()
        .ok_or_else(|| Invalid::at(&here, "field 'provider' must be an object"))?;
    let call = provider_call(provider, &here, config)?;
    // Argument checking happens here, at Plan, so nothing runs with a bad call.
    let parsed = Call::parse_experiment(&call).map_err(|e| Invalid::at(&here, e))?;
    if !parsed.allows(kind) {
        return Err(Invalid::at(
            &here,
            format!(
                "'{}' is {}, but the activity's type is \"{}\"",
                call.function,
                match parsed.kind() {
                    activities::catalogue::Kind::Probe => "a probe",
                    _ => "an action",
                },
                match kind {
                    ActivityType::Probe => "probe",
                    ActivityType::Action => "action",
                }
            ),
        ));
    }
    let tolerance = match obj.get("tolerance") {
        None => None,
        Some(t) => {
            let t = if t.get("type").and_then(Value::as_str) == Some("probe") {
                probe_tolerance(t, &here, config)?
            } else {
                t.clone()
            };
            Some(
                Tolerance::parse(&t)
                    .map_err(|e| Invalid::at(&here, format!("field 'tolerance': {e}")))?,
            )
        }
    };
    let (pause_before, pause_after) = match obj.get("pauses") {
        None => (None, None),
        Some(Value::Object(p)) => {
            for key in p.keys() {
                if key != "before" && key != "after" {
                    return Err(Invalid::at(
                        &here,
                        format!("field 'pauses.{key}' is unknown (expected 'before' or 'after')"),
                    ));
                }
            }
            (
                pause(p.get("before"), &here, "before", config)?,
                pause(p.get("after"), &here, "after", config)?,
            )
        }
        Some(_) => return Err(Invalid::at(&here, "field 'pauses' must be an object")),
    };
    Ok(Activity {
        name,
        kind,
        call,
        tolerance,
        pause_before,
        pause_after,
        background,
    })
}

/// What chaostoolkit-lib checks of `version`, `tags` and `contributions`,
/// which Turbulence only carries into the journal.
fn metadata(top: &Map<String, Value>) -> Result<(), Invalid> {
    match top.get("version") {
        None | Some(Value::String(_)) => {}
        Some(other) => {
            return Err(Invalid::at(
                "experiment",
                format!("field 'version' must be a string, found {}", kind_of(other)),
            ))
        }
    }
    match top.get("tags") {
        None => {}
        Some(Value::Array(tags))
            if tags
                .iter()
                .all(|t| t.as_str().is_some_and(|t| !t.is_empty())) => {}
        Some(_) => {
            return Err(Invalid::at(
                "experiment",
                "field 'tags' must be a list of non-empty strings",
            ))
        }
    }
    const LEVELS: &[&str] = &["none", "low", "medium", "high"];
    match top.get("contributions") {
        None => {}
        Some(Value::Object(c))
            if c.values()
                .all(|v| v.as_str().is_some_and(|v| LEVELS.contains(&v))) => {}
        Some(_) => {
            return Err(Invalid::at(
                "experiment",
                "field 'contributions' must be an object of none/low/medium/high",
            ))
        }
    }
    Ok(())
}

/// The most method activities one experiment runs in the background.
pub const MAX_BACKGROUND_ACTIVITIES: usize = 10;

/// `background` means something only in the method: Chaos Toolkit checks
/// the hypothesis one probe at a time, and Turbulence runs every rollback to
/// its end before the next, so an undo never races another.
fn background_warnings(
    hypothesis: &[Activity],
    rollbacks: &[Activity],
    warnings: &mut Vec<String>,
) {
    for p in hypothesis.iter().filter(|a| a.background) {
        warnings.push(format!(
            "probe '{}': 'background' was ignored: steady-state probes run one after another",
            p.name
        ));
    }
    for r in rollbacks.iter().filter(|a| a.background) {
        warnings.push(format!(
            "rollback '{}': 'background' was ignored: rollbacks run one after another, each to its end",
            r.name
        ));
    }
}

fn provider_call(
    provider: &Map<String, Value>,
    here: &str,
    config: &BTreeMap<String, Value>,
) -> Result<CallSpec, Invalid> {
    match provider.get("type").and_then(Value::as_str) {
        Some("python") => {}
        Some("http") => return http_call(provider, here, config),
        Some(other) => {
            return Err(Invalid::at(
                here,
                format!(
                    "provider type '{other}' is not supported; supported: http, and python providers of {} (`turbulence catalogue` lists every activity)",
                    crate::catalogue::python_modules().join(", ")
                ),
            ))
        }
        None => return Err(Invalid::at(here, "field 'provider.type' is required")),
    }
    let module = required_text(provider, "module", &format!("{here}: provider"))?;
    let func = required_text(provider, "func", &format!("{here}: provider"))?;
    let arguments = match provider.get("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(args)) => {
            let mut out = Map::new();
            for (k, v) in args {
                out.insert(
                    k.clone(),
                    substitute(v, config).map_err(|e| {
                        Invalid::at(here, format!("field 'provider.arguments.{k}': {e}"))
                    })?,
                );
            }
            out
        }
        Some(other) => {
            return Err(Invalid::at(
                here,
                format!(
                    "field 'provider.arguments' must be an object, found {}",
                    kind_of(other)
                ),
            ))
        }
    };
    Ok(CallSpec {
        function: format!("{module}.{func}"),
        arguments,
    })
}

/// A `{"type": "probe"}` tolerance: configuration filled in, and its
/// provider checked as a call that will get the output as `value`. Only
/// `http` providers can take a value (none of the catalogued functions
/// has a `value` parameter).
fn probe_tolerance(
    t: &Value,
    here: &str,
    config: &BTreeMap<String, Value>,
) -> Result<Value, Invalid> {
    let place = format!("{here}: field 'tolerance'");
    let provider = t
        .get("provider")
        .and_then(Value::as_object)
        .ok_or_else(|| Invalid::at(&place, "a 'probe' tolerance needs a 'provider' object"))?;
    if provider.get("type").and_then(Value::as_str) != Some("http") {
        return Err(Invalid::at(
            &place,
            "a 'probe' tolerance needs an http provider: it is sent the output as 'value' (no catalogued function takes a 'value')",
        ));
    }
    let call = http_call(provider, &place, config)?;
    Call::parse(&call).map_err(|e| Invalid::at(&place, e))?;
    let mut t = t.clone();
    t["provider"] = serde_json::json!(provider
        .iter()
        .map(|(k, v)| (
            k.clone(),
            substitute(v, config).unwrap_or_else(|_| v.clone())
        ))
        .collect::<Map<String, Value>>());
    Ok(t)
}

/// An `http` provider as the catalogue's `http` call: its fields are the
/// arguments.
fn http_call(
    provider: &Map<String, Value>,
    here: &str,
    config: &BTreeMap<String, Value>,
) -> Result<CallSpec, Invalid> {
    let mut arguments = Map::new();
    for (k, v) in provider {
        if k == "type" {
            continue;
        }
        arguments.insert(
            k.clone(),
            substitute(v, config)
                .map_err(|e| Invalid::at(here, format!("field 'provider.{k}': {e}")))?,
        );
    }
    Ok(CallSpec {
        function: crate::catalogue::HTTP.into(),
        arguments,
    })
}

fn pause(
    v: Option<&Value>,
    here: &str,
    which: &str,
    config: &BTreeMap<String, Value>,
) -> Result<Option<f64>, Invalid> {
    let Some(v) = v else { return Ok(None) };
    let v = substitute(v, config)
        .map_err(|e| Invalid::at(here, format!("field 'pauses.{which}': {e}")))?;
    let secs = match &v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match secs {
        Some(s) if s >= 0.0 && s.is_finite() => Ok(Some(s)),
        Some(s) => Err(Invalid::at(
            here,
            format!("field 'pauses.{which}' must not be negative, found {s}"),
        )),
        None => Err(Invalid::at(
            here,
            format!("field 'pauses.{which}' must be a number of seconds, found {v}"),
        )),
    }
}

/// Replace `${name}` with configuration values: a string that is exactly one
/// reference takes the value with its type; references inside longer strings
/// are replaced as text.
fn substitute(v: &Value, config: &BTreeMap<String, Value>) -> Result<Value, String> {
    match v {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                if !name.contains("${") && !name.contains('}') {
                    return config
                        .get(name)
                        .cloned()
                        .ok_or_else(|| format!("'${{{name}}}' is not defined in 'configuration'"));
                }
            }
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let end = after
                    .find('}')
                    .ok_or_else(|| format!("unterminated '${{' in \"{s}\""))?;
                let name = &after[..end];
                let value = config
                    .get(name)
                    .ok_or_else(|| format!("'${{{name}}}' is not defined in 'configuration'"))?;
                match value {
                    Value::String(t) => out.push_str(t),
                    other => out.push_str(&other.to_string()),
                }
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            Ok(Value::String(out))
        }
        Value::Array(items) => items
            .iter()
            .map(|i| substitute(i, config))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, i) in map {
                out.insert(k.clone(), substitute(i, config)?);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ecs_experiment() -> Value {
        json!({
            "title": "t",
            "description": "d",
            "configuration": {"cluster": "c1", "service": "s1", "pause": 150},
            "steady-state-hypothesis": {
                "title": "all running",
                "probes": [{
                    "type": "probe", "name": "all-running", "tolerance": true,
                    "provider": {"type": "python", "module": "chaosaws.ecs.probes",
                        "func": "are_all_desired_tasks_running",
                        "arguments": {"cluster": "${cluster}", "service": "${service}"}}
                }]
            },
            "method": [{
                "type": "action", "name": "stop-one",
                "provider": {"type": "python", "module": "chaosaws.ecs.actions",
                    "func": "stop_random_tasks",
                    "arguments": {"cluster": "${cluster}", "service": "${service}", "task_count": 1}},
                "pauses": {"after": "${pause}"}
            }]
        })
    }

    #[test]
    fn substitutes_configuration_keeping_types() {
        let e = Experiment::parse(&ecs_experiment()).unwrap();
        assert_eq!(e.hypothesis[0].call.arguments["cluster"], json!("c1"));
        assert_eq!(e.method[0].pause_after, Some(150.0));
    }

    fn refused(doc: Value) -> String {
        Experiment::parse(&doc).unwrap_err().0
    }

    #[test]
    fn missing_title_is_named() {
        let mut doc = ecs_experiment();
        doc.as_object_mut().unwrap().remove("title");
        assert_eq!(refused(doc), "experiment: field 'title' is required");
    }

    #[test]
    fn unknown_provider_names_activity_and_lists_supported() {
        let mut doc = ecs_experiment();
        doc["method"][0]["provider"] = json!({"type": "process", "path": "rm"});
        let msg = refused(doc);
        assert!(
            msg.starts_with("activity 'stop-one': provider type 'process' is not supported"),
            "{msg}"
        );
        assert!(msg.contains("chaosaws.ecs.actions, "), "{msg}");
    }

    #[test]
    fn unknown_function_is_refused() {
        let mut doc = ecs_experiment();
        doc["method"][0]["provider"]["func"] = json!("delete_cluster");
        let msg = refused(doc);
        assert!(
            msg.contains("activity 'stop-one'")
                && msg.contains("chaosaws.ecs.actions.delete_cluster"),
            "{msg}"
        );
    }

    #[test]
    fn missing_argument_names_activity_and_field() {
        let mut doc = ecs_experiment();
        doc["method"][0]["provider"]["arguments"]
            .as_object_mut()
            .unwrap()
            .remove("cluster");
        assert_eq!(
            refused(doc),
            "activity 'stop-one': argument 'cluster' is required by chaosaws.ecs.actions.stop_random_tasks"
        );
    }

    #[test]
    fn negative_pause_is_refused() {
        let mut doc = ecs_experiment();
        doc["method"][0]["pauses"] = json!({"after": -5});
        assert_eq!(
            refused(doc),
            "activity 'stop-one': field 'pauses.after' must not be negative, found -5"
        );
    }

    #[test]
    fn undefined_reference_is_refused() {
        let mut doc = ecs_experiment();
        doc["method"][0]["provider"]["arguments"]["cluster"] = json!("${nope}");
        assert_eq!(
            refused(doc),
            "activity 'stop-one': field 'provider.arguments.cluster': '${nope}' is not defined in 'configuration'"
        );
    }

    #[test]
    fn hypothesis_probe_needs_tolerance() {
        let mut doc = ecs_experiment();
        doc["steady-state-hypothesis"]["probes"][0]
            .as_object_mut()
            .unwrap()
            .remove("tolerance");
        assert_eq!(
            refused(doc),
            "probe 'all-running': field 'tolerance' is required in the steady-state hypothesis"
        );
    }

    #[test]
    fn activity_type_must_match_function() {
        let mut doc = ecs_experiment();
        doc["method"][0]["type"] = json!("probe");
        let msg = refused(doc);
        assert!(
            msg.contains("is an action, but the activity's type is \"probe\""),
            "{msg}"
        );
    }

    #[test]
    fn turbulence_extension_rejects_typos() {
        let mut doc = ecs_experiment();
        doc["extensions"] = json!([{"name": "turbulence", "abort_alarm": ["a"]}]);
        let msg = refused(doc);
        assert!(
            msg.starts_with("extensions[0]: unknown key 'abort_alarm'"),
            "{msg}"
        );
    }

    #[test]
    fn a_misspelt_turbulence_extension_is_refused_naming_the_typo() {
        for name in ["turbulance", "Turbulence", "turbulnece", "turbulence "] {
            let mut doc = ecs_experiment();
            doc["extensions"] = json!([{"name": name, "abort_alarms": ["a"]}]);
            let msg = refused(doc);
            assert!(
                msg.starts_with(&format!(
                    "extensions[0]: extension '{name}' is not 'turbulence' (a typo?)"
                )) && msg.contains("abort alarms among them, would be ignored"),
                "{name}: {msg}"
            );
        }
        let mut doc = ecs_experiment();
        doc["extensions"] = json!([{"name": "turbulence", "abort_alarm": ["a"]}]);
        assert!(refused(doc).contains("unknown key 'abort_alarm' (did you mean 'abort_alarms'?)"));
    }

    #[test]
    fn an_experiment_that_changes_something_needs_an_abort_alarm() {
        let mut doc = ecs_experiment();
        doc["extensions"] = json!([{"name": "turbulence"}]);
        let e = Experiment::parse(&doc).unwrap();
        let msg = e.check_abort_alarms(&[]).unwrap_err().0;
        assert!(
            msg.contains("action 'stop-one'") && msg.contains("names no abort alarm"),
            "{msg}"
        );
        // No extension at all: the same.
        doc.as_object_mut().unwrap().remove("extensions");
        let e = Experiment::parse(&doc).unwrap();
        assert!(e.check_abort_alarms(&[]).is_err());
        // The deployment's defaults, or stating it, let it run.
        assert!(e.check_abort_alarms(&["team-abort".into()]).is_ok());
        doc["extensions"] = json!([{"name": "turbulence", "without_abort_alarms": true}]);
        assert!(Experiment::parse(&doc)
            .unwrap()
            .check_abort_alarms(&[])
            .is_ok());
        // Both at once is a contradiction.
        doc["extensions"] =
            json!([{"name": "turbulence", "without_abort_alarms": true, "abort_alarms": ["a"]}]);
        assert!(refused(doc.clone())
            .contains("without_abort_alarms: is true but 'abort_alarms' names alarms"));
        // Probes only, or a dry run of the actions, change nothing.
        doc["extensions"] = json!([{"name": "turbulence", "dry_run": "actions"}]);
        assert!(Experiment::parse(&doc)
            .unwrap()
            .check_abort_alarms(&[])
            .is_ok());
        doc["extensions"] = json!([]);
        doc["method"] = json!([]);
        doc["steady-state-hypothesis"] = json!({"title": "h", "probes": [{"type": "probe", "name": "p", "tolerance": true,
            "provider": {"type": "python", "module": "chaosaws.ecs.probes", "func": "are_all_desired_tasks_running",
                "arguments": {"cluster": "c", "service": "s"}}}]});
        assert!(Experiment::parse(&doc)
            .unwrap()
            .check_abort_alarms(&[])
            .is_ok());
    }

    #[test]
    fn unknown_top_level_keys_warn_and_misspelt_ones_are_refused() {
        let mut doc = ecs_experiment();
        doc["authors"] = json!(["ada"]);
        doc["x-team"] = json!("platform");
        let e = Experiment::parse(&doc).unwrap();
        assert_eq!(
            e.warnings,
            vec![
                "top-level key 'authors' is not part of the Chaos Toolkit format and was ignored"
                    .to_string(),
                "top-level key 'x-team' is not part of the Chaos Toolkit format and was ignored"
                    .to_string(),
            ]
        );
        for (key, meant) in [
            ("rollback", "rollbacks"),
            ("steady_state_hypothesis", "steady-state-hypothesis"),
            ("extension", "extensions"),
            ("Configuration", "configuration"),
        ] {
            let mut doc = ecs_experiment();
            doc[key] = json!([]);
            let msg = refused(doc);
            assert!(
                msg.contains(&format!("unknown key '{key}' (did you mean '{meant}'?")),
                "{msg}"
            );
        }
    }

    #[test]
    fn chaosaws_account_and_credential_settings_are_refused() {
        for key in ["aws_role_arn", "aws_profile_name"] {
            let mut doc = ecs_experiment();
            doc["configuration"] = json!({key: "x"});
            let msg = refused(doc);
            assert!(msg.starts_with(&format!("configuration.{key}: ")), "{msg}");
        }
        let mut doc = ecs_experiment();
        doc["secrets"] = json!({"aws": {"aws_secret_access_key": {"type": "env", "key": "K"}}});
        assert!(refused(doc).starts_with(
            "secrets.aws.aws_secret_access_key: chaosaws would act with these AWS credentials"
        ));
        let mut doc = ecs_experiment();
        doc["configuration"]["aws_region"] = json!("eu-west-1");
        assert_eq!(
            Experiment::parse(&doc).unwrap().region,
            Some(json!("eu-west-1"))
        );
    }

    #[test]
    fn other_extensions_are_left_alone() {
        let mut doc = ecs_experiment();
        doc["extensions"] = json!([{"name": "chaosiq", "anything": 1}, {"name": "turbulence", "abort_alarms": ["a"], "time_scale": 0.01}]);
        let e = Experiment::parse(&doc).unwrap();
        assert_eq!(e.extension.abort_alarms, vec!["a".to_string()]);
        assert_eq!(e.extension.time_scale, Some(0.01));
    }

    #[test]
    fn non_object_input_is_refused() {
        assert_eq!(refused(json!("hello")), "experiment: must be a JSON object");
        assert_eq!(refused(json!(null)), "experiment: must be a JSON object");
    }

    #[test]
    fn huge_experiment_is_refused() {
        let mut doc = ecs_experiment();
        doc["description"] = json!("x".repeat(MAX_EXPERIMENT_BYTES));
        assert!(refused(doc).contains("over the 65536-byte limit"));
    }
}
