//! Running an attack: stages in order, closed-loop users, one rate cap
//! across all of them, early stops, and the report.

use crate::client::{connector, Tls};
use crate::conn::{Exchange, Http, Transport};
use crate::error::ErrorKind;
use crate::report::{
    AttackReport, SampleResponse, StageReport, StopReason, Tally, TemplateReport, ViolationSample,
    MAX_ERROR_SAMPLES, MAX_SAMPLES,
};
use crate::spec::{StopRules, ValidAttack};
use crate::template::{truncate_lossy, Prepared};
use async_trait::async_trait;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Polled while an attack runs; `Some(reason)` stops it at once. The
/// control plane checks the experiment's CloudWatch abort alarms here.
#[async_trait]
pub trait StopSignal: Send + Sync {
    /// `Some(why)` to stop the attack.
    async fn check(&self) -> Option<String>;
}

/// A stop signal that never fires.
#[derive(Debug, Clone, Copy, Default)]
pub struct NeverStop;

#[async_trait]
impl StopSignal for NeverStop {
    async fn check(&self) -> Option<String> {
        None
    }
}

/// After a stop, how long users get to finish the request in flight
/// before they are cancelled (that request is then not counted).
const STOP_GRACE: Duration = Duration::from_millis(250);
/// Shortest poll interval accepted.
const MIN_POLL: Duration = Duration::from_millis(10);

impl ValidAttack {
    /// Runs the attack and reports on it. Needs a Tokio runtime (users are
    /// spawned tasks: a multi-thread runtime uses every worker).
    ///
    /// `stop` is checked before the first request and then every
    /// `poll_interval` (at least 10 ms); when it fires, or a `stop` rule's
    /// count goes over its maximum, users stop within one request
    /// (in-flight requests get 250 ms, then are cancelled uncounted).
    /// Each stage lasts its duration plus at most the request in flight.
    pub async fn run(&self, stop: &dyn StopSignal, poll_interval: Duration) -> AttackReport {
        let timeout = Duration::from_millis(self.spec.timeout_ms);
        let tls = Tls::for_url(self.target.https, self.spec.verify_tls);
        let connector = connector(tls, timeout, self.limits.allow_loopback);
        let http = Http::new(connector, self.target.origin(), timeout);
        run_with(self, http, stop, poll_interval).await
    }
}

/// A token bucket as a GCRA: `tat` is the theoretical arrival time of the
/// next request, in ns since `origin`. Each caller reserves the next slot
/// with one compare-and-swap and sleeps until it. Over any window `w`, at
/// most `w × rps + rps × 10 ms + 1` requests start.
struct Limiter {
    origin: Instant,
    interval_ns: u64,
    tolerance_ns: u64,
    tat: AtomicU64,
}

impl Limiter {
    fn new(rps: f64, origin: Instant) -> Limiter {
        let interval_ns = (1e9 / rps).max(1.0) as u64;
        Limiter {
            origin,
            interval_ns,
            tolerance_ns: 10_000_000u64.max(interval_ns),
            tat: AtomicU64::new(0),
        }
    }

    /// Waits for a slot; returns when it went (`now` unless it slept), or
    /// `None` when the slot falls at or after `end`.
    async fn acquire(&self, now: Instant, end: Instant) -> Option<Instant> {
        let at_call = now;
        let now = now.saturating_duration_since(self.origin).as_nanos() as u64;
        let earliest = now.saturating_sub(self.tolerance_ns);
        let mut tat = self.tat.load(Ordering::Relaxed);
        let slot = loop {
            let slot = tat.max(earliest);
            match self.tat.compare_exchange_weak(
                tat,
                slot + self.interval_ns,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break slot,
                Err(current) => tat = current,
            }
        };
        if slot <= now {
            return Some(at_call);
        }
        let at = self.origin + Duration::from_nanos(slot);
        if at >= end {
            return None;
        }
        tokio::time::sleep_until(at).await;
        Some(Instant::now())
    }
}

struct SampleSlot {
    taken: AtomicUsize,
    list: Mutex<Vec<ViolationSample>>,
}

/// What the users of an attack share.
struct Shared {
    stopped: AtomicBool,
    reason: Mutex<Option<StopReason>>,
    wake: Notify,
    rules: StopRules,
    violations: AtomicU64,
    server_errors: AtomicU64,
    errors: AtomicU64,
    samples: Vec<SampleSlot>,
    error_samples: Mutex<Vec<String>>,
    error_samples_full: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    fn stop(&self, reason: StopReason) {
        let mut current = lock(&self.reason);
        if current.is_none() {
            *current = Some(reason);
        }
        self.stopped.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    fn count(&self, counter: &AtomicU64, max: Option<u64>, reason: fn(u64, u64) -> StopReason) {
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(max) = max {
            if n > max {
                self.stop(reason(n, max));
            }
        }
    }

    fn error_message(&self, message: String) {
        if self.error_samples_full.load(Ordering::Relaxed) {
            return;
        }
        let mut list = lock(&self.error_samples);
        if !list.contains(&message) && list.len() < MAX_ERROR_SAMPLES {
            list.push(message);
        }
        if list.len() >= MAX_ERROR_SAMPLES {
            self.error_samples_full.store(true, Ordering::Relaxed);
        }
    }
}

/// One virtual user: send, read the whole response, check it, repeat,
/// until the stage ends or the attack stops.
async fn user<C: Exchange>(
    mut conn: C,
    requests: Arc<[Prepared]>,
    index: usize,
    shared: Arc<Shared>,
    limiter: Arc<Limiter>,
    tally: Arc<Mutex<Tally>>,
    end: Instant,
) {
    let request = &requests[index];
    let slot = &shared.samples[index];
    // One clock read per request: the end of one is the start of the next.
    let mut now = Instant::now();
    loop {
        if shared.is_stopped() || now >= end {
            return;
        }
        let Some(started) = limiter.acquire(now, end).await else {
            return;
        };
        if shared.is_stopped() {
            return;
        }
        let keep_body = slot.taken.load(Ordering::Relaxed) < MAX_SAMPLES;
        let outcome = conn.exchange(request, keep_body).await;
        now = Instant::now();
        let micros = now.saturating_duration_since(started).as_micros() as u64;
        match outcome {
            Ok(reply) => {
                let violation = request.violates(reply.status);
                lock(&tally).response(reply.status, micros, violation);
                if reply.status >= 500 {
                    shared.count(&shared.server_errors, shared.rules.max_5xx, |count, max| {
                        StopReason::ServerErrors { count, max }
                    });
                }
                if violation {
                    if let Some((prefix, total)) = reply.body {
                        if slot.taken.fetch_add(1, Ordering::Relaxed) < MAX_SAMPLES {
                            let body = if total > prefix.len() {
                                let mut text = truncate_lossy(&prefix, prefix.len());
                                text.push_str(&format!("…(+{} bytes)", total - prefix.len()));
                                text
                            } else {
                                truncate_lossy(&prefix, prefix.len())
                            };
                            lock(&slot.list).push(ViolationSample {
                                request: request.sample.clone(),
                                response: SampleResponse {
                                    status: reply.status,
                                    body,
                                },
                                expected: request.expected.clone(),
                            });
                        }
                    }
                    shared.count(
                        &shared.violations,
                        shared.rules.max_violations,
                        |count, max| StopReason::Violations { count, max },
                    );
                }
            }
            Err(failure) => {
                lock(&tally).error(failure.kind);
                shared.error_message(format!("{}: {}", failure.kind, failure.message));
                shared.count(&shared.errors, shared.rules.max_errors, |count, max| {
                    StopReason::Errors { count, max }
                });
                if failure.kind == ErrorKind::Connect {
                    // Nothing listens: do not spin on refused connections.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    now = Instant::now();
                }
            }
        }
    }
}

pub(crate) async fn run_with<T: Transport>(
    attack: &ValidAttack,
    transport: T,
    stop: &dyn StopSignal,
    poll_interval: Duration,
) -> AttackReport {
    let poll_interval = poll_interval.max(MIN_POLL);
    let spec = &attack.spec;
    let requests = attack.requests.clone();
    let shared = Arc::new(Shared {
        stopped: AtomicBool::new(false),
        reason: Mutex::new(None),
        wake: Notify::new(),
        rules: spec.stop.clone(),
        violations: AtomicU64::new(0),
        server_errors: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        samples: requests
            .iter()
            .map(|_| SampleSlot {
                taken: AtomicUsize::new(0),
                list: Mutex::new(Vec::new()),
            })
            .collect(),
        error_samples: Mutex::new(Vec::new()),
        error_samples_full: AtomicBool::new(false),
    });
    let first_stage = spec.share.map_or(0, |s| s.first_stage);
    let mut per_template: Vec<Tally> = requests.iter().map(|_| Tally::new()).collect();
    let mut stages = Vec::with_capacity(spec.stages.len());

    if let Some(reason) = stop.check().await {
        shared.stop(StopReason::Aborted { reason });
    }
    let mut next_poll = Instant::now() + poll_interval;

    for (i, stage) in spec.stages.iter().enumerate() {
        if shared.is_stopped() {
            break;
        }
        let users = stage.users.unwrap_or(0);
        let planned = stage.duration_s.unwrap_or(0.0);
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(planned);
        let limiter = Arc::new(Limiter::new(attack.max_rps, start));
        let mut tasks = JoinSet::new();
        let mut tallies = Vec::with_capacity(users as usize);
        for u in 0..users {
            let index = (stage.first_user as usize + u as usize) % requests.len();
            let tally = Arc::new(Mutex::new(Tally::new()));
            tallies.push((index, tally.clone()));
            tasks.spawn(user(
                transport.open(),
                requests.clone(),
                index,
                shared.clone(),
                limiter.clone(),
                tally,
                end,
            ));
        }
        loop {
            tokio::select! {
                biased;
                joined = tasks.join_next() => {
                    if joined.is_none() {
                        break;
                    }
                }
                _ = shared.wake.notified() => {}
                _ = tokio::time::sleep_until(next_poll) => {
                    if let Some(reason) = stop.check().await {
                        shared.stop(StopReason::Aborted { reason });
                    }
                    next_poll = Instant::now() + poll_interval;
                }
            }
            if shared.is_stopped() {
                let _ = tokio::time::timeout(STOP_GRACE, async {
                    while tasks.join_next().await.is_some() {}
                })
                .await;
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
        let elapsed = start.elapsed();

        let mut stage_tally = Tally::new();
        for (index, tally) in &tallies {
            let tally = lock(tally);
            stage_tally.absorb(&tally);
            per_template[*index].absorb(&tally);
        }
        stages.push(StageReport {
            stage: first_stage + i as u32,
            users,
            planned_s: planned,
            stats: stage_tally.stats(elapsed),
        });
    }

    let templates = requests
        .iter()
        .zip(&per_template)
        .zip(&shared.samples)
        .map(|((request, tally), slot)| {
            let mut other_statuses = 0;
            TemplateReport {
                name: request.name.clone(),
                template: request.template.to_string(),
                method: request.method.to_string(),
                path: request.sample.path.clone(),
                expected: request.expected.clone(),
                requests: tally.responses() + tally.error_count(),
                statuses: tally.status_map(&mut other_statuses),
                other_statuses,
                errors: tally.error_count(),
                violations: tally.violations,
                samples: std::mem::take(&mut *lock(&slot.list)),
            }
        })
        .collect();
    let stop_reason = lock(&shared.reason)
        .clone()
        .unwrap_or(StopReason::Completed);
    let mut report = AttackReport {
        target: spec.target.clone(),
        stop_reason,
        duration_s: 0.0,
        shares: 1,
        totals: Default::default(),
        stages,
        requests: templates,
        violations: Vec::new(),
        error_samples: std::mem::take(&mut *lock(&shared.error_samples)),
        trimmed: false,
    };
    report.finish();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::{Failure, Reply};
    use crate::spec::{AttackSpec, Limits};
    use serde_json::json;
    use std::sync::atomic::AtomicU32;

    /// A transport with no sockets: each template answers a fixed status
    /// after a fixed latency, on the paused clock.
    type Answer = Arc<dyn Fn(&str) -> Result<u16, ErrorKind> + Send + Sync>;

    #[derive(Clone)]
    struct Fake {
        answer: Answer,
        latency: Duration,
        sent: Arc<AtomicU64>,
    }

    impl Transport for Fake {
        type Conn = Fake;
        fn open(&self) -> Fake {
            self.clone()
        }
    }

    impl Exchange for Fake {
        async fn exchange(
            &mut self,
            request: &Prepared,
            keep_body: bool,
        ) -> Result<Reply, Failure> {
            self.sent.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(self.latency).await;
            match (self.answer)(&request.name) {
                Ok(status) => Ok(Reply {
                    status,
                    body: keep_body
                        .then(|| (b"{\"message\":\"Internal server error\"}".to_vec(), 34)),
                }),
                Err(kind) => Err(Failure {
                    kind,
                    message: "connection refused".into(),
                }),
            }
        }
    }

    fn fake(answer: impl Fn(&str) -> Result<u16, ErrorKind> + Send + Sync + 'static) -> Fake {
        Fake {
            answer: Arc::new(answer),
            latency: Duration::from_millis(10),
            sent: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The write-up's bug: a 500 where a 401 belongs.
    fn buggy(name: &str) -> Result<u16, ErrorKind> {
        Ok(match name {
            "invalid-token" => 500,
            _ => 400,
        })
    }

    fn attack(extra: serde_json::Value) -> ValidAttack {
        let mut spec = json!({
            "target": "http://127.0.0.1:9/",
            "stages": [{"users": 4, "duration_s": 2}, {"users": 8, "duration_s": 3}],
            "requests": [
                {"name": "invalid-token", "template": "invalid_token", "path": "/moderate"},
                {"name": "malformed", "template": "malformed_json", "path": "/moderate"}
            ],
            "max_rps": 1000
        });
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        AttackSpec::from_json(spec)
            .unwrap()
            .validate(&Limits {
                allowed_hosts: vec!["127.0.0.1".into()],
                // The local stack's opt-out: the target is on loopback.
                allow_loopback: true,
                ..Limits::default()
            })
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn every_response_is_classified_and_violations_sampled() {
        let a = attack(json!({}));
        let t = fake(buggy);
        let report = run_with(&a, t.clone(), &NeverStop, Duration::from_secs(1)).await;

        assert_eq!(report.stop_reason, StopReason::Completed);
        // Closed loop at 10 ms per request: 4 users × 2 s, then 8 × 3 s.
        assert_eq!(report.stages[0].stats.requests, 4 * 200);
        assert_eq!(report.stages[1].stats.requests, 8 * 300);
        assert_eq!(report.stages[1].users, 8);
        assert_eq!(report.totals.requests, 3200);
        assert_eq!(t.sent.load(Ordering::Relaxed), 3200);
        assert_eq!(report.totals.classes.c5xx, 1600);
        assert_eq!(report.totals.classes.c4xx, 1600);
        assert_eq!(report.totals.statuses[&500], 1600);
        assert_eq!(report.totals.violations, 1600);
        // 10 ms, to the histogram's 1% resolution.
        let latency = report.stages[0].stats.latency_ms;
        assert!((10.0..10.1).contains(&latency.p50), "{latency:?}");
        assert!((10.0..10.1).contains(&latency.max), "{latency:?}");
        let rps = report.stages[0].stats.rps;
        assert!((399.0..=400.0).contains(&rps), "{rps}");

        let bad = &report.requests[0];
        assert_eq!(
            (bad.name.as_str(), bad.violations, bad.requests),
            ("invalid-token", 1600, 1600)
        );
        assert_eq!(bad.samples.len(), MAX_SAMPLES);
        let sample = &bad.samples[0];
        assert_eq!(sample.response.status, 500);
        assert_eq!(
            sample.request.headers["authorization"],
            "Bearer turbulen…[redacted]"
        );
        assert_eq!(sample.request.path, "/moderate");
        let good = &report.requests[1];
        assert_eq!((good.violations, good.samples.len()), (0, 0));
        assert_eq!(
            report.violations,
            vec!["invalid-token: expected 401 or 403, saw 500 ×1600".to_string()]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stops_when_violations_pass_the_threshold() {
        let a = attack(json!({"stop": {"max_violations": 50}}));
        let report = run_with(&a, fake(buggy), &NeverStop, Duration::from_secs(1)).await;
        assert_eq!(
            report.stop_reason,
            StopReason::Violations { count: 51, max: 50 }
        );
        // Two users send the bad request; each finishes at most the one in flight.
        assert!(
            (51..=53).contains(&report.totals.violations),
            "{}",
            report.totals.violations
        );
        assert_eq!(report.stages.len(), 1);
        assert!(report.duration_s < 0.3, "{}", report.duration_s);

        let a = attack(json!({"stop": {"max_violations": 1000, "max_5xx": 20}}));
        let report = run_with(&a, fake(buggy), &NeverStop, Duration::from_secs(1)).await;
        assert_eq!(
            report.stop_reason,
            StopReason::ServerErrors { count: 21, max: 20 }
        );

        let a = attack(json!({"stop": {"max_errors": 5}}));
        let refused = fake(|_| Err(ErrorKind::Connect));
        let report = run_with(&a, refused, &NeverStop, Duration::from_secs(1)).await;
        assert_eq!(report.stop_reason, StopReason::Errors { count: 6, max: 5 });
        assert_eq!(
            report.error_samples,
            vec!["connect: connection refused".to_string()]
        );
        assert_eq!(
            report.totals.errors[&ErrorKind::Connect],
            report.totals.requests
        );
    }

    struct AlarmAfter {
        checks: AtomicU32,
        fire_at: u32,
    }

    #[async_trait]
    impl StopSignal for AlarmAfter {
        async fn check(&self) -> Option<String> {
            let n = self.checks.fetch_add(1, Ordering::Relaxed);
            (n >= self.fire_at).then(|| "alarm api-5xx is ALARM".to_string())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_stop_signal_aborts_within_one_poll() {
        let a = attack(json!({}));
        // Checked at the start (check 0), then every 500 ms: fires at 1.5 s.
        let alarm = AlarmAfter {
            checks: AtomicU32::new(0),
            fire_at: 3,
        };
        let report = run_with(&a, fake(buggy), &alarm, Duration::from_millis(500)).await;
        assert_eq!(
            report.stop_reason,
            StopReason::Aborted {
                reason: "alarm api-5xx is ALARM".into()
            }
        );
        assert_eq!(report.stages.len(), 1);
        assert!(
            (1.5..1.52).contains(&report.duration_s),
            "{}",
            report.duration_s
        );
        assert!(
            (600..=608).contains(&report.totals.requests),
            "{}",
            report.totals.requests
        );

        // Already in alarm: nothing is sent.
        let t = fake(buggy);
        let alarm = AlarmAfter {
            checks: AtomicU32::new(0),
            fire_at: 0,
        };
        let report = run_with(&a, t.clone(), &alarm, Duration::from_millis(500)).await;
        assert!(matches!(report.stop_reason, StopReason::Aborted { .. }));
        assert_eq!(t.sent.load(Ordering::Relaxed), 0);
        assert!(report.stages.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_cap_holds_across_users() {
        // 8 users could do 800 rps at 10 ms; the cap is 100 rps.
        let a = attack(json!({"max_rps": 100, "stages": [{"users": 8, "duration_s": 10}]}));
        let t = fake(buggy);
        let report = run_with(&a, t, &NeverStop, Duration::from_secs(1)).await;
        let n = report.totals.requests;
        assert!((995..=1002).contains(&n), "{n}");
        assert!(
            (99.0..=100.5).contains(&report.totals.rps),
            "{}",
            report.totals.rps
        );
    }

    #[tokio::test(start_paused = true)]
    async fn users_take_templates_round_robin_from_their_global_index() {
        let mut a = attack(json!({"stages": [{"users": 3, "duration_s": 1}]}));
        a.spec.stages[0].first_user = 1;
        let report = run_with(&a, fake(buggy), &NeverStop, Duration::from_secs(1)).await;
        // Users 1, 2, 3 → malformed, invalid-token, malformed.
        assert_eq!(report.requests[0].requests, 100);
        assert_eq!(report.requests[1].requests, 200);
    }

    #[tokio::test(start_paused = true)]
    async fn the_report_stays_small_whatever_the_attack() {
        // 16 templates with large headers and bodies, 16 stages, and a
        // server answering 300 distinct statuses: every list at its bound.
        let long = "v".repeat(2000);
        let requests: Vec<serde_json::Value> = (0..crate::spec::MAX_REQUESTS)
            .map(|i| {
                let headers: serde_json::Map<String, serde_json::Value> = (0..20)
                    .map(|h| (format!("x-header-{h}"), json!(long)))
                    .collect();
                json!({"name": format!("request-{i:02}-{}", "n".repeat(40)), "template": "custom",
                       "method": "POST", "path": format!("/{}", "p".repeat(200)),
                       "headers": headers, "body": long, "expect": [200]})
            })
            .collect();
        let stages: Vec<serde_json::Value> = (0..crate::spec::MAX_STAGES)
            .map(|_| json!({"users": 16, "duration_s": 0.5}))
            .collect();
        let a = attack(json!({"requests": requests, "stages": stages, "max_rps": 1000}));
        let n = Arc::new(AtomicU64::new(0));
        let statuses = fake(move |_| Ok(200 + (n.fetch_add(1, Ordering::Relaxed) % 300) as u16));
        let report = run_with(&a, statuses, &NeverStop, Duration::from_secs(1)).await;

        let size = serde_json::to_vec(&report).unwrap().len();
        assert!(size <= crate::MAX_REPORT_BYTES, "{size}");
        assert!(report.trimmed);
        assert_eq!(report.stages.len(), 16);
        assert_eq!(report.requests.len(), 16);
        assert!(report
            .stages
            .iter()
            .all(|s| s.stats.statuses.len() <= crate::report::MAX_STATUSES));
        assert_eq!(report.totals.statuses.len(), crate::report::MAX_STATUSES);
        assert_eq!(
            report.totals.statuses.values().sum::<u64>() + report.totals.other_statuses,
            report.totals.responses
        );
        assert!(report
            .requests
            .iter()
            .all(|t| t.samples.len() <= MAX_SAMPLES));
        assert!(report.violations.len() <= crate::report::MAX_SUMMARY_LINES + 1);
        assert!(report.violations.last().unwrap().starts_with("… and "));
        // Counts survive trimming: 16 stages × 0.5 s at the 1000 rps cap.
        let n = report.totals.requests;
        assert!((8000..=8040).contains(&n), "{n}");
    }

    #[tokio::test(start_paused = true)]
    async fn merging_without_histograms_gives_an_upper_bound() {
        let a = attack(json!({"stages": [{"users": 2, "duration_s": 1}]}));
        let mut slow = fake(buggy);
        slow.latency = Duration::from_millis(40);
        let fast = run_with(&a, fake(buggy), &NeverStop, Duration::from_secs(1)).await;
        let mut slow = run_with(&a, slow, &NeverStop, Duration::from_secs(1)).await;

        let exact = crate::merge(vec![fast.clone(), slow.clone()]).unwrap();
        let latency = exact.stages[0].stats.latency_ms;
        assert!(!latency.approximate);
        // 200 fast requests and 50 slow ones: the median is fast.
        assert!(latency.p50 < 11.0 && latency.max >= 40.0, "{latency:?}");
        assert_eq!(exact.totals.requests, 250);
        let duration = exact.stages[0].stats.duration_s;
        assert!((1.0..1.05).contains(&duration), "{duration}");

        slow.stages[0].stats.histogram = None;
        let bound = crate::merge(vec![fast, slow]).unwrap();
        let latency = bound.stages[0].stats.latency_ms;
        assert!(latency.approximate && bound.totals.latency_ms.approximate);
        assert!(latency.p50 >= 40.0, "{latency:?}");
        assert_eq!(bound.totals.requests, 250);
        assert_eq!(bound.requests[0].samples.len(), MAX_SAMPLES);
    }
}
