//! Journal: the Chaos Toolkit journal of the run; failures go to the
//! dead-letter queue.
use engine::lambda::{self, Aws};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let aws = Aws::load()
        .await
        .with_dead_letters()
        .with_parameters()
        .with_alarms()
        .with_metrics();
    let aws = &aws;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        engine::finish(
            lambda::parse(event.payload)?,
            aws.dead_letters(),
            aws.ports().parameters,
            engine::SeriesSources {
                alarms: aws.ports().alarms,
                metrics: aws.ports().metrics,
            },
        )
        .await
    }))
    .await
}
