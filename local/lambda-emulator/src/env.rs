//! One execution environment: a runtime process (in a process group of
//! its own, so the wrapper's proxy goes with it) and the Runtime API it
//! talks to, on a port of its own. The API answers as Lambda's does:
//! `/next` with the event and Lambda's headers (a wall-clock deadline,
//! `Content-Type`), `/response` and `/error` (streamed responses and their
//! trailers too), `/init/error`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::FunctionConfig;
use crate::{Outcome, Settings};

/// Lambda's limit on a synchronous response.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;
const RUNTIME_PREFIX: &str = "/2018-06-01/runtime/";

/// One event on its way to the runtime.
pub(crate) struct Invocation {
    pub request_id: String,
    pub payload: Bytes,
    /// The function's timeout: the deadline is set when the runtime takes
    /// the event, after any init, as Lambda does.
    pub timeout: Duration,
    /// Told the deadline when the runtime takes the event.
    pub delivered: oneshot::Sender<Instant>,
    pub arn: String,
    pub trace_id: String,
    pub client_context: Option<String>,
}

pub(crate) struct Env {
    pub id: u64,
    /// The runtime process's pid, also its process group.
    pub pid: u32,
    pub function: String,
    spawned: Instant,
    /// Time from the spawn to the first `/next`: the init phase.
    pub init: OnceLock<Duration>,
    queue: mpsc::UnboundedSender<Invocation>,
    pending: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    /// Invocations handed to the runtime and not answered yet.
    inflight: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    pub busy: AtomicBool,
    /// The function changed: stop once idle.
    pub retired: AtomicBool,
    /// Killed: no new invocation may go here, even before its exit is seen.
    killed: AtomicBool,
    /// `Some(status)` once the process exited.
    exited: watch::Sender<Option<String>>,
}

impl Env {
    /// Start the runtime process and its Runtime API.
    pub async fn spawn(
        id: u64,
        function: &FunctionConfig,
        settings: &Settings,
    ) -> Result<Arc<Env>, Outcome> {
        let init_error = |message: String| Outcome::Failed {
            error_type: "Runtime.InvalidEntrypoint".into(),
            message,
        };
        let argv = function
            .command_line(&settings.runtimes)
            .map_err(init_error)?;
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| init_error(format!("cannot listen for the Runtime API: {e}")))?;
        let api: SocketAddr = listener
            .local_addr()
            .map_err(|e| init_error(format!("cannot listen for the Runtime API: {e}")))?;

        let mut command = tokio::process::Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .current_dir(&function.code_dir)
            .env_clear()
            .envs(lambda_environment(function, settings, api))
            .process_group(0)
            .stdin(std::process::Stdio::null());
        match log_file(settings, &function.name) {
            Some((out, err)) => command.stdout(out).stderr(err),
            None => command
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()),
        };
        let mut child = command
            .spawn()
            .map_err(|e| init_error(format!("cannot start {}: {e}", argv[0])))?;
        let pid = child.id().unwrap_or(0);
        let (queue, pending) = mpsc::unbounded_channel();
        let env = Arc::new(Env {
            id,
            pid,
            function: function.name.clone(),
            spawned: Instant::now(),
            init: OnceLock::new(),
            queue,
            pending: tokio::sync::Mutex::new(pending),
            inflight: Mutex::new(HashMap::new()),
            busy: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            exited: watch::channel(None).0,
        });
        tracing::info!(function = %function.name, env = id, pid, api = %api, "environment started");
        tokio::spawn(serve(Arc::clone(&env), listener));
        let watcher = Arc::clone(&env);
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(status) => status.to_string(),
                Err(e) => format!("unknown ({e})"),
            };
            watcher.died(status);
        });
        Ok(env)
    }

    pub fn is_alive(&self) -> bool {
        self.exited.borrow().is_none() && !self.killed.load(Ordering::SeqCst)
    }

    /// Hand an invocation to the runtime; its outcome arrives on `done`.
    pub fn start(&self, invocation: Invocation, done: oneshot::Sender<Outcome>) {
        let request_id = invocation.request_id.clone();
        self.inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(request_id.clone(), done);
        if self.queue.send(invocation).is_err() || !self.is_alive() {
            self.finish(&request_id, self.exit_outcome(&request_id));
        }
    }

    /// Forget an invocation (it timed out on the caller's side).
    pub fn abandon(&self, request_id: &str) {
        self.inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(request_id);
    }

    fn finish(&self, request_id: &str, outcome: Outcome) -> bool {
        let sender = self
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(request_id);
        match sender {
            Some(sender) => {
                let _ = sender.send(outcome);
                true
            }
            None => false,
        }
    }

    fn exit_outcome(&self, request_id: &str) -> Outcome {
        let status = self
            .exited
            .borrow()
            .clone()
            .unwrap_or_else(|| "unknown".into());
        Outcome::Failed {
            error_type: "Runtime.ExitError".into(),
            message: format!("RequestId: {request_id} Error: Runtime exited with error: {status}"),
        }
    }

    /// The process exited: fail what it was doing, stop what it left.
    fn died(&self, status: String) {
        tracing::info!(function = %self.function, env = self.id, pid = self.pid, %status, "environment exited");
        self.exited.send_replace(Some(status));
        self.kill();
        let ids: Vec<String> = self
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        for id in ids {
            let outcome = self.exit_outcome(&id);
            self.finish(&id, outcome);
        }
    }

    /// Stop the runtime and everything it started (the wrapper's proxy).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        if self.pid == 0 {
            return;
        }
        // The group may be gone already: nothing to report.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.pid)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }

    pub async fn until_exited(&self) {
        let mut exited = self.exited.subscribe();
        let _ = exited.wait_for(Option::is_some).await;
    }

    fn initialized(&self) {
        let _ = self.init.set(self.spawned.elapsed());
    }

    /// The live processes of this environment (pid, name), read from /proc.
    pub fn processes(&self) -> Vec<(u32, String)> {
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return found;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // "pid (comm) state ppid pgrp ...": comm may hold spaces.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let name = stat[open + 1..close].to_string();
            let mut rest = stat[close + 1..].split_whitespace();
            let (state, _ppid, pgrp) = (rest.next(), rest.next(), rest.next());
            // A zombie (killed, not reaped by the runtime) is not running.
            if state != Some("Z") && pgrp.and_then(|g| g.parse::<u32>().ok()) == Some(self.pid) {
                found.push((pid, name));
            }
        }
        found.sort();
        found
    }
}

/// What Lambda puts in a runtime's environment, then the emulator's own
/// additions (endpoint, test credentials), then the function's variables.
fn lambda_environment(
    function: &FunctionConfig,
    settings: &Settings,
    api: SocketAddr,
) -> Vec<(String, String)> {
    let code = function.code_dir.to_string_lossy().into_owned();
    let mut vars: Vec<(String, String)> = vec![
        ("AWS_LAMBDA_RUNTIME_API".into(), api.to_string()),
        ("_HANDLER".into(), function.handler.clone()),
        ("LAMBDA_TASK_ROOT".into(), code),
        (
            "AWS_EXECUTION_ENV".into(),
            format!("AWS_Lambda_{}", function.runtime),
        ),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), function.name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
            function.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".into(),
            format!("/aws/lambda/{}", function.name),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME".into(), "local".into()),
        ("AWS_REGION".into(), settings.region.clone()),
        ("AWS_DEFAULT_REGION".into(), settings.region.clone()),
        ("TZ".into(), ":UTC".into()),
        ("LANG".into(), "en_US.UTF-8".into()),
        (
            "PATH".into(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        ),
    ];
    vars.extend(settings.environment.iter().cloned());
    vars.extend(
        function
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    vars
}

fn log_file(
    settings: &Settings,
    function: &str,
) -> Option<(std::process::Stdio, std::process::Stdio)> {
    let dir = settings.log_dir.as_ref()?;
    std::fs::create_dir_all(dir).ok()?;
    let safe: String = function
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{safe}.log")))
        .ok()?;
    let second = file.try_clone().ok()?;
    Some((file.into(), second.into()))
}

// ---- the environment's Runtime API ---------------------------------------

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

fn body(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

fn answer(status: StatusCode, json: serde_json::Value) -> Response<Body> {
    let mut response = Response::new(body(json.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

async fn serve(env: Arc<Env>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = env.until_exited() => return,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let env = Arc::clone(&env);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let env = Arc::clone(&env);
                async move { Ok::<_, Infallible>(route(&env, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(env: &Arc<Env>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_string();
    let Some(rest) = path.strip_prefix(RUNTIME_PREFIX) else {
        return answer(StatusCode::NOT_FOUND, json!({"errorMessage": "not found"}));
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match (request.method(), parts.as_slice()) {
        (&Method::GET, ["invocation", "next"]) => next(env).await,
        (&Method::POST, ["invocation", id, kind @ ("response" | "error")]) => {
            let id = id.to_string();
            let is_error = *kind == "error";
            complete(env, &id, is_error, request).await
        }
        (&Method::POST, ["init", "error"]) => {
            let (head, incoming) = request.into_parts();
            let bytes = incoming
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            tracing::warn!(function = %env.function, env = env.id, "init error: {}", String::from_utf8_lossy(&bytes));
            let outcome = Outcome::Error {
                body: bytes,
                error_type: header(&head.headers, "lambda-runtime-function-error-type"),
                xray_cause: None,
            };
            let ids: Vec<String> = env
                .inflight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .keys()
                .cloned()
                .collect();
            for id in ids {
                env.finish(&id, outcome.clone());
            }
            // Lambda resets an environment whose init failed.
            env.kill();
            answer(StatusCode::ACCEPTED, json!({"status": "OK"}))
        }
        _ => answer(
            StatusCode::NOT_FOUND,
            json!({"errorMessage": format!("no such Runtime API call: {} {path}", request.method())}),
        ),
    }
}

async fn next(env: &Arc<Env>) -> Response<Body> {
    env.initialized();
    let invocation = {
        let mut pending = env.pending.lock().await;
        tokio::select! {
            invocation = pending.recv() => invocation,
            _ = env.until_exited() => None,
        }
    };
    let Some(invocation) = invocation else {
        return answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"errorMessage": "the environment is shutting down"}),
        );
    };
    let deadline = Instant::now() + invocation.timeout;
    let deadline_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(invocation.timeout)
        .as_millis();
    let _ = invocation.delivered.send(deadline);
    let mut response = Response::new(body(invocation.payload));
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("content-type", "application/json");
    set("lambda-runtime-aws-request-id", &invocation.request_id);
    set("lambda-runtime-deadline-ms", &deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", &invocation.arn);
    set("lambda-runtime-trace-id", &invocation.trace_id);
    if let Some(context) = &invocation.client_context {
        set("lambda-runtime-client-context", context);
    }
    response
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn complete(
    env: &Arc<Env>,
    request_id: &str,
    is_error: bool,
    request: Request<Incoming>,
) -> Response<Body> {
    if !env
        .inflight
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains_key(request_id)
    {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}),
        );
    }
    let (head, incoming) = request.into_parts();
    let collected = match Limited::new(incoming, MAX_RESPONSE_BYTES).collect().await {
        Ok(collected) => collected,
        Err(_) => {
            env.finish(
                request_id,
                Outcome::Failed {
                    error_type: "Function.ResponseSizeTooLarge".into(),
                    message: format!(
                        "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
                    ),
                },
            );
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"errorMessage": "Payload too large", "errorType": "RequestEntityTooLarge"}),
            );
        }
    };
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let bytes = collected.to_bytes();
    let streamed_error = header(&trailers, "lambda-runtime-function-error-type");
    let outcome = match (is_error, streamed_error) {
        (true, _) => Outcome::Error {
            body: bytes,
            error_type: header(&head.headers, "lambda-runtime-function-error-type"),
            xray_cause: header(&head.headers, "lambda-runtime-function-xray-error-cause"),
        },
        // A streamed response that failed midway names its error in trailers.
        (false, Some(error_type)) => {
            let body = header(&trailers, "lambda-runtime-function-error-body")
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .map(Bytes::from)
                .unwrap_or_else(|| Bytes::from(json!({"errorType": error_type}).to_string()));
            Outcome::Error {
                body,
                error_type: Some(error_type),
                xray_cause: None,
            }
        }
        (false, None) => Outcome::Response { body: bytes },
    };
    env.finish(request_id, outcome);
    answer(StatusCode::ACCEPTED, json!({"status": "OK"}))
}
