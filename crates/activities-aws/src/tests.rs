//! The adapters against aws-smithy-mocks: what they ask AWS and how they
//! read the answers.

use activities::ports::{Alarms, AwsError, Ecs, Parameters};

use crate::{AwsAlarms, AwsEcs, AwsParameters};
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
    let get = mock!(aws_sdk_ssm::Client::get_parameter)
        .then_error(|| GetParameterError::ParameterNotFound(ParameterNotFound::builder().build()));
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
