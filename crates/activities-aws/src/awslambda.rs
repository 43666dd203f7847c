//! The Lambda port over aws-sdk-lambda.

use std::collections::BTreeMap;

use activities::awslambda::{ConfigUpdate, EventSourceMapping, FunctionConfig};
use activities::faults::FunctionSetup;
use activities::ports::{AwsError, Functions, Invocation};
use async_trait::async_trait;
use aws_sdk_lambda::types::EventSourceMappingConfiguration;

use crate::classify;

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

    async fn setup(&self, function_name: &str) -> Result<FunctionSetup, AwsError> {
        let out = self.get_function(function_name).await?;
        let config = out
            .configuration
            .unwrap_or_else(|| aws_sdk_lambda::types::FunctionConfiguration::builder().build());
        Ok(FunctionSetup::new(
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

    async fn configuration(
        &self,
        function_name: &str,
        qualifier: Option<&str>,
    ) -> Result<FunctionConfig, AwsError> {
        let out = self
            .0
            .get_function_configuration()
            .function_name(function_name)
            .set_qualifier(qualifier.map(str::to_string))
            .send()
            .await
            .map_err(|e| classify("lambda:GetFunctionConfiguration", e))?;
        Ok(FunctionConfig {
            name: out.function_name().unwrap_or(function_name).to_string(),
            arn: out.function_arn().unwrap_or_default().to_string(),
            timeout: out.timeout().unwrap_or_default(),
            memory_size: out.memory_size().unwrap_or_default(),
            last_update_status: out.last_update_status().map(|s| s.as_str().to_string()),
        })
    }

    async fn update_configuration(
        &self,
        function_name: &str,
        update: &ConfigUpdate,
    ) -> Result<FunctionConfig, AwsError> {
        let out = self
            .0
            .update_function_configuration()
            .function_name(function_name)
            .set_timeout(update.timeout)
            .set_memory_size(update.memory_size)
            .send()
            .await
            .map_err(|e| classify("lambda:UpdateFunctionConfiguration", e))?;
        Ok(FunctionConfig {
            name: out.function_name().unwrap_or(function_name).to_string(),
            arn: out.function_arn().unwrap_or_default().to_string(),
            timeout: out.timeout().unwrap_or_default(),
            memory_size: out.memory_size().unwrap_or_default(),
            last_update_status: out.last_update_status().map(|s| s.as_str().to_string()),
        })
    }

    async fn concurrency(&self, function_name: &str) -> Result<Option<i32>, AwsError> {
        let out = self
            .0
            .get_function_concurrency()
            .function_name(function_name)
            .send()
            .await
            .map_err(|e| classify("lambda:GetFunctionConcurrency", e))?;
        Ok(out.reserved_concurrent_executions())
    }

    async fn put_concurrency(&self, function_name: &str, reserved: i32) -> Result<(), AwsError> {
        self.0
            .put_function_concurrency()
            .function_name(function_name)
            .reserved_concurrent_executions(reserved)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("lambda:PutFunctionConcurrency", e))
    }

    async fn delete_concurrency(&self, function_name: &str) -> Result<(), AwsError> {
        self.0
            .delete_function_concurrency()
            .function_name(function_name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("lambda:DeleteFunctionConcurrency", e))
    }

    async fn event_source_mappings(
        &self,
        function_name: Option<&str>,
        source_arn: Option<&str>,
    ) -> Result<Vec<EventSourceMapping>, AwsError> {
        let mut found = Vec::new();
        let mut pages = self
            .0
            .list_event_source_mappings()
            .set_function_name(function_name.map(str::to_string))
            .set_event_source_arn(source_arn.map(str::to_string))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("lambda:ListEventSourceMappings", e))?;
            found.extend(page.event_source_mappings().iter().map(mapping));
        }
        Ok(found)
    }

    async fn event_source_mapping(&self, uuid: &str) -> Result<EventSourceMapping, AwsError> {
        let out = self
            .0
            .get_event_source_mapping()
            .uuid(uuid)
            .send()
            .await
            .map_err(|e| classify("lambda:GetEventSourceMapping", e))?;
        Ok(EventSourceMapping {
            uuid: out.uuid().unwrap_or(uuid).to_string(),
            state: out.state().unwrap_or_default().to_string(),
            function_arn: out.function_arn().unwrap_or_default().to_string(),
            event_source_arn: out.event_source_arn().unwrap_or_default().to_string(),
            batch_size: out.batch_size(),
        })
    }

    async fn enable_event_source_mapping(
        &self,
        uuid: &str,
        enabled: bool,
    ) -> Result<EventSourceMapping, AwsError> {
        let out = self
            .0
            .update_event_source_mapping()
            .uuid(uuid)
            .enabled(enabled)
            .send()
            .await
            .map_err(|e| classify("lambda:UpdateEventSourceMapping", e))?;
        Ok(EventSourceMapping {
            uuid: out.uuid().unwrap_or(uuid).to_string(),
            state: out.state().unwrap_or_default().to_string(),
            function_arn: out.function_arn().unwrap_or_default().to_string(),
            event_source_arn: out.event_source_arn().unwrap_or_default().to_string(),
            batch_size: out.batch_size(),
        })
    }
}

fn mapping(m: &EventSourceMappingConfiguration) -> EventSourceMapping {
    EventSourceMapping {
        uuid: m.uuid().unwrap_or_default().to_string(),
        state: m.state().unwrap_or_default().to_string(),
        function_arn: m.function_arn().unwrap_or_default().to_string(),
        event_source_arn: m.event_source_arn().unwrap_or_default().to_string(),
        batch_size: m.batch_size(),
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
