//! AWS Systems Manager Parameter Store: chaosaws's `ssm` module, and the
//! parameters Turbulence keeps its own records in.

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::catalogue::{
    custom, flag, one_of, read, scoped, spec, text, Activity, Call, Module, OptIn, Refusal,
    Resource, ResourceType, Revert,
};
use crate::ports::{unavailable, AwsError, Unavailable};
use crate::{run, ActivityError, Context, Outcome, Ports, Undo};

/// SSM parameters: where fault configurations, locks and run records live.
#[async_trait]
pub trait Parameters: Send + Sync {
    /// The value, or `None` when the parameter does not exist.
    async fn get(&self, name: &str) -> Result<Option<String>, AwsError>;
    async fn put(&self, put: &PutParameter) -> Result<(), AwsError>;
    /// `false` when there was nothing to delete.
    async fn delete(&self, name: &str) -> Result<bool, AwsError>;
    /// Create a String parameter unless one exists (a conditional write:
    /// of two callers, one wins). `false` when it existed.
    async fn create(&self, name: &str, value: &str) -> Result<bool, AwsError>;
    /// Every parameter under a path, recursively: (name, value).
    async fn list(&self, path: &str) -> Result<Vec<(String, String)>, AwsError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutParameter {
    pub name: String,
    pub value: String,
    /// String, StringList or SecureString.
    pub kind: String,
    pub description: Option<String>,
    pub overwrite: bool,
}

#[async_trait]
impl Parameters for Unavailable {
    async fn get(&self, _: &str) -> Result<Option<String>, AwsError> {
        Err(unavailable("SSM"))
    }
    async fn put(&self, _: &PutParameter) -> Result<(), AwsError> {
        Err(unavailable("SSM"))
    }
    async fn delete(&self, _: &str) -> Result<bool, AwsError> {
        Err(unavailable("SSM"))
    }
    async fn create(&self, _: &str, _: &str) -> Result<bool, AwsError> {
        Err(unavailable("SSM"))
    }
    async fn list(&self, _: &str) -> Result<Vec<(String, String)>, AwsError> {
        Err(unavailable("SSM"))
    }
}

/// An SSM parameter. Fenced by IAM rather than tags: the functions may
/// write only under the template's parameter prefixes.
pub static PARAMETER: ResourceType = ResourceType {
    service: "ssm",
    name: "parameter",
    noun: "SSM parameter",
    parent: None,
    lock: "ssm",
    opt_in: OptIn::Fenced("IAM allows writes only under the FaultParameterPrefix path"),
};

const WRITES: &str = "granted only under the template's parameter prefix";

/// An SSM parameter name: a path of letters, digits and `_.-/`.
pub fn parameter_name(v: &Value) -> Result<Value, String> {
    let text = v
        .as_str()
        .ok_or_else(|| format!("must be a string, found {}", crate::catalogue::kind_of(v)))?;
    let ok = !text.is_empty()
        && text.len() <= 1011
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
    if !ok {
        return Err(format!("is not an SSM parameter name: \"{text}\""));
    }
    Ok(v.clone())
}

/// A parameter's value: text, or any other JSON as its JSON text (a fault
/// configuration written inline as an object, say).
fn value_text(v: &Value) -> Result<Value, String> {
    Ok(match v {
        Value::String(_) => v.clone(),
        other => Value::String(other.to_string()),
    })
}

pub const PUT_PARAMETER: &str = "chaosaws.ssm.actions.put_parameter";
pub const DELETE_PARAMETER: &str = "turbulence.ssm.actions.delete_parameter";
const LATER: &str =
    "Turbulence does not set it yet, and ignoring it would write another parameter than the one asked for";

pub static MODULE: Module = Module {
    service: "ssm",
    title: "AWS Systems Manager",
    activities: &[
        Activity::action(PUT_PARAMETER, run!(put_parameter))
            .doc("The rollback restores the previous value, or deletes a parameter it created.")
            .params(&[
                custom("name", "SSM parameter name", parameter_name),
                custom("value", "string (other JSON is written as its text)", value_text),
                text("description").optional(),
                one_of("type", &["String", "StringList", "SecureString"]).or_text("String"),
                text("key_id").refused(LATER),
                flag("overwrite").or_bool(false),
                text("allowed_pattern").refused(LATER),
                crate::catalogue::json("tags").refused(LATER),
                text("tier").refused(LATER),
                text("policies").refused(LATER),
                text("data_type").refused(LATER),
            ])
            .touches(&[&PARAMETER], parameter)
            .undo(Revert::By(&[PUT_PARAMETER, DELETE_PARAMETER]))
            .iam(&[
                read("ssm:GetParameter"),
                scoped("ssm:PutParameter", WRITES),
            ])
            .example(r#"{"name": "/turbulence/faults/feature-flag", "value": "off", "overwrite": true}"#),
        Activity::action(DELETE_PARAMETER, run!(delete_parameter))
            .doc("What undoes a `put_parameter` that created its parameter.")
            .params(&[custom("name", "SSM parameter name", parameter_name)])
            .touches(&[&PARAMETER], parameter)
            .undo(Revert::NotNeeded("it undoes a put_parameter that created its parameter"))
            .iam(&[scoped("ssm:DeleteParameter", WRITES)])
            .example(r#"{"name": "/turbulence/faults/feature-flag"}"#),
    ],
    refused: &[
        Refusal::destructive(
            "chaosaws.ssm.actions.delete_document",
            "the document and its versions are gone",
        ),
        Refusal::not_native(
            "chaosaws.ssm.actions.send_command",
            "it runs arbitrary commands on instances, whose effect Turbulence can neither know nor undo",
        ),
        Refusal::not_native("chaosaws.ssm.actions.create_document", "not in the catalogue yet"),
    ],
};

fn parameter(c: &Call) -> Vec<Resource> {
    vec![PARAMETER.of(c.text("name"))]
}

async fn put_parameter(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let (name, kind, overwrite) = (c.text("name"), c.text("type"), c.flag("overwrite"));
    let previous = ports.parameters.get(name).await?;
    if previous.is_some() && !overwrite {
        return Err(ActivityError::Failed(format!(
            "parameter '{name}' exists and 'overwrite' is false"
        )));
    }
    let undo = match &previous {
        None => Undo {
            name: format!("delete parameter '{name}'"),
            call: spec(DELETE_PARAMETER, json!({"name": name})),
        },
        Some(old) => Undo {
            name: format!("restore parameter '{name}'"),
            call: spec(
                PUT_PARAMETER,
                json!({"name": name, "value": old, "type": kind, "overwrite": true}),
            ),
        },
    };
    ctx.undo_log.will_change(&undo).await?;
    ports
        .parameters
        .put(&PutParameter {
            name: name.into(),
            value: c.text("value").into(),
            kind: kind.into(),
            description: c.opt_text("description").map(str::to_string),
            overwrite,
        })
        .await?;
    Ok(Outcome {
        output: json!({"name": name, "created": previous.is_none()}),
        detail: None,
        undo: Some(undo),
    })
}

async fn delete_parameter(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let name = c.text("name");
    let deleted = ports.parameters.delete(name).await?;
    Ok(Outcome::output(json!({"name": name, "deleted": deleted})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeEcs;
    use crate::testing::{call, T};

    #[tokio::test]
    async fn put_parameter_undoes_to_what_was_there() {
        let mut t = T::new(FakeEcs::default());
        let put = |value: &str| {
            call(
                PUT_PARAMETER,
                json!({"name": "/p", "value": value, "overwrite": true}),
            )
        };
        let created = t.run(&put("one")).await.unwrap().undo.unwrap();
        assert_eq!(created.call.function, DELETE_PARAMETER);
        let replaced = t.run(&put("two")).await.unwrap().undo.unwrap();
        assert_eq!(replaced.call.arguments["value"], "one");
        t.run(&Call::parse(&replaced.call).unwrap()).await.unwrap();
        assert_eq!(t.parameters.value("/p").as_deref(), Some("one"));
        t.run(&Call::parse(&created.call).unwrap()).await.unwrap();
        assert_eq!(t.parameters.value("/p"), None);
    }

    #[test]
    fn what_chaosaws_takes_and_turbulence_cannot_honour_is_refused() {
        let e = Call::parse(&spec(
            PUT_PARAMETER,
            json!({"name": "/p", "value": "v", "tier": "Advanced"}),
        ))
        .unwrap_err();
        assert_eq!(
            e,
            "argument 'tier' of chaosaws.ssm.actions.put_parameter is not supported: Turbulence does not set it yet, and ignoring it would write another parameter than the one asked for"
        );
        let e =
            Call::parse(&spec(PUT_PARAMETER, json!({"name": "a b", "value": "v"}))).unwrap_err();
        assert_eq!(
            e,
            "argument 'name' of chaosaws.ssm.actions.put_parameter is not an SSM parameter name: \"a b\""
        );
    }
}
