//! The injector both front ends share: the per-environment cache of the
//! compiled configuration, its one-at-a-time refresh, and the decision for
//! one invocation. It knows nothing of lambda_runtime or tower: the tower
//! layer (feature `layer`) hands it a typed event, the Runtime API proxy
//! (`turbulence-extension`) a raw JSON event and the `Deadline-Ms` header.
//!
//! Refresh rules:
//! - cold (nothing cached): every caller waits for the one first fetch;
//! - stale: one caller fetches (and waits for it), the others keep the
//!   cached value until it lands;
//! - a fetch that fails, times out or reads garbage caches "nothing to
//!   inject" for the TTL, never the previous configuration.
//!
//! Jitter: the first entry of an environment lives a random part of the
//! TTL (`ttl × (1 − jitter × u)`), every later one the whole TTL. A fleet
//! scaled out at once so reads out of step afterwards, each environment
//! reads at most once per TTL in the steady state, and a change still
//! shows within one TTL.

use crate::config::FaultConfig;
use crate::dice::{Dice, SeededDice};
use crate::plan::{Compiled, Decision, Plan, Roll};
use crate::response::FaultResponse;
use crate::source::{ConfigSource, SourceError, DEFAULT_JITTER, DEFAULT_TTL};
use serde_json::Value;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::OwnedMutexGuard;
use tokio::time::Instant;

/// How long one fetch of the configuration may take before the invocation
/// goes ahead without faults.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Fetch = Box<dyn Fn() -> BoxFuture<Result<Option<String>, SourceError>> + Send + Sync>;
type Clock = Box<dyn Fn() -> SystemTime + Send + Sync>;

/// The cached configuration of one execution environment and what decides
/// each invocation's faults. Cloning shares the cache.
#[derive(Clone)]
pub struct Injector {
    shared: Arc<Shared>,
}

/// What [`Injector::current`] found.
pub enum Current {
    /// Use this now (`None`: nothing to inject).
    Ready(Option<Arc<Plan>>),
    /// Await this first: a fetch this caller makes or waits for.
    Load(BoxFuture<Option<Arc<Plan>>>),
}

impl Injector {
    pub fn builder(source: impl ConfigSource) -> Builder<Injector> {
        Builder::new(source)
    }

    /// Where the configuration is read from, for logs.
    pub fn describe(&self) -> &str {
        &self.shared.description
    }

    /// The plan to decide with, without waiting when one is cached: a read
    /// lock and a clock read on the hot path.
    pub fn current(&self) -> Current {
        let shared = &self.shared;
        match shared.lookup() {
            Lookup::Fresh(plan) => Current::Ready(plan),
            Lookup::Stale(plan) => match Arc::clone(&shared.refresh).try_lock_owned() {
                Ok(guard) => Current::Load(Box::pin(Arc::clone(shared).renew(guard))),
                // Someone is fetching: keep using what we have.
                Err(_) => Current::Ready(plan),
            },
            Lookup::Empty => Current::Load(Box::pin(Arc::clone(shared).first())),
        }
    }

    /// [`current`](Self::current), awaited.
    pub async fn plan(&self) -> Option<Arc<Plan>> {
        match self.current() {
            Current::Ready(plan) => plan,
            Current::Load(load) => load.await,
        }
    }

    /// The faults of one invocation. `event` makes the event's JSON; it is
    /// called only when a mode that fired has match rules. `deadline_ms` is
    /// the invocation's deadline in ms since the epoch (0 or any value
    /// before 2001: unknown).
    pub fn decide<R: FaultResponse>(
        &self,
        plan: &Plan,
        event: impl FnOnce() -> Option<Value>,
        deadline_ms: u64,
    ) -> Decision<R> {
        let shared = &self.shared;
        plan.decide(Roll {
            event,
            deadline_ms,
            now: (shared.clock)(),
            dice: &*shared.dice,
            status_note: &shared.status_note,
        })
    }
}

/// Options of an [`Injector`] over a source; `T` is what `build` makes
/// (the injector itself, or the tower layer around it).
pub struct Builder<T> {
    fetch: Fetch,
    description: String,
    ttl: Duration,
    jitter: f64,
    fetch_timeout: Duration,
    dice: Box<dyn Dice>,
    clock: Clock,
    output: PhantomData<fn() -> T>,
}

impl<T: From<Injector>> Builder<T> {
    pub(crate) fn new(source: impl ConfigSource) -> Self {
        let description = source.describe();
        let source = Arc::new(source);
        Builder {
            fetch: Box::new(move || {
                let source = Arc::clone(&source);
                Box::pin(async move { source.fetch().await })
            }),
            description,
            ttl: DEFAULT_TTL,
            jitter: DEFAULT_JITTER,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            dice: Box::new(SeededDice::from_entropy()),
            clock: Box::new(SystemTime::now),
            output: PhantomData,
        }
    }

    /// How long a fetched configuration is used before it is fetched again.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The part of the TTL (0–1) by which an environment's first refresh
    /// comes early, at random; 0 makes every refresh exactly one TTL apart.
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
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

    pub fn build(self) -> T {
        T::from(Injector {
            shared: Arc::new(Shared {
                fetch: self.fetch,
                description: self.description,
                ttl: self.ttl,
                jitter: self.jitter,
                fetch_timeout: self.fetch_timeout,
                dice: self.dice,
                clock: self.clock,
                cache: RwLock::new(None),
                refresh: Arc::new(tokio::sync::Mutex::new(())),
                last_report: Mutex::new(String::new()),
                status_note: AtomicBool::new(false),
            }),
        })
    }
}

/// The per-execution-environment state: the cached plan and how to renew it.
struct Shared {
    fetch: Fetch,
    description: String,
    ttl: Duration,
    jitter: f64,
    fetch_timeout: Duration,
    dice: Box<dyn Dice>,
    clock: Clock,
    cache: RwLock<Option<Entry>>,
    /// Held by the one caller fetching.
    refresh: Arc<tokio::sync::Mutex<()>>,
    /// The last state logged, so each is logged once.
    last_report: Mutex<String>,
    status_note: AtomicBool,
}

struct Entry {
    /// `None`: nothing to inject.
    plan: Option<Arc<Plan>>,
    fetched_at: Instant,
    fresh_for: Duration,
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
            Some(entry) if entry.fetched_at.elapsed() < entry.fresh_for => {
                Lookup::Fresh(entry.plan.clone())
            }
            Some(entry) => Lookup::Stale(entry.plan.clone()),
        }
    }

    /// Cold start: wait for whoever fetches first, so every caller sees the
    /// first configuration.
    async fn first(self: Arc<Self>) -> Option<Arc<Plan>> {
        let guard = Arc::clone(&self.refresh).lock_owned().await;
        self.renew(guard).await
    }

    /// Fetch while holding the refresh lock, unless someone just did.
    async fn renew(self: Arc<Self>, _guard: OwnedMutexGuard<()>) -> Option<Arc<Plan>> {
        let first = match self.lookup() {
            Lookup::Fresh(plan) => return plan,
            Lookup::Stale(_) => false,
            Lookup::Empty => true,
        };
        let (plan, report) = self.fetch_plan().await;
        let fresh_for = match first {
            true => self.ttl.mul_f64(1.0 - self.jitter * self.dice.roll()),
            false => self.ttl,
        };
        *self.cache.write().unwrap_or_else(PoisonError::into_inner) = Some(Entry {
            plan: plan.clone(),
            fetched_at: Instant::now(),
            fresh_for,
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
}

/// Injected faults are logged per invocation; configuration states once.
enum Report {
    Active(String),
    Info(String),
    Warn(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::StaticSource;
    use crate::Outcome;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    /// Counts fetches; always answers the same configuration.
    #[derive(Clone, Default)]
    struct Counted(Arc<AtomicUsize>);

    impl ConfigSource for Counted {
        async fn fetch(&self) -> Result<Option<String>, SourceError> {
            self.0.fetch_add(1, SeqCst);
            Ok(Some(
                r#"{"statuscode": {"enabled": true, "percentage": 0}}"#.into(),
            ))
        }
    }

    /// When the second fetch happens, for one seed.
    async fn second_fetch_after(jitter: f64, seed: u64) -> Duration {
        let source = Counted::default();
        let injector = Injector::builder(source.clone())
            .jitter(jitter)
            .dice(SeededDice::new(seed))
            .build();
        let start = Instant::now();
        injector.plan().await;
        while source.0.load(SeqCst) < 2 {
            tokio::time::advance(Duration::from_millis(10)).await;
            injector.plan().await;
        }
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_first_refresh_is_jittered_and_never_later_than_the_ttl() {
        let mut firsts = Vec::new();
        for seed in 0..20 {
            let at = second_fetch_after(0.5, seed).await;
            assert!(
                (Duration::from_millis(2_500)..=DEFAULT_TTL).contains(&at),
                "{at:?}"
            );
            firsts.push(at);
        }
        firsts.sort();
        firsts.dedup();
        assert!(firsts.len() > 10, "spread, not in step: {firsts:?}");
        // No jitter: exactly one TTL.
        assert_eq!(second_fetch_after(0.0, 1).await, DEFAULT_TTL);

        // After the first, refreshes are one TTL apart: one read per TTL.
        let source = Counted::default();
        let injector = Injector::builder(source.clone())
            .dice(SeededDice::new(3))
            .build();
        for _ in 0..10_000 {
            injector.plan().await;
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        // 100 s: at most 20 reads a TTL apart, plus the early first refresh.
        let reads = source.0.load(SeqCst);
        assert!((20..=21).contains(&reads), "{reads}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_event_is_read_only_for_match_rules() {
        let made = AtomicUsize::new(0);
        let event = || {
            made.fetch_add(1, SeqCst);
            Some(json!({"path": "/admin"}))
        };
        let plain: Injector = Injector::builder(StaticSource::new(
            r#"{"statuscode": {"enabled": true, "status_code": 418}}"#,
        ))
        .build();
        let plan = plain.plan().await.expect("active");
        let decision = plain.decide::<serde_json::Value>(&plan, event, 0);
        assert!(matches!(decision.outcome, Outcome::Respond(ref r) if r["statusCode"] == 418));
        assert_eq!(made.load(SeqCst), 0, "no rule, no JSON");

        let ruled: Injector = Injector::builder(StaticSource::new(
            r#"{"statuscode": {"enabled": true, "status_code": 418,
                "match": [{"path": "path", "operator": "startsWith", "value": "/admin"}]},
                "exception": {"enabled": true, "match": [{"path": "path", "value": "/admin"}]}}"#,
        ))
        .build();
        let plan = ruled.plan().await.expect("active");
        let decision = ruled.decide::<serde_json::Value>(&plan, event, 0);
        assert!(matches!(decision.outcome, Outcome::Respond(_)));
        assert_eq!(made.load(SeqCst), 1, "made once for all rules");
        // An event that is not JSON matches no rule.
        let decision = ruled.decide::<serde_json::Value>(&plan, || None, 0);
        assert_eq!(decision.outcome, Outcome::Handler);
    }
}
