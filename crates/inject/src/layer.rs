//! The tower layer over a typed Lambda handler (`Service<LambdaEvent<T>>`),
//! shaped like lambda_runtime's `layers/panic.rs`: it sees the event and
//! the handler's result, so it can delay, answer a status instead of the
//! handler, or fail with an error. A runtime-level layer only sees bytes.
//!
//! The cache and the decision are the shared [`Injector`]'s; this is only
//! the tower front end. Costs, by case:
//! - no parameter configured: the inner future, mapped; no lock, no
//!   allocation, no clock read;
//! - configuration cached (the usual case): one uncontended read lock, a
//!   clock read, and, when a mode is enabled, a roll per mode;
//! - once per TTL: one invocation fetches the configuration (boxed future;
//!   one fetch at a time, concurrent invocations keep the cached value).

use crate::cache::{Builder, Current, Injector};
use crate::error::{FaultError, InjectedFault};
use crate::plan::{Decision, Outcome, Plan};
use crate::response::FaultResponse;
use crate::source::ConfigSource;
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::LambdaEvent;
use pin_project_lite::pin_project;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::time::Sleep;

type BoxFuture<T> = crate::cache::BoxFuture<T>;

/// Wraps a handler so it injects the configured faults. Cloning shares the
/// cache: every service made from one layer reads one configuration.
#[derive(Clone)]
pub struct FaultLayer {
    injector: Option<Injector>,
}

impl From<Injector> for FaultLayer {
    fn from(injector: Injector) -> Self {
        FaultLayer {
            injector: Some(injector),
        }
    }
}

impl FaultLayer {
    /// Injects nothing, costs nothing.
    pub fn disabled() -> Self {
        FaultLayer { injector: None }
    }

    /// The layer as Lambda runs it: the SSM parameter named by
    /// `FAILURE_INJECTION_PARAM` (else `CHAOS_PARAM`), cached for
    /// `FAILURE_CACHE_TTL` seconds (default 5). Without the variable, a
    /// pass-through. The environment is read here, once.
    #[cfg(feature = "ssm")]
    pub fn from_env(sdk_config: &aws_types::SdkConfig) -> Self {
        Self::from_settings(sdk_config, crate::Settings::from_env())
    }

    /// [`from_env`](Self::from_env) with the settings given.
    #[cfg(feature = "ssm")]
    pub fn from_settings(sdk_config: &aws_types::SdkConfig, settings: crate::Settings) -> Self {
        match settings.parameter {
            None => {
                tracing::debug!("no {} set: fault injection off", crate::PARAM_VAR);
                FaultLayer::disabled()
            }
            Some(name) => {
                // Client::new panics on a config without a behavior version.
                let mut ssm = aws_sdk_ssm::config::Builder::from(sdk_config);
                if sdk_config.behavior_version().is_none() {
                    ssm.set_behavior_version(Some(aws_sdk_ssm::config::BehaviorVersion::latest()));
                }
                let client = aws_sdk_ssm::Client::from_conf(ssm.build());
                FaultLayer::builder(crate::SsmSource::new(client, name))
                    .ttl(settings.ttl)
                    .jitter(settings.jitter)
                    .build()
            }
        }
    }

    /// Any source, with the defaults (TTL 5 s, entropy-seeded dice).
    pub fn new(source: impl ConfigSource) -> Self {
        FaultLayer::builder(source).build()
    }

    pub fn builder(source: impl ConfigSource) -> Builder<FaultLayer> {
        Builder::new(source)
    }

    /// Whether this layer reads a configuration at all.
    pub fn is_enabled(&self) -> bool {
        self.injector.is_some()
    }
}

impl<S> Layer<S> for FaultLayer {
    type Service = FaultService<S>;

    fn layer(&self, inner: S) -> FaultService<S> {
        FaultService {
            inner,
            injector: self.injector.clone(),
        }
    }
}

fn decide<T: Serialize, R: FaultResponse>(
    injector: &Injector,
    plan: &Plan,
    event: &LambdaEvent<T>,
) -> Decision<R> {
    injector.decide(
        plan,
        || serde_json::to_value(&event.payload).ok(),
        event.context.deadline,
    )
}

/// A handler wrapped by [`FaultLayer`].
///
/// The event must be `Serialize` (match rules read it as JSON, only when a
/// configuration has them) and the response a [`FaultResponse`]. The inner
/// service must be `Clone` (the usual `service_fn` is), because it is
/// called after the configuration is fetched or the delay has passed.
#[derive(Clone)]
pub struct FaultService<S> {
    inner: S,
    injector: Option<Injector>,
}

impl<S, T> Service<LambdaEvent<T>> for FaultService<S>
where
    S: Service<LambdaEvent<T>> + Clone,
    S::Response: FaultResponse,
    T: Serialize,
{
    type Response = S::Response;
    type Error = FaultError<S::Error>;
    type Future = FaultFuture<S, T>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(FaultError::Handler)
    }

    fn call(&mut self, event: LambdaEvent<T>) -> Self::Future {
        let FaultService { inner, injector } = self;
        let Some(injector) = injector else {
            return FaultFuture::handler(inner.call(event));
        };
        match injector.current() {
            Current::Ready(None) => FaultFuture::handler(inner.call(event)),
            Current::Ready(Some(plan)) => apply(inner, decide(injector, &plan, &event), event),
            Current::Load(load) => FaultFuture::pending(
                take_ready(inner),
                event,
                Some(injector.clone()),
                Step::Load(load),
            ),
        }
    }
}

/// The service that was polled ready, leaving a clone in its place.
fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}

/// Act on a decision made in `call`: the handler, a result, or a delay.
fn apply<S, T>(
    inner: &mut S,
    decision: Decision<S::Response>,
    event: LambdaEvent<T>,
) -> FaultFuture<S, T>
where
    S: Service<LambdaEvent<T>> + Clone,
{
    match (decision.delay, decision.outcome) {
        (None, outcome) => match outcome.into_result() {
            None => FaultFuture::handler(inner.call(event)),
            Some(result) => FaultFuture::ready(result),
        },
        (Some(delay), outcome) => {
            let step = Step::Delay(Box::pin(tokio::time::sleep(delay)), Some(outcome));
            FaultFuture::pending(take_ready(inner), event, None, step)
        }
    }
}

impl<R> Outcome<R> {
    /// The invocation's result without the handler; `None`: call it.
    fn into_result<E>(self) -> Option<Result<R, FaultError<E>>> {
        match self {
            Outcome::Handler => None,
            Outcome::Respond(response) => Some(Ok(response)),
            Outcome::Raise(message) => Some(Err(FaultError::Injected(InjectedFault { message }))),
        }
    }
}

enum Step<R> {
    /// Fetching the configuration.
    Load(BoxFuture<Option<Arc<Plan>>>),
    /// Injected latency, then the outcome.
    Delay(Pin<Box<Sleep>>, Option<Outcome<R>>),
}

pin_project! {
    /// The future of a [`FaultService`] call.
    pub struct FaultFuture<S, T>
    where
        S: Service<LambdaEvent<T>>,
    {
        #[pin]
        state: State<S, T>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, T>
    where
        S: Service<LambdaEvent<T>>,
    {
        Handler { #[pin] future: S::Future },
        Pending {
            service: Option<S>,
            event: Option<LambdaEvent<T>>,
            injector: Option<Injector>,
            step: Step<S::Response>,
        },
        Ready { result: Option<Result<S::Response, FaultError<S::Error>>> },
    }
}

impl<S, T> FaultFuture<S, T>
where
    S: Service<LambdaEvent<T>>,
{
    fn handler(future: S::Future) -> Self {
        FaultFuture {
            state: State::Handler { future },
        }
    }

    fn ready(result: Result<S::Response, FaultError<S::Error>>) -> Self {
        FaultFuture {
            state: State::Ready {
                result: Some(result),
            },
        }
    }

    fn pending(
        service: S,
        event: LambdaEvent<T>,
        injector: Option<Injector>,
        step: Step<S::Response>,
    ) -> Self {
        FaultFuture {
            state: State::Pending {
                service: Some(service),
                event: Some(event),
                injector,
                step,
            },
        }
    }
}

impl<S, T> Future for FaultFuture<S, T>
where
    S: Service<LambdaEvent<T>>,
    S::Response: FaultResponse,
    T: Serialize,
{
    type Output = Result<S::Response, FaultError<S::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let call = match state.as_mut().project() {
                StateProj::Handler { future } => {
                    return future.poll(cx).map_err(FaultError::Handler);
                }
                StateProj::Ready { result } => {
                    return Poll::Ready(
                        result.take().expect("FaultFuture polled after completion"),
                    );
                }
                StateProj::Pending {
                    service,
                    event,
                    injector,
                    step,
                } => {
                    let outcome = match step {
                        Step::Load(load) => {
                            let plan = ready!(load.as_mut().poll(cx));
                            match (plan, injector.as_ref(), event.as_ref()) {
                                (Some(plan), Some(injector), Some(event)) => {
                                    let decision = decide(injector, &plan, event);
                                    if let Some(delay) = decision.delay {
                                        let sleep = Box::pin(tokio::time::sleep(delay));
                                        *step = Step::Delay(sleep, Some(decision.outcome));
                                        continue;
                                    }
                                    Some(decision.outcome)
                                }
                                _ => None,
                            }
                        }
                        Step::Delay(sleep, outcome) => {
                            ready!(sleep.as_mut().poll(cx));
                            outcome.take()
                        }
                    };
                    match outcome.and_then(Outcome::into_result) {
                        None => service.take().zip(event.take()),
                        Some(result) => {
                            state.set(State::Ready {
                                result: Some(result),
                            });
                            continue;
                        }
                    }
                }
            };
            let (mut service, event) = call.expect("FaultFuture polled after completion");
            state.set(State::Handler {
                future: service.call(event),
            });
        }
    }
}
