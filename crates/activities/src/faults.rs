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
use crate::{preflight, run, ActivityError, Context, Outcome, Ports, Undo};

/// The variables a function names its fault parameter with.
pub use inject::{LEGACY_PARAM_VAR, PARAM_VAR};

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
            .preflight(preflight!(injectable), &[read("lambda:GetFunction")])
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

/// The exec wrapper of the turbulence-extension layer, as a function sets
/// it: `AWS_LAMBDA_EXEC_WRAPPER=/opt/turbulence/wrapper`.
pub const EXEC_WRAPPER: &str = "/opt/turbulence/wrapper";
/// The layer's name starts with this (template.yaml publishes
/// `turbulence-extension-x86_64` and `turbulence-extension-arm64`).
pub const LAYER_NAME: &str = "turbulence-extension";
/// The tag a Rust function carries when it links `crates/inject` (its
/// `FaultLayer` reads the same parameter): OS-only runtimes ignore exec
/// wrappers, so the layer cannot reach them.
pub const INJECTOR_TAG: &str = "turbulence:injector";
pub const INJECTOR_CRATE: &str = "crates/inject";

/// What Plan reads of a target function (lambda:GetFunction) to know
/// whether a fault configuration can reach it. Of its environment only the
/// names are kept, and the values of the two variables that say where
/// injection happens; none of it is logged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionSetup {
    /// `None` for a container image.
    pub runtime: Option<String>,
    /// Layer version ARNs.
    pub layers: Vec<String>,
    pub environment: std::collections::BTreeSet<String>,
    /// `AWS_LAMBDA_EXEC_WRAPPER`'s value.
    pub exec_wrapper: Option<String>,
    /// The parameter it reads: `FAILURE_INJECTION_PARAM`, else `CHAOS_PARAM`.
    pub fault_parameter: Option<String>,
    pub tags: std::collections::BTreeMap<String, String>,
}

impl FunctionSetup {
    /// From a function's configuration: of `variables`, the names, and the
    /// values of `AWS_LAMBDA_EXEC_WRAPPER` and the fault parameter only.
    pub fn new(
        runtime: Option<String>,
        layers: Vec<String>,
        variables: impl IntoIterator<Item = (String, String)>,
        tags: std::collections::BTreeMap<String, String>,
    ) -> FunctionSetup {
        let mut setup = FunctionSetup {
            runtime,
            layers,
            tags,
            ..FunctionSetup::default()
        };
        let mut legacy = None;
        for (name, value) in variables {
            match name.as_str() {
                "AWS_LAMBDA_EXEC_WRAPPER" => setup.exec_wrapper = Some(value),
                PARAM_VAR => setup.fault_parameter = Some(value),
                LEGACY_PARAM_VAR => legacy = Some(value),
                _ => {}
            }
            setup.environment.insert(name);
        }
        setup.fault_parameter = setup.fault_parameter.or(legacy);
        setup
    }
}

/// Whether `function`, set up as it is, reads faults from `parameter`:
/// through the turbulence-extension layer (managed runtimes), or through
/// `crates/inject` (tagged). The refusal names what is missing, never a
/// value of its environment.
pub fn check_injectable(
    function: &str,
    parameter: &str,
    setup: &FunctionSetup,
) -> Result<(), String> {
    let linked = setup
        .tags
        .get(INJECTOR_TAG)
        .is_some_and(|v| v.trim() == INJECTOR_CRATE);
    let reads = match setup.fault_parameter.as_deref() {
        Some(p) if p == parameter => None,
        Some(_) => Some(format!(
            "FAILURE_INJECTION_PARAM={parameter} (it reads another parameter)"
        )),
        None => Some(format!("FAILURE_INJECTION_PARAM={parameter}")),
    };
    let refuse = |missing: &str| {
        format!("Lambda function '{function}' cannot take the faults of '{parameter}': it needs {missing}")
    };
    if linked {
        return match reads {
            None => Ok(()),
            Some(missing) => Err(refuse(&missing)),
        };
    }
    let or_linked = format!(
        "or, for a Rust function linking {INJECTOR_CRATE}, the tag {INJECTOR_TAG}={INJECTOR_CRATE}"
    );
    let runtime = match setup.runtime.as_deref() {
        None => {
            return Err(refuse(&format!(
                "the tag {INJECTOR_TAG}={INJECTOR_CRATE}: it is a container image, which takes no layers"
            )))
        }
        Some(r) if r.starts_with("provided") => {
            return Err(refuse(&format!(
                "the tag {INJECTOR_TAG}={INJECTOR_CRATE} and {INJECTOR_CRATE} linked in: its runtime {r} is OS-only and ignores exec wrappers, so the {LAYER_NAME} layer cannot reach it"
            )))
        }
        Some(r) => r,
    };
    let mut missing = Vec::new();
    let has_layer = setup.layers.iter().any(|arn| {
        // arn:aws:lambda:<region>:<account>:layer:<name>:<version>
        arn.split(':')
            .nth(6)
            .is_some_and(|name| name.starts_with(LAYER_NAME))
    });
    if !has_layer {
        missing.push(format!("the {LAYER_NAME} layer (Layers)"));
    }
    if setup.exec_wrapper.as_deref() != Some(EXEC_WRAPPER) {
        missing.push(format!("AWS_LAMBDA_EXEC_WRAPPER={EXEC_WRAPPER}"));
    }
    missing.extend(reads);
    match missing.is_empty() {
        true => Ok(()),
        false => Err(refuse(&format!(
            "{} ({runtime}), {or_linked}",
            missing.join(", ")
        ))),
    }
}

/// What Plan checks of an experiment's fault targets against the account,
/// which `turbulence validate` leaves to the run: one line per
/// `inject_lambda_faults`.
pub fn left_to_the_run<'a>(calls: impl IntoIterator<Item = &'a Call>) -> Vec<String> {
    calls
        .into_iter()
        .filter(|c| c.name() == INJECT)
        .map(|c| {
            format!(
                "that Lambda function '{}' reads '{}' (the {LAYER_NAME} layer with its wrapper, or {INJECTOR_CRATE})",
                c.text("function_name"),
                c.text("parameter_name")
            )
        })
        .collect()
}

/// Plan's check: a fault configuration is only written where its function
/// reads it (the layer with its wrapper, or crates/inject).
async fn injectable(
    c: &Call,
    ports: &Ports<'_>,
    _: &crate::guard::BlastRadius,
) -> Result<(), ActivityError> {
    let function = c.text("function_name");
    let setup = match ports.functions.setup(function).await {
        Ok(setup) => setup,
        Err(crate::AwsError::NotFound(m)) => {
            return Err(ActivityError::Refused(format!(
                "Lambda function '{function}' cannot be checked: {m}"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    check_injectable(function, c.text("parameter_name"), &setup).map_err(ActivityError::Refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeEcs;
    use crate::testing::{call, T};

    fn python(layers: &[&str], env: &[(&str, &str)]) -> FunctionSetup {
        FunctionSetup::new(
            Some("python3.12".into()),
            layers.iter().map(|l| l.to_string()).collect(),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            Default::default(),
        )
    }

    #[test]
    fn only_the_two_values_that_say_where_faults_are_read_are_kept() {
        let setup = python(
            &[],
            &[
                ("DB_PASSWORD", "hunter2"),
                ("CHAOS_PARAM", "/legacy"),
                ("AWS_LAMBDA_EXEC_WRAPPER", EXEC_WRAPPER),
            ],
        );
        assert_eq!(setup.fault_parameter.as_deref(), Some("/legacy"));
        assert_eq!(setup.exec_wrapper.as_deref(), Some(EXEC_WRAPPER));
        assert!(setup.environment.contains("DB_PASSWORD"));
        assert!(!format!("{setup:?}").contains("hunter2"));
        let both = python(
            &[],
            &[
                ("CHAOS_PARAM", "/legacy"),
                ("FAILURE_INJECTION_PARAM", "/new"),
            ],
        );
        assert_eq!(both.fault_parameter.as_deref(), Some("/new"));
    }

    const LAYER: &str = "arn:aws:lambda:eu-west-1:123456789012:layer:turbulence-extension-arm64:3";

    #[test]
    fn a_function_behind_the_layer_can_be_injected() {
        let ok = python(
            &[LAYER],
            &[
                ("AWS_LAMBDA_EXEC_WRAPPER", EXEC_WRAPPER),
                ("FAILURE_INJECTION_PARAM", "/f/x"),
            ],
        );
        assert_eq!(check_injectable("f", "/f/x", &ok), Ok(()));
    }

    #[test]
    fn each_missing_piece_is_named() {
        let bare = python(&[], &[("DB_PASSWORD", "hunter2")]);
        let e = check_injectable("f", "/f/x", &bare).unwrap_err();
        for piece in [
            "turbulence-extension layer",
            "AWS_LAMBDA_EXEC_WRAPPER=/opt/turbulence/wrapper",
            "FAILURE_INJECTION_PARAM=/f/x",
            "turbulence:injector=crates/inject",
        ] {
            assert!(e.contains(piece), "{piece}: {e}");
        }
        assert!(!e.contains("hunter2"), "{e}");
        let no_wrapper = python(&[LAYER], &[("FAILURE_INJECTION_PARAM", "/f/x")]);
        let e = check_injectable("f", "/f/x", &no_wrapper).unwrap_err();
        assert!(
            e.contains("AWS_LAMBDA_EXEC_WRAPPER") && !e.contains("layer (Layers)"),
            "{e}"
        );
        let other_layer = python(
            &["arn:aws:lambda:eu-west-1:580247275435:layer:LambdaInsightsExtension:38"],
            &[
                ("AWS_LAMBDA_EXEC_WRAPPER", EXEC_WRAPPER),
                ("FAILURE_INJECTION_PARAM", "/f/x"),
            ],
        );
        let e = check_injectable("f", "/f/x", &other_layer).unwrap_err();
        assert!(e.contains("turbulence-extension layer"), "{e}");
    }

    #[test]
    fn a_function_reading_another_parameter_is_refused_without_naming_it() {
        let elsewhere = python(
            &[LAYER],
            &[
                ("AWS_LAMBDA_EXEC_WRAPPER", EXEC_WRAPPER),
                ("FAILURE_INJECTION_PARAM", "/secret/other"),
            ],
        );
        let e = check_injectable("f", "/f/x", &elsewhere).unwrap_err();
        assert!(e.contains("it reads another parameter"), "{e}");
        assert!(!e.contains("/secret/other"), "{e}");
    }

    #[test]
    fn os_only_runtimes_need_the_crates_inject_tag() {
        let mut rust = FunctionSetup {
            runtime: Some("provided.al2023".into()),
            fault_parameter: Some("/f/x".into()),
            ..FunctionSetup::default()
        };
        let e = check_injectable("f", "/f/x", &rust).unwrap_err();
        assert!(
            e.contains("OS-only") && e.contains("turbulence:injector=crates/inject"),
            "{e}"
        );
        // The layer does not help there.
        rust.layers.push(LAYER.into());
        rust.exec_wrapper = Some(EXEC_WRAPPER.into());
        assert!(check_injectable("f", "/f/x", &rust).is_err());
        rust.tags.insert(INJECTOR_TAG.into(), INJECTOR_CRATE.into());
        assert_eq!(check_injectable("f", "/f/x", &rust), Ok(()));
        // Linked, but reading nothing: refused.
        rust.fault_parameter = None;
        let e = check_injectable("f", "/f/x", &rust).unwrap_err();
        assert!(e.contains("FAILURE_INJECTION_PARAM=/f/x"), "{e}");
        let image = FunctionSetup::default();
        assert!(check_injectable("f", "/f/x", &image)
            .unwrap_err()
            .contains("container image"));
    }

    #[test]
    fn validate_names_the_function_checks_it_leaves_to_the_run() {
        let c = call(
            INJECT,
            json!({"parameter_name": "/turbulence/faults/x", "function_name": "moderation",
                   "configuration": {"exception": {"enabled": true}}}),
        );
        let left = left_to_the_run([&c]);
        assert_eq!(left.len(), 1);
        assert!(
            left[0].contains("'moderation' reads '/turbulence/faults/x'"),
            "{}",
            left[0]
        );
    }

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
