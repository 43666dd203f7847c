//! Arguments: each declared with its type, bounds and default, and checked
//! by one set of rules with one wording for every activity.

use serde_json::{Map, Value};

use super::{kind_of, Activity, IMPLICIT};

/// What an argument holds.
#[derive(Debug, Clone, Copy)]
pub enum Type {
    /// A non-empty string.
    Text,
    /// A whole number within bounds (a string holding one is read too:
    /// Chaos Toolkit configuration often arrives as text).
    Int {
        min: i64,
        max: i64,
    },
    /// A number within bounds.
    Number {
        min: f64,
        max: f64,
    },
    Bool,
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// A list of non-empty strings.
    Texts,
    /// A JSON object.
    Object,
    /// Any JSON value.
    Json,
    /// Checked and normalised by its own function (a fault configuration,
    /// a load attack's stages), described by `shape`.
    Custom {
        shape: &'static str,
        check: fn(&Value) -> Result<Value, String>,
    },
}

impl Type {
    /// How the documentation names the type.
    pub fn shape(&self) -> String {
        match self {
            Type::Text => "string".into(),
            Type::Int { min, max } => match (*min, *max) {
                (i64::MIN, i64::MAX) => "integer".into(),
                (min, i64::MAX) => format!("integer ≥ {min}"),
                (min, max) => format!("integer {min}–{max}"),
            },
            Type::Number { min, max } => format!("number {min}–{max}"),
            Type::Bool => "boolean".into(),
            Type::OneOf(values) => values.join(" | "),
            Type::Texts => "list of strings".into(),
            Type::Object => "object".into(),
            Type::Json => "any JSON".into(),
            Type::Custom { shape, .. } => (*shape).into(),
        }
    }
}

/// What an absent optional argument means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fallback {
    /// Nothing: the activity does without.
    None,
    Text(&'static str),
    Int(i64),
    Bool(bool),
}

impl Fallback {
    pub fn value(&self) -> Option<Value> {
        match self {
            Fallback::None => None,
            Fallback::Text(s) => Some(Value::from(*s)),
            Fallback::Int(i) => Some(Value::from(*i)),
            Fallback::Bool(b) => Some(Value::from(*b)),
        }
    }
}

/// One argument, as chaostoolkit-aws names it.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub ty: Type,
    pub required: bool,
    pub default: Fallback,
    pub doc: &'static str,
    /// chaosaws takes it, Turbulence cannot honour it: refused when given,
    /// with this reason (never ignored).
    pub refused: Option<&'static str>,
}

const fn param(name: &'static str, ty: Type) -> Param {
    Param {
        name,
        ty,
        required: true,
        default: Fallback::None,
        doc: "",
        refused: None,
    }
}

/// A required string.
pub const fn text(name: &'static str) -> Param {
    param(name, Type::Text)
}

/// A required whole number from `min` to `max`.
pub const fn int(name: &'static str, min: i64, max: i64) -> Param {
    param(name, Type::Int { min, max })
}

/// A required number from `min` to `max`.
pub const fn number(name: &'static str, min: f64, max: f64) -> Param {
    param(name, Type::Number { min, max })
}

/// A required boolean.
pub const fn flag(name: &'static str) -> Param {
    param(name, Type::Bool)
}

/// A required string, one of `values`.
pub const fn one_of(name: &'static str, values: &'static [&'static str]) -> Param {
    param(name, Type::OneOf(values))
}

/// A required list of strings.
pub const fn texts(name: &'static str) -> Param {
    param(name, Type::Texts)
}

/// A required JSON object.
pub const fn object(name: &'static str) -> Param {
    param(name, Type::Object)
}

/// A required JSON value of any kind.
pub const fn json(name: &'static str) -> Param {
    param(name, Type::Json)
}

/// A required value with its own check.
pub const fn custom(
    name: &'static str,
    shape: &'static str,
    check: fn(&Value) -> Result<Value, String>,
) -> Param {
    param(name, Type::Custom { shape, check })
}

impl Param {
    /// Optional, with nothing in its place when absent.
    pub const fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    /// Optional, with this default.
    pub const fn or(mut self, default: Fallback) -> Self {
        self.required = false;
        self.default = default;
        self
    }

    pub const fn or_text(self, default: &'static str) -> Self {
        self.or(Fallback::Text(default))
    }

    pub const fn or_int(self, default: i64) -> Self {
        self.or(Fallback::Int(default))
    }

    pub const fn or_bool(self, default: bool) -> Self {
        self.or(Fallback::Bool(default))
    }

    pub const fn doc(mut self, doc: &'static str) -> Self {
        self.doc = doc;
        self
    }

    /// Optional in chaosaws, refused here when given, and why.
    pub const fn refused(mut self, why: &'static str) -> Self {
        self.required = false;
        self.refused = Some(why);
        self
    }
}

/// A rule across arguments.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// Exactly one of these is given.
    ExactlyOne(&'static [&'static str]),
    /// At most one of these is given.
    AtMostOne(&'static [&'static str]),
    /// At least one of these is given.
    AtLeastOne(&'static [&'static str]),
    /// All of these or none.
    Together(&'static [&'static str]),
}

impl Rule {
    pub fn describe(&self) -> String {
        let names = |n: &[&str]| {
            n.iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(" and ")
        };
        match self {
            Rule::ExactlyOne(n) => format!("exactly one of {}", names(n)),
            Rule::AtMostOne(n) => format!("at most one of {}", names(n)),
            Rule::AtLeastOne(n) => format!("at least one of {}", names(n)),
            Rule::Together(n) => format!("{} go together", names(n)),
        }
    }
}

fn given(map: &Map<String, Value>, name: &str) -> bool {
    map.get(name).is_some_and(|v| !v.is_null())
}

/// The arguments of a call checked against the declaration: unknown and
/// refused names, missing required ones, types and bounds, the rules.
/// Defaults are filled in and values normalised (`"3"` → `3`).
pub(super) fn check(
    activity: &Activity,
    arguments: &Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    let f = activity.name;
    for key in arguments.keys() {
        if IMPLICIT.contains(&key.as_str()) || activity.param(key).is_some() {
            continue;
        }
        let meant = crate::suggest::did_you_mean(key, activity.params.iter().map(|p| p.name));
        return Err(format!(
            "argument '{key}' is not a parameter of {f}{meant} (parameters: {})",
            activity
                .params
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut out = Map::new();
    for p in activity.params {
        let value = arguments.get(p.name).filter(|v| !v.is_null());
        let Some(value) = value else {
            if p.required {
                return Err(format!("argument '{}' is required by {f}", p.name));
            }
            if let Some(d) = p.default.value() {
                out.insert(p.name.into(), d);
            }
            continue;
        };
        if let Some(why) = p.refused {
            return Err(format!(
                "argument '{}' of {f} is not supported: {why}",
                p.name
            ));
        }
        let value = typed(&p.ty, value).map_err(|e| format!("argument '{}' of {f} {e}", p.name))?;
        out.insert(p.name.into(), value);
    }
    for rule in activity.rules {
        let count = |names: &[&str]| names.iter().filter(|n| given(arguments, n)).count();
        let ok = match rule {
            Rule::ExactlyOne(n) => count(n) == 1,
            Rule::AtMostOne(n) => count(n) <= 1,
            Rule::AtLeastOne(n) => count(n) >= 1,
            Rule::Together(n) => count(n) == 0 || count(n) == n.len(),
        };
        if !ok {
            let what = rule.describe();
            return Err(match rule {
                Rule::Together(_) => format!("{what} in {f}"),
                _ => format!("{what} is required by {f}"),
            });
        }
    }
    Ok(out)
}

/// A value as its type wants it, or what is wrong with it (the end of
/// `argument 'x' of F ...`).
fn typed(ty: &Type, value: &Value) -> Result<Value, String> {
    match ty {
        Type::Text => match value {
            Value::String(s) if !s.trim().is_empty() => Ok(value.clone()),
            Value::String(_) => Err("must not be empty".into()),
            other => Err(format!("must be a string, found {}", kind_of(other))),
        },
        Type::Int { min, max } => {
            let bounds = || match (*min, *max) {
                (i64::MIN, i64::MAX) => "a whole number".to_string(),
                (min, i64::MAX) => format!("a whole number ≥ {min}"),
                (min, max) => format!("a whole number from {min} to {max}"),
            };
            let n = match value {
                Value::Number(n) => n.as_i64().ok_or_else(|| n.to_string()),
                Value::String(s) => s.trim().parse::<i64>().map_err(|_| format!("\"{s}\"")),
                other => return Err(format!("must be {}, found {}", bounds(), kind_of(other))),
            };
            match n {
                Ok(n) if (*min..=*max).contains(&n) => Ok(Value::from(n)),
                Ok(n) => Err(format!("must be {}, found {n}", bounds())),
                Err(found) => Err(format!("must be {}, found {found}", bounds())),
            }
        }
        Type::Number { min, max } => {
            let n = match value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            match n {
                Some(n) if n >= *min && n <= *max => Ok(Value::from(n)),
                _ => Err(format!(
                    "must be a number from {min} to {max}, found {value}"
                )),
            }
        }
        Type::Bool => match value {
            Value::Bool(_) => Ok(value.clone()),
            other => Err(format!("must be true or false, found {}", kind_of(other))),
        },
        Type::OneOf(values) => match value.as_str() {
            Some(s) if values.contains(&s) => Ok(value.clone()),
            Some(s) => Err(format!(
                "must be one of {}, found \"{s}\"{}",
                values.join(", "),
                crate::suggest::did_you_mean(s, values.iter().copied())
            )),
            None => Err(format!(
                "must be one of {}, found {}",
                values.join(", "),
                kind_of(value)
            )),
        },
        Type::Texts => match value {
            Value::Array(items)
                if items
                    .iter()
                    .all(|i| i.as_str().is_some_and(|s| !s.trim().is_empty())) =>
            {
                Ok(value.clone())
            }
            Value::Array(_) => Err("must be a list of non-empty strings".into()),
            other => Err(format!(
                "must be a list of strings, found {}",
                kind_of(other)
            )),
        },
        Type::Object => match value {
            Value::Object(_) => Ok(value.clone()),
            other => Err(format!("must be an object, found {}", kind_of(other))),
        },
        Type::Json => Ok(value.clone()),
        Type::Custom { check, .. } => check(value),
    }
}
