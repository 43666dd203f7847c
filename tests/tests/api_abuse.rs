//! The API abuse experiment end to end on the local stack, against the demo
//! API (`turbulence-api-target`, on loopback): it must catch the write-up's
//! bug by itself — a 500 where a 401 belongs — and pass the fixed API.
//!
//! The shipped experiment's CloudWatch probe (`AWS/ApiGateway` `5XXError`)
//! is left out here: nothing publishes API Gateway metrics on the local
//! stack, and a probe without datapoints fails as inconclusive (unit tests
//! and `cloudwatch_probes_read_moto` below cover that probe). The stages
//! are the write-up's users, with seconds for minutes.

use std::time::Duration;

use local::{DemoApi as Api, LocalStack, Stack};
use serde_json::{json, Value};

const RUN_TIMEOUT: Duration = Duration::from_secs(240);

async fn setup(name: &str) -> (LocalStack, Stack) {
    LocalStack::for_tests_with_stack(name).await
}

/// The shipped experiment aimed at the demo API, seconds for minutes.
fn experiment(stack: &Stack, api: &Api) -> Value {
    let mut doc: Value =
        serde_json::from_str(include_str!("../../experiments/api-abuse.json")).unwrap();
    let config = doc["configuration"].as_object_mut().unwrap();
    config.insert("api_url".into(), json!(api.url()));
    config.insert("valid_token".into(), json!("demo-token"));
    for (key, seconds) in [
        ("stage1_seconds", 2),
        ("stage2_seconds", 3),
        ("stage3_seconds", 4),
    ] {
        config.insert(key.into(), json!(seconds));
    }
    doc["extensions"][0]["abort_alarms"] = json!([stack.abort_alarm]);
    doc["extensions"][0]["poll_interval_seconds"] = json!(1);
    let probes = doc["steady-state-hypothesis"]["probes"]
        .as_array_mut()
        .unwrap();
    probes.retain(|p| p["name"] != "no-5xx-at-the-gateway");
    doc
}

#[tokio::test]
async fn the_buggy_api_is_caught_answering_500_where_401_belongs() {
    let api = Api::start("buggy").expect("the demo API");
    let (local, stack) = setup("abuse-buggy").await;
    let execution = local
        .start_execution(&stack, &experiment(&stack, &api))
        .await
        .unwrap();
    let done = local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert_eq!(
        done.error.as_deref(),
        Some("SteadyStateDeviated"),
        "{done:?}"
    );
    let cause = done.cause.unwrap_or_default();
    assert!(
        cause.contains("every-abusive-request-got-its-4xx"),
        "{cause}"
    );
    assert!(cause.contains("expected 401 or 403, saw 500"), "{cause}");

    let messages = local.dlq_messages(&stack).await.unwrap();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let journal = &messages[0]["journal"];
    assert_eq!(journal["deviated"], true);
    // The attack ran and reported every response.
    let attack = &journal["run"][0];
    assert_eq!(attack["activity"]["name"], "abuse-the-api");
    let report = &attack["output"];
    assert!(
        report["totals"]["requests"].as_u64().unwrap() > 100,
        "{report}"
    );
    assert!(
        report["totals"]["classes"]["5xx"].as_u64().unwrap() > 0,
        "{report}"
    );
    // The after-probe names the broken expectation, with sample requests.
    let after = journal["steady_states"]["after"]["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["activity"]["name"] == "every-abusive-request-got-its-4xx")
        .expect("the expectations probe ran after the method")
        .clone();
    assert_eq!(after["tolerance_met"], false);
    let text = after.to_string();
    assert!(text.contains("saw 500"), "{text}");
    assert!(
        text.contains("\"status\":500"),
        "samples carry the response: {text}"
    );
    assert!(
        text.contains("/moderate"),
        "samples carry the request: {text}"
    );

    // What the API itself counted agrees: it answered 500s.
    let stats = api.stats().unwrap();
    assert!(
        stats["by_status"]["500"].as_u64().unwrap_or(0) > 0,
        "{stats}"
    );
}

#[tokio::test]
async fn the_fixed_api_passes() {
    let api = Api::start("fixed").expect("the demo API");
    let (local, stack) = setup("abuse-fixed").await;
    let execution = local
        .start_execution(&stack, &experiment(&stack, &api))
        .await
        .unwrap();
    let done = local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert!(done.succeeded(), "{done:?}");
    let journal = done.output.unwrap();
    assert_eq!(journal["status"], "completed");
    let report = &journal["run"][0]["output"];
    assert_eq!(report["stop_reason"]["kind"], "completed", "{report}");
    assert_eq!(report["totals"]["violations"], 0, "{report}");
    assert_eq!(report["stages"].as_array().unwrap().len(), 3);
    assert_eq!(report["stages"][2]["users"], 100);
    assert_eq!(local.dlq_depth(&stack).await.unwrap(), 0);
}

/// More users than one invocation runs: the stage fans out over the
/// Attack Map and the shares' reports are merged into one.
#[tokio::test]
async fn a_big_attack_fans_out_and_its_shares_are_merged() {
    let api = Api::start("fixed").expect("the demo API");
    let (local, stack) = setup("abuse-fanout").await;
    let mut doc = experiment(&stack, &api);
    let attack = &mut doc["method"][0]["provider"]["arguments"];
    attack["stages"] = json!([{"users": 150, "duration_s": 2}]);
    let execution = local.start_execution(&stack, &doc).await.unwrap();
    let done = local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
    assert!(done.succeeded(), "{done:?}");
    let history = local.history(&execution).await.unwrap();
    let entered = local::states_entered(&history);
    assert!(entered.contains(&"Attack"), "{entered:?}");
    assert!(entered.contains(&"AttackWave"), "{entered:?}");
    let journal = done.output.unwrap();
    let report = &journal["run"][0]["output"];
    assert_eq!(report["shares"], 2, "{report}");
    assert_eq!(report["stages"][0]["users"], 150, "{report}");
    let served = api.stats().unwrap()["requests"].as_u64().unwrap();
    let sent = report["totals"]["requests"].as_u64().unwrap();
    // The probes' requests are the difference (a few), never more.
    assert!(
        sent <= served && served - sent < 20,
        "sent {sent}, served {served}"
    );
}

#[tokio::test]
async fn bad_attacks_are_refused_before_any_request() {
    let api = Api::start("fixed").expect("the demo API");
    let (local, stack) = setup("abuse-refused").await;
    let good = experiment(&stack, &api);
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            {
                let mut d = good.clone();
                d["method"][0]["provider"]["arguments"]["target"] = json!("http://10.1.2.3:8080");
                d
            },
            "GuardRefused",
            "is not allow-listed",
        ),
        (
            {
                let mut d = good.clone();
                d["method"][0]["provider"]["arguments"]["stages"][0]["duration_s"] = json!(0);
                d
            },
            "ExperimentInvalid",
            "duration_s",
        ),
        (
            {
                let mut d = good.clone();
                d["method"][0]["provider"]["arguments"]["stages"][2]["users"] = json!(5000);
                d
            },
            "GuardRefused",
            "users",
        ),
        (
            {
                let mut d = good.clone();
                d["method"][0]["provider"]["arguments"]["target"] = json!("not a url");
                d
            },
            "ExperimentInvalid",
            "target",
        ),
    ];
    for (doc, error, needle) in &cases {
        let execution = local.start_execution(&stack, doc).await.unwrap();
        let done = local.wait_for(&execution, RUN_TIMEOUT).await.unwrap();
        assert_eq!(done.error.as_deref(), Some(*error), "{needle}: {done:?}");
        let cause = done.cause.unwrap_or_default();
        assert!(cause.contains(needle), "expected '{needle}' in '{cause}'");
    }
    assert_eq!(
        api.stats().unwrap()["requests"],
        0,
        "no request reached the API, not even a probe"
    );
}

/// The metric probes against moto's CloudWatch (through the stack's CBOR
/// translation): a value when datapoints exist, a failure when none do.
#[tokio::test]
async fn cloudwatch_probes_read_moto_and_fail_without_datapoints() {
    let (local, stack) = setup("metrics").await;
    let namespace = format!("Turbulence/{}", stack.prefix);
    local
        .cloudwatch()
        .put_metric_data()
        .namespace(&namespace)
        .metric_data(
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("5XXError")
                .dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name("ApiName")
                        .value("demo")
                        .build(),
                )
                .value(3.0)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // CloudWatch keeps whole seconds, and a window ending in the second a
    // datapoint was put leaves it out (moto, like the service).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let probe = |metric: &str, tolerance: Value| {
        json!({
            "type": "probe", "name": format!("{metric}-sum"), "tolerance": tolerance,
            "provider": {"type": "python", "module": "chaosaws.cloudwatch.probes", "func": "get_metric_statistics",
                "arguments": {"namespace": namespace, "metric_name": metric,
                    "dimension_name": "ApiName", "dimension_value": "demo", "statistic": "Sum", "duration": 300}}
        })
    };
    let doc = |p: Value| {
        json!({
            "title": "metrics", "description": "metric probes on moto",
            "steady-state-hypothesis": {"title": "metric", "probes": [p]},
            "method": [],
        })
    };
    let ok = local
        .start_execution(&stack, &doc(probe("5XXError", json!([3, 3]))))
        .await
        .unwrap();
    let done = local.wait_for(&ok, RUN_TIMEOUT).await.unwrap();
    assert!(done.succeeded(), "{done:?}");
    let none = local
        .start_execution(&stack, &doc(probe("4XXError", json!(0))))
        .await
        .unwrap();
    let done = local.wait_for(&none, RUN_TIMEOUT).await.unwrap();
    assert_eq!(done.error.as_deref(), Some("ActivityFailed"), "{done:?}");
    assert!(
        done.cause.unwrap_or_default().contains("no datapoints"),
        "a metric nobody published is inconclusive, not 0"
    );
}
