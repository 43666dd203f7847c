//! Attacks over real sockets against the demo API (127.0.0.1, short stages).

mod support;

use api_target::Mode;
use load::http::HttpProbe;
use load::{
    merge, plan_shares, AttackReport, AttackSpec, ErrorKind, NeverStop, StopReason, ValidAttack,
};
use serde_json::json;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(100);

fn abuse(url: &str, duration_s: f64, extra: serde_json::Value) -> ValidAttack {
    let body = json!({"image_url": "https://example.com/a.jpg"});
    let auth = json!({"Authorization": "Bearer demo-token"});
    let mut spec = json!({
        "target": url,
        "stages": [{"users": 6, "duration_s": duration_s}],
        "requests": [
            {"name": "invalid-token", "template": "invalid_token", "path": "/moderate", "body": body},
            {"name": "missing-token", "template": "missing_token", "path": "/moderate", "body": body},
            {"name": "expired-token", "template": "expired_token", "path": "/moderate", "body": body},
            {"name": "malformed", "template": "malformed_json", "path": "/moderate", "headers": auth, "body": body},
            {"name": "wrong-type", "template": "wrong_content_type", "path": "/moderate", "headers": auth, "body": body},
            {"name": "oversized", "template": "oversized_body", "path": "/moderate", "headers": auth, "size_bytes": 70000}
        ],
        "timeout_ms": 2000
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    AttackSpec::from_json(spec)
        .unwrap()
        .validate(&support::limits())
        .unwrap()
}

fn template<'a>(report: &'a AttackReport, name: &str) -> &'a load::TemplateReport {
    report.requests.iter().find(|t| t.name == name).unwrap()
}

#[tokio::test]
async fn catches_the_500_where_a_401_belongs_and_passes_once_fixed() {
    let (app, url) = support::target(Mode::Buggy).await;
    let report = abuse(&url, 0.4, json!({})).run(&NeverStop, POLL).await;

    assert_eq!(report.stop_reason, StopReason::Completed);
    assert!(
        report.totals.errors.is_empty(),
        "{:?}",
        report.error_samples
    );
    for (name, status) in [
        ("invalid-token", 500),
        ("missing-token", 500),
        ("expired-token", 401),
        ("malformed", 400),
        ("wrong-type", 415),
        ("oversized", 413),
    ] {
        let t = template(&report, name);
        assert!(t.requests > 0, "{name}");
        assert_eq!(
            t.statuses.keys().collect::<Vec<_>>(),
            vec![&status],
            "{name}"
        );
        assert_eq!(
            t.violations,
            if status == 500 { t.requests } else { 0 },
            "{name}"
        );
    }
    let invalid = template(&report, "invalid-token");
    let missing = template(&report, "missing-token");
    assert_eq!(
        report.violations,
        vec![
            format!(
                "invalid-token: expected 401 or 403, saw 500 ×{}",
                invalid.requests
            ),
            format!(
                "missing-token: expected 401 or 403, saw 500 ×{}",
                missing.requests
            ),
        ]
    );
    let sample = &invalid.samples[0];
    assert_eq!(sample.response.status, 500);
    assert_eq!(
        sample.response.body,
        r#"{"message":"Internal server error"}"#
    );
    assert_eq!(
        sample.request.headers["authorization"],
        "Bearer turbulen…[redacted]"
    );
    assert_eq!(
        sample.request.body,
        r#"{"image_url":"https://example.com/a.jpg"}"#
    );
    assert!(!missing.samples[0]
        .request
        .headers
        .contains_key("authorization"));
    // Every request the report counts, the server answered, and no more.
    assert_eq!(app.count(500), report.totals.classes.c5xx);
    assert_eq!(
        app.count(500) + app.count(401) + app.count(400) + app.count(415) + app.count(413),
        report.totals.responses
    );
    let stage = &report.stages[0].stats;
    assert!(stage.latency_ms.p50 > 0.0 && stage.latency_ms.p99 >= stage.latency_ms.p50);
    assert!(stage.histogram.is_some());

    // The fix ships: the same attack now passes.
    let switched = HttpProbe::from_json(json!({
        "url": format!("{url}/admin/mode"), "method": "PUT", "body": "fixed"
    }))
    .unwrap()
    .run(&support::limits())
    .await
    .unwrap();
    assert_eq!(
        (switched.status, &switched.body),
        (200, &json!({"mode": "fixed"}))
    );
    let report = abuse(&url, 0.3, json!({})).run(&NeverStop, POLL).await;
    assert_eq!(report.totals.violations, 0);
    assert!(report.violations.is_empty());
    assert_eq!(
        template(&report, "invalid-token")
            .statuses
            .keys()
            .collect::<Vec<_>>(),
        vec![&401]
    );
}

#[tokio::test]
async fn stops_as_soon_as_5xx_pass_the_threshold() {
    let (_app, url) = support::target(Mode::Buggy).await;
    let started = std::time::Instant::now();
    let report = abuse(&url, 5.0, json!({"stop": {"max_5xx": 10}}))
        .run(&NeverStop, POLL)
        .await;
    assert_eq!(
        report.stop_reason,
        StopReason::ServerErrors { count: 11, max: 10 }
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // The two users sending bad tokens each finish at most their request in flight.
    assert!(
        (11..=13).contains(&report.totals.classes.c5xx),
        "{}",
        report.totals.classes.c5xx
    );
}

#[tokio::test]
async fn refused_connections_and_timeouts_are_errors_not_violations() {
    let url = support::refused().await;
    let report = abuse(&url, 2.0, json!({"stop": {"max_errors": 3}}))
        .run(&NeverStop, POLL)
        .await;
    assert_eq!(report.stop_reason, StopReason::Errors { count: 4, max: 3 });
    assert_eq!(
        report.totals.errors[&ErrorKind::Connect],
        report.totals.requests
    );
    assert_eq!(report.totals.violations, 0);
    assert!(
        report.error_samples[0].starts_with("connect: "),
        "{:?}",
        report.error_samples
    );

    let url = support::silent().await;
    let report = abuse(&url, 0.2, json!({"timeout_ms": 100}))
        .run(&NeverStop, POLL)
        .await;
    assert_eq!(report.stop_reason, StopReason::Completed);
    assert_eq!(report.totals.responses, 0);
    // Each of the 6 users times out twice (100 ms each) in 200 ms.
    assert_eq!(report.totals.errors[&ErrorKind::Timeout], 12);
    assert_eq!(report.stages[0].stats.latency_ms.p99, 0.0);
}

#[tokio::test]
async fn the_rate_cap_holds_over_real_sockets() {
    let (app, url) = support::target(Mode::Fixed).await;
    let report = abuse(&url, 0.5, json!({"max_rps": 200}))
        .run(&NeverStop, POLL)
        .await;
    // 200 rps for 0.5 s, plus at most the 10 ms tolerance (2 requests).
    let n = report.totals.requests;
    assert!((95..=103).contains(&n), "{n}");
    assert_eq!(
        app.count(401) + app.count(400) + app.count(413) + app.count(415),
        n
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_run_side_by_side_and_merge_exactly() {
    let (app, url) = support::target(Mode::Buggy).await;
    let whole = abuse(&url, 0.4, json!({"max_rps": 2000}));
    let shares = plan_shares(&whole, 4);
    assert_eq!(shares.len(), 2);
    let runs = shares.into_iter().map(|spec| {
        let attack = spec.validate(&support::limits()).unwrap();
        tokio::spawn(async move { attack.run(&NeverStop, POLL).await })
    });
    let mut reports = Vec::new();
    for run in runs {
        reports.push(run.await.unwrap());
    }
    let singles: Vec<AttackReport> = reports.clone();
    let merged = merge(reports).unwrap();

    assert_eq!(merged.shares, 2);
    assert_eq!(merged.stages.len(), 1);
    assert_eq!(merged.stages[0].users, 6);
    // Users 0-2 and 3-5: every template ran, once each.
    assert_eq!(merged.requests.len(), 6);
    assert!(merged.requests.iter().all(|t| t.requests > 0));
    let total: u64 = singles.iter().map(|r| r.totals.requests).sum();
    assert_eq!(merged.totals.requests, total);
    assert_eq!(merged.totals.classes.c5xx, app.count(500));
    assert_eq!(
        merged.totals.violations,
        singles.iter().map(|r| r.totals.violations).sum::<u64>()
    );
    // Histograms were kept, so latency is exact, not a bound.
    let latency = merged.stages[0].stats.latency_ms;
    assert!(!latency.approximate);
    let worst = singles
        .iter()
        .map(|r| r.stages[0].stats.latency_ms.max)
        .fold(0.0, f64::max);
    assert_eq!(latency.max, worst);
    assert_eq!(merged.violations.len(), 2);
    assert!(serde_json::to_vec(&merged).unwrap().len() < load::MAX_REPORT_BYTES);
}

/// A share's report crosses a Step Functions state as JSON: it must read
/// back as the same report (status-code keys included), or the Map's
/// results could not be merged.
#[tokio::test]
async fn a_report_reads_back_from_its_json() {
    let (_app, url) = support::target(Mode::Buggy).await;
    let report = abuse(&url, 0.3, json!({})).run(&NeverStop, POLL).await;
    assert!(report.totals.requests > 0);
    let text = serde_json::to_string(&report).unwrap();
    let back: AttackReport = serde_json::from_str(&text).unwrap();
    assert_eq!(back, report);
}
