//! The ports implemented over the AWS SDK for Rust.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::AlarmType;
use aws_sdk_ecs::types::DesiredStatus;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::ports::{
    AlarmDefinition, Alarms, AwsError, DeadLetters, Ecs, Executions, Functions, Invocation,
    MetricQuery, Metrics, Parameters, PutParameter, Service, Task,
};

/// The SDK configuration from the standard chain: region, credentials, and
/// `AWS_ENDPOINT_URL` for the local stack.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Error codes AWS uses for "slow down".
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
];

fn classify<E>(op: &str, err: aws_sdk_ecs::error::SdkError<E>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = err.code().map(str::to_string);
    let text = format!("{op}: {}", DisplayErrorContext(&err));
    match code.as_deref() {
        Some(c) if THROTTLING_CODES.contains(&c) => AwsError::Throttled(text),
        Some(
            "ClusterNotFoundException" | "ServiceNotFoundException" | "ServiceNotActiveException",
        ) => AwsError::NotFound(text),
        _ => AwsError::Other(text),
    }
}

pub struct AwsEcs(pub aws_sdk_ecs::Client);

#[async_trait]
impl Ecs for AwsEcs {
    async fn describe_service(&self, cluster: &str, service: &str) -> Result<Service, AwsError> {
        let out = self
            .0
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| classify("ecs:DescribeServices", e))?;
        let found = out
            .services()
            .iter()
            .find(|s| s.service_name() == Some(service) || s.service_arn() == Some(service));
        match found {
            Some(s) if s.status() != Some("INACTIVE") => Ok(Service {
                name: s.service_name().unwrap_or(service).to_string(),
                status: s.status().unwrap_or_default().to_string(),
                desired_count: s.desired_count(),
                running_count: s.running_count(),
                pending_count: s.pending_count(),
            }),
            _ => Err(AwsError::NotFound(format!(
                "service '{service}' not found in cluster '{cluster}'"
            ))),
        }
    }

    async fn running_tasks(
        &self,
        cluster: &str,
        service: Option<&str>,
    ) -> Result<Vec<Task>, AwsError> {
        let mut arns = Vec::new();
        let mut pages = self
            .0
            .list_tasks()
            .cluster(cluster)
            .set_service_name(service.map(str::to_string))
            .desired_status(DesiredStatus::Running)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ecs:ListTasks", e))?;
            arns.extend(page.task_arns().iter().cloned());
        }
        let group = service.map(|s| format!("service:{s}"));
        let mut tasks = Vec::new();
        // DescribeTasks takes at most 100 tasks a call.
        for batch in arns.chunks(100) {
            let out = self
                .0
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| classify("ecs:DescribeTasks", e))?;
            for t in out.tasks() {
                let in_service = match &group {
                    Some(g) => t.group() == Some(g.as_str()),
                    None => true,
                };
                if in_service && t.last_status() == Some("RUNNING") {
                    if let Some(arn) = t.task_arn() {
                        tasks.push(Task {
                            arn: arn.to_string(),
                            last_status: "RUNNING".into(),
                        });
                    }
                }
            }
        }
        Ok(tasks)
    }

    async fn stop_task(&self, cluster: &str, task_arn: &str, reason: &str) -> Result<(), AwsError> {
        self.0
            .stop_task()
            .cluster(cluster)
            .task(task_arn)
            .reason(reason)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ecs:StopTask", e))
    }

    async fn update_desired_count(
        &self,
        cluster: &str,
        service: &str,
        desired_count: i32,
    ) -> Result<(), AwsError> {
        self.0
            .update_service()
            .cluster(cluster)
            .service(service)
            .desired_count(desired_count)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ecs:UpdateService", e))
    }

    async fn tags(
        &self,
        cluster: &str,
        service: Option<&str>,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        use aws_sdk_ecs::types::{ClusterField, ServiceField};
        let tags = match service {
            Some(service) => {
                let out = self
                    .0
                    .describe_services()
                    .cluster(cluster)
                    .services(service)
                    .include(ServiceField::Tags)
                    .send()
                    .await
                    .map_err(|e| classify("ecs:DescribeServices", e))?;
                let s = out
                    .services()
                    .iter()
                    .find(|s| s.service_name() == Some(service) || s.service_arn() == Some(service))
                    .ok_or_else(|| {
                        AwsError::NotFound(format!(
                            "service '{service}' not found in cluster '{cluster}'"
                        ))
                    })?;
                s.tags().to_vec()
            }
            None => {
                let out = self
                    .0
                    .describe_clusters()
                    .clusters(cluster)
                    .include(ClusterField::Tags)
                    .send()
                    .await
                    .map_err(|e| classify("ecs:DescribeClusters", e))?;
                let c = out
                    .clusters()
                    .first()
                    .ok_or_else(|| AwsError::NotFound(format!("cluster '{cluster}' not found")))?;
                c.tags().to_vec()
            }
        };
        Ok(tags
            .into_iter()
            .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
            .collect())
    }
}

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

pub struct AwsDeadLetters(pub aws_sdk_sqs::Client);

#[async_trait]
impl DeadLetters for AwsDeadLetters {
    async fn send(&self, queue_url: &str, body: &str) -> Result<(), AwsError> {
        self.0
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("sqs:SendMessage", e))
    }
}

pub struct AwsParameters(pub aws_sdk_ssm::Client);

#[async_trait]
impl Parameters for AwsParameters {
    async fn get(&self, name: &str) -> Result<Option<String>, AwsError> {
        match self
            .0
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
        {
            Ok(out) => Ok(out.parameter.and_then(|p| p.value)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify("ssm:GetParameter", e)),
        }
    }

    async fn put(&self, put: &PutParameter) -> Result<(), AwsError> {
        self.0
            .put_parameter()
            .name(&put.name)
            .value(&put.value)
            .r#type(aws_sdk_ssm::types::ParameterType::from(put.kind.as_str()))
            .set_description(put.description.clone())
            .overwrite(put.overwrite)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ssm:PutParameter", e))
    }

    async fn delete(&self, name: &str) -> Result<bool, AwsError> {
        match self.0.delete_parameter().name(name).send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify("ssm:DeleteParameter", e)),
        }
    }

    async fn create(&self, name: &str, value: &str) -> Result<bool, AwsError> {
        match self
            .0
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(false)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_already_exists()) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify("ssm:PutParameter", e)),
        }
    }

    async fn list(&self, path: &str) -> Result<Vec<(String, String)>, AwsError> {
        let mut found = Vec::new();
        let mut pages = self
            .0
            .get_parameters_by_path()
            .path(path)
            .recursive(true)
            .with_decryption(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ssm:GetParametersByPath", e))?;
            for p in page.parameters() {
                if let (Some(n), Some(v)) = (p.name(), p.value()) {
                    found.push((n.to_string(), v.to_string()));
                }
            }
        }
        Ok(found)
    }
}

pub struct AwsFunctions(pub aws_sdk_lambda::Client);

#[async_trait]
impl Functions for AwsFunctions {
    async fn invoke(
        &self,
        function_name: &str,
        payload: &[u8],
        invocation_type: &str,
        qualifier: Option<&str>,
    ) -> Result<Invocation, AwsError> {
        let out = self
            .0
            .invoke()
            .function_name(function_name)
            .payload(aws_smithy_types::Blob::new(payload.to_vec()))
            .invocation_type(aws_sdk_lambda::types::InvocationType::from(invocation_type))
            .set_qualifier(qualifier.map(str::to_string))
            .send()
            .await
            .map_err(|e| classify("lambda:Invoke", e))?;
        Ok(Invocation {
            status_code: out.status_code,
            function_error: out.function_error,
            payload: out.payload.map(|b| b.into_inner()).unwrap_or_default(),
        })
    }

    async fn tags(&self, function_name: &str) -> Result<BTreeMap<String, String>, AwsError> {
        Ok(self
            .get_function(function_name)
            .await?
            .tags
            .unwrap_or_default()
            .into_iter()
            .collect())
    }

    async fn setup(
        &self,
        function_name: &str,
    ) -> Result<experiment::faults::FunctionSetup, AwsError> {
        let out = self.get_function(function_name).await?;
        let config = out
            .configuration
            .unwrap_or_else(|| aws_sdk_lambda::types::FunctionConfiguration::builder().build());
        Ok(experiment::faults::FunctionSetup::new(
            config.runtime.map(|r| r.as_str().to_string()),
            config
                .layers
                .unwrap_or_default()
                .into_iter()
                .filter_map(|l| l.arn)
                .collect(),
            config
                .environment
                .and_then(|e| e.variables)
                .unwrap_or_default(),
            out.tags.unwrap_or_default().into_iter().collect(),
        ))
    }
}

impl AwsFunctions {
    async fn get_function(
        &self,
        function_name: &str,
    ) -> Result<aws_sdk_lambda::operation::get_function::GetFunctionOutput, AwsError> {
        self.0
            .get_function()
            .function_name(function_name)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(s) if s.is_resource_not_found_exception() => {
                    AwsError::NotFound(format!("Lambda function '{function_name}' not found"))
                }
                _ => classify("lambda:GetFunction", e),
            })
    }
}

pub struct AwsExecutions(pub aws_sdk_sfn::Client);

/// The state document inside a history event's JSON text: a function's
/// payload (`{"op", "state"}` for the action function) or a state's output.
fn state_in(text: &str) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let v = v.get("Payload").cloned().unwrap_or(v);
    let v = v.get("state").cloned().unwrap_or(v);
    (v.get("plan").is_some() && v.get("experiment").is_some()).then_some(v)
}

#[async_trait]
impl Executions for AwsExecutions {
    async fn start(&self, state_machine: &str, name: &str, input: &str) -> Result<(), AwsError> {
        match self
            .0
            .start_execution()
            .state_machine_arn(state_machine)
            .name(name)
            .input(input)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Names are derived from the parent's, so this is a retry.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_already_exists()) =>
            {
                Ok(())
            }
            Err(e) => Err(classify("states:StartExecution", e)),
        }
    }

    async fn stop(&self, execution: &str, cause: &str) -> Result<(), AwsError> {
        match self
            .0
            .stop_execution()
            .execution_arn(execution)
            .cause(cause)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_does_not_exist()) =>
            {
                Ok(())
            }
            Err(e) => Err(classify("states:StopExecution", e)),
        }
    }

    async fn output(&self, execution: &str) -> Result<Option<serde_json::Value>, AwsError> {
        let out = self
            .0
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
            .map_err(|e| classify("states:DescribeExecution", e))?;
        Ok(out.output().and_then(|o| serde_json::from_str(o).ok()))
    }

    async fn status(&self, execution: &str) -> Result<Option<String>, AwsError> {
        match self
            .0
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.status.as_str().to_string())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_does_not_exist()) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify("states:DescribeExecution", e)),
        }
    }

    async fn last_state(&self, execution: &str) -> Result<Option<serde_json::Value>, AwsError> {
        let mut pages = self
            .0
            .get_execution_history()
            .execution_arn(execution)
            .reverse_order(true)
            .include_execution_data(true)
            .into_paginator()
            .send();
        let mut input = None;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("states:GetExecutionHistory", e))?;
            for event in page.events() {
                let texts = [
                    event.task_scheduled_event_details().map(|d| d.parameters()),
                    event
                        .lambda_function_scheduled_event_details()
                        .and_then(|d| d.input()),
                    event.state_exited_event_details().and_then(|d| d.output()),
                    event.state_entered_event_details().and_then(|d| d.input()),
                ];
                if let Some(state) = texts.into_iter().flatten().find_map(state_in) {
                    return Ok(Some(state));
                }
                if let Some(i) = event
                    .execution_started_event_details()
                    .and_then(|d| d.input())
                {
                    input = serde_json::from_str::<serde_json::Value>(i)
                        .ok()
                        .map(|experiment| {
                            serde_json::json!({"experiment": experiment, "execution": execution})
                        });
                }
            }
        }
        Ok(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
    use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
    use aws_sdk_ecs::operation::update_service::UpdateServiceError;
    use aws_sdk_ecs::types::{Failure, Service as SdkService, Task as SdkTask};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn task(arn: &str, group: &str, status: &str) -> SdkTask {
        SdkTask::builder()
            .task_arn(arn)
            .group(group)
            .last_status(status)
            .build()
    }

    #[tokio::test]
    async fn running_tasks_keeps_only_running_tasks_of_the_service() {
        let list = mock!(aws_sdk_ecs::Client::list_tasks)
            .match_requests(|r| r.cluster() == Some("c") && r.service_name() == Some("web"))
            .then_output(|| {
                ListTasksOutput::builder()
                    .task_arns("t1")
                    .task_arns("t2")
                    .task_arns("t3")
                    .task_arns("t4")
                    .build()
            });
        let describe = mock!(aws_sdk_ecs::Client::describe_tasks).then_output(|| {
            DescribeTasksOutput::builder()
                .tasks(task("t1", "service:web", "RUNNING"))
                .tasks(task("t2", "service:web", "STOPPED"))
                .tasks(task("t3", "service:other", "RUNNING"))
                .tasks(task("t4", "service:web", "RUNNING"))
                .build()
        });
        let ecs = AwsEcs(mock_client!(
            aws_sdk_ecs,
            RuleMode::MatchAny,
            [&list, &describe]
        ));
        let tasks = ecs.running_tasks("c", Some("web")).await.unwrap();
        let arns: Vec<&str> = tasks.iter().map(|t| t.arn.as_str()).collect();
        assert_eq!(arns, vec!["t1", "t4"]);
    }

    #[tokio::test]
    async fn a_missing_service_is_not_found() {
        let describe = mock!(aws_sdk_ecs::Client::describe_services).then_output(|| {
            DescribeServicesOutput::builder()
                .failures(
                    Failure::builder()
                        .arn("arn:svc/nope")
                        .reason("MISSING")
                        .build(),
                )
                .build()
        });
        let ecs = AwsEcs(mock_client!(aws_sdk_ecs, [&describe]));
        let err = ecs.describe_service("c", "nope").await.unwrap_err();
        assert_eq!(
            err,
            AwsError::NotFound("service 'nope' not found in cluster 'c'".into())
        );
    }

    #[tokio::test]
    async fn an_inactive_service_is_not_found() {
        let describe = mock!(aws_sdk_ecs::Client::describe_services).then_output(|| {
            DescribeServicesOutput::builder()
                .services(
                    SdkService::builder()
                        .service_name("old")
                        .status("INACTIVE")
                        .desired_count(2)
                        .build(),
                )
                .build()
        });
        let ecs = AwsEcs(mock_client!(aws_sdk_ecs, [&describe]));
        assert!(matches!(
            ecs.describe_service("c", "old").await,
            Err(AwsError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn throttling_is_told_apart_from_other_errors() {
        let throttled = mock!(aws_sdk_ecs::Client::update_service).then_error(|| {
            UpdateServiceError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        });
        let ecs = AwsEcs(mock_client!(aws_sdk_ecs, [&throttled]));
        let err = ecs.update_desired_count("c", "s", 0).await.unwrap_err();
        assert!(
            matches!(err, AwsError::Throttled(ref m) if m.contains("ecs:UpdateService")),
            "{err:?}"
        );

        let denied = mock!(aws_sdk_ecs::Client::update_service).then_error(|| {
            UpdateServiceError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("not allowed")
                    .build(),
            )
        });
        let ecs = AwsEcs(mock_client!(aws_sdk_ecs, [&denied]));
        let err = ecs.update_desired_count("c", "s", 0).await.unwrap_err();
        assert!(
            matches!(err, AwsError::Other(ref m) if m.contains("not allowed")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn alarm_states_are_read_by_name() {
        use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
        use aws_sdk_cloudwatch::types::{MetricAlarm, StateValue};
        let describe = mock!(aws_sdk_cloudwatch::Client::describe_alarms)
            .match_requests(|r| r.alarm_names() == ["a".to_string(), "b".to_string()])
            .then_output(|| {
                DescribeAlarmsOutput::builder()
                    .metric_alarms(
                        MetricAlarm::builder()
                            .alarm_name("a")
                            .state_value(StateValue::Alarm)
                            .build(),
                    )
                    .build()
            });
        let alarms = AwsAlarms(mock_client!(aws_sdk_cloudwatch, [&describe]));
        let states = alarms.states(&["a".into(), "b".into()]).await.unwrap();
        assert_eq!(states.get("a").map(String::as_str), Some("ALARM"));
        assert!(!states.contains_key("b"));
    }

    #[tokio::test]
    async fn a_missing_parameter_reads_as_none_and_deletes_as_false() {
        use aws_sdk_ssm::operation::delete_parameter::DeleteParameterError;
        use aws_sdk_ssm::operation::get_parameter::GetParameterError;
        use aws_sdk_ssm::types::error::ParameterNotFound;
        let get = mock!(aws_sdk_ssm::Client::get_parameter).then_error(|| {
            GetParameterError::ParameterNotFound(ParameterNotFound::builder().build())
        });
        let delete = mock!(aws_sdk_ssm::Client::delete_parameter).then_error(|| {
            DeleteParameterError::ParameterNotFound(ParameterNotFound::builder().build())
        });
        let ssm = AwsParameters(mock_client!(
            aws_sdk_ssm,
            RuleMode::MatchAny,
            [&get, &delete]
        ));
        assert_eq!(ssm.get("/faults/x").await.unwrap(), None);
        assert!(!ssm.delete("/faults/x").await.unwrap());
    }

    #[tokio::test]
    async fn a_parameter_value_is_read_decrypted() {
        use aws_sdk_ssm::operation::get_parameter::GetParameterOutput;
        use aws_sdk_ssm::types::Parameter;
        let get = mock!(aws_sdk_ssm::Client::get_parameter)
            .match_requests(|r| r.name() == Some("/faults/x") && r.with_decryption() == Some(true))
            .then_output(|| {
                GetParameterOutput::builder()
                    .parameter(Parameter::builder().name("/faults/x").value("{}").build())
                    .build()
            });
        let ssm = AwsParameters(mock_client!(aws_sdk_ssm, [&get]));
        assert_eq!(ssm.get("/faults/x").await.unwrap().as_deref(), Some("{}"));
    }
}
