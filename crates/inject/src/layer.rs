//! The tower layer over a typed Lambda handler (`Service<LambdaEvent<T>>`),
//! shaped like lambda_runtime's `layers/panic.rs`: it sees the event and
//! the handler's result, so it can delay, answer a status instead of the
//! handler, or fail with an error. A runtime-level layer only sees bytes.
//!
//! Costs, by case:
//! - no parameter configured: the inner future, mapped; no lock, no
//!   allocation, no clock read;
//! - configuration cached (the usual case): one uncontended read lock, a
//!   clock read, and, when a mode is enabled, a roll per mode;
//! - once per TTL: one invocation fetches the configuration (boxed future;
//!   one fetch at a time, concurrent invocations keep the cached value).
//!
//! Every failure to get a usable configuration injects nothing and is
//! logged once per distinct reason.

use crate::config::FaultConfig;
use crate::dice::{Dice, SeededDice};
use crate::error::{FaultError, InjectedFault};
use crate::plan::{Compiled, Decision, Outcome, Plan, Roll};
use crate::response::FaultResponse;
use crate::source::{ConfigSource, SourceError, DEFAULT_TTL};
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::LambdaEvent;
use pin_project_lite::pin_project;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime};
use tokio::sync::OwnedMutexGuard;
use tokio::time::{Instant, Sleep};

/// How long one fetch of the configuration may take before the invocation
/// goes ahead without faults.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(2);

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Fetch = Box<dyn Fn() -> BoxFuture<Result<Option<String>, SourceError>> + Send + Sync>;
type Clock = Box<dyn Fn() -> SystemTime + Send + Sync>;

/// Wraps a handler so it injects the configured faults. Cloning shares the
/// cache: every service made from one layer reads one configuration.
#[derive(Clone)]
pub struct FaultLayer {
    shared: Option<Arc<Shared>>,
}

impl FaultLayer {
    /// Injects nothing, costs nothing.
    pub fn disabled() -> Self {
        FaultLayer { shared: None }
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
                    .build()
            }
        }
    }

    /// Any source, with the defaults (TTL 5 s, entropy-seeded dice).
    pub fn new(source: impl ConfigSource) -> Self {
        FaultLayer::builder(source).build()
    }

    pub fn builder(source: impl ConfigSource) -> Builder {
        let description = source.describe();
        let source = Arc::new(source);
        Builder {
            fetch: Box::new(move || {
                let source = Arc::clone(&source);
                Box::pin(async move { source.fetch().await })
            }),
            description,
            ttl: DEFAULT_TTL,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            dice: Box::new(SeededDice::from_entropy()),
            clock: Box::new(SystemTime::now),
        }
    }

    /// Whether this layer reads a configuration at all.
    pub fn is_enabled(&self) -> bool {
        self.shared.is_some()
    }
}

/// Options of a [`FaultLayer`] over a source.
pub struct Builder {
    fetch: Fetch,
    description: String,
    ttl: Duration,
    fetch_timeout: Duration,
    dice: Box<dyn Dice>,
    clock: Clock,
}

impl Builder {
    /// How long a fetched configuration is used before it is fetched again.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long a fetch may take (then: no faults until the next TTL).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// The randomness (e.g. `SeededDice::new(42)` in tests).
    pub fn dice(mut self, dice: impl Dice) -> Self {
        self.dice = Box::new(dice);
        self
    }

    /// The wall clock used for `expires_at` and the deadline (tests).
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    pub fn build(self) -> FaultLayer {
        FaultLayer {
            shared: Some(Arc::new(Shared {
                fetch: self.fetch,
                description: self.description,
                ttl: self.ttl,
                fetch_timeout: self.fetch_timeout,
                dice: self.dice,
                clock: self.clock,
                cache: RwLock::new(None),
                refresh: Arc::new(tokio::sync::Mutex::new(())),
                last_report: Mutex::new(String::new()),
                status_note: AtomicBool::new(false),
            })),
        }
    }
}

impl<S> Layer<S> for FaultLayer {
    type Service = FaultService<S>;

    fn layer(&self, inner: S) -> FaultService<S> {
        FaultService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The per-execution-environment state: the cached plan and how to renew it.
struct Shared {
    fetch: Fetch,
    description: String,
    ttl: Duration,
    fetch_timeout: Duration,
    dice: Box<dyn Dice>,
    clock: Clock,
    cache: RwLock<Option<Entry>>,
    /// Held by the one invocation fetching.
    refresh: Arc<tokio::sync::Mutex<()>>,
    /// The last state logged, so each is logged once.
    last_report: Mutex<String>,
    status_note: AtomicBool,
}

struct Entry {
    /// `None`: nothing to inject.
    plan: Option<Arc<Plan>>,
    fetched_at: Instant,
}

enum Lookup {
    Fresh(Option<Arc<Plan>>),
    Stale(Option<Arc<Plan>>),
    Empty,
}

impl Shared {
    fn lookup(&self) -> Lookup {
        let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
        match &*cache {
            None => Lookup::Empty,
            Some(entry) if entry.fetched_at.elapsed() < self.ttl => {
                Lookup::Fresh(entry.plan.clone())
            }
            Some(entry) => Lookup::Stale(entry.plan.clone()),
        }
    }

    /// Cold start: wait for whoever fetches first, so every invocation
    /// sees the first configuration.
    async fn first(self: Arc<Self>) -> Option<Arc<Plan>> {
        let guard = Arc::clone(&self.refresh).lock_owned().await;
        self.renew(guard).await
    }

    /// Fetch while holding the refresh lock, unless someone just did.
    async fn renew(self: Arc<Self>, _guard: OwnedMutexGuard<()>) -> Option<Arc<Plan>> {
        if let Lookup::Fresh(plan) = self.lookup() {
            return plan;
        }
        let (plan, report) = self.fetch_plan().await;
        *self.cache.write().unwrap_or_else(PoisonError::into_inner) = Some(Entry {
            plan: plan.clone(),
            fetched_at: Instant::now(),
        });
        self.report(report);
        plan
    }

    async fn fetch_plan(&self) -> (Option<Arc<Plan>>, Report) {
        let source = &self.description;
        let text = match tokio::time::timeout(self.fetch_timeout, (self.fetch)()).await {
            Err(_) => {
                return (
                    None,
                    Report::Warn(format!(
                        "{source}: no answer within {:?}",
                        self.fetch_timeout
                    )),
                )
            }
            Ok(Err(e)) => return (None, Report::Warn(format!("{source} unreadable: {e}"))),
            Ok(Ok(None)) => return (None, Report::Info(format!("{source} not found"))),
            Ok(Ok(Some(text))) => text,
        };
        let config = match FaultConfig::parse_valid(&text) {
            Ok(config) => config,
            Err(e) => return (None, Report::Warn(format!("{source} is invalid: {e}"))),
        };
        match Compiled::new(&config, (self.clock)()) {
            Compiled::Off(why) => (None, Report::Info(format!("{source}: {why}"))),
            Compiled::Active(plan) => {
                let report = Report::Active(format!("{source}: {}", plan.summary));
                (Some(plan), report)
            }
        }
    }

    fn report(&self, report: Report) {
        let mut last = self
            .last_report
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let text = match &report {
            Report::Active(t) | Report::Info(t) | Report::Warn(t) => t,
        };
        if *last == *text {
            return;
        }
        match &report {
            Report::Active(t) => {
                tracing::warn!(fault_injection = "on", "fault injection active: {t}")
            }
            Report::Info(t) => tracing::info!(fault_injection = "off", "fault injection off: {t}"),
            Report::Warn(t) => tracing::warn!(fault_injection = "off", "fault injection off: {t}"),
        }
        text.clone_into(&mut last);
    }

    fn decide<T: Serialize, R: FaultResponse>(
        &self,
        plan: &Plan,
        event: &LambdaEvent<T>,
    ) -> Decision<R> {
        plan.decide(&Roll {
            payload: &event.payload,
            deadline_ms: event.context.deadline,
            now: (self.clock)(),
            dice: &*self.dice,
            status_note: &self.status_note,
        })
    }
}

/// Injected faults are logged per invocation; configuration states once.
enum Report {
    Active(String),
    Info(String),
    Warn(String),
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
    shared: Option<Arc<Shared>>,
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
        let FaultService { inner, shared } = self;
        let Some(shared) = shared else {
            return FaultFuture::handler(inner.call(event));
        };
        let step = match shared.lookup() {
            Lookup::Fresh(None) => return FaultFuture::handler(inner.call(event)),
            Lookup::Fresh(Some(plan)) => return apply(inner, shared.decide(&plan, &event), event),
            Lookup::Stale(plan) => match Arc::clone(&shared.refresh).try_lock_owned() {
                Ok(guard) => Step::Load(Box::pin(Arc::clone(shared).renew(guard))),
                // Someone is fetching: keep using what we have.
                Err(_) => match plan {
                    None => return FaultFuture::handler(inner.call(event)),
                    Some(plan) => return apply(inner, shared.decide(&plan, &event), event),
                },
            },
            Lookup::Empty => Step::Load(Box::pin(Arc::clone(shared).first())),
        };
        FaultFuture::pending(take_ready(inner), event, Some(Arc::clone(shared)), step)
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
            shared: Option<Arc<Shared>>,
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
        shared: Option<Arc<Shared>>,
        step: Step<S::Response>,
    ) -> Self {
        FaultFuture {
            state: State::Pending {
                service: Some(service),
                event: Some(event),
                shared,
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
                    shared,
                    step,
                } => {
                    let outcome = match step {
                        Step::Load(load) => {
                            let plan = ready!(load.as_mut().poll(cx));
                            match (plan, shared.as_ref(), event.as_ref()) {
                                (Some(plan), Some(shared), Some(event)) => {
                                    let decision = shared.decide(&plan, event);
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
