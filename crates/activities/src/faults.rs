//! Fault injection into Lambda functions: fault configurations
//! (failure-lambda 1.0 format, read by the `inject` layer) as experiments
//! write, check and clear them.

use inject::config::FaultConfig;
use serde_json::{json, Value};

use crate::awslambda::FUNCTION;
use crate::catalogue::{
    custom, read, scoped, spec, text, Activity, Call, Module, Resource, Revert,
};
use crate::ssm::{parameter_name, PutParameter, PARAMETER};
use crate::{run, ActivityError, Context, Outcome, Ports, Undo};

const INJECT: &str = "turbulence.faults.actions.inject_lambda_faults";
const CLEAR: &str = "turbulence.faults.actions.clear_lambda_faults";
const WRITES: &str = "granted only under FaultParameterPrefix";

/// A fault configuration object, in any format the layer reads, written
/// canonical.
fn configuration(v: &Value) -> Result<Value, String> {
    if !v.is_object() {
        return Err("must be a fault configuration object (failure-lambda 1.0 format)".into());
    }
    canonical(v)
}

pub static MODULE: Module = Module {
    service: "faults",
    title: "Lambda fault injection (Turbulence)",
    activities: &[
        Activity::action(INJECT, run!(inject_lambda_faults))
            .doc("Validated at Plan; written canonical with `expires_at`; refuses to replace an active configuration; the rollback deletes it.")
            .params(&[
                custom("parameter_name", "SSM parameter name", parameter_name),
                text("function_name").doc("The function that reads the parameter: it must opt in."),
                custom(
                    "configuration",
                    "fault configuration (failure-lambda 1.0, 0.x or chaos_lambda format)",
                    configuration,
                ),
            ])
            .touches(&[&PARAMETER, &FUNCTION], parameter_and_function)
            .undo(Revert::By(&[CLEAR]))
            .iam(&[
                read("ssm:GetParameter"),
                scoped("ssm:PutParameter", WRITES),
            ])
            .example(r#"{"parameter_name": "/turbulence/faults/moderation", "function_name": "moderation", "configuration": {"latency": {"enabled": true, "percentage": 50, "min_latency": 1000, "max_latency": 1000}}}"#),
        Activity::action(CLEAR, run!(clear_lambda_faults))
            .doc("Deletes the configuration (idempotent).")
            .params(&[custom("parameter_name", "SSM parameter name", parameter_name)])
            .touches(&[&PARAMETER], parameter)
            .undo(Revert::NotNeeded("it undoes inject_lambda_faults"))
            .iam(&[scoped("ssm:DeleteParameter", WRITES)])
            .example(r#"{"parameter_name": "/turbulence/faults/moderation"}"#),
        Activity::probe(
            "turbulence.faults.probes.lambda_faults_are_empty",
            run!(lambda_faults_are_empty),
        )
        .doc("`true` when there is no configuration or it injects nothing (disabled or expired); unreadable text is not empty.")
        .params(&[custom("parameter_name", "SSM parameter name", parameter_name)])
        .iam(&[read("ssm:GetParameter")])
        .example(r#"{"parameter_name": "/turbulence/faults/moderation"}"#),
    ],
    refused: &[],
};

fn parameter(c: &Call) -> Vec<Resource> {
    vec![PARAMETER.of(c.text("parameter_name"))]
}

/// The parameter it writes, and the function that reads it: that one must
/// have opted in.
fn parameter_and_function(c: &Call) -> Vec<Resource> {
    vec![
        PARAMETER.of(c.text("parameter_name")),
        FUNCTION.of(c.text("function_name")),
    ]
}

async fn inject_lambda_faults(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let parameter_name = c.text("parameter_name");
    if let Some(current) = ports.parameters.get(parameter_name).await? {
        if !is_inert(&current, ctx.now) {
            // Never take over chaos someone else injected.
            return Err(ActivityError::Failed(format!(
                "parameter '{parameter_name}' already holds an active fault configuration; clear it first"
            )));
        }
    }
    let expires_at = crate::timestamp(ctx.now + ctx.experiment_time_left);
    let mut config = c.value("configuration").clone();
    config["expires_at"] = json!(expires_at);
    let undo = Undo {
        name: format!("clear fault configuration '{parameter_name}'"),
        call: spec(CLEAR, json!({"parameter_name": parameter_name})),
    };
    ctx.undo_log.will_change(&undo).await?;
    ports
        .parameters
        .put(&PutParameter {
            name: parameter_name.into(),
            value: config.to_string(),
            kind: "String".into(),
            description: Some(format!(
                "Turbulence fault configuration, expires at {expires_at}"
            )),
            overwrite: true,
        })
        .await?;
    Ok(Outcome {
        output: json!({"parameter_name": parameter_name, "expires_at": expires_at, "configuration": config}),
        detail: None,
        undo: Some(undo),
    })
}

async fn clear_lambda_faults(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let name = c.text("parameter_name");
    let deleted = ports.parameters.delete(name).await?;
    Ok(Outcome::output(json!({"name": name, "deleted": deleted})))
}

async fn lambda_faults_are_empty(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let current = ports.parameters.get(c.text("parameter_name")).await?;
    let empty = current
        .as_deref()
        .is_none_or(|text| is_inert(text, ctx.now));
    Ok(Outcome {
        output: json!(empty),
        detail: Some(json!({"parameter_exists": current.is_some()})),
        undo: None,
    })
}

/// The configuration as the layer will read it (legacy formats upgraded),
/// or why the layer would refuse it. Checked at Plan, so nothing is written
/// that would silently inject nothing, or something else.
pub fn canonical(configuration: &Value) -> Result<Value, String> {
    let config = FaultConfig::from_json(configuration).map_err(|e| e.to_string())?;
    config.validate().map_err(|e| e.to_string())?;
    Ok(config.to_canonical())
}

/// True when the stored text injects nothing now: no mode enabled, or
/// expired. Text the layer cannot read injects nothing either, but is not
/// called inert: someone meant something by it, and a person should look.
pub fn is_inert(text: &str, now: time::OffsetDateTime) -> bool {
    match FaultConfig::parse_valid(text) {
        Ok(c) => !c.is_enabled() || c.is_expired(now),
        Err(_) => false,
    }
}

/// True when the stored text is a configuration past its `expires_at`:
/// left behind by a run that is over, safe to delete.
pub fn is_expired(text: &str, now: time::OffsetDateTime) -> bool {
    FaultConfig::parse_valid(text).is_ok_and(|c| c.is_expired(now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeEcs;
    use crate::testing::{call, T};

    #[test]
    fn legacy_configurations_are_written_canonical() {
        let legacy =
            json!({"isEnabled": true, "failureMode": "statuscode", "rate": 0.5, "statusCode": 503});
        let c = canonical(&legacy).unwrap();
        assert_eq!(c["statuscode"]["status_code"], 503);
        assert_eq!(c["statuscode"]["enabled"], true);
    }

    #[test]
    fn bad_values_are_named() {
        let e = canonical(
            &json!({"statuscode": {"enabled": true, "percentage": 20, "status_code": 700}}),
        )
        .unwrap_err();
        assert!(e.contains("status_code"), "{e}");
        let e = canonical(&json!({"latency": {"enabled": true, "percentage": 120, "min_latency": 1, "max_latency": 2}}))
            .unwrap_err();
        assert!(e.contains("percentage"), "{e}");
    }

    #[test]
    fn the_inject_action_refuses_bad_configurations_at_plan() {
        let call = |configuration: Value| {
            Call::parse(&spec(
                INJECT,
                json!({"parameter_name": "/turbulence/faults/x", "function_name": "f", "configuration": configuration}),
            ))
        };
        let cases = [
            (
                json!({"latency": {"enabled": true, "percentage": 101, "min_latency": 1, "max_latency": 2}}),
                "percentage",
            ),
            (
                json!({"latency": {"enabled": true, "percentage": 50, "min_latency": 500, "max_latency": 100}}),
                "max_latency",
            ),
            (
                json!({"statuscode": {"enabled": true, "percentage": 50, "status_code": 99}}),
                "status_code",
            ),
            (
                json!({"isEnabled": true, "failureMode": "meltdown", "rate": 1}),
                "failureMode",
            ),
            (json!({"explode": {"enabled": true}}), "explode"),
        ];
        for (configuration, field) in cases {
            let err = call(configuration.clone()).unwrap_err();
            assert!(
                err.starts_with(
                    "argument 'configuration' of turbulence.faults.actions.inject_lambda_faults"
                ) && err.contains(field),
                "{configuration}: {err}"
            );
        }
        assert!(call(json!({"exception": {"enabled": true, "percentage": 10}})).is_ok());
    }

    #[test]
    fn inert_means_disabled_or_expired_not_unreadable() {
        let now = time::OffsetDateTime::now_utc();
        assert!(is_inert("{}", now));
        assert!(is_inert(
            r#"{"latency": {"enabled": false, "percentage": 100, "min_latency": 1, "max_latency": 2}}"#,
            now
        ));
        let expired = r#"{"exception": {"enabled": true, "percentage": 100}, "expires_at": "2020-01-01T00:00:00Z"}"#;
        assert!(is_inert(expired, now));
        assert!(!is_inert(
            r#"{"exception": {"enabled": true, "percentage": 100}}"#,
            now
        ));
        assert!(!is_inert("garbage", now));
    }

    fn inject(parameter: &str) -> Call {
        call(
            INJECT,
            json!({"parameter_name": parameter, "function_name": "f", "configuration": {
                "statuscode": {"enabled": true, "percentage": 20, "status_code": 500}
            }}),
        )
    }

    #[tokio::test]
    async fn injected_faults_expire_with_the_experiment_and_undo_by_deleting() {
        let mut t = T::new(FakeEcs::default());
        let before = time::OffsetDateTime::now_utc();
        let out = t.run(&inject("/faults/f")).await.unwrap();
        let stored: Value =
            serde_json::from_str(&t.parameters.value("/faults/f").unwrap()).unwrap();
        assert_eq!(stored["statuscode"]["status_code"], 500);
        let expires = time::OffsetDateTime::parse(
            stored["expires_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let ahead = (expires - before).whole_seconds();
        assert!(
            (599..=601).contains(&ahead),
            "expires {ahead} s ahead, the experiment has 600 s left"
        );
        let undo = out.undo.unwrap();
        assert_eq!(undo.call.function, CLEAR);
        t.run(&Call::parse(&undo.call).unwrap()).await.unwrap();
        assert_eq!(t.parameters.value("/faults/f"), None);
    }

    #[tokio::test]
    async fn injection_never_takes_over_an_active_configuration() {
        let mut t = T::new(FakeEcs::default());
        let theirs = r#"{"latency": {"enabled": true, "percentage": 100, "min_latency": 5, "max_latency": 5}}"#;
        t.parameters.set("/faults/f", theirs);
        let err = t.run(&inject("/faults/f")).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("already holds an active fault configuration"),
            "{err}"
        );
        assert_eq!(t.parameters.value("/faults/f").as_deref(), Some(theirs));
        // A disabled or expired one is fair game.
        t.parameters.set(
            "/faults/f",
            r#"{"exception": {"enabled": false, "percentage": 100}}"#,
        );
        t.run(&inject("/faults/f")).await.unwrap();
    }

    #[tokio::test]
    async fn the_empty_probe_reads_absent_and_inert_as_empty() {
        let mut t = T::new(FakeEcs::default());
        let probe = call(
            "turbulence.faults.probes.lambda_faults_are_empty",
            json!({"parameter_name": "/faults/f"}),
        );
        assert_eq!(t.run(&probe).await.unwrap().output, json!(true));
        t.run(&inject("/faults/f")).await.unwrap();
        assert_eq!(t.run(&probe).await.unwrap().output, json!(false));
        t.parameters.set("/faults/f", "not json");
        assert_eq!(
            t.run(&probe).await.unwrap().output,
            json!(false),
            "unreadable is not empty"
        );
    }
}
