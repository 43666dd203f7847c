//! The alarm and metric ports over aws-sdk-cloudwatch.

use std::collections::BTreeMap;

use activities::ports::{AlarmDefinition, Alarms, AwsError, MetricQuery, Metrics};
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::AlarmType;

use crate::classify;

pub struct AwsAlarms(pub aws_sdk_cloudwatch::Client);

#[async_trait]
impl Alarms for AwsAlarms {
    async fn states(&self, names: &[String]) -> Result<BTreeMap<String, String>, AwsError> {
        let mut states = BTreeMap::new();
        // DescribeAlarms takes at most 100 names a call.
        for batch in names.chunks(100) {
            let mut pages = self
                .0
                .describe_alarms()
                .set_alarm_names(Some(batch.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| classify("cloudwatch:DescribeAlarms", e))?;
                for a in page.metric_alarms() {
                    if let (Some(n), Some(s)) = (a.alarm_name(), a.state_value()) {
                        states.insert(n.to_string(), s.as_str().to_string());
                    }
                }
                for a in page.composite_alarms() {
                    if let (Some(n), Some(s)) = (a.alarm_name(), a.state_value()) {
                        states.insert(n.to_string(), s.as_str().to_string());
                    }
                }
            }
        }
        Ok(states)
    }

    async fn definitions(&self, names: &[String]) -> Result<Vec<AlarmDefinition>, AwsError> {
        let mut found = Vec::new();
        for batch in names.chunks(100) {
            let mut pages = self
                .0
                .describe_alarms()
                .set_alarm_names(Some(batch.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| classify("cloudwatch:DescribeAlarms", e))?;
                found.extend(page.metric_alarms().iter().filter_map(|a| {
                    Some(AlarmDefinition {
                        name: a.alarm_name()?.to_string(),
                        // An alarm on a metric math expression has no single
                        // metric to chart.
                        namespace: a.namespace()?.to_string(),
                        metric_name: a.metric_name()?.to_string(),
                        dimensions: a
                            .dimensions()
                            .iter()
                            .filter_map(|d| Some((d.name()?.to_string(), d.value()?.to_string())))
                            .collect(),
                        statistic: a
                            .statistic()
                            .map(|s| s.as_str().to_string())
                            .or_else(|| a.extended_statistic().map(str::to_string))?,
                        period_seconds: a.period()?,
                        threshold: a.threshold(),
                        comparison: a
                            .comparison_operator()
                            .map(|c| c.as_str().to_string())
                            .unwrap_or_default(),
                        state: a
                            .state_value()
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_default(),
                        state_updated: a.state_updated_timestamp().and_then(offset_time),
                    })
                }));
            }
        }
        Ok(found)
    }
}

pub struct AwsMetrics(pub aws_sdk_cloudwatch::Client);

fn sdk_time(t: time::OffsetDateTime) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_millis(
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX),
    )
}

fn sdk_dimensions(query: &MetricQuery) -> Vec<aws_sdk_cloudwatch::types::Dimension> {
    query
        .dimensions
        .iter()
        .map(|(n, v)| {
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name(n)
                .value(v)
                .build()
        })
        .collect()
}

/// Percentiles (`p99`, `tm90`...) are extended statistics.
fn is_extended(statistic: &str) -> bool {
    !["SampleCount", "Average", "Sum", "Minimum", "Maximum"].contains(&statistic)
}

#[async_trait]
impl Metrics for AwsMetrics {
    async fn statistics(&self, q: &MetricQuery) -> Result<Vec<f64>, AwsError> {
        use aws_sdk_cloudwatch::types::{StandardUnit, Statistic};
        let mut req = self
            .0
            .get_metric_statistics()
            .namespace(&q.namespace)
            .metric_name(&q.metric_name)
            .set_dimensions(Some(sdk_dimensions(q)))
            .start_time(sdk_time(q.start))
            .end_time(sdk_time(q.end))
            .period(q.period_seconds)
            .set_unit(q.unit.as_deref().map(StandardUnit::from));
        req = if is_extended(&q.statistic) {
            req.extended_statistics(&q.statistic)
        } else {
            req.statistics(Statistic::from(q.statistic.as_str()))
        };
        let out = req
            .send()
            .await
            .map_err(|e| classify("cloudwatch:GetMetricStatistics", e))?;
        let mut points: Vec<(aws_smithy_types::DateTime, f64)> = out
            .datapoints()
            .iter()
            .filter_map(|d| {
                let value = match q.statistic.as_str() {
                    "SampleCount" => d.sample_count(),
                    "Average" => d.average(),
                    "Sum" => d.sum(),
                    "Minimum" => d.minimum(),
                    "Maximum" => d.maximum(),
                    p => d.extended_statistics().and_then(|m| m.get(p).copied()),
                };
                Some((*d.timestamp()?, value?))
            })
            .collect();
        points.sort_by_key(|p| p.0);
        Ok(points.into_iter().map(|(_, v)| v).collect())
    }

    async fn series(&self, q: &MetricQuery) -> Result<Vec<(time::OffsetDateTime, f64)>, AwsError> {
        use aws_sdk_cloudwatch::types::{
            Metric, MetricDataQuery, MetricStat, ScanBy, StandardUnit,
        };
        let stat = MetricStat::builder()
            .metric(
                Metric::builder()
                    .namespace(&q.namespace)
                    .metric_name(&q.metric_name)
                    .set_dimensions(Some(sdk_dimensions(q)))
                    .build(),
            )
            .period(q.period_seconds)
            .stat(&q.statistic)
            .set_unit(q.unit.as_deref().map(StandardUnit::from))
            .build();
        let query = MetricDataQuery::builder()
            .id("m1")
            .metric_stat(stat)
            .build();
        let mut points = Vec::new();
        let mut pages = self
            .0
            .get_metric_data()
            .metric_data_queries(query)
            .start_time(sdk_time(q.start))
            .end_time(sdk_time(q.end))
            .scan_by(ScanBy::TimestampAscending)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("cloudwatch:GetMetricData", e))?;
            for r in page.metric_data_results() {
                points.extend(
                    r.timestamps()
                        .iter()
                        .zip(r.values())
                        .filter_map(|(t, v)| Some((offset_time(t)?, *v))),
                );
            }
        }
        Ok(points)
    }
}

fn offset_time(t: &aws_smithy_types::DateTime) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.to_millis().ok()?) * 1_000_000)
        .ok()
}
