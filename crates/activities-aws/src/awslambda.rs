//! The Lambda port over aws-sdk-lambda.

use std::collections::BTreeMap;

use activities::ports::{AwsError, Functions, Invocation};
use async_trait::async_trait;

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
        let out = self
            .0
            .get_function()
            .function_name(function_name)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(s) if s.is_resource_not_found_exception() => {
                    AwsError::NotFound(format!("Lambda function '{function_name}' not found"))
                }
                _ => classify("lambda:GetFunction", e),
            })?;
        Ok(out.tags.unwrap_or_default().into_iter().collect())
    }
}
