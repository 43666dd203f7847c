//! The layer end to end, on tokio's paused clock: every mode, the odds,
//! the deadline cap, expiry, the cache, and every way to fail safe.

use crate::*;
use lambda_runtime::tower::util::BoxCloneService;
use lambda_runtime::tower::{service_fn, Layer, Service, ServiceExt};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

type Handler = BoxCloneService<LambdaEvent<Value>, Value, FaultError<lambda_runtime::Error>>;

/// A source whose answer can change and whose fetches are counted.
#[derive(Clone)]
struct Scripted {
    answer: Arc<Mutex<Result<Option<String>, SourceError>>>,
    fetches: Arc<AtomicUsize>,
    delay: Duration,
}

impl Scripted {
    fn new(config: Value) -> Self {
        Scripted {
            answer: Arc::new(Mutex::new(Ok(Some(config.to_string())))),
            fetches: Arc::default(),
            delay: Duration::ZERO,
        }
    }

    fn answer(&self, answer: Result<Option<String>, SourceError>) {
        *self.answer.lock().expect("lock") = answer;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(SeqCst)
    }
}

impl ConfigSource for Scripted {
    async fn fetch(&self) -> Result<Option<String>, SourceError> {
        self.fetches.fetch_add(1, SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.answer.lock().expect("lock").clone()
    }
}

/// A wall clock the test moves.
#[derive(Clone)]
struct Wall(Arc<AtomicU64>);

const T0_MS: u64 = 1_900_000_000_000; // 2030-03-17

impl Wall {
    fn new() -> Self {
        Wall(Arc::new(AtomicU64::new(T0_MS)))
    }
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.0.load(SeqCst))
    }
    fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, SeqCst);
    }
    fn rfc3339(&self, offset_ms: i64) -> String {
        let ms = self.0.load(SeqCst) as i64 + offset_ms;
        let at = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
            .expect("in range");
        at.format(&time::format_description::well_known::Rfc3339)
            .expect("formats")
    }
}

/// The handler: counts its calls and answers 200 with the event echoed.
fn echo(
    calls: Arc<AtomicUsize>,
) -> impl Service<
    LambdaEvent<Value>,
    Response = Value,
    Error = lambda_runtime::Error,
    Future = impl Future<Output = Result<Value, lambda_runtime::Error>> + Send,
> + Clone
       + Send {
    service_fn(move |event: LambdaEvent<Value>| {
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, SeqCst);
            Ok(json!({"statusCode": 200, "echo": event.payload}))
        }
    })
}

use std::future::Future;

struct Rig {
    source: Scripted,
    wall: Wall,
    handled: Arc<AtomicUsize>,
    service: Handler,
}

impl Rig {
    fn new(config: Value) -> Rig {
        Rig::with(Scripted::new(config), |b| b)
    }

    fn with(
        source: Scripted,
        options: impl FnOnce(Builder<FaultLayer>) -> Builder<FaultLayer>,
    ) -> Rig {
        let wall = Wall::new();
        let clock = wall.clone();
        // No jitter: these tests count refreshes against exact TTLs.
        let builder = FaultLayer::builder(source.clone())
            .dice(SeededDice::new(42))
            .jitter(0.0)
            .clock(move || clock.now());
        let layer = options(builder).build();
        let handled = Arc::new(AtomicUsize::new(0));
        let service = BoxCloneService::new(layer.layer(echo(Arc::clone(&handled))));
        Rig {
            source,
            wall,
            handled,
            service,
        }
    }

    /// A context whose deadline is `ms` after the rig's wall clock (0: none).
    fn context(&self, ms: u64) -> Context {
        let mut context = Context::default();
        if ms > 0 {
            context.deadline = self.wall.0.load(SeqCst) + ms;
        }
        context
    }

    async fn call_with(
        &mut self,
        payload: Value,
        context: Context,
    ) -> Result<Value, FaultError<lambda_runtime::Error>> {
        self.service
            .ready()
            .await?
            .call(LambdaEvent::new(payload, context))
            .await
    }

    async fn call(&mut self) -> Result<Value, FaultError<lambda_runtime::Error>> {
        self.call_with(json!({"text": "hi"}), Context::default())
            .await
    }

    fn handled(&self) -> usize {
        self.handled.load(SeqCst)
    }
}

fn is_handler(result: &Result<Value, FaultError<lambda_runtime::Error>>) -> bool {
    matches!(result, Ok(v) if v["statusCode"] == 200)
}

fn injected_status(result: &Result<Value, FaultError<lambda_runtime::Error>>) -> Option<u16> {
    match result {
        Ok(v) if v["statusCode"] != 200 => v["statusCode"].as_u64().map(|s| s as u16),
        _ => None,
    }
}

// ---- pass-through ---------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn without_a_parameter_the_layer_is_a_pass_through() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = FaultLayer::disabled();
    assert!(!layer.is_enabled());
    let mut service = layer.layer(echo(Arc::clone(&calls)));
    let event = LambdaEvent::new(json!({"a": 1}), Context::default());
    let out = service
        .ready()
        .await
        .expect("ready")
        .call(event)
        .await
        .expect("ok");
    assert_eq!(out, json!({"statusCode": 200, "echo": {"a": 1}}));
    assert_eq!(calls.load(SeqCst), 1);
}

#[cfg(feature = "ssm")]
#[tokio::test]
async fn from_settings_reads_ssm_only_when_a_parameter_is_named() {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    let off = Settings::from_vars(|_| None);
    assert!(!FaultLayer::from_settings(&sdk, off).is_enabled());
    let on =
        Settings::from_vars(|name| (name == PARAM_VAR).then(|| "/chaos/moderation".to_string()));
    assert!(FaultLayer::from_settings(&sdk, on.clone()).is_enabled());
    // A hand-made SdkConfig without a behavior version does not panic.
    let bare = aws_config::SdkConfig::builder().build();
    assert!(FaultLayer::from_settings(&bare, on).is_enabled());
}

// ---- each mode --------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn latency_delays_the_handler() {
    let mut rig =
        Rig::new(json!({"latency": {"enabled": true, "min_latency": 300, "max_latency": 300}}));
    let start = Instant::now();
    assert!(is_handler(&rig.call().await));
    assert_eq!(start.elapsed(), Duration::from_millis(300));
    assert_eq!(rig.handled(), 1);
}

#[tokio::test(start_paused = true)]
async fn latency_is_uniform_between_min_and_max() {
    let mut rig =
        Rig::new(json!({"latency": {"enabled": true, "min_latency": 100, "max_latency": 400}}));
    let mut delays = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        assert!(is_handler(&rig.call().await));
        delays.push(start.elapsed().as_millis() as u64);
    }
    assert!(delays.iter().all(|d| (100..=400).contains(d)), "{delays:?}");
    let mean = delays.iter().sum::<u64>() as f64 / delays.len() as f64;
    assert!((220.0..=280.0).contains(&mean), "mean {mean}");
}

#[tokio::test(start_paused = true)]
async fn latency_stops_short_of_the_deadline() {
    let mut rig =
        Rig::new(json!({"latency": {"enabled": true, "min_latency": 5000, "max_latency": 5000}}));
    let context = rig.context(1000);
    let start = Instant::now();
    assert!(is_handler(&rig.call_with(json!({}), context).await));
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(1000) - DEADLINE_MARGIN
    );
    // A deadline already past: no delay at all.
    let mut context = rig.context(1);
    context.deadline -= 10;
    let start = Instant::now();
    assert!(is_handler(&rig.call_with(json!({}), context).await));
    assert_eq!(start.elapsed(), Duration::ZERO);
    // `cargo lambda watch` sends a constant 600000: not a time, so no cap.
    let mut context = rig.context(1);
    context.deadline = 600_000;
    let start = Instant::now();
    assert!(is_handler(&rig.call_with(json!({}), context).await));
    assert_eq!(start.elapsed(), Duration::from_millis(5000));
}

#[tokio::test(start_paused = true)]
async fn timeout_sleeps_until_the_buffer_before_the_deadline() {
    let mut rig = Rig::new(
        json!({"timeout": {"enabled": true, "timeout_buffer_ms": 300},
                                  "latency": {"enabled": true, "min_latency": 500}}),
    );
    let context = rig.context(2000);
    let start = Instant::now();
    assert!(is_handler(&rig.call_with(json!({}), context).await));
    assert_eq!(start.elapsed(), Duration::from_millis(1700));
    // Without a deadline there is nothing to time out against: latency only.
    let start = Instant::now();
    assert!(is_handler(&rig.call().await));
    assert_eq!(start.elapsed(), Duration::from_millis(500));
}

#[tokio::test(start_paused = true)]
async fn a_status_code_answers_without_the_handler() {
    let mut rig = Rig::new(json!({"statuscode": {"enabled": true, "status_code": 503}}));
    let out = rig.call().await.expect("a response");
    let expected = r#"{"statusCode":503,"headers":{"Content-Type":"application/json"},"body":"{\"message\":\"Injected status code 503\"}"}"#;
    assert_eq!(out, serde_json::from_str::<Value>(expected).expect("json"));
    assert_eq!(rig.handled(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_response_type_without_a_status_skips_that_mode_only() {
    let source = Scripted::new(
        json!({"statuscode": {"enabled": true}, "latency": {"enabled": true, "min_latency": 50}}),
    );
    let layer = FaultLayer::builder(source).dice(SeededDice::new(1)).build();
    let handler = service_fn(|_: LambdaEvent<Value>| async {
        Ok::<_, lambda_runtime::Error>("plain".to_string())
    });
    let mut service = layer.layer(handler);
    for _ in 0..3 {
        let start = Instant::now();
        let event = LambdaEvent::new(json!({}), Context::default());
        let out = service
            .ready()
            .await
            .expect("ready")
            .call(event)
            .await
            .expect("ok");
        assert_eq!(out, "plain");
        assert_eq!(start.elapsed(), Duration::from_millis(50));
    }
}

#[tokio::test(start_paused = true)]
async fn an_exception_is_an_injected_fault_error() {
    let mut rig = Rig::new(
        json!({"exception": {"enabled": true, "exception_msg": "moderation model unavailable"}}),
    );
    let err = rig.call().await.expect_err("an error");
    assert!(matches!(&err, FaultError::Injected(f) if f.message == "moderation model unavailable"));
    assert_eq!(
        err.to_string(),
        "InjectedFault: moderation model unavailable"
    );
    assert_eq!(
        Diagnostic::from(err),
        Diagnostic {
            error_type: "InjectedFault".into(),
            error_message: "moderation model unavailable".into()
        }
    );
    assert_eq!(rig.handled(), 0);
}

#[derive(Debug)]
struct Overloaded;

impl From<Overloaded> for Diagnostic {
    fn from(_: Overloaded) -> Diagnostic {
        Diagnostic {
            error_type: "Overloaded".into(),
            error_message: "try later".into(),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_handlers_own_error_keeps_its_diagnostic() {
    let layer = FaultLayer::new(Scripted::new(
        json!({"exception": {"enabled": true, "percentage": 0}}),
    ));
    let mut service = layer.layer(service_fn(|_: LambdaEvent<Value>| async {
        Err::<Value, _>(Overloaded)
    }));
    let event = LambdaEvent::new(json!({}), Context::default());
    let err = service
        .ready()
        .await
        .expect("ready")
        .call(event)
        .await
        .expect_err("fails");
    assert!(matches!(err, FaultError::Handler(Overloaded)));
    assert_eq!(
        Diagnostic::from(err),
        Diagnostic {
            error_type: "Overloaded".into(),
            error_message: "try later".into()
        }
    );
}

#[tokio::test(start_paused = true)]
async fn modes_run_in_failure_lambdas_order() {
    // latency, then the status; the exception never gets its turn.
    let mut rig = Rig::new(json!({
        "latency": {"enabled": true, "min_latency": 200},
        "statuscode": {"enabled": true, "status_code": 502},
        "exception": {"enabled": true}
    }));
    let start = Instant::now();
    let out = rig.call().await;
    assert_eq!(injected_status(&out), Some(502));
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    // latency, then the exception.
    let mut rig = Rig::new(json!({
        "latency": {"enabled": true, "min_latency": 200},
        "statuscode": {"enabled": true, "percentage": 0},
        "exception": {"enabled": true}
    }));
    let start = Instant::now();
    assert!(matches!(rig.call().await, Err(FaultError::Injected(_))));
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    assert_eq!(rig.handled(), 0);
}

// ---- probabilities ------------------------------------------------------------

async fn hits(percentage: f64, calls: usize) -> usize {
    let mut rig = Rig::new(json!({"statuscode": {"enabled": true, "percentage": percentage}}));
    let mut hits = 0;
    for _ in 0..calls {
        if injected_status(&rig.call().await).is_some() {
            hits += 1;
        }
    }
    assert_eq!(hits + rig.handled(), calls);
    hits
}

#[tokio::test(start_paused = true)]
async fn each_percentage_holds_over_ten_thousand_calls() {
    // 20% of 10,000: sd = 40; allow 4 sd (the seed makes it exact anyway).
    let twenty = hits(20.0, 10_000).await;
    assert!((1_840..=2_160).contains(&twenty), "{twenty}");
    let fractional = hits(2.5, 10_000).await;
    assert!((188..=312).contains(&fractional), "{fractional}");
    assert_eq!(hits(0.0, 10_000).await, 0);
    assert_eq!(hits(100.0, 10_000).await, 10_000);
}

#[tokio::test(start_paused = true)]
async fn modes_roll_independently() {
    let mut rig = Rig::new(json!({
        "latency": {"enabled": true, "percentage": 50, "min_latency": 10},
        "exception": {"enabled": true, "percentage": 50}
    }));
    let (mut delayed, mut failed, mut both) = (0, 0, 0);
    for _ in 0..4_000 {
        let start = Instant::now();
        let failed_now = rig.call().await.is_err();
        let delayed_now = !start.elapsed().is_zero();
        delayed += delayed_now as u32;
        failed += failed_now as u32;
        both += (delayed_now && failed_now) as u32;
    }
    // Each about 2,000 (sd 32), both about 1,000 (sd 27).
    assert!((1_870..=2_130).contains(&delayed), "{delayed}");
    assert!((1_870..=2_130).contains(&failed), "{failed}");
    assert!((890..=1_110).contains(&both), "{both}");
}

// ---- match rules ----------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn match_rules_select_the_events() {
    let mut rig = Rig::new(
        json!({"statuscode": {"enabled": true, "status_code": 429, "match": [
            {"path": "requestContext.http.method", "value": "POST"},
            {"path": "headers.x-chaos", "operator": "exists"}
        ]}}),
    );
    let post = json!({"requestContext": {"http": {"method": "POST"}}, "headers": {"x-chaos": "1"}});
    let get = json!({"requestContext": {"http": {"method": "GET"}}, "headers": {"x-chaos": "1"}});
    let bare = json!({"requestContext": {"http": {"method": "POST"}}, "headers": {}});
    assert_eq!(
        injected_status(&rig.call_with(post, Context::default()).await),
        Some(429)
    );
    assert!(is_handler(&rig.call_with(get, Context::default()).await));
    assert!(is_handler(&rig.call_with(bare, Context::default()).await));
}

// ---- expiry ------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn an_expired_configuration_injects_nothing() {
    let wall = Wall::new();
    let config =
        |offset_ms| json!({"exception": {"enabled": true}, "expires_at": wall.rfc3339(offset_ms)});
    let mut past = Rig::new(config(-1));
    assert!(is_handler(&past.call().await));
    let mut future = Rig::new(config(60_000));
    assert!(future.call().await.is_err());
}

#[tokio::test(start_paused = true)]
async fn expiry_stops_injection_between_fetches() {
    let wall = Wall::new();
    let mut rig = Rig::with(
        Scripted::new(json!({"exception": {"enabled": true}, "expires_at": wall.rfc3339(30_000)})),
        |b| b.ttl(Duration::from_secs(3600)),
    );
    assert!(rig.call().await.is_err());
    rig.wall.advance(Duration::from_secs(29));
    assert!(rig.call().await.is_err());
    rig.wall.advance(Duration::from_secs(1));
    for _ in 0..3 {
        assert!(is_handler(&rig.call().await));
    }
    assert_eq!(
        rig.source.fetches(),
        1,
        "expiry is checked per call, not per fetch"
    );
}

// ---- fail safe -------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn anything_but_a_valid_enabled_configuration_leaves_the_handler_alone() {
    let answers: Vec<Result<Option<String>, SourceError>> = vec![
        Ok(None),
        Err(SourceError("AccessDeniedException: not authorized".into())),
        Ok(Some("not json".into())),
        Ok(Some("".into())),
        Ok(Some("[]".into())),
        Ok(Some(
            r#"{"statuscode": {"enabled": true, "status_code": 700}}"#.into(),
        )),
        Ok(Some(
            r#"{"statuscode": {"enabled": true, "percentage": 400}}"#.into(),
        )),
        Ok(Some(
            r#"{"statuscode": {"enabled": false}, "exception": {"enabled": false}}"#.into(),
        )),
        Ok(Some(
            r#"{"isEnabled": false, "failureMode": "exception"}"#.into(),
        )),
        Ok(Some(
            r#"{"is_enabled": false, "fault_type": "exception"}"#.into(),
        )),
        Ok(Some(
            r#"{"exception": {"enabled": true}, "expires_at": "2001-01-01T00:00:00Z"}"#.into(),
        )),
        Ok(Some(
            r#"{"exception": {"enabled": true}, "expires_at": "next week"}"#.into(),
        )),
        Ok(Some(r#"{"diskspace": {"enabled": true}}"#.into())),
        Ok(Some("{}".into())),
    ];
    for answer in answers {
        let source = Scripted::new(Value::Null);
        source.answer(answer.clone());
        let mut rig = Rig::with(source, |b| b);
        for _ in 0..3 {
            let start = Instant::now();
            let out = rig.call().await;
            assert_eq!(
                out.expect("the handler's answer"),
                json!({"statusCode": 200, "echo": {"text": "hi"}}),
                "{answer:?}"
            );
            assert_eq!(start.elapsed(), Duration::ZERO);
        }
        assert_eq!(rig.handled(), 3);
        assert_eq!(
            rig.source.fetches(),
            1,
            "{answer:?}: cached like a good one"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn legacy_formats_inject_once_upgraded() {
    let mut zero = Rig::new(
        json!({"isEnabled": true, "failureMode": "statuscode", "rate": 1, "statusCode": 404,
                                   "minLatency": 100, "maxLatency": 400, "exceptionMsg": "x", "diskSpace": 100,
                                   "denylist": ["s3.*"]}),
    );
    assert_eq!(injected_status(&zero.call().await), Some(404));
    let mut chaos =
        Rig::new(json!({"is_enabled": true, "fault_type": "latency", "delay": 250, "rate": 1}));
    let start = Instant::now();
    assert!(is_handler(&chaos.call().await));
    assert_eq!(start.elapsed(), Duration::from_millis(250));
    let mut chaos = Rig::new(
        json!({"is_enabled": true, "fault_type": "exception", "exception_msg": "I FAILED"}),
    );
    assert!(matches!(chaos.call().await, Err(FaultError::Injected(f)) if f.message == "I FAILED"));
}

#[tokio::test(start_paused = true)]
async fn a_source_that_hangs_is_given_up_on() {
    let mut source = Scripted::new(json!({"exception": {"enabled": true}}));
    source.delay = Duration::from_secs(600);
    let mut rig = Rig::with(source, |b| b.fetch_timeout(Duration::from_secs(2)));
    let start = Instant::now();
    assert!(is_handler(&rig.call().await));
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    // Not retried on every call: the failure is cached for the TTL.
    let start = Instant::now();
    assert!(is_handler(&rig.call().await));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(rig.source.fetches(), 1);
}

/// Random bytes and mangled configurations from the source: the handler
/// always answers, nothing panics.
#[tokio::test(start_paused = true)]
async fn garbage_from_the_source_never_panics() {
    let dice = SeededDice::new(7);
    let roll = |n: usize| (dice.roll() * n as f64) as usize;
    let mut rig = Rig::with(Scripted::new(Value::Null), |b| b.ttl(Duration::ZERO));
    let valid = json!({"latency": {"enabled": true, "percentage": 0, "match": [{"path": "a", "value": "b"}]}}).to_string();
    for i in 0..2_000 {
        let text = if i % 2 == 0 {
            let bytes: Vec<u8> = (0..roll(48)).map(|_| roll(256) as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            let mut s = valid.clone();
            let at = roll(s.len());
            s.replace_range(at..at + 1, ["{", "\"", "9", "-", "]", "null"][roll(6)]);
            s
        };
        rig.source.answer(Ok(Some(text)));
        assert!(is_handler(&rig.call().await));
    }
    assert_eq!(rig.source.fetches(), 2_000);
}

// ---- the cache ----------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn the_source_is_read_once_per_ttl() {
    let mut rig = Rig::with(
        Scripted::new(json!({"statuscode": {"enabled": true, "percentage": 0}})),
        |b| b.ttl(Duration::from_secs(5)),
    );
    for _ in 0..1_000 {
        rig.call().await.expect("ok");
        tokio::time::advance(Duration::from_millis(4)).await; // 4 s in all
    }
    assert_eq!(rig.source.fetches(), 1);
    tokio::time::advance(Duration::from_millis(1_000)).await;
    // A change shows after the TTL, not before.
    rig.source.answer(Ok(Some(
        json!({"statuscode": {"enabled": true, "status_code": 418}}).to_string(),
    )));
    assert_eq!(injected_status(&rig.call().await), Some(418));
    assert_eq!(rig.source.fetches(), 2);
    // And cleanup (deleting the parameter) stops it within one TTL.
    rig.source.answer(Ok(None));
    assert_eq!(injected_status(&rig.call().await), Some(418));
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(is_handler(&rig.call().await));
    assert_eq!(rig.source.fetches(), 3);
}

#[tokio::test(start_paused = true)]
async fn concurrent_invocations_fetch_once() {
    let mut source = Scripted::new(json!({"statuscode": {"enabled": true, "status_code": 503}}));
    source.delay = Duration::from_millis(100);
    let rig = Rig::with(source, |b| b.ttl(Duration::from_secs(5)));

    // Cold: everyone waits for the one fetch and sees its configuration.
    let run = |rig: &Rig| {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let mut service = rig.service.clone();
            tasks.spawn(async move {
                let start = Instant::now();
                let event = LambdaEvent::new(json!({}), Context::default());
                let out = service.ready().await.expect("ready").call(event).await;
                (injected_status(&out), start.elapsed())
            });
        }
        tasks
    };
    let results = run(&rig).join_all().await;
    assert_eq!(rig.source.fetches(), 1);
    assert!(
        results.iter().all(|(status, _)| *status == Some(503)),
        "{results:?}"
    );

    // Stale: one invocation refreshes, the others go on with the cached value.
    tokio::time::advance(Duration::from_secs(6)).await;
    rig.source.answer(Ok(None));
    let results = run(&rig).join_all().await;
    assert_eq!(rig.source.fetches(), 2);
    let refreshed: Vec<_> = results.iter().filter(|(_, took)| !took.is_zero()).collect();
    assert_eq!(refreshed.len(), 1, "{results:?}");
    assert_eq!(*refreshed[0], (None, Duration::from_millis(100)));
    assert_eq!(results.iter().filter(|(s, _)| *s == Some(503)).count(), 49);
}

// ---- logging ------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn count(&self, needle: &str) -> usize {
        String::from_utf8_lossy(&self.0.lock().expect("lock"))
            .matches(needle)
            .count()
    }
}

#[tokio::test(start_paused = true)]
async fn each_reason_is_logged_once_not_per_call() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut rig = Rig::with(Scripted::new(Value::Null), |b| {
        b.ttl(Duration::from_secs(1))
    });
    rig.source.answer(Err(SourceError(
        "AccessDeniedException: not authorized".into(),
    )));
    for _ in 0..20 {
        rig.call().await.expect("ok");
        tokio::time::advance(Duration::from_millis(500)).await;
    }
    assert_eq!(rig.source.fetches(), 10);
    assert_eq!(logs.count("AccessDeniedException"), 1);

    rig.source.answer(Ok(Some(
        r#"{"latency": {"enabled": true, "percentage": 0}}"#.into(),
    )));
    for _ in 0..20 {
        rig.call().await.expect("ok");
        tokio::time::advance(Duration::from_millis(500)).await;
    }
    assert_eq!(logs.count("fault injection active"), 1);
    rig.source.answer(Ok(None));
    for _ in 0..20 {
        rig.call().await.expect("ok");
        tokio::time::advance(Duration::from_millis(500)).await;
    }
    assert_eq!(logs.count("not found"), 1);
}
