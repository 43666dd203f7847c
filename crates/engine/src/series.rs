//! The target over time: the series the report charts
//! (`turbulence.metrics`), collected by the journal function when the run
//! ends, so a journal is self-contained (a console user never runs the CLI):
//!
//! - each abort alarm's metric, with its threshold and when it fired;
//! - each CloudWatch metric probe's metric over the whole run;
//! - an ECS service's desired and running tasks, from the probes' own
//!   records (no API call).
//!
//! Bounded in size ([`MAX_SERIES`] charts of at most [`MAX_POINTS`] points),
//! and never a reason for the journal to fail: a series that cannot be read
//! says why in its `note`.

use activities::cloudwatch::probe_metric;
use activities::{timestamp, AlarmDefinition, Alarms, Call, CallSpec, MetricQuery, Metrics};
use experiment::state::{Record, State};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

/// The most charts one journal carries.
pub const MAX_SERIES: usize = 6;
/// The most points one chart carries: with [`MAX_SERIES`], about 40 KB of
/// the 256 KB that the execution's output and the dead-letter message each
/// allow the whole journal.
pub const MAX_POINTS: i64 = 200;
/// Read this much before and after the run, so a chart shows the level the
/// target came from and went back to.
const MARGIN: Duration = Duration::seconds(60);

/// The series for a run that started at `start` and ended at `end`.
pub async fn collect(
    state: &State,
    start: OffsetDateTime,
    end: OffsetDateTime,
    alarms: &dyn Alarms,
    metrics: &dyn Metrics,
) -> Vec<Value> {
    let (from, to) = (start - MARGIN, end + MARGIN);
    let mut out = Vec::new();
    let names = state
        .plan
        .as_ref()
        .map(|p| p.settings.abort_alarms.clone())
        .unwrap_or_default();
    if !names.is_empty() {
        match alarms.definitions(&names).await {
            Ok(defs) => {
                for d in defs {
                    out.push(alarm_series(&d, from, to, metrics).await);
                }
            }
            Err(e) => out.push(json!({
                "title": "abort alarms",
                "source": "abort alarm",
                "lines": [],
                "note": format!("the abort alarms could not be read: {e}"),
            })),
        }
    }
    let mut seen = Vec::new();
    for r in &state.records {
        let Some(query) = probe_query(r, from, to) else {
            continue;
        };
        let key = (
            query.namespace.clone(),
            query.metric_name.clone(),
            query.dimensions.clone(),
            query.statistic.clone(),
        );
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let title = format!("{} (probe '{}')", describe(&query), r.name);
        out.push(read(metrics, &query, title, "metric probe", json!({})).await);
    }
    out.extend(ecs_counts(&state.records));
    out.truncate(MAX_SERIES);
    out
}

async fn alarm_series(
    d: &AlarmDefinition,
    from: OffsetDateTime,
    to: OffsetDateTime,
    metrics: &dyn Metrics,
) -> Value {
    let query = MetricQuery {
        namespace: d.namespace.clone(),
        metric_name: d.metric_name.clone(),
        dimensions: d.dimensions.clone(),
        start: from,
        end: to,
        period_seconds: period_for(d.period_seconds, to - from),
        statistic: d.statistic.clone(),
        unit: None,
    };
    let mut extra = json!({ "threshold": d.threshold, "comparison": d.comparison });
    if let Some(at) = d
        .state_updated
        .filter(|at| d.state == "ALARM" && (from..=to).contains(at))
    {
        extra["fired_at"] = json!(timestamp(at));
    }
    let title = format!("{}: {}", d.name, describe(&query));
    read(metrics, &query, title, "abort alarm", extra).await
}

async fn read(
    metrics: &dyn Metrics,
    query: &MetricQuery,
    title: String,
    source: &str,
    extra: Value,
) -> Value {
    let mut s = json!({ "title": title, "source": source, "lines": [] });
    match metrics.series(query).await {
        Ok(points) => {
            let points: Vec<Value> = points
                .into_iter()
                .take(MAX_POINTS as usize)
                .map(|(t, v)| json!([timestamp(t), v]))
                .collect();
            s["lines"] = json!([{ "name": query.statistic, "points": points }]);
            s["period_seconds"] = json!(query.period_seconds);
        }
        Err(e) => s["note"] = json!(format!("could not be read: {e}")),
    }
    if let Value::Object(extra) = extra {
        for (k, v) in extra.into_iter().filter(|(_, v)| !v.is_null()) {
            s[k] = v;
        }
    }
    s
}

/// A metric probe's metric, over the run's window rather than the probe's
/// own (one chart shows what each of its reads saw).
fn probe_query(r: &Record, from: OffsetDateTime, to: OffsetDateTime) -> Option<MetricQuery> {
    let spec = CallSpec {
        function: r.function.clone(),
        arguments: r.arguments.clone(),
    };
    let mut query = probe_metric(&Call::parse(&spec).ok()?, from, to)?;
    query.period_seconds = period_for(query.period_seconds, to - from);
    Some(query)
}

/// `base`, or the smallest whole minute that keeps the window within
/// [`MAX_POINTS`] points.
fn period_for(base: i32, window: Duration) -> i32 {
    let base = i64::from(base.max(1));
    let needed = (window.whole_seconds() + MAX_POINTS - 1) / MAX_POINTS;
    if needed <= base {
        return base as i32;
    }
    let minutes = (needed + 59) / 60;
    i32::try_from(minutes * 60).unwrap_or(i32::MAX)
}

/// An ECS service's desired and running tasks as its probes saw them.
fn ecs_counts(records: &[Record]) -> Vec<Value> {
    /// (cluster, service), desired points, running points.
    type Counts = ((String, String), Vec<Value>, Vec<Value>);
    let mut services: Vec<Counts> = Vec::new();
    for r in records {
        let Some((desired, running)) = task_counts(r) else {
            continue;
        };
        let text = |k: &str| {
            r.arguments
                .get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let (Some(cluster), Some(service)) = (text("cluster"), text("service")) else {
            continue;
        };
        let key = (cluster, service);
        let i = match services.iter().position(|s| s.0 == key) {
            Some(i) => i,
            None => {
                services.push((key, Vec::new(), Vec::new()));
                services.len() - 1
            }
        };
        services[i].1.push(json!([r.end, desired]));
        services[i].2.push(json!([r.end, running]));
    }
    services
        .into_iter()
        .map(|((cluster, service), desired, running)| {
            json!({
                "title": format!("ECS service {service} in {cluster}: tasks"),
                "source": "probes",
                "lines": [
                    {"name": "desired", "points": desired},
                    {"name": "running", "points": running},
                ],
            })
        })
        .collect()
}

/// (desired, running) from a record of `describe_service` (its output) or
/// `are_all_desired_tasks_running` (its detail: the desired count before the
/// method, and the running tasks).
fn task_counts(r: &Record) -> Option<(f64, f64)> {
    let pair = |v: &Value, d: &str, n: &str| Some((v.get(d)?.as_f64()?, v.get(n)?.as_f64()?));
    match r.function.as_str() {
        "chaosaws.ecs.probes.describe_service" => {
            let s = r.output.pointer("/services/0").unwrap_or(&r.output);
            pair(s, "desiredCount", "runningCount")
        }
        "chaosaws.ecs.probes.are_all_desired_tasks_running" => {
            pair(r.detail.as_ref()?, "desired_count_now", "running")
        }
        _ => None,
    }
}

fn describe(q: &MetricQuery) -> String {
    let dims: Vec<String> = q
        .dimensions
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    let dims = if dims.is_empty() {
        String::new()
    } else {
        format!(" {{{}}}", dims.join(", "))
    };
    format!("{} {}{dims} ({})", q.namespace, q.metric_name, q.statistic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use activities::fake::{FakeAlarms, FakeMetrics};

    fn at(s: &str) -> OffsetDateTime {
        activities::parse_timestamp(s).unwrap()
    }

    fn alarm(name: &str, state_updated: &str) -> AlarmDefinition {
        AlarmDefinition {
            name: name.into(),
            namespace: "Shop".into(),
            metric_name: "5XXError".into(),
            dimensions: vec![("ApiName".into(), "shop".into())],
            statistic: "Sum".into(),
            period_seconds: 60,
            threshold: Some(5.0),
            comparison: "GreaterThanOrEqualToThreshold".into(),
            state: "OK".into(),
            state_updated: Some(at(state_updated)),
        }
    }

    fn record(
        function: &str,
        args: Value,
        output: Value,
        detail: Option<Value>,
        end: &str,
    ) -> Record {
        serde_json::from_value(json!({
            "phase": "method", "name": "p", "kind": "probe", "function": function,
            "arguments": args, "status": "succeeded", "output": output, "detail": detail,
            "start": end, "end": end, "duration": 0.1,
        }))
        .unwrap()
    }

    fn state(alarms: &[&str], records: Vec<Record>) -> State {
        let mut s: State = serde_json::from_value(json!({
            "execution": "arn:aws:states:us-east-1:1:execution:m:e",
            "experiment": {},
        }))
        .unwrap();
        s.plan = Some(serde_json::from_value(json!({
            "title": "t",
            "settings": {"abort_alarms": alarms, "poll_interval_ms": 1000, "wait_chunk_ms": 1000, "time_scale": 1.0},
            "steps": [], "rollbacks": [],
        }))
        .unwrap());
        s.records = records;
        s
    }

    #[tokio::test]
    async fn an_abort_alarm_is_charted_with_its_threshold_and_when_it_fired() {
        let alarms = FakeAlarms::default();
        alarms.define(alarm("shop-5xx", "2026-12-01T10:02:00Z"));
        alarms.define(alarm("other", "2026-12-01T10:02:00Z"));
        alarms.set("shop-5xx", "ALARM");
        let metrics = FakeMetrics::default();
        *metrics.values.lock().unwrap() = vec![0.0, 7.0];
        let s = state(&["shop-5xx"], vec![]);
        let (t0, t1) = (at("2026-12-01T10:00:00Z"), at("2026-12-01T10:05:00Z"));
        let series = collect(&s, t0, t1, &alarms, &metrics).await;
        assert_eq!(series.len(), 1, "only the run's abort alarms: {series:?}");
        let a = &series[0];
        assert_eq!(a["source"], "abort alarm");
        assert_eq!(a["threshold"], json!(5.0));
        assert_eq!(a["fired_at"], "2026-12-01T10:02:00Z");
        assert_eq!(
            a["lines"][0]["points"],
            json!([["2026-12-01T09:59:00Z", 0.0], ["2026-12-01T10:00:00Z", 7.0]])
        );
        let q = &metrics.queries.lock().unwrap()[0];
        assert_eq!(
            (q.namespace.as_str(), q.metric_name.as_str()),
            ("Shop", "5XXError")
        );
        assert_eq!(q.dimensions, vec![("ApiName".into(), "shop".into())]);
        assert_eq!(
            (q.start, q.end),
            (t0 - MARGIN, t1 + MARGIN),
            "the whole run and a minute each side"
        );
    }

    #[tokio::test]
    async fn an_alarm_that_fired_before_the_run_or_is_ok_has_no_firing_mark() {
        let alarms = FakeAlarms::default();
        alarms.define(alarm("long-ago", "2026-11-01T00:00:00Z"));
        alarms.set("long-ago", "ALARM");
        alarms.define(alarm("ok", "2026-12-01T10:01:00Z"));
        let s = state(&["long-ago", "ok"], vec![]);
        let (t0, t1) = (at("2026-12-01T10:00:00Z"), at("2026-12-01T10:05:00Z"));
        let series = collect(&s, t0, t1, &alarms, &FakeMetrics::default()).await;
        assert_eq!(series.len(), 2);
        assert!(
            series.iter().all(|s| s.get("fired_at").is_none()),
            "{series:?}"
        );
    }

    #[tokio::test]
    async fn metric_probes_are_charted_once_each_and_ecs_counts_come_from_the_records() {
        let probe = |name: &str| {
            json!({"namespace": "AWS/ApiGateway", "metric_name": name, "dimension_name": "ApiName",
                   "dimension_value": "shop", "statistic": "Sum", "duration": 300})
        };
        let stats = "chaosaws.cloudwatch.probes.get_metric_statistics";
        let svc = json!({"cluster": "c", "service": "web"});
        let records = vec![
            record(
                stats,
                probe("5XXError"),
                json!(0),
                None,
                "2026-12-01T10:00:10Z",
            ),
            record(
                stats,
                probe("5XXError"),
                json!(0),
                None,
                "2026-12-01T10:04:00Z",
            ),
            record(
                stats,
                probe("4XXError"),
                json!(0),
                None,
                "2026-12-01T10:04:00Z",
            ),
            record(
                "chaosaws.ecs.probes.are_all_desired_tasks_running",
                svc.clone(),
                json!(true),
                Some(json!({"running": 3, "expected": 3, "desired_count_now": 3})),
                "2026-12-01T10:00:20Z",
            ),
            record(
                "chaosaws.ecs.probes.describe_service",
                svc,
                json!({"desiredCount": 3, "runningCount": 1}),
                None,
                "2026-12-01T10:03:00Z",
            ),
        ];
        let s = state(&[], records);
        let metrics = FakeMetrics::default();
        *metrics.values.lock().unwrap() = vec![1.0];
        let series = collect(
            &s,
            at("2026-12-01T10:00:00Z"),
            at("2026-12-01T10:05:00Z"),
            &FakeAlarms::default(),
            &metrics,
        )
        .await;
        let titles: Vec<&str> = series
            .iter()
            .map(|s| s["title"].as_str().unwrap())
            .collect();
        assert_eq!(titles.len(), 3, "{titles:?}");
        assert!(
            titles[0].starts_with("AWS/ApiGateway 5XXError {ApiName=shop} (Sum)"),
            "{titles:?}"
        );
        assert!(titles[1].contains("4XXError"), "{titles:?}");
        assert_eq!(
            metrics.queries.lock().unwrap()[0].period_seconds,
            60,
            "a minute, not the probe's 300 s"
        );
        let ecs = &series[2];
        assert_eq!(ecs["lines"][0]["name"], "desired");
        assert_eq!(
            ecs["lines"][1]["points"],
            json!([["2026-12-01T10:00:20Z", 3.0], ["2026-12-01T10:03:00Z", 1.0]])
        );
    }

    #[tokio::test]
    async fn a_series_that_cannot_be_read_says_why_and_the_rest_still_come() {
        let s = state(&["a"], vec![]);
        let series = collect(
            &s,
            at("2026-12-01T10:00:00Z"),
            at("2026-12-01T10:05:00Z"),
            &activities::Unavailable,
            &activities::Unavailable,
        )
        .await;
        assert_eq!(series.len(), 1);
        assert!(
            series[0]["note"]
                .as_str()
                .unwrap()
                .contains("could not be read"),
            "{series:?}"
        );
    }

    #[test]
    fn a_day_long_run_is_read_at_a_coarser_period_within_the_point_bound() {
        assert_eq!(period_for(60, Duration::minutes(10)), 60);
        assert_eq!(period_for(1, Duration::minutes(2)), 1);
        assert_eq!(
            period_for(1, Duration::minutes(10)),
            60,
            "600 points are too many"
        );
        let day = Duration::hours(24) + MARGIN * 2;
        let p = period_for(60, day);
        assert_eq!(p, 480);
        assert!(day.whole_seconds() / i64::from(p) <= MAX_POINTS);
        assert_eq!(period_for(60, Duration::days(7)), 3060);
    }
}
