//! The smallest Lambda with fault injection: echoes its event as an API
//! Gateway response. Run it under `cargo lambda watch` with
//! `FAILURE_INJECTION_PARAM=/chaos/echo` and write a configuration there.
use inject::FaultLayer;
use lambda_runtime::tower::ServiceBuilder;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

async fn echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(json!({
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": event.payload.to_string(),
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    lambda_runtime::run(
        ServiceBuilder::new()
            .layer(FaultLayer::from_env(&sdk_config))
            .service(service_fn(echo)),
    )
    .await
}
