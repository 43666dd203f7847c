//! What the layer costs a warm invocation, and how often it reads the
//! configuration source. A report, not a test: `scripts/bench-inject` runs
//! it in the release profile and prints the table.
//!
//! - Overhead: the same trivial handler bare and wrapped, driven in a loop
//!   as the runtime drives it (`ready`, `call`, await), interleaved rounds,
//!   best round kept. Wrapped: no parameter (pass-through); configuration
//!   cached with every mode disabled; every mode enabled at 0%. Cached
//!   variants use the default 5 s TTL on the real clock, so refreshes during
//!   the run are included.
//! - Source reads: 10,000 invocations over 100 s on tokio's paused clock,
//!   one at a time and in bursts of 10 concurrent with a 30 ms fetch (an
//!   SSM round trip), counting fetches.
//!
//! `INJECT_BENCH_ITERS` (default 1,000,000) and `INJECT_BENCH_ROUNDS`
//! (default 7) tune the run.

use inject::{ConfigSource, FaultLayer, SourceError, StaticSource, DEFAULT_TTL};
use lambda_runtime::tower::{service_fn, Layer, Service, ServiceExt};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn handler(event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    let ok = event.payload.get("text").is_some();
    Ok(json!({"statusCode": if ok { 200 } else { 400 }}))
}

/// Nanoseconds per invocation over `iters` invocations.
async fn time<S>(service: &mut S, event: &LambdaEvent<Value>, iters: u64) -> f64
where
    S: Service<LambdaEvent<Value>, Response = Value>,
    S::Error: std::fmt::Debug,
{
    let start = std::time::Instant::now();
    for _ in 0..iters {
        let ready = service.ready().await.expect("ready");
        black_box(ready.call(black_box(event.clone())).await.expect("ok"));
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let iters = env_u64("INJECT_BENCH_ITERS", 1_000_000);
    let rounds = env_u64("INJECT_BENCH_ROUNDS", 7);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    runtime.block_on(overhead(iters, rounds));

    let paused = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    paused.block_on(source_reads());
}

async fn overhead(iters: u64, rounds: u64) {
    let event = LambdaEvent::new(json!({"text": "hi"}), Context::default());
    let disabled = r#"{"latency": {"enabled": false}, "statuscode": {"enabled": false},
                       "exception": {"enabled": false}}"#;
    let zero = r#"{"latency": {"enabled": true, "percentage": 0, "min_latency": 100, "max_latency": 400},
                   "timeout": {"enabled": true, "percentage": 0},
                   "statuscode": {"enabled": true, "percentage": 0, "status_code": 503},
                   "exception": {"enabled": true, "percentage": 0,
                                 "match": [{"path": "text", "operator": "exists"}]}}"#;

    let mut bare = service_fn(handler);
    let mut off = FaultLayer::disabled().layer(service_fn(handler));
    let mut cached_off = FaultLayer::new(StaticSource::new(disabled)).layer(service_fn(handler));
    let mut cached_zero = FaultLayer::new(StaticSource::new(zero)).layer(service_fn(handler));
    // Warm: the first call of a cached variant fetches.
    time(&mut cached_off, &event, 1).await;
    time(&mut cached_zero, &event, 1).await;
    time(&mut bare, &event, iters / 10).await;

    let mut best = [f64::MAX; 4];
    for _ in 0..rounds {
        let round = [
            time(&mut bare, &event, iters).await,
            time(&mut off, &event, iters).await,
            time(&mut cached_off, &event, iters).await,
            time(&mut cached_zero, &event, iters).await,
        ];
        for (b, r) in best.iter_mut().zip(round) {
            *b = b.min(r);
        }
    }

    println!(
        "Added latency per warm invocation ({iters} invocations x {rounds} rounds, best round)"
    );
    println!();
    println!(
        "| {:<48} | ns/invocation | added ns | ratio to bare |",
        "variant"
    );
    println!("|{:-<50}|--------------:|---------:|--------------:|", "");
    let names = [
        "bare handler (no layer)",
        "layer, no FAILURE_INJECTION_PARAM (pass-through)",
        "layer, configuration cached, all modes disabled",
        "layer, all modes enabled at 0%",
    ];
    for (name, ns) in names.iter().zip(best) {
        println!(
            "| {name:<48} | {ns:>13.1} | {:>8.1} | {:>13.3} |",
            ns - best[0],
            ns / best[0]
        );
    }
    let worst = best[1..]
        .iter()
        .map(|ns| ns - best[0])
        .fold(f64::MIN, f64::max);
    println!();
    println!(
        "Goal: under 2000 ns added. Worst: {worst:.1} ns -> {}",
        if worst < 2000.0 { "met" } else { "NOT met" }
    );
}

/// Counts fetches and when they started (tokio's clock).
#[derive(Clone, Default)]
struct Counting {
    starts: Arc<Mutex<Vec<tokio::time::Instant>>>,
    latency: Duration,
}

impl ConfigSource for Counting {
    async fn fetch(&self) -> Result<Option<String>, SourceError> {
        self.starts
            .lock()
            .expect("lock")
            .push(tokio::time::Instant::now());
        tokio::time::sleep(self.latency).await;
        Ok(Some(
            r#"{"statuscode": {"enabled": true, "percentage": 0}}"#.into(),
        ))
    }
}

async fn source_reads() {
    const INVOCATIONS: usize = 10_000;
    const SPAN: Duration = Duration::from_secs(100);
    println!();
    println!(
        "Source reads per {INVOCATIONS} invocations over {}s (paused clock), TTL {}s",
        SPAN.as_secs(),
        DEFAULT_TTL.as_secs()
    );
    println!();
    println!(
        "| {:<48} | fetches | bound (1 per TTL) | shortest gap |",
        "run"
    );
    println!("|{:-<50}|--------:|------------------:|-------------:|", "");
    for (name, burst, latency) in [
        ("one at a time, instant source", 1, Duration::ZERO),
        (
            "bursts of 10 concurrent, 30 ms fetch",
            10,
            Duration::from_millis(30),
        ),
    ] {
        let source = Counting {
            latency,
            ..Counting::default()
        };
        let layer = FaultLayer::new(source.clone());
        let service = layer.layer(service_fn(handler));
        let step = SPAN / (INVOCATIONS / burst) as u32;
        for _ in 0..INVOCATIONS / burst {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..burst {
                let service = service.clone();
                let event = LambdaEvent::new(json!({"text": "hi"}), Context::default());
                tasks.spawn(async move { service.oneshot(event).await.is_ok() });
            }
            tasks.join_all().await;
            tokio::time::advance(step).await;
        }
        let starts = source.starts.lock().expect("lock").clone();
        let gap = starts
            .windows(2)
            .map(|w| w[1] - w[0])
            .min()
            .unwrap_or_default();
        let bound = SPAN.as_secs().div_ceil(DEFAULT_TTL.as_secs());
        println!(
            "| {name:<48} | {:>7} | {bound:>17} | {:>11.3}s |",
            starts.len(),
            gap.as_secs_f64()
        );
    }
}
