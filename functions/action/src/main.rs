//! Action: check the abort alarms, run one action and record what undoes
//! it; or run the next rollback.
use engine::lambda::{self, Aws};
use engine::{ActionOp, ActionRequest};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use rand::SeedableRng;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let aws = Aws::load().await;
    let aws = &aws;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let request: ActionRequest = lambda::parse(event.payload)?;
        let mut rng = rand::rngs::StdRng::from_os_rng();
        match request.op {
            ActionOp::Run => engine::step(request.state, &aws.ports(), &mut rng).await,
            ActionOp::Rollback => engine::rollback(request.state, &aws.ports(), &mut rng).await,
        }
    }))
    .await
}
