//! The catalogue: every activity Turbulence runs, each declared once in the
//! module of its AWS service ([`crate::ecs`], [`crate::awslambda`],
//! [`crate::cloudwatch`], ...): its name and kind, its arguments (types,
//! defaults, bounds, required), the resources it touches, the undo it
//! records, the IAM actions it calls, and how it runs.
//!
//! Everything else reads those declarations: Plan's argument checks and
//! refusals ([`Call::parse`]), the README's table and `turbulence catalogue`
//! ([`doc`]), the JSON Schema for editors ([`schema`]), the opt-in, lock and
//! blast-radius guards ([`Call::touches`], [`Activity::preflight`]), and the
//! template test's IAM calls per function ([`iam_of`]). chaostoolkit-aws is
//! the reference for names and arguments: `tests/tests/ctk.rs` compares
//! every `chaosaws.*` declaration with the installed function's signature,
//! and every function of the installed package is either declared here or
//! refused with its reason ([`Refusal`]).

mod args;
pub mod doc;
mod resource;
pub mod schema;

use std::collections::BTreeSet;
use std::fmt;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use args::{
    custom, flag, int, json, number, object, one_of, text, texts, Fallback, Param, Rule, Type,
};
pub use resource::{OptIn, Resource, ResourceType, TagReader};

use crate::{ActivityError, Context, Outcome, Ports};

/// Probes observe; actions change something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivityType {
    Probe,
    Action,
}

/// What an experiment may use an activity as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Probe,
    Action,
    /// The `http` provider: a probe or an action alike.
    Either,
}

impl Kind {
    pub fn allows(self, kind: ActivityType) -> bool {
        matches!(
            (self, kind),
            (Kind::Either, _)
                | (Kind::Probe, ActivityType::Probe)
                | (Kind::Action, ActivityType::Action)
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Probe => "probe",
            Kind::Action => "action",
            Kind::Either => "probe or action",
        }
    }
}

/// A call as written in the experiment: `module.func` and its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSpec {
    pub function: String,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

/// A check of a call's arguments beyond its parameters and rules.
pub type Check = fn(&Call) -> Result<(), String>;

/// How an activity runs: against the ports, in the run's context.
pub type Run = for<'a, 'c> fn(
    &'a Call,
    &'a Ports<'a>,
    &'a mut Context<'c>,
) -> BoxFuture<'a, Result<Outcome, ActivityError>>;

/// A check Plan makes before anything runs, reading only (the blast radius
/// of a task stop counts the tasks running now). A refusal is
/// [`ActivityError::Refused`].
pub type Preflight = for<'a> fn(
    &'a Call,
    &'a Ports<'a>,
    &'a crate::guard::BlastRadius,
) -> BoxFuture<'a, Result<(), ActivityError>>;

/// The run function of an `async fn (call, ports, ctx)`, as a [`Run`].
#[macro_export]
macro_rules! run {
    ($f:path) => {{
        fn run<'a, 'c>(
            call: &'a $crate::Call,
            ports: &'a $crate::Ports<'a>,
            ctx: &'a mut $crate::Context<'c>,
        ) -> ::futures_util::future::BoxFuture<
            'a,
            ::std::result::Result<$crate::Outcome, $crate::ActivityError>,
        > {
            ::std::boxed::Box::pin($f(call, ports, ctx))
        }
        run as $crate::catalogue::Run
    }};
}

/// The preflight of an `async fn (call, ports, blast_radius)`, as a
/// [`Preflight`].
#[macro_export]
macro_rules! preflight {
    ($f:path) => {{
        fn preflight<'a>(
            call: &'a $crate::Call,
            ports: &'a $crate::Ports<'a>,
            caps: &'a $crate::guard::BlastRadius,
        ) -> ::futures_util::future::BoxFuture<'a, ::std::result::Result<(), $crate::ActivityError>>
        {
            ::std::boxed::Box::pin($f(call, ports, caps))
        }
        preflight as $crate::catalogue::Preflight
    }};
}

/// What undoes an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revert {
    /// A probe: it changes nothing.
    Nothing,
    /// The action records, before its change, a call of one of these
    /// activities that puts back what it found (which one depends on what
    /// it found). Rollbacks and the janitor run it.
    By(&'static [&'static str]),
    /// There is nothing to put back, and why (ECS replaces a stopped task;
    /// the action is itself the undo of another).
    NotNeeded(&'static str),
}

/// An IAM action an activity calls, and how its grant is fenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Iam {
    pub action: &'static str,
    pub fence: Fence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    /// Reads: scoped to the target patterns of the template.
    Read,
    /// Changes an opted-in resource: every grant must be conditioned on the
    /// opt-in tag (`aws:ResourceTag/turbulence:opt-in` = `true`), so IAM
    /// refuses what the guards would.
    OptInTag,
    /// Changes something fenced another way (a parameter path), and how.
    Scoped(&'static str),
}

/// A read-only IAM action.
pub const fn read(action: &'static str) -> Iam {
    Iam {
        action,
        fence: Fence::Read,
    }
}

/// A change whose grant carries the opt-in tag condition.
pub const fn tagged(action: &'static str) -> Iam {
    Iam {
        action,
        fence: Fence::OptInTag,
    }
}

/// A change fenced by its resource scope, and how.
pub const fn scoped(action: &'static str, how: &'static str) -> Iam {
    Iam {
        action,
        fence: Fence::Scoped(how),
    }
}

/// One activity, declared once.
pub struct Activity {
    /// `module.func`, as a Chaos Toolkit python provider names it
    /// (`chaosaws.ecs.actions.stop_task`); Turbulence's own are under
    /// `turbulence.`.
    pub name: &'static str,
    pub kind: Kind,
    /// What it does and returns, and where it differs from chaosaws.
    pub doc: &'static str,
    pub params: &'static [Param],
    /// Rules across arguments (exactly one of two, ...).
    pub rules: &'static [Rule],
    /// What the parameters and rules cannot say.
    pub check: Option<Check>,
    /// The types of resource it may change (or invoke).
    pub touched: &'static [&'static ResourceType],
    /// The resources of a call it changes (or invokes), each of a type in
    /// `touched`: what must opt in, what is locked. Probes touch nothing.
    pub touches: fn(&Call) -> Vec<Resource>,
    pub undo: Revert,
    /// The IAM actions its run calls.
    pub iam: &'static [Iam],
    /// Plan's read-only check before anything runs.
    pub preflight: Option<Preflight>,
    /// The IAM actions the preflight calls (in the Plan function).
    pub preflight_iam: &'static [Iam],
    /// Example arguments (JSON), for the documentation and the tests.
    pub example: &'static str,
    /// Turbulence's own bookkeeping (a lock release): it runs as an undo,
    /// an experiment may not call it, and no listing shows it.
    pub internal: bool,
    pub run: Run,
}

fn touches_nothing(_: &Call) -> Vec<Resource> {
    Vec::new()
}

impl Activity {
    const fn new(name: &'static str, kind: Kind, run: Run) -> Activity {
        Activity {
            name,
            kind,
            doc: "",
            params: &[],
            rules: &[],
            check: None,
            touched: &[],
            touches: touches_nothing,
            undo: Revert::Nothing,
            iam: &[],
            preflight: None,
            preflight_iam: &[],
            example: "{}",
            internal: false,
            run,
        }
    }

    pub const fn probe(name: &'static str, run: Run) -> Activity {
        Activity::new(name, Kind::Probe, run)
    }

    pub const fn action(name: &'static str, run: Run) -> Activity {
        Activity::new(name, Kind::Action, run)
    }

    pub const fn either(name: &'static str, run: Run) -> Activity {
        Activity::new(name, Kind::Either, run)
    }

    pub const fn doc(mut self, doc: &'static str) -> Self {
        self.doc = doc;
        self
    }

    pub const fn params(mut self, params: &'static [Param]) -> Self {
        self.params = params;
        self
    }

    pub const fn rules(mut self, rules: &'static [Rule]) -> Self {
        self.rules = rules;
        self
    }

    pub const fn check(mut self, check: Check) -> Self {
        self.check = Some(check);
        self
    }

    /// What it touches: resources of these types, from a call.
    pub const fn touches(
        mut self,
        types: &'static [&'static ResourceType],
        touches: fn(&Call) -> Vec<Resource>,
    ) -> Self {
        self.touched = types;
        self.touches = touches;
        self
    }

    pub const fn undo(mut self, undo: Revert) -> Self {
        self.undo = undo;
        self
    }

    pub const fn iam(mut self, iam: &'static [Iam]) -> Self {
        self.iam = iam;
        self
    }

    pub const fn preflight(mut self, preflight: Preflight, iam: &'static [Iam]) -> Self {
        self.preflight = Some(preflight);
        self.preflight_iam = iam;
        self
    }

    pub const fn example(mut self, example: &'static str) -> Self {
        self.example = example;
        self
    }

    pub const fn internal(mut self) -> Self {
        self.internal = true;
        self
    }

    /// `chaosaws.ecs.actions` of `chaosaws.ecs.actions.stop_task`.
    pub fn module(&self) -> &'static str {
        self.name.rsplit_once('.').map_or("", |(m, _)| m)
    }

    /// `stop_task` of `chaosaws.ecs.actions.stop_task`.
    pub fn func(&self) -> &'static str {
        self.name.rsplit_once('.').map_or(self.name, |(_, f)| f)
    }

    pub fn param(&self, name: &str) -> Option<&'static Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// The example arguments as an object.
    pub fn example_arguments(&self) -> Map<String, Value> {
        serde_json::from_str(self.example).unwrap_or_default()
    }
}

impl fmt::Debug for Activity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// A function of chaostoolkit-aws Turbulence does not run, and why.
#[derive(Debug, Clone, Copy)]
pub struct Refusal {
    pub name: &'static str,
    pub why: Why,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Its change cannot be undone: what is lost, and what to use instead.
    Destructive(&'static str),
    /// Not run natively (yet), and why.
    NotNative(&'static str),
}

impl Refusal {
    pub const fn destructive(name: &'static str, why: &'static str) -> Refusal {
        Refusal {
            name,
            why: Why::Destructive(why),
        }
    }

    pub const fn not_native(name: &'static str, why: &'static str) -> Refusal {
        Refusal {
            name,
            why: Why::NotNative(why),
        }
    }

    pub fn message(&self) -> String {
        match self.why {
            Why::Destructive(why) => format!(
                "'{}' is refused: it is destructive, nothing can undo its change ({why}); Turbulence runs only changes it can undo",
                self.name
            ),
            Why::NotNative(why) => format!("'{}' does not run in Turbulence: {why}", self.name),
        }
    }
}

/// The activities of one service, and the chaosaws functions of it that
/// Turbulence refuses.
pub struct Module {
    /// `ecs`, as chaosaws names the module.
    pub service: &'static str,
    /// `Amazon ECS`.
    pub title: &'static str,
    pub activities: &'static [Activity],
    pub refused: &'static [Refusal],
}

/// Every service module, in the order the documentation lists them.
pub static MODULES: &[&Module] = &[
    &crate::ecs::MODULE,
    &crate::awslambda::MODULE,
    &crate::elbv2::MODULE,
    &crate::cloudwatch::MODULE,
    &crate::ssm::MODULE,
    &crate::faults::MODULE,
    &crate::http::MODULE,
    &crate::attack::MODULE,
    &crate::guard::MODULE,
    &crate::unsupported::ASG,
    &crate::unsupported::EC2,
    &crate::unsupported::RDS,
    &crate::unsupported::FIS,
    &crate::unsupported::EKS,
    &crate::unsupported::ELASTICACHE,
    &crate::unsupported::EMR,
    &crate::unsupported::IAM,
    &crate::unsupported::INCIDENTS,
    &crate::unsupported::MSK,
    &crate::unsupported::ROUTE53,
    &crate::unsupported::S3,
    &crate::unsupported::XRAY,
];

/// Every activity, internal ones included.
pub fn activities() -> impl Iterator<Item = &'static Activity> {
    MODULES.iter().flat_map(|m| m.activities.iter())
}

/// Every chaosaws function Turbulence refuses, with its reason.
pub fn refusals() -> impl Iterator<Item = &'static Refusal> {
    MODULES.iter().flat_map(|m| m.refused.iter())
}

/// The activity of this name, internal ones included.
pub fn find(name: &str) -> Option<&'static Activity> {
    activities().find(|a| a.name == name)
}

/// What experiments may call, by name.
pub fn supported() -> Vec<&'static str> {
    activities()
        .filter(|a| !a.internal)
        .map(|a| a.name)
        .collect()
}

/// The python modules experiments may call (`chaosaws.ecs.actions`, ...),
/// in the catalogue's order.
pub fn python_modules() -> Vec<&'static str> {
    let mut modules: Vec<&'static str> = Vec::new();
    for a in activities().filter(|a| !a.internal && a.name != HTTP) {
        if !modules.contains(&a.module()) {
            modules.push(a.module());
        }
    }
    modules
}

/// The IAM actions of a set of activities (for the template test: the
/// probe function runs the probes, the action function the actions and
/// every undo, the janitor the undos).
pub fn iam_of<'a>(activities: impl IntoIterator<Item = &'a Activity>) -> BTreeSet<&'static str> {
    activities
        .into_iter()
        .flat_map(|a| a.iam.iter().map(|i| i.action))
        .collect()
}

/// The activities that undo others: what the janitor may run.
pub fn undos() -> impl Iterator<Item = &'static Activity> {
    let named: BTreeSet<&str> = activities()
        .filter_map(|a| match a.undo {
            Revert::By(u) => Some(u),
            _ => None,
        })
        .flatten()
        .copied()
        .collect();
    activities().filter(move |a| named.contains(a.name))
}

/// The function name the `http` provider is catalogued under.
pub const HTTP: &str = "http";

/// Chaos Toolkit passes these to every chaosaws function implicitly; an
/// experiment may still spell them out.
pub const IMPLICIT: &[&str] = &["configuration", "secrets"];

/// A catalogued call with its arguments checked: every declared parameter
/// is present with its declared type (or its default) or absent when
/// optional; nothing else is.
#[derive(Clone)]
pub struct Call {
    pub activity: &'static Activity,
    args: Map<String, Value>,
}

impl PartialEq for Call {
    fn eq(&self, other: &Self) -> bool {
        self.activity.name == other.activity.name && self.args == other.args
    }
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({})",
            self.activity.name,
            Value::Object(self.args.clone())
        )
    }
}

impl Call {
    /// Check a call against its declaration. Plan parses every call before
    /// anything runs, and the probe and action functions parse again from
    /// the same spec, so there is one way from JSON to a call.
    pub fn parse(spec: &CallSpec) -> Result<Call, String> {
        let activity = find(&spec.function).ok_or_else(|| unknown(&spec.function))?;
        let args = args::check(activity, &spec.arguments)?;
        let call = Call { activity, args };
        if let Some(check) = activity.check {
            check(&call)?;
        }
        Ok(call)
    }

    /// [`Call::parse`] for what an experiment wrote: Turbulence's internal
    /// activities are not for experiments to call.
    pub fn parse_experiment(spec: &CallSpec) -> Result<Call, String> {
        let call = Call::parse(spec)?;
        if call.activity.internal {
            return Err(unknown(&spec.function));
        }
        Ok(call)
    }

    pub fn name(&self) -> &'static str {
        self.activity.name
    }

    pub fn kind(&self) -> Kind {
        self.activity.kind
    }

    /// Whether an activity of `kind` may make this call.
    pub fn allows(&self, kind: ActivityType) -> bool {
        self.activity.kind.allows(kind)
    }

    /// What this call changes, for the opt-in and lock guards.
    pub fn touches(&self) -> Vec<Resource> {
        (self.activity.touches)(self)
    }

    /// The checked arguments, defaults filled in.
    pub fn arguments(&self) -> &Map<String, Value> {
        &self.args
    }

    fn get(&self, name: &str) -> Option<&Value> {
        debug_assert!(
            self.activity.param(name).is_some(),
            "{} declares no parameter '{name}'",
            self.activity.name
        );
        self.args.get(name).filter(|v| !v.is_null())
    }

    /// A text argument that is required or has a default.
    pub fn text(&self, name: &str) -> &str {
        self.opt_text(name).unwrap_or_default()
    }

    pub fn opt_text(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    /// A whole-number argument that is required or has a default.
    pub fn int(&self, name: &str) -> i64 {
        self.opt_int(name).unwrap_or_default()
    }

    pub fn opt_int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_i64)
    }

    pub fn number(&self, name: &str) -> f64 {
        self.get(name).and_then(Value::as_f64).unwrap_or_default()
    }

    pub fn flag(&self, name: &str) -> bool {
        self.get(name).and_then(Value::as_bool).unwrap_or(false)
    }

    pub fn opt_flag(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(Value::as_bool)
    }

    /// Any JSON argument; `Null` when absent.
    pub fn value(&self, name: &str) -> &Value {
        self.get(name).unwrap_or(&Value::Null)
    }

    /// A list-of-text argument; empty when absent.
    pub fn texts(&self, name: &str) -> Vec<&str> {
        self.get(name)
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// `argument 'x' of F <msg>`, the way every argument error reads.
    pub fn err(&self, name: &str, msg: impl fmt::Display) -> String {
        format!("argument '{name}' of {} {msg}", self.activity.name)
    }
}

/// A call of a catalogued activity, as a spec (an undo's call).
pub fn spec(function: &str, arguments: Value) -> CallSpec {
    CallSpec {
        function: function.into(),
        arguments: arguments.as_object().cloned().unwrap_or_default(),
    }
}

/// Why a function name is not an activity, and what was meant.
fn unknown(function: &str) -> String {
    if let Some(refusal) = refusals().find(|r| r.name == function) {
        return refusal.message();
    }
    let callable: Vec<&'static Activity> = activities().filter(|a| !a.internal).collect();
    let meant = crate::suggest::did_you_mean(function, callable.iter().map(|a| a.name));
    let module = function.rsplit_once('.').map_or("", |(m, _)| m);
    let same_module: Vec<&str> = callable
        .iter()
        .filter(|a| a.module() == module)
        .map(|a| a.func())
        .collect();
    let hint = if !same_module.is_empty() {
        format!("; {module} has {}", same_module.join(", "))
    } else {
        format!(
            "; the supported modules are {} and http providers",
            python_modules().join(", ")
        )
    };
    format!(
        "'{function}' is not supported{meant}{hint} (`turbulence catalogue` lists every activity)"
    )
}

/// What a JSON value is, for messages.
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The host of an http(s) URL.
pub fn parsed_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests;
