//! Probe: check the abort alarms, run one probe, judge its tolerance.
use engine::lambda::{self, Aws};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use rand::SeedableRng;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let aws = Aws::load().await.with_everything();
    let aws = &aws;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let mut rng = rand::rngs::StdRng::from_os_rng();
        engine::step(lambda::parse(event.payload)?, &aws.ports(), &mut rng).await
    }))
    .await
}
