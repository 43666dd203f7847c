//! Fault configurations (failure-lambda 1.0 format, read by the `inject`
//! layer) as experiments write and check them.

use inject::config::FaultConfig;
use serde_json::Value;

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
    use serde_json::json;

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
            crate::Call::parse(&crate::CallSpec {
                function: "turbulence.faults.actions.inject_lambda_faults".into(),
                arguments: json!({"parameter_name": "/turbulence/faults/x", "function_name": "f", "configuration": configuration})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            })
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
}
