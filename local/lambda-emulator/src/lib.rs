//! A Lambda Runtime API emulator for the local stack, so real non-Rust
//! handlers run there: `cargo lambda watch` only hosts Rust binaries (it
//! advertises `AWS_LAMBDA_RUNTIME_API` with a scheme and path, sends no
//! `Content-Type` on `/next`, a constant deadline, and keeps queued events
//! across restarts).
//!
//! As Lambda does, per function:
//! - one execution environment, more when invocations overlap (up to
//!   `max_environments`), each a runtime process with a Runtime API of its
//!   own, started behind `AWS_LAMBDA_EXEC_WRAPPER` on managed runtimes with
//!   the layers where `/opt` would be;
//! - `/next` answers with the event and Lambda's headers: request id, a
//!   wall-clock `Deadline-Ms`, the function ARN, a trace id, `Content-Type`;
//! - the function's timeout is enforced: past it the environment is killed
//!   and the invocation fails with `Sandbox.Timedout`;
//! - an environment whose process exits is gone: what it was running fails
//!   with `Runtime.ExitError`, and the next invocation starts a fresh one;
//! - a changed function configuration gets fresh environments.
//!
//! [`front`] serves Lambda's Invoke API over HTTP for the local stack's
//! moto; [`Emulator::invoke`] is the same in-process (benchmarks).

pub mod config;
mod env;
pub mod front;

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use serde_json::json;
use tokio::sync::{oneshot, Notify};

pub use config::{FunctionConfig, Runtimes};
use env::{Env, Invocation};

/// moto's default account, which the local stack's ARNs carry.
pub const ACCOUNT: &str = "123456789012";
/// Lambda's limit on an environment's init phase.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How many invocations the emulator remembers for `/_emulator/invocations`.
const RECORDS: usize = 500;

/// How the emulator runs functions.
#[derive(Debug, Clone)]
pub struct Settings {
    pub runtimes: Runtimes,
    /// Each function's output goes to `<log_dir>/<function>.log`.
    pub log_dir: Option<PathBuf>,
    /// Environments per function at most; more invocations wait.
    pub max_environments: usize,
    /// Given to every function, before its own variables (the local
    /// stack's endpoint and test credentials).
    pub environment: Vec<(String, String)>,
    pub region: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            runtimes: Runtimes::default(),
            log_dir: None,
            max_environments: 10,
            environment: Vec::new(),
            region: "us-east-1".into(),
        }
    }
}

/// How an invocation ended, as the runtime (or the emulator) said.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `POST /response`.
    Response { body: Bytes },
    /// `POST /error` (or `/init/error`, or a streamed response's error trailers).
    Error {
        body: Bytes,
        error_type: Option<String>,
        xray_cause: Option<String>,
    },
    /// The emulator's own verdict: a timeout, an exit, no such runtime.
    Failed { error_type: String, message: String },
}

/// An invocation's result, as Lambda's Invoke returns it.
#[derive(Debug, Clone)]
pub struct Invoked {
    pub request_id: String,
    pub payload: Bytes,
    /// `X-Amz-Function-Error`: `Unhandled` when the function failed.
    pub function_error: Option<String>,
}

/// One invocation, remembered for tests: what reached the Runtime API.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub function: String,
    pub request_id: String,
    pub environment: Option<u64>,
    /// The event's first KiB.
    pub event: String,
    /// `response`, `error` or `failed`.
    pub outcome: &'static str,
    pub error_type: Option<String>,
    /// `Lambda-Runtime-Function-XRay-Error-Cause` as the runtime posted it.
    pub xray_cause: Option<String>,
    pub payload_bytes: usize,
    pub duration_ms: f64,
}

/// A live environment, for `/_emulator/environments`.
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentInfo {
    pub function: String,
    pub id: u64,
    pub pid: u32,
    pub busy: bool,
    pub init_ms: Option<f64>,
    /// Every process of the environment: the runtime, the wrapper's proxy.
    pub processes: Vec<(u32, String)>,
}

struct Function {
    config: FunctionConfig,
    envs: tokio::sync::Mutex<Vec<Arc<Env>>>,
    freed: Notify,
}

/// The emulator: its functions and their environments.
pub struct Emulator {
    settings: Settings,
    functions: Mutex<HashMap<String, Arc<Function>>>,
    records: Mutex<VecDeque<Record>>,
    next_env: AtomicU64,
    ids: Ids,
}

impl Emulator {
    pub fn new(settings: Settings) -> Arc<Emulator> {
        Arc::new(Emulator {
            settings,
            functions: Mutex::new(HashMap::new()),
            records: Mutex::new(VecDeque::new()),
            next_env: AtomicU64::new(1),
            ids: Ids::new(),
        })
    }

    /// Invoke a function synchronously (`RequestResponse`).
    pub async fn invoke(
        &self,
        config: FunctionConfig,
        payload: Bytes,
        client_context: Option<String>,
    ) -> Invoked {
        let started = Instant::now();
        let timeout = Duration::from_secs(config.timeout_s.max(1));
        // Lambda's init phase may take up to 10 s before the timeout starts.
        let init_deadline = started + INIT_TIMEOUT;
        let request_id = self.ids.request_id();
        let function = self.function(&config);
        let event = String::from_utf8_lossy(&payload[..payload.len().min(1024)]).into_owned();

        let (outcome, env_id) = match self.acquire(&function, init_deadline + timeout).await {
            Err(outcome) => (outcome, None),
            Ok(env) => {
                let (done, mut result) = oneshot::channel();
                let (delivered, taken) = oneshot::channel();
                env.start(
                    Invocation {
                        request_id: request_id.clone(),
                        payload,
                        timeout,
                        delivered,
                        arn: config.arn(&self.settings.region, ACCOUNT),
                        trace_id: self.ids.trace_id(),
                        client_context,
                    },
                    done,
                );
                let exited = || Outcome::Failed {
                    error_type: "Runtime.ExitError".into(),
                    message: format!("RequestId: {request_id} Error: Runtime exited"),
                };
                let taken = tokio::select! {
                    deadline = taken => deadline.map_err(|_| None),
                    // It failed before taking the event (init error, exit).
                    outcome = &mut result => Err(Some(outcome.unwrap_or_else(|_| exited()))),
                    _ = tokio::time::sleep_until(init_deadline.into()) => Err(None),
                };
                let outcome = match taken {
                    Err(Some(outcome)) => outcome,
                    Err(None) => {
                        env.abandon(&request_id);
                        env.kill();
                        Outcome::Failed {
                            error_type: "Runtime.InitError".into(),
                            message: format!(
                                "RequestId: {request_id} the runtime did not take the event within {INIT_TIMEOUT:?}"
                            ),
                        }
                    }
                    Ok(deadline) => tokio::select! {
                        outcome = &mut result => outcome.unwrap_or_else(|_| exited()),
                        _ = tokio::time::sleep_until(deadline.into()) => {
                            // Lambda stops an environment that runs past the timeout.
                            env.abandon(&request_id);
                            env.kill();
                            Outcome::Failed {
                                error_type: "Sandbox.Timedout".into(),
                                message: format!(
                                    "{request_id} Task timed out after {}.00 seconds",
                                    timeout.as_secs()
                                ),
                            }
                        }
                    },
                };
                let id = env.id;
                self.release(&function, &env);
                (outcome, Some(id))
            }
        };
        let invoked = match &outcome {
            Outcome::Response { body } => Invoked {
                request_id: request_id.clone(),
                payload: body.clone(),
                function_error: None,
            },
            Outcome::Error { body, .. } => Invoked {
                request_id: request_id.clone(),
                payload: body.clone(),
                function_error: Some("Unhandled".into()),
            },
            Outcome::Failed {
                error_type,
                message,
            } => Invoked {
                request_id: request_id.clone(),
                payload: Bytes::from(
                    json!({"errorType": error_type, "errorMessage": message}).to_string(),
                ),
                function_error: Some("Unhandled".into()),
            },
        };
        let (kind, error_type, xray_cause) = match outcome {
            Outcome::Response { .. } => ("response", None, None),
            Outcome::Error {
                error_type,
                xray_cause,
                ..
            } => ("error", error_type, xray_cause),
            Outcome::Failed { error_type, .. } => ("failed", Some(error_type), None),
        };
        self.remember(Record {
            function: config.name.clone(),
            request_id,
            environment: env_id,
            event,
            outcome: kind,
            error_type,
            xray_cause,
            payload_bytes: invoked.payload.len(),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        });
        invoked
    }

    /// The function's state; a changed configuration gets a new one and the
    /// old environments stop (once idle).
    fn function(&self, config: &FunctionConfig) -> Arc<Function> {
        let mut functions = self
            .functions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = functions.get(&config.name) {
            if existing.config == *config {
                return Arc::clone(existing);
            }
            let old = Arc::clone(existing);
            tokio::spawn(async move {
                for env in old.envs.lock().await.iter() {
                    env.retired.store(true, Ordering::SeqCst);
                    if !env.busy.load(Ordering::SeqCst) {
                        env.kill();
                    }
                }
            });
        }
        let function = Arc::new(Function {
            config: config.clone(),
            envs: tokio::sync::Mutex::new(Vec::new()),
            freed: Notify::new(),
        });
        functions.insert(config.name.clone(), Arc::clone(&function));
        function
    }

    /// An idle environment, a new one, or (at the cap) the next one freed.
    async fn acquire(&self, function: &Function, deadline: Instant) -> Result<Arc<Env>, Outcome> {
        loop {
            let freed = function.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut envs = function.envs.lock().await;
                envs.retain(|e| e.is_alive() && !e.retired.load(Ordering::SeqCst));
                if let Some(env) = envs.iter().find(|e| {
                    e.busy
                        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                }) {
                    return Ok(Arc::clone(env));
                }
                if envs.len() < self.settings.max_environments.max(1) {
                    let id = self.next_env.fetch_add(1, Ordering::SeqCst);
                    let env = Env::spawn(id, &function.config, &self.settings).await?;
                    env.busy.store(true, Ordering::SeqCst);
                    envs.push(Arc::clone(&env));
                    return Ok(env);
                }
            }
            if tokio::time::timeout_at(deadline.into(), freed)
                .await
                .is_err()
            {
                return Err(Outcome::Failed {
                    error_type: "TooManyRequestsException".into(),
                    message: format!(
                        "all {} environments of {} stayed busy until the timeout",
                        self.settings.max_environments, function.config.name
                    ),
                });
            }
        }
    }

    fn release(&self, function: &Function, env: &Arc<Env>) {
        if env.retired.load(Ordering::SeqCst) {
            env.kill();
        }
        env.busy.store(false, Ordering::SeqCst);
        function.freed.notify_one();
    }

    fn remember(&self, record: Record) {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        if records.len() >= RECORDS {
            records.pop_front();
        }
        records.push_back(record);
    }

    /// The invocations remembered, oldest first (of one function, if named).
    pub fn records(&self, function: Option<&str>) -> Vec<Record> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|r| function.is_none_or(|f| r.function == f))
            .cloned()
            .collect()
    }

    /// The live environments (of one function, if named).
    pub async fn environments(&self, function: Option<&str>) -> Vec<EnvironmentInfo> {
        let functions: Vec<Arc<Function>> = self
            .functions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|f| function.is_none_or(|name| f.config.name == name))
            .cloned()
            .collect();
        let mut out = Vec::new();
        for f in functions {
            for env in f.envs.lock().await.iter().filter(|e| e.is_alive()) {
                out.push(EnvironmentInfo {
                    function: env.function.clone(),
                    id: env.id,
                    pid: env.pid,
                    busy: env.busy.load(Ordering::SeqCst),
                    init_ms: env.init.get().map(|d| d.as_secs_f64() * 1000.0),
                    processes: env.processes(),
                });
            }
        }
        out.sort_by_key(|e| e.id);
        out
    }

    /// Stop every environment (at shutdown).
    pub async fn shutdown(&self) {
        let functions: Vec<Arc<Function>> = self
            .functions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, f)| f)
            .collect();
        for f in functions {
            for env in f.envs.lock().await.iter() {
                env.kill();
            }
        }
    }
}

/// Request and trace ids: random, as Lambda's look.
struct Ids {
    seed: u64,
    counter: AtomicU64,
}

impl Ids {
    fn new() -> Ids {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        Ids {
            seed: hasher.finish(),
            counter: AtomicU64::new(0),
        }
    }

    fn random(&self) -> u64 {
        // SplitMix64 over a counter.
        let mut z = self.seed.wrapping_add(
            self.counter
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn request_id(&self) -> String {
        let (a, b) = (self.random(), self.random());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    fn trace_id(&self) -> String {
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let (a, b) = (self.random(), self.random());
        format!(
            "Root=1-{epoch:08x}-{:08x}{:016x};Parent={:016x};Sampled=0",
            a >> 32,
            b,
            self.random()
        )
    }
}
