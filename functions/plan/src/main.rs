//! Plan: validate the experiment, check its abort alarms and guards, take
//! the target locks, expand it into steps.
use engine::lambda::{self, Aws};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let aws = Aws::load()
        .await
        .with_ecs()
        .with_alarms()
        .with_parameters()
        .with_functions()
        .with_load_balancing();
    let aws = &aws;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        engine::plan(lambda::parse(event.payload)?, &aws.ports()).await
    }))
    .await
}
