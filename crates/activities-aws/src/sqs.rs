//! The dead-letter queue over aws-sdk-sqs.

use activities::ports::{AwsError, DeadLetters};
use async_trait::async_trait;

use crate::classify;

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
