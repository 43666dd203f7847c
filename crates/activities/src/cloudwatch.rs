//! Amazon CloudWatch: chaosaws's `cloudwatch` module (alarms and metrics),
//! and the alarm reads every abort check makes.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::catalogue::{custom, int, one_of, read, text, Activity, Call, Module, Refusal, Rule};
use crate::ports::{unavailable, AwsError, Unavailable};
use crate::{run, ActivityError, Context, Outcome, Ports};

#[async_trait]
pub trait Alarms: Send + Sync {
    /// The state value (OK, ALARM, INSUFFICIENT_DATA) of each named alarm
    /// that exists; names missing from the answer do not exist.
    async fn states(&self, names: &[String]) -> Result<BTreeMap<String, String>, AwsError>;
    /// What each named metric alarm that exists watches (composite alarms
    /// watch other alarms, not a metric, and are left out).
    async fn definitions(&self, names: &[String]) -> Result<Vec<AlarmDefinition>, AwsError>;
}

/// A metric alarm: its metric, threshold and current state.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmDefinition {
    pub name: String,
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    /// `Sum`, `Average`, ... or an extended statistic such as `p99`.
    pub statistic: String,
    pub period_seconds: i32,
    pub threshold: Option<f64>,
    /// `GreaterThanOrEqualToThreshold`, ...
    pub comparison: String,
    pub state: String,
    /// When the alarm last changed state.
    pub state_updated: Option<time::OffsetDateTime>,
}

/// One CloudWatch metric over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    pub start: time::OffsetDateTime,
    pub end: time::OffsetDateTime,
    pub period_seconds: i32,
    /// `Sum`, `Average`, `Maximum`, ... or a percentile such as `p99`.
    pub statistic: String,
    pub unit: Option<String>,
}

#[async_trait]
pub trait Metrics: Send + Sync {
    /// GetMetricStatistics: one value per datapoint, oldest first.
    async fn statistics(&self, query: &MetricQuery) -> Result<Vec<f64>, AwsError>;
    /// GetMetricData with one MetricStat query: its values, oldest first.
    async fn data(&self, query: &MetricQuery) -> Result<Vec<f64>, AwsError> {
        Ok(self
            .series(query)
            .await?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }
    /// GetMetricData with one MetricStat query: (timestamp, value), oldest
    /// first.
    async fn series(
        &self,
        query: &MetricQuery,
    ) -> Result<Vec<(time::OffsetDateTime, f64)>, AwsError>;
}

#[async_trait]
impl Alarms for Unavailable {
    async fn states(&self, _: &[String]) -> Result<BTreeMap<String, String>, AwsError> {
        Err(unavailable("CloudWatch alarms"))
    }
    async fn definitions(&self, _: &[String]) -> Result<Vec<AlarmDefinition>, AwsError> {
        Err(unavailable("CloudWatch alarms"))
    }
}

#[async_trait]
impl Metrics for Unavailable {
    async fn statistics(&self, _: &MetricQuery) -> Result<Vec<f64>, AwsError> {
        Err(unavailable("CloudWatch metrics"))
    }
    async fn series(&self, _: &MetricQuery) -> Result<Vec<(time::OffsetDateTime, f64)>, AwsError> {
        Err(unavailable("CloudWatch metrics"))
    }
}

/// CloudWatch's statistics; anything else is an extended statistic (`p99`).
pub const STATISTICS: &[&str] = &["SampleCount", "Average", "Sum", "Minimum", "Maximum"];

const METRIC_STATISTICS: &str = "chaosaws.cloudwatch.probes.get_metric_statistics";
const METRIC_DATA: &str = "chaosaws.cloudwatch.probes.get_metric_data";

/// `dimensions`: `[{"Name": ..., "Value": ...}]`.
fn dimensions(v: &Value) -> Result<Value, String> {
    let items = v
        .as_array()
        .ok_or_else(|| "must be a list of {\"Name\": ..., \"Value\": ...}".to_string())?;
    for (i, d) in items.iter().enumerate() {
        let ok = d.get("Name").and_then(Value::as_str).is_some()
            && d.get("Value").and_then(Value::as_str).is_some();
        if !ok {
            return Err(format!(
                "must be a list of {{\"Name\": ..., \"Value\": ...}} (item {i} is not)"
            ));
        }
    }
    Ok(v.clone())
}

const DIMENSIONS: &str = "list of {Name, Value}";

pub static MODULE: Module = Module {
    service: "cloudwatch",
    title: "Amazon CloudWatch",
    activities: &[
        Activity::probe(
            "chaosaws.cloudwatch.probes.get_alarm_state_value",
            run!(get_alarm_state_value),
        )
        .doc("`OK`, `ALARM` or `INSUFFICIENT_DATA`.")
        .params(&[text("alarm_name")])
        .iam(&[read("cloudwatch:DescribeAlarms")])
        .example(r#"{"alarm_name": "shop-5xx"}"#),
        Activity::probe(METRIC_STATISTICS, run!(get_metric))
            .doc("The newest datapoint's value. **No datapoint fails the probe** as inconclusive (chaosaws returns 0, which would pass a \"no 5XX\" check on a metric nobody published).")
            .params(&[
                text("namespace"),
                text("metric_name"),
                text("dimension_name").optional(),
                text("dimension_value").optional(),
                custom("dimensions", DIMENSIONS, dimensions).optional(),
                int("duration", 1, 86_400 * 455).or_int(60),
                int("offset", 0, 86_400 * 455).or_int(0),
                one_of("statistic", STATISTICS).optional(),
                text("extended_statistic").optional(),
                text("unit").optional(),
            ])
            .rules(&[
                Rule::Together(&["dimension_name", "dimension_value"]),
                Rule::ExactlyOne(&["statistic", "extended_statistic"]),
            ])
            .iam(&[read("cloudwatch:GetMetricStatistics")])
            .example(r#"{"namespace": "AWS/ApiGateway", "metric_name": "5XXError", "dimension_name": "ApiName", "dimension_value": "shop", "statistic": "Sum", "duration": 300}"#),
        Activity::probe(METRIC_DATA, run!(get_metric))
            .doc("The values folded as chaosaws does (Sum adds, Minimum/Maximum pick, others average); no value fails the probe.")
            .params(&[
                text("namespace"),
                text("metric_name"),
                text("dimension_name").optional(),
                text("dimension_value").optional(),
                custom("dimensions", DIMENSIONS, dimensions).optional(),
                text("statistic").or_text("Average"),
                int("duration", 1, 86_400 * 455).or_int(300),
                int("period", 1, 86_400).or_int(60),
                int("offset", 0, 86_400 * 455).or_int(0),
                text("unit").optional(),
            ])
            .rules(&[Rule::Together(&["dimension_name", "dimension_value"])])
            .check(period_within_duration)
            .iam(&[read("cloudwatch:GetMetricData")])
            .example(r#"{"namespace": "AWS/ApiGateway", "metric_name": "Latency", "dimension_name": "ApiName", "dimension_value": "shop", "statistic": "p99"}"#),
    ],
    refused: &[
        Refusal::destructive(
            "chaosaws.cloudwatch.actions.delete_rule",
            "the EventBridge rule and its targets are gone",
        ),
        Refusal::not_native(
            "chaosaws.cloudwatch.actions.put_metric_data",
            "datapoints cannot be taken back, and made-up ones would mislead every alarm and dashboard on that metric, not only this experiment's",
        ),
        Refusal::not_native("chaosaws.cloudwatch.actions.disable_rule", "not in the catalogue yet"),
        Refusal::not_native("chaosaws.cloudwatch.actions.enable_rule", "not in the catalogue yet"),
        Refusal::not_native("chaosaws.cloudwatch.actions.put_rule", "not in the catalogue yet"),
        Refusal::not_native(
            "chaosaws.cloudwatch.actions.put_rule_targets",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.cloudwatch.actions.remove_rule_targets",
            "not in the catalogue yet",
        ),
    ],
};

fn period_within_duration(c: &Call) -> Result<(), String> {
    let (duration, period) = (c.int("duration"), c.int("period"));
    if period > duration {
        return Err(c.err(
            "period",
            format!("must be at least 1 and at most 'duration' ({duration}), found {period}"),
        ));
    }
    Ok(())
}

async fn get_alarm_state_value(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let alarm_name = c.text("alarm_name").to_string();
    let states = ports
        .alarms
        .states(std::slice::from_ref(&alarm_name))
        .await?;
    states
        .get(&alarm_name)
        .map(|s| Outcome::output(json!(s)))
        .ok_or_else(|| ActivityError::Failed(format!("alarm '{alarm_name}' does not exist")))
}

/// The metric a metric probe reads, over `from..to` instead of the probe's
/// own window (the journal charts it over the run): `None` for any other
/// call. The period is the probe's (`get_metric_data`), or a minute for
/// `get_metric_statistics`, whose period is its whole window.
pub fn probe_metric(
    c: &Call,
    from: time::OffsetDateTime,
    to: time::OffsetDateTime,
) -> Option<MetricQuery> {
    if !matches!(c.name(), METRIC_STATISTICS | METRIC_DATA) {
        return None;
    }
    let period = if c.name() == METRIC_STATISTICS {
        60
    } else {
        i32::try_from(c.int("period")).unwrap_or(i32::MAX)
    };
    Some(MetricQuery {
        start: from,
        end: to,
        period_seconds: period,
        ..metric_query(c, to)
    })
}

/// The query of either metric probe: its dimensions (`dimension_name` and
/// `dimension_value`, or `dimensions`) and the window ending `offset` ago.
fn metric_query(c: &Call, now: time::OffsetDateTime) -> MetricQuery {
    let mut dimensions = Vec::new();
    if let (Some(n), Some(v)) = (c.opt_text("dimension_name"), c.opt_text("dimension_value")) {
        dimensions.push((n.to_string(), v.to_string()));
    }
    for d in c.value("dimensions").as_array().into_iter().flatten() {
        if let (Some(n), Some(v)) = (
            d.get("Name").and_then(Value::as_str),
            d.get("Value").and_then(Value::as_str),
        ) {
            dimensions.push((n.to_string(), v.to_string()));
        }
    }
    let statistics = c.name() == METRIC_STATISTICS;
    let duration = c.int("duration");
    let end = now - time::Duration::seconds(c.int("offset"));
    MetricQuery {
        namespace: c.text("namespace").into(),
        metric_name: c.text("metric_name").into(),
        dimensions,
        start: end - time::Duration::seconds(duration),
        end,
        // GetMetricStatistics: one datapoint over the whole window.
        period_seconds: i32::try_from(if statistics {
            duration
        } else {
            c.int("period")
        })
        .unwrap_or(i32::MAX),
        statistic: match c.opt_text("statistic") {
            Some(s) => s.into(),
            // get_metric_statistics takes exactly one of the two.
            None if statistics => c.text("extended_statistic").into(),
            None => "Average".into(),
        },
        unit: c.opt_text("unit").map(str::to_string),
    }
}

async fn get_metric(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let statistics = c.name() == METRIC_STATISTICS;
    let query = metric_query(c, ctx.now);
    let values = if statistics {
        ports.metrics.statistics(&query).await?
    } else {
        ports.metrics.data(&query).await?
    };
    let window = format!(
        "{} {}{} ({}) over the {} s ending {} s ago",
        query.namespace,
        query.metric_name,
        dimensions_text(&query.dimensions),
        query.statistic,
        c.int("duration"),
        c.int("offset")
    );
    let value = if statistics {
        // The newest datapoint, as Chaos Toolkit reads it.
        values.last().copied()
    } else {
        fold(&query.statistic, &values)
    };
    let value = value.ok_or_else(|| {
        ActivityError::Failed(format!(
            "no datapoints for {window}: inconclusive, so the probe fails (a missing metric is not a 0)"
        ))
    })?;
    Ok(Outcome {
        output: json!(value),
        detail: Some(json!({"metric": window, "datapoints": values.len()})),
        undo: None,
    })
}

fn dimensions_text(dimensions: &[(String, String)]) -> String {
    if dimensions.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = dimensions.iter().map(|(n, v)| format!("{n}={v}")).collect();
    format!(" {{{}}}", inner.join(", "))
}

/// Fold GetMetricData's values as chaosaws does: Sum adds, Minimum and
/// Maximum pick, anything else averages. `None` for no values.
fn fold(statistic: &str, values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(match statistic {
        "Sum" | "SampleCount" => values.iter().sum(),
        "Minimum" => values.iter().copied().fold(f64::INFINITY, f64::min),
        "Maximum" => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        _ => values.iter().sum::<f64>() / values.len() as f64,
    })
}

/// The named alarms that are in ALARM now.
pub async fn firing(alarms: &dyn Alarms, names: &[String]) -> Result<Vec<String>, AwsError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let states = alarms.states(names).await?;
    Ok(names
        .iter()
        .filter(|n| states.get(*n).map(String::as_str) == Some("ALARM"))
        .cloned()
        .collect())
}

/// The named alarms that do not exist.
pub async fn missing(alarms: &dyn Alarms, names: &[String]) -> Result<Vec<String>, AwsError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let states = alarms.states(names).await?;
    Ok(names
        .iter()
        .filter(|n| !states.contains_key(*n))
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{FakeAlarms, FakeEcs};
    use crate::testing::{call, T};

    #[tokio::test]
    async fn a_metric_without_datapoints_fails_the_probe_instead_of_reading_zero() {
        let mut t = T::new(FakeEcs::default());
        let probe = call(
            METRIC_STATISTICS,
            json!({"namespace": "AWS/ApiGateway", "metric_name": "5XXError",
                   "dimension_name": "ApiName", "dimension_value": "api", "statistic": "Sum", "duration": 600}),
        );
        let err = t.run(&probe).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "no datapoints for AWS/ApiGateway 5XXError {ApiName=api} (Sum) over the 600 s ending 0 s ago: inconclusive, so the probe fails (a missing metric is not a 0)"
        );
        *t.metrics.values.lock().unwrap() = vec![2.0, 0.0];
        // The newest datapoint, as chaosaws reads it.
        assert_eq!(t.run(&probe).await.unwrap().output, json!(0.0));
        let q = t.metrics.queries.lock().unwrap()[0].clone();
        assert_eq!(q.end - q.start, time::Duration::seconds(600));
        assert_eq!(q.period_seconds, 600);
        assert_eq!(
            q.dimensions,
            vec![("ApiName".to_string(), "api".to_string())]
        );
    }

    #[tokio::test]
    async fn metric_data_folds_its_values_by_the_statistic() {
        let mut t = T::new(FakeEcs::default());
        *t.metrics.values.lock().unwrap() = vec![1.0, 4.0, 1.0];
        let data = |stat: &str| {
            call(
                "chaosaws.cloudwatch.probes.get_metric_data",
                json!({"namespace": "N", "metric_name": "M", "statistic": stat}),
            )
        };
        assert_eq!(t.run(&data("Sum")).await.unwrap().output, json!(6.0));
        assert_eq!(t.run(&data("Maximum")).await.unwrap().output, json!(4.0));
        assert_eq!(t.run(&data("Average")).await.unwrap().output, json!(2.0));
        let q = t.metrics.queries.lock().unwrap()[0].clone();
        assert_eq!((q.end - q.start).whole_seconds(), 300);
        assert_eq!(q.period_seconds, 60);
    }

    #[test]
    fn metric_arguments_are_checked_at_plan() {
        let parse =
            |f: &str, args: Value| Call::parse(&crate::catalogue::spec(f, args)).map(|_| ());
        assert_eq!(
            parse(METRIC_STATISTICS, json!({"namespace": "N", "metric_name": "M"})),
            Err("exactly one of 'statistic' and 'extended_statistic' is required by chaosaws.cloudwatch.probes.get_metric_statistics".into())
        );
        assert_eq!(
            parse(METRIC_STATISTICS, json!({"namespace": "N", "metric_name": "M", "statistic": "Total"})),
            Err("argument 'statistic' of chaosaws.cloudwatch.probes.get_metric_statistics must be one of SampleCount, Average, Sum, Minimum, Maximum, found \"Total\"".into())
        );
        assert_eq!(
            parse(METRIC_STATISTICS, json!({"namespace": "N", "metric_name": "M", "statistic": "Sum", "dimension_name": "ApiName"})),
            Err("'dimension_name' and 'dimension_value' go together in chaosaws.cloudwatch.probes.get_metric_statistics".into())
        );
        assert_eq!(
            parse("chaosaws.cloudwatch.probes.get_metric_data", json!({"namespace": "N", "metric_name": "M", "duration": 60, "period": 300})),
            Err("argument 'period' of chaosaws.cloudwatch.probes.get_metric_data must be at least 1 and at most 'duration' (60), found 300".into())
        );
        assert_eq!(
            parse(METRIC_STATISTICS, json!({"namespace": "N", "metric_name": "M", "statistic": "Sum", "dimensions": [{"Name": "A"}]})),
            Err("argument 'dimensions' of chaosaws.cloudwatch.probes.get_metric_statistics must be a list of {\"Name\": ..., \"Value\": ...} (item 0 is not)".into())
        );
    }

    #[tokio::test]
    async fn firing_and_missing_alarms() {
        let alarms = FakeAlarms::default();
        alarms.set("a", "OK");
        alarms.set("b", "ALARM");
        let names = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(
            firing(&alarms, &names).await.unwrap(),
            vec!["b".to_string()]
        );
        assert_eq!(
            missing(&alarms, &names).await.unwrap(),
            vec!["c".to_string()]
        );
        assert_eq!(alarms.calls(), 2);
        assert!(firing(&alarms, &[]).await.unwrap().is_empty());
        assert_eq!(alarms.calls(), 2, "no alarms, no call");
    }
}
