use super::*;
use serde_json::json;

fn at(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).expect("a timestamp")
}

fn parse(v: Value) -> FaultConfig {
    FaultConfig::parse_valid(&v.to_string()).unwrap_or_else(|e| panic!("{v}: {e}"))
}

/// The field an invalid document is refused for (by parse or validate).
fn refused(v: Value) -> String {
    match FaultConfig::parse_valid(&v.to_string()) {
        Ok(c) => panic!("{v} accepted: {c:?}"),
        Err(e) => e.field,
    }
}

#[test]
fn the_canonical_format_reads_every_mode() {
    let c = parse(json!({
        "latency": {"enabled": true, "percentage": 20, "min_latency": 100, "max_latency": 400,
                    "match": [{"path": "a.b", "value": "x"},
                              {"path": "c", "operator": "exists"},
                              {"path": "d", "operator": "regex", "value": "^x+$"}]},
        "timeout": {"enabled": false, "timeout_buffer_ms": 500},
        "statuscode": {"enabled": true, "percentage": 10, "status_code": 503},
        "exception": {"enabled": true, "exception_msg": "boom"},
        "corruption": {"enabled": false, "body": "{}"},
        "expires_at": "2030-01-02T03:04:05Z"
    }));
    assert_eq!(c.format, Format::Canonical);
    let latency = c.latency.as_ref().expect("latency");
    assert!(latency.enabled);
    assert_eq!(latency.percentage, 20.0);
    assert_eq!(
        latency.params,
        Latency {
            min_latency: 100.0,
            max_latency: 400.0
        }
    );
    assert_eq!(latency.matches.len(), 3);
    assert_eq!(latency.matches[1].operator, Operator::Exists);
    assert!(!c.timeout.as_ref().expect("timeout").enabled);
    assert_eq!(
        c.statuscode.as_ref().expect("status").params.status_code,
        503
    );
    let exception = c.exception.as_ref().expect("exception");
    assert_eq!(exception.percentage, 100.0, "percentage defaults to 100");
    assert_eq!(exception.params.exception_msg, "boom");
    assert!(
        c.ignored.is_empty(),
        "a disabled corruption is not reported"
    );
    assert_eq!(c.expires_at, Some(at("2030-01-02T03:04:05Z")));
    assert!(c.is_enabled());
}

#[test]
fn defaults_follow_failure_lambda() {
    let c = parse(
        json!({"statuscode": {"enabled": true}, "exception": {"enabled": true},
                         "latency": {"enabled": true, "min_latency": 50}}),
    );
    assert_eq!(c.statuscode.expect("status").params.status_code, 500);
    assert_eq!(
        c.exception.expect("exception").params.exception_msg,
        "Injected exception"
    );
    let latency = c.latency.expect("latency").params;
    assert_eq!((latency.min_latency, latency.max_latency), (50.0, 50.0));
}

#[test]
fn empty_documents_enable_nothing() {
    for text in ["{}", "null", " {} ", r#"{"expires_at": null}"#] {
        let c = FaultConfig::parse_valid(text).expect(text);
        assert!(!c.is_enabled(), "{text}");
    }
    let c = parse(json!({"latency": {"enabled": false}, "exception": {"enabled": false}}));
    assert!(!c.is_enabled());
}

#[test]
fn modes_that_need_os_hooks_are_accepted_and_listed_as_ignored() {
    let c = parse(json!({"diskspace": {"enabled": true, "disk_space": 100},
                         "denylist": {"enabled": true, "deny_list": ["s3.*"]},
                         "corruption": {"enabled": false}}));
    assert_eq!(c.ignored, vec!["diskspace", "denylist"]);
    assert!(!c.is_enabled());
}

#[test]
fn validation_names_the_field() {
    let cases = [
        (
            json!({"latency": {"enabled": true, "percentage": 101}}),
            "latency.percentage",
        ),
        (
            json!({"exception": {"enabled": true, "percentage": -1}}),
            "exception.percentage",
        ),
        (
            json!({"latency": {"enabled": true, "min_latency": 400, "max_latency": 100}}),
            "latency.max_latency",
        ),
        (
            json!({"latency": {"enabled": true, "min_latency": -5}}),
            "latency.min_latency",
        ),
        (
            json!({"latency": {"enabled": true, "max_latency": 1e9}}),
            "latency.max_latency",
        ),
        (
            json!({"timeout": {"enabled": true, "timeout_buffer_ms": -1}}),
            "timeout.timeout_buffer_ms",
        ),
        (
            json!({"statuscode": {"enabled": true, "status_code": 600}}),
            "statuscode.status_code",
        ),
        (
            json!({"statuscode": {"enabled": true, "status_code": 99}}),
            "statuscode.status_code",
        ),
        (
            json!({"statuscode": {"enabled": true, "status_code": 404.5}}),
            "statuscode.status_code",
        ),
        (
            json!({"statuscode": {"enabled": true, "status_code": "404"}}),
            "statuscode.status_code",
        ),
        (json!({"latancy": {"enabled": true}}), "latancy"),
        (
            json!({"latency": {"enabled": true, "percentag": 5}}),
            "latency.percentag",
        ),
        (
            json!({"latency": {"enabled": true, "status_code": 5}}),
            "latency.status_code",
        ),
        (json!({"latency": {"percentage": 5}}), "latency.enabled"),
        (json!({"latency": {"enabled": "yes"}}), "latency.enabled"),
        (json!({"latency": true}), "latency"),
        (
            json!({"exception": {"enabled": true, "exception_msg": 7}}),
            "exception.exception_msg",
        ),
        (
            json!({"latency": {"enabled": true, "match": {}}}),
            "latency.match",
        ),
        (
            json!({"latency": {"enabled": true, "match": [{"value": "x"}]}}),
            "latency.match[0].path",
        ),
        (
            json!({"latency": {"enabled": true, "match": [{"path": "", "value": "x"}]}}),
            "latency.match[0].path",
        ),
        (
            json!({"latency": {"enabled": true, "match": [{"path": "a"}]}}),
            "latency.match[0].value",
        ),
        (
            json!({"latency": {"enabled": true, "match": [{"path": "a", "value": "x", "operator": "ne"}]}}),
            "latency.match[0].operator",
        ),
        (
            json!({"statuscode": {"enabled": true, "match": [{"path": "a", "value": 1, "operator": "startsWith"}]}}),
            "statuscode.match[0].value",
        ),
        (
            json!({"statuscode": {"enabled": true, "match": [{"path": "a", "value": "(", "operator": "regex"}]}}),
            "statuscode.match[0].value",
        ),
        (
            json!({"exception": {"enabled": true, "match": [{"path": "a", "value": "x", "op": "eq"}]}}),
            "exception.match[0].op",
        ),
        (json!({"expires_at": "tomorrow"}), "expires_at"),
        (json!({"expires_at": 1700000000}), "expires_at"),
        (json!({"latency": {"enabled": true}, "isEnabled": true}), ""),
        (json!([1, 2]), ""),
        (json!("latency"), ""),
    ];
    for (doc, field) in cases {
        assert_eq!(refused(doc.clone()), field, "{doc}");
    }
    let long = "a".repeat(MAX_REGEX_LEN + 1);
    assert_eq!(
        refused(
            json!({"latency": {"enabled": true, "match": [{"path": "a", "value": long, "operator": "regex"}]}})
        ),
        "latency.match[0].value"
    );
}

#[test]
fn errors_read_well() {
    let e = FaultConfig::parse_valid(r#"{"latency": {"enabled": true, "percentage": 150}}"#)
        .expect_err("invalid");
    assert_eq!(
        e.to_string(),
        "latency.percentage: must be between 0 and 100, got 150"
    );
    let e = FaultConfig::parse("{nope").expect_err("invalid");
    assert!(e.to_string().starts_with("not valid JSON: "), "{e}");
    let e = FaultConfig::parse(r#"{"bogus": {}}"#).expect_err("invalid");
    assert!(
        e.to_string().starts_with("bogus: unknown failure mode"),
        "{e}"
    );
}

#[test]
fn disabled_modes_are_still_validated() {
    // The action refuses what would be wrong once enabled.
    assert_eq!(
        refused(json!({"latency": {"enabled": false, "percentage": 120}})),
        "latency.percentage"
    );
}

#[test]
fn failure_lambda_0x_is_upgraded() {
    let full = |mode: &str, enabled: bool| {
        json!({"isEnabled": enabled, "failureMode": mode, "rate": 0.25, "minLatency": 100,
               "maxLatency": 400, "exceptionMsg": "Exception message!", "statusCode": 404,
               "diskSpace": 100, "denylist": ["s3.*.amazonaws.com"]})
    };
    let c = parse(full("latency", true));
    assert_eq!(c.format, Format::FailureLambda0);
    let latency = c.latency.as_ref().expect("latency");
    assert!(latency.enabled);
    assert_eq!(latency.percentage, 25.0);
    assert_eq!(
        latency.params,
        Latency {
            min_latency: 100.0,
            max_latency: 400.0
        }
    );
    assert!(c.statuscode.is_none() && c.exception.is_none());

    let c = parse(full("statuscode", true));
    assert_eq!(c.statuscode.expect("status").params.status_code, 404);
    let c = parse(full("exception", true));
    assert_eq!(
        c.exception.expect("exception").params.exception_msg,
        "Exception message!"
    );
    assert_eq!(parse(full("diskspace", true)).ignored, vec!["diskspace"]);
    assert_eq!(parse(full("denylist", true)).ignored, vec!["denylist"]);
    assert!(!parse(full("latency", false)).is_enabled());
    // Rate defaults to 1.
    let c = parse(json!({"isEnabled": true, "failureMode": "exception"}));
    assert_eq!(c.exception.expect("exception").percentage, 100.0);

    assert_eq!(refused(full("teapot", true)), "failureMode");
    assert_eq!(refused(json!({"isEnabled": true})), "failureMode");
    assert_eq!(
        refused(json!({"isEnabled": true, "failureMode": "latency", "rate": 1.5})),
        "rate"
    );
    assert_eq!(
        refused(json!({"isEnabled": "true", "failureMode": "latency"})),
        "isEnabled"
    );
    assert_eq!(
        refused(
            json!({"isEnabled": true, "failureMode": "latency", "minLatency": 500, "maxLatency": 10})
        ),
        "maxLatency"
    );
    assert_eq!(
        refused(json!({"isEnabled": true, "failureMode": "statuscode", "statusCode": 1000})),
        "statusCode"
    );
    assert_eq!(
        refused(json!({"isEnabled": true, "failureMode": "latency", "extra": 1})),
        "extra"
    );
    let e = FaultConfig::parse_valid(
        &json!({"isEnabled": true, "failureMode": "latency", "rate": 2}).to_string(),
    )
    .expect_err("invalid");
    assert_eq!(e.to_string(), "rate: must be between 0 and 1, got 2");
}

#[test]
fn chaos_lambda_is_upgraded() {
    let c = parse(
        json!({"is_enabled": true, "fault_type": "latency", "delay": 400, "rate": 0.5,
                         "error_code": 404, "exception_msg": "I FAILED"}),
    );
    assert_eq!(c.format, Format::ChaosLambda);
    let latency = c.latency.expect("latency");
    assert_eq!(latency.percentage, 50.0);
    assert_eq!(
        latency.params,
        Latency {
            min_latency: 400.0,
            max_latency: 400.0
        }
    );
    let c = parse(json!({"is_enabled": true, "fault_type": "status_code", "error_code": 404}));
    assert_eq!(c.statuscode.expect("status").params.status_code, 404);
    let c =
        parse(json!({"is_enabled": true, "fault_type": "exception", "exception_msg": "I FAILED"}));
    assert_eq!(
        c.exception.expect("exception").params.exception_msg,
        "I FAILED"
    );
    assert!(!parse(json!({"is_enabled": false})).is_enabled());

    assert_eq!(
        refused(json!({"is_enabled": true, "fault_type": "statuscode"})),
        "fault_type"
    );
    assert_eq!(
        refused(json!({"is_enabled": true, "fault_type": "latency", "rate": -0.1})),
        "rate"
    );
    assert_eq!(
        refused(json!({"is_enabled": true, "fault_type": "latency", "delay": -1})),
        "delay"
    );
    assert_eq!(
        refused(json!({"is_enabled": true, "fault_type": "status_code", "error_code": 42})),
        "error_code"
    );
    assert_eq!(refused(json!({"is_enabled": true, "isEnabled": true})), "");
}

#[test]
fn every_format_takes_an_expiry() {
    for doc in [
        json!({"latency": {"enabled": true}, "expires_at": "2030-01-01T00:00:00+01:00"}),
        json!({"isEnabled": true, "failureMode": "latency", "expires_at": "2030-01-01T00:00:00+01:00"}),
        json!({"is_enabled": true, "fault_type": "latency", "expires_at": "2030-01-01T00:00:00+01:00"}),
    ] {
        let c = parse(doc);
        let when = at("2029-12-31T23:00:00Z");
        assert_eq!(c.expires_at, Some(when));
        assert!(!c.is_expired(when - time::Duration::seconds(1)));
        assert!(c.is_expired(when));
    }
}

#[test]
fn the_canonical_form_round_trips_and_upgrades_legacy() {
    let canonical = json!({
        "latency": {"enabled": true, "percentage": 20, "min_latency": 100, "max_latency": 400,
                    "match": [{"path": "a.b", "operator": "eq", "value": "x"},
                              {"path": "c", "operator": "exists"}]},
        "statuscode": {"enabled": false, "percentage": 12.5, "status_code": 503},
        "exception": {"enabled": true, "percentage": 100, "exception_msg": "boom"},
        "timeout": {"enabled": true, "percentage": 100, "timeout_buffer_ms": 300},
        "expires_at": "2030-01-02T03:04:05Z"
    });
    let c = parse(canonical.clone());
    assert_eq!(c.to_canonical(), canonical);
    let legacy = parse(
        json!({"isEnabled": true, "failureMode": "statuscode", "rate": 0.5, "statusCode": 418}),
    );
    assert_eq!(
        legacy.to_canonical(),
        json!({"statuscode": {"enabled": true, "percentage": 50, "status_code": 418}})
    );
    assert_eq!(parse(legacy.to_canonical()).statuscode, legacy.statuscode);
}

/// A few thousand random and mangled documents: parse and validate may
/// refuse them, never panic.
#[test]
fn garbage_never_panics() {
    let dice = crate::SeededDice::new(99);
    let roll = |n: usize| (crate::Dice::roll(&dice) * n as f64) as usize;
    let seeds = [
        r#"{"latency":{"enabled":true,"percentage":50,"min_latency":1,"max_latency":9,"match":[{"path":"a","value":"b","operator":"regex"}]}}"#,
        r#"{"isEnabled":true,"failureMode":"latency","rate":0.5,"minLatency":1,"maxLatency":2}"#,
        r#"{"is_enabled":true,"fault_type":"status_code","error_code":404,"rate":1}"#,
        r#"{"statuscode":{"enabled":true,"status_code":404},"expires_at":"2030-01-01T00:00:00Z"}"#,
    ];
    let pieces = [
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "null",
        "true",
        "1e308",
        "-1",
        "1e999",
        "\"enabled\"",
        "\"latency\"",
        "\"match\"",
        "\\u0000",
        "\u{10ffff}",
        "99999999999999999999",
        "[[[[[[",
    ];
    for i in 0..4_000 {
        let text = match i % 3 {
            // Random bytes, lossily as text.
            0 => {
                let bytes: Vec<u8> = (0..roll(64)).map(|_| roll(256) as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
            // A valid document with a random piece spliced in.
            1 => {
                let mut s = seeds[roll(seeds.len())].to_string();
                let mut at = roll(s.len() + 1);
                while !s.is_char_boundary(at) {
                    at -= 1;
                }
                s.insert_str(at, pieces[roll(pieces.len())]);
                s
            }
            // A valid document truncated.
            _ => {
                let s = seeds[roll(seeds.len())];
                s[..roll(s.len() + 1)].to_string()
            }
        };
        let _ = FaultConfig::parse_valid(&text);
    }
    // Deep nesting is refused by serde_json's recursion limit, not a stack overflow.
    let deep = "[".repeat(100_000);
    assert!(FaultConfig::parse(&deep).is_err());
}
