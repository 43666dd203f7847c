//! The parameter port over aws-sdk-ssm.

use activities::ports::{AwsError, Parameters, PutParameter};
use async_trait::async_trait;

use crate::classify;

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
