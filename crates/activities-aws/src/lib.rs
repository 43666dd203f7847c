//! The activities' ports implemented over the AWS SDK for Rust, one module
//! per service. Only the functions link this crate, and each builds only
//! the clients it calls (`engine::lambda::Aws`), so the others' code stays
//! out of its bootstrap.

mod awslambda;
mod cloudwatch;
mod ecs;
mod elbv2;
mod sfn;
mod sqs;
mod ssm;

pub use awslambda::AwsFunctions;
pub use cloudwatch::{AwsAlarms, AwsMetrics};
pub use ecs::AwsEcs;
pub use elbv2::AwsLoadBalancing;
pub use sfn::AwsExecutions;
pub use sqs::AwsDeadLetters;
pub use ssm::AwsParameters;

use activities::ports::AwsError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

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

pub(crate) fn classify<E>(op: &str, err: aws_sdk_ssm::error::SdkError<E>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = err.code().map(str::to_string);
    let text = format!("{op}: {}", DisplayErrorContext(&err));
    match code.as_deref() {
        Some(c) if THROTTLING_CODES.contains(&c) => AwsError::Throttled(text),
        Some(
            "ClusterNotFoundException"
            | "ServiceNotFoundException"
            | "ServiceNotActiveException"
            | "ResourceNotFoundException",
        ) => AwsError::NotFound(text),
        _ => AwsError::Other(text),
    }
}

#[cfg(test)]
mod tests;
