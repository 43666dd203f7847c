//! What the Runtime API proxy costs, measured side by side in one run. A
//! report, not a test: `scripts/bench-extension` runs it in the release
//! profile (what the layer ships) and adds the layer zip sizes.
//!
//! - Latency added per invocation: a runtime loop (`GET /next`, `POST
//!   /response`, keep-alive, as awslambdaric does) against a local Runtime
//!   API that answers at once, directly and through the proxy with no
//!   configuration and with a configuration cached whose every mode is at
//!   0 %. Interleaved rounds, percentiles over all samples.
//! - Time from a configuration written to the first injected invocation,
//!   and from its clear to the last one, with the source switched under a
//!   running proxy (TTL `EXT_BENCH_TTL_MS`, default 1000, real clock).
//! - Reads of the source per execution environment per TTL, during that.
//! - Init time added: the layer's wrapper starting the proxy binary before
//!   it execs a command, against the command alone.
//!
//! `EXT_BENCH_ITERS` (default 2,000 per round) and `EXT_BENCH_ROUNDS`
//! (default 5) tune the run.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use inject::{ConfigSource, Injector, SourceError, StaticSource};
use serde_json::json;
use tokio::net::TcpListener;
use turbulence_extension::{start, Settings};

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
/// What the bench's handler answers; anything else upstream was injected.
const HANDLER_ANSWER: &str = r#"{"statusCode":200,"body":"ok"}"#;

/// A Runtime API that hands out an event on every `/next` at once and
/// counts the responses that are not the handler's (the proxy's faults).
struct Upstream {
    addr: SocketAddr,
    injected: Arc<AtomicU64>,
    last_injected: Arc<Mutex<Option<Instant>>>,
}

impl Upstream {
    async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let injected = Arc::new(AtomicU64::new(0));
        let last_injected: Arc<Mutex<Option<Instant>>> = Arc::default();
        let ids = Arc::new(AtomicU64::new(0));
        let (count, last) = (Arc::clone(&injected), Arc::clone(&last_injected));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (count, last, ids) = (Arc::clone(&count), Arc::clone(&last), Arc::clone(&ids));
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let (count, last, ids) =
                            (Arc::clone(&count), Arc::clone(&last), Arc::clone(&ids));
                        async move {
                            if request.uri().path() == NEXT {
                                let id = ids.fetch_add(1, Ordering::Relaxed);
                                let deadline = SystemTime::now()
                                    .duration_since(UNIX_EPOCH)
                                    .expect("clock")
                                    .as_millis()
                                    + 30_000;
                                return Ok::<_, Infallible>(
                                    Response::builder()
                                        .header("Content-Type", "application/json")
                                        .header("Lambda-Runtime-Aws-Request-Id", format!("id-{id}"))
                                        .header("Lambda-Runtime-Deadline-Ms", deadline.to_string())
                                        .header(
                                            "Lambda-Runtime-Invoked-Function-Arn",
                                            "arn:aws:lambda:us-east-1:123456789012:function:bench",
                                        )
                                        .header(
                                            "Lambda-Runtime-Trace-Id",
                                            "Root=1-00000000-000000000000000000000000",
                                        )
                                        .body(Full::new(Bytes::from_static(
                                            br#"{"body":"{\"text\":\"hi\"}"}"#,
                                        )))
                                        .expect("response"),
                                );
                            }
                            let body = request
                                .into_body()
                                .collect()
                                .await
                                .expect("body")
                                .to_bytes();
                            if body != HANDLER_ANSWER.as_bytes() {
                                count.fetch_add(1, Ordering::Relaxed);
                                *last.lock().expect("lock") = Some(Instant::now());
                            }
                            Ok(Response::builder()
                                .status(202)
                                .body(Full::new(Bytes::from_static(br#"{"status":"OK"}"#)))
                                .expect("response"))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream {
            addr,
            injected,
            last_injected,
        }
    }
}

type Runtime = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// One invocation as a runtime makes it: `/next`, then its response.
async fn invocation(runtime: &Runtime, api: SocketAddr) {
    let next = runtime
        .get(format!("http://{api}{NEXT}").parse().expect("uri"))
        .await
        .expect("next");
    let id = next.headers()["lambda-runtime-aws-request-id"]
        .to_str()
        .expect("id")
        .to_string();
    next.into_body().collect().await.expect("event");
    let response = runtime
        .request(
            Request::post(format!(
                "http://{api}/2018-06-01/runtime/invocation/{id}/response"
            ))
            .header("Content-Type", "application/json")
            .body(Full::new(Bytes::from_static(HANDLER_ANSWER.as_bytes())))
            .expect("request"),
        )
        .await
        .expect("response");
    response.into_body().collect().await.expect("answer");
}

async fn proxy(upstream: SocketAddr, injector: Option<Injector>) -> SocketAddr {
    let settings = Settings::from_vars(|name| {
        (name == "AWS_LAMBDA_RUNTIME_API").then(|| upstream.to_string())
    });
    let (listener, addr, proxy) = start(&settings, injector).await.expect("proxy");
    tokio::spawn(proxy.serve(listener));
    addr
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A source the bench switches, counting its reads.
#[derive(Clone, Default)]
struct Switch {
    value: Arc<Mutex<Option<String>>>,
    reads: Arc<Mutex<Vec<Instant>>>,
}

impl ConfigSource for Switch {
    async fn fetch(&self) -> Result<Option<String>, SourceError> {
        self.reads.lock().expect("lock").push(Instant::now());
        Ok(self.value.lock().expect("lock").clone())
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        latency().await;
        switching().await;
    });
    init_time();
}

async fn latency() {
    let iters = env_u64("EXT_BENCH_ITERS", 2_000);
    let rounds = env_u64("EXT_BENCH_ROUNDS", 5);
    let upstream = Upstream::start().await;
    let empty = proxy(
        upstream.addr,
        Some(Injector::builder(StaticSource::missing()).build()),
    )
    .await;
    let zero = json!({
        "latency": {"enabled": true, "percentage": 0, "min_latency": 100, "max_latency": 200},
        "statuscode": {"enabled": true, "percentage": 0, "status_code": 500},
        "exception": {"enabled": true, "percentage": 0, "exception_msg": "bench"},
    });
    let cached = proxy(
        upstream.addr,
        Some(Injector::builder(StaticSource::new(zero.to_string())).build()),
    )
    .await;
    let variants = [
        ("direct (the Runtime API)", upstream.addr),
        ("proxy, no configuration", empty),
        ("proxy, every mode at 0 % (cached)", cached),
    ];
    let client: Runtime = Client::builder(TokioExecutor::new()).build_http();
    // Warm the connections and the caches.
    for (_, api) in &variants {
        for _ in 0..200 {
            invocation(&client, *api).await;
        }
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        for (i, (_, api)) in variants.iter().enumerate() {
            for _ in 0..iters {
                let t = Instant::now();
                invocation(&client, *api).await;
                samples[i].push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
    }
    for s in &mut samples {
        s.sort_by(f64::total_cmp);
    }
    let (d50, d99) = (percentile(&samples[0], 0.5), percentile(&samples[0], 0.99));
    println!(
        "\nLatency per invocation (GET /next + POST /response), {} samples each, in µs:",
        samples[0].len()
    );
    println!(
        "{:<36} {:>8} {:>8} {:>12} {:>12} {:>8}",
        "", "p50", "p99", "added p50", "added p99", "ratio"
    );
    for (i, (name, _)) in variants.iter().enumerate() {
        let (p50, p99) = (percentile(&samples[i], 0.5), percentile(&samples[i], 0.99));
        println!(
            "{name:<36} {p50:>8.1} {p99:>8.1} {:>12.1} {:>12.1} {:>7.2}x",
            p50 - d50,
            p99 - d99,
            p50 / d50
        );
    }
    println!("goal: added ≤ 100 µs p50, ≤ 500 µs p99");
}

async fn switching() {
    let ttl = Duration::from_millis(env_u64("EXT_BENCH_TTL_MS", 1_000));
    let upstream = Upstream::start().await;
    let switch = Switch::default();
    let injector = Injector::builder(switch.clone()).ttl(ttl).build();
    let api = proxy(upstream.addr, Some(injector)).await;
    let started = Instant::now();
    let client: Runtime = Client::builder(TokioExecutor::new()).build_http();
    // A runtime polling all along (it never sees the injected invocations:
    // the proxy answers them upstream and polls again).
    let polling = {
        let client = client.clone();
        tokio::spawn(async move {
            loop {
                invocation(&client, api).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    tokio::time::sleep(ttl * 2).await;
    let config = json!({"statuscode": {"enabled": true, "percentage": 100, "status_code": 503}});
    *switch.value.lock().expect("lock") = Some(config.to_string());
    let written = Instant::now();
    let bound = written + ttl * 3;
    while upstream.injected.load(Ordering::Relaxed) == 0 && Instant::now() < bound {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let first = (upstream.injected.load(Ordering::Relaxed) > 0).then(|| written.elapsed());
    // Injected invocations loop inside the proxy; let them run a while.
    tokio::time::sleep(ttl).await;
    *switch.value.lock().expect("lock") = None;
    let cleared = Instant::now();
    tokio::time::sleep(ttl * 2).await;
    let last = upstream
        .last_injected
        .lock()
        .expect("lock")
        .map(|t| t.saturating_duration_since(cleared));
    // Every read since the proxy started, over the whole time it polled.
    let reads = switch.reads.lock().expect("lock").clone();
    let elapsed = started.elapsed();
    // After the cold read and the jittered first refresh, reads are a TTL
    // apart at least: the smallest gap is what "≤ 1 per TTL" means.
    let steady_gap = reads.windows(2).skip(1).map(|w| w[1] - w[0]).min();
    polling.abort();
    println!(
        "\nSwitching faults (TTL {} ms, real clock):",
        ttl.as_millis()
    );
    match first {
        Some(first) => println!(
            "written -> first injected invocation: {:>7.0} ms ({:.2} TTL; goal ≤ 1 TTL)",
            first.as_secs_f64() * 1e3,
            first.as_secs_f64() / ttl.as_secs_f64()
        ),
        None => println!("written -> first injected invocation: none within 3 TTL"),
    }
    match last {
        Some(last) => println!(
            "cleared -> last injected invocation:  {:>7.0} ms ({:.2} TTL; goal ≤ 1 TTL)",
            last.as_secs_f64() * 1e3,
            last.as_secs_f64() / ttl.as_secs_f64()
        ),
        None => println!("cleared -> last injected invocation: none injected"),
    }
    println!(
        "source reads: {} in {:.1} s = {:.2} per TTL, the cold read included",
        reads.len(),
        elapsed.as_secs_f64(),
        reads.len() as f64 / (elapsed.as_secs_f64() / ttl.as_secs_f64())
    );
    if let Some(gap) = steady_gap {
        println!(
            "smallest gap between reads after the first refresh: {:.0} ms ({:.2} TTL; goal ≥ 1 TTL, i.e. ≤ 1 read per TTL)",
            gap.as_secs_f64() * 1e3,
            gap.as_secs_f64() / ttl.as_secs_f64()
        );
    }
    println!(
        "injected invocations while on: {}",
        upstream.injected.load(Ordering::Relaxed)
    );
}

/// The wrapper as Lambda runs it, with the proxy binary beside it, against
/// the command alone: the init time the layer adds.
fn init_time() {
    let rounds = env_u64("EXT_BENCH_INIT_ROUNDS", 30);
    let dir = std::env::temp_dir().join(format!("turbulence-ext-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let wrapper = dir.join("wrapper");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/layer/wrapper"),
        &wrapper,
    )
    .expect("copy the wrapper");
    std::fs::copy(
        env!("CARGO_BIN_EXE_turbulence-extension"),
        dir.join("turbulence-extension"),
    )
    .expect("copy the proxy");
    // A port nobody serves: the proxy only has to start, not forward.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let api = upstream.local_addr().expect("addr").to_string();
    // The runtime stand-in prints its children (the proxy, after the
    // wrapper's exec) so the bench stops the proxy it started; with shell
    // builtins only, so it forks nothing of its own.
    let command = [
        "/bin/sh",
        "-c",
        "read -r c < /proc/$$/task/$$/children; echo \"$c\"",
    ];
    let run = |through_wrapper: bool, configured: bool| -> f64 {
        let mut cmd = if through_wrapper {
            let mut c = std::process::Command::new(&wrapper);
            c.args(command);
            c
        } else {
            let mut c = std::process::Command::new(command[0]);
            c.args(&command[1..]);
            c
        };
        // SSM on the same unserved loopback port: the proxy's first read
        // fails at once and goes nowhere else.
        cmd.env("AWS_LAMBDA_RUNTIME_API", &api)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", format!("http://{api}"))
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("AWS_LAMBDA_LOG_LEVEL", "ERROR")
            .stderr(std::process::Stdio::null());
        if configured {
            cmd.env("FAILURE_INJECTION_PARAM", "/turbulence/faults/bench");
        }
        let t = Instant::now();
        let out = cmd.output().expect("run");
        let ms = t.elapsed().as_secs_f64() * 1e3;
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = std::process::Command::new("kill").arg(pid).status();
        }
        ms
    };
    let (mut direct, mut bash, mut wrapped) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        direct.push(run(false, false));
        bash.push(run(true, false));
        wrapped.push(run(true, true));
    }
    for v in [&mut direct, &mut bash, &mut wrapped] {
        v.sort_by(f64::total_cmp);
    }
    let (d, b, w) = (
        percentile(&direct, 0.5),
        percentile(&bash, 0.5),
        percentile(&wrapped, 0.5),
    );
    println!("\nInit time (wrapper starts the proxy, waits for its pipe, execs), {rounds} starts, median:");
    println!(
        "command alone {d:>6.2} ms | wrapper, no parameter (bash only) {b:>6.2} ms | through the wrapper and proxy {w:>6.2} ms"
    );
    println!(
        "added: {:>6.2} ms (goal ≤ 10 ms), of which bash {:>6.2} ms and the proxy {:>6.2} ms (a glibc build here; the layer ships static musl)",
        w - d,
        b - d,
        w - b
    );
    let _ = std::fs::remove_dir_all(&dir);
}
