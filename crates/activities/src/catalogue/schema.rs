//! A JSON Schema (draft-07) of experiments as Turbulence runs them, for
//! editors: the Chaos Toolkit format, with every catalogued activity's
//! arguments typed as declared. Plan stays the judge (it knows what a
//! schema cannot say: tolerances, configuration lookups, guards).

use serde_json::{json, Map, Value};

use super::{activities, Activity, Fallback, Param, Type, HTTP, IMPLICIT};

/// `${name}` stands for a configuration value or a secret of any type.
const SUBSTITUTION: &str = "^\\$\\{[^}]+\\}$";

fn param_schema(p: &Param) -> Value {
    let substitution = json!({"type": "string", "pattern": SUBSTITUTION});
    let mut s = match p.ty {
        // Strings and any JSON take a substitution as they are.
        Type::Text => json!({"type": "string", "minLength": 1}),
        Type::Json | Type::Custom { .. } => json!({}),
        Type::Int { min, max } => {
            let mut int = json!({"type": "integer", "minimum": min});
            if max != i64::MAX {
                int["maximum"] = json!(max);
            }
            // Chaos Toolkit configuration often arrives as text: "3".
            let digits = json!({"type": "string", "pattern": "^\\s*-?[0-9]+\\s*$"});
            json!({"anyOf": [int, digits, substitution]})
        }
        Type::Number { min, max } => {
            let mut n = json!({"type": "number", "minimum": min});
            if max.is_finite() && max < f64::MAX {
                n["maximum"] = json!(max);
            }
            json!({"anyOf": [n, substitution]})
        }
        Type::Bool => json!({"anyOf": [{"type": "boolean"}, substitution]}),
        Type::OneOf(values) => json!({"anyOf": [{"enum": values}, substitution]}),
        Type::Texts => json!({"anyOf": [
            {"type": "array", "items": {"type": "string", "minLength": 1}},
            substitution,
        ]}),
        Type::Object => json!({"anyOf": [{"type": "object"}, substitution]}),
    };
    let mut description = p.doc.to_string();
    if let Some(why) = p.refused {
        description = format!("Refused by Turbulence: {why}");
        s = json!({"not": {}});
    }
    if !description.is_empty() {
        s["description"] = json!(description);
    }
    match p.default {
        Fallback::None => {}
        other => {
            if let Some(d) = other.value() {
                s["default"] = d;
            }
        }
    }
    s
}

/// The schema of an activity's arguments.
pub fn arguments(a: &Activity) -> Value {
    let mut properties = Map::new();
    for p in a.params {
        properties.insert(p.name.into(), param_schema(p));
    }
    for implicit in IMPLICIT {
        properties.insert((*implicit).into(), json!({}));
    }
    let required: Vec<&str> = a
        .params
        .iter()
        .filter(|p| p.required)
        .map(|p| p.name)
        .collect();
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn python_provider() -> Value {
    let callable: Vec<&Activity> = activities()
        .filter(|a| !a.internal && a.name != HTTP)
        .collect();
    let mut modules: Vec<&str> = callable.iter().map(|a| a.module()).collect();
    modules.sort_unstable();
    modules.dedup();
    let mut all_of: Vec<Value> = modules
        .iter()
        .map(|m| {
            let funcs: Vec<&str> = callable
                .iter()
                .filter(|a| a.module() == *m)
                .map(|a| a.func())
                .collect();
            json!({
                "if": {"properties": {"module": {"const": m}}, "required": ["module"]},
                "then": {"properties": {"func": {"enum": funcs}}},
            })
        })
        .collect();
    all_of.extend(callable.iter().map(|a| {
        json!({
            "if": {
                "properties": {"module": {"const": a.module()}, "func": {"const": a.func()}},
                "required": ["module", "func"],
            },
            "then": {
                "description": a.doc,
                "properties": {"arguments": arguments(a)},
            },
        })
    }));
    json!({
        "type": "object",
        "required": ["type", "module", "func"],
        "properties": {
            "type": {"const": "python"},
            "module": {"enum": modules},
            "func": {"type": "string"},
            "arguments": {"type": "object"},
        },
        "allOf": all_of,
    })
}

fn http_provider() -> Value {
    let http = super::find(HTTP)
        .map(arguments)
        .unwrap_or_else(|| json!({}));
    let mut s = http;
    s["properties"]["type"] = json!({"const": "http"});
    s["required"] = json!(["type", "url"]);
    s
}

/// The whole schema.
pub fn experiment() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://github.com/turbulence/turbulence/experiment.schema.json",
        "title": "Turbulence experiment (Chaos Toolkit format)",
        "type": "object",
        "required": ["title", "description", "method"],
        "properties": {
            "version": {"type": "string"},
            "title": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "contributions": {"type": "object", "additionalProperties": {"enum": ["none", "low", "medium", "high"]}},
            "configuration": {"type": "object"},
            "secrets": {"type": "object"},
            "controls": {"type": "array"},
            "runtime": {"type": "object"},
            "extensions": {"type": "array", "items": {"$ref": "#/definitions/extension"}},
            "steady-state-hypothesis": {
                "type": "object",
                "required": ["title"],
                "properties": {
                    "title": {"type": "string"},
                    "probes": {"type": "array", "items": {"$ref": "#/definitions/activity"}},
                },
            },
            "method": {"type": "array", "items": {"$ref": "#/definitions/activity"}},
            "rollbacks": {"type": "array", "items": {"$ref": "#/definitions/activity"}},
        },
        "definitions": {
            "extension": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}},
                "if": {"properties": {"name": {"const": "turbulence"}}},
                "then": {
                    "properties": {
                        "abort_alarms": {"type": "array", "items": {"type": "string"}},
                        "without_abort_alarms": {"type": "boolean"},
                        "poll_interval_seconds": {"type": "number", "minimum": 0.2},
                        "wait_chunk_seconds": {"type": "number", "maximum": 840},
                        "time_scale": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                        "dry_run": {"enum": ["probes", "actions", "activities", "pause"]},
                    },
                },
            },
            "activity": {
                "oneOf": [
                    {"type": "object", "required": ["ref"], "properties": {"ref": {"type": "string"}}},
                    {
                        "type": "object",
                        "required": ["type", "name", "provider"],
                        "properties": {
                            "type": {"enum": ["probe", "action"]},
                            "name": {"type": "string", "minLength": 1},
                            "provider": {"oneOf": [{"$ref": "#/definitions/python"}, {"$ref": "#/definitions/http"}]},
                            "pauses": {
                                "type": "object",
                                "properties": {"before": {}, "after": {}},
                                "additionalProperties": false,
                            },
                            "background": {"type": "boolean"},
                            "timeout": {"type": "number"},
                            "tolerance": {},
                        },
                    },
                ],
            },
            "python": python_provider(),
            "http": http_provider(),
        },
    })
}
