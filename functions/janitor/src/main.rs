//! Janitor: undo what an execution that ended without its rollbacks
//! changed (EventBridge status changes), and sweep leftovers (a schedule).
use engine::janitor::{self, Janitor};
use engine::lambda::{self, Aws};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use rand::SeedableRng;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let aws = Aws::load()
        .await
        .with_everything()
        .with_executions()
        .with_dead_letters();
    // A path, as GetParametersByPath takes it: no trailing slash.
    let fault_prefix = std::env::var("FAULT_PARAMETER_PREFIX")
        .ok()
        .map(|p| p.trim_end_matches('/').to_string())
        .filter(|p| !p.is_empty());
    let janitor = Janitor {
        ports: aws.ports(),
        dead_letters: aws.dead_letters(),
        fault_prefix: fault_prefix.as_deref(),
    };
    let janitor = &janitor;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let mut rng = rand::rngs::StdRng::from_os_rng();
        janitor::handle(lambda::parse(event.payload)?, janitor, &mut rng).await
    }))
    .await
}
