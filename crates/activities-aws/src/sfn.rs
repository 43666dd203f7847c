//! Step Functions executions over aws-sdk-sfn.

use activities::ports::{AwsError, Executions};
use async_trait::async_trait;

use crate::classify;

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
