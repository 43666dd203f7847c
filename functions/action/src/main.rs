//! Action: check the abort alarms, run one action and record what undoes
//! it; or run the next rollback; or one share of a fanned-out load attack.
use engine::lambda::{self, Aws};
use engine::ActionRequest;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use rand::SeedableRng;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let aws = Aws::load().await.with_everything().with_executions();
    let aws = &aws;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let request: ActionRequest = lambda::parse(event.payload)?;
        let mut rng = rand::rngs::StdRng::from_os_rng();
        let ports = aws.ports();
        let done = match request {
            ActionRequest::Run { state } => engine::step(state, &ports, &mut rng).await,
            ActionRequest::Rollback { state } => engine::rollback(state, &ports, &mut rng).await,
            ActionRequest::Wave { state } => engine::attack::wave(state).await,
            ActionRequest::Share(share) => return engine::attack::share(share, &ports).await,
        }?;
        Ok::<Value, engine::Failure>(serde_json::to_value(done).unwrap_or(Value::Null))
    }))
    .await
}
