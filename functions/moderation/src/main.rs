//! turbulence-moderation: the moderation API handler, wrapped with the
//! fault-injection layer (configured by `FAILURE_INJECTION_PARAM`).
use inject::FaultLayer;
use lambda_runtime::tower::ServiceBuilder;
use lambda_runtime::{service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    lambda_runtime::run(
        ServiceBuilder::new()
            .layer(FaultLayer::from_env(&sdk_config))
            .service(service_fn(moderation::handler)),
    )
    .await
}
