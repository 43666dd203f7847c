//! Wait: one chunk of a pause, polling the abort alarms and the kill switch.
use engine::lambda::{self, Aws};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let aws = Aws::load()
        .await
        .with_alarms()
        .with_parameters()
        .with_executions();
    let aws = &aws;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let time_left = lambda::time_left(&event.context);
        engine::wait(lambda::parse(event.payload)?, &aws.ports(), time_left).await
    }))
    .await
}
