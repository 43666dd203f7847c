//! The Runtime API proxy. Every call the runtime makes is forwarded to the
//! real Runtime API as it came (method, path, headers with their case,
//! body streamed, trailers), and every answer comes back the same way.
//! Only `GET /2018-06-01/runtime/invocation/next` is looked at: its event is
//! read whole, the injector decides, and then
//! - latency / timeout: the proxy sleeps (capped below the deadline), then
//!   hands the event over;
//! - status code / exception: the proxy posts the invocation's response or
//!   `InjectedFault` error upstream itself and polls for the next event, so
//!   the handler never sees this one;
//! - anything that goes wrong on the way (no plan, no request id, the post
//!   refused): the event goes to the handler unchanged.
//!
//! Each connection is served on its own task, so a runtime with several
//! workers has several `/next` polls in flight at once; no state is kept
//! between calls but the injector's cache.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use inject::{Injector, Outcome, INJECTED_FAULT};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tracing::Instrument;

/// The path runtimes poll for the next event.
pub const NEXT: &str = "/2018-06-01/runtime/invocation/next";
pub const REQUEST_ID: HeaderName = HeaderName::from_static("lambda-runtime-aws-request-id");
pub const DEADLINE_MS: HeaderName = HeaderName::from_static("lambda-runtime-deadline-ms");
pub const ERROR_TYPE: HeaderName = HeaderName::from_static("lambda-runtime-function-error-type");

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Bodies both ways: the runtime's and the Runtime API's streamed through,
/// or one the proxy made.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|e| match e {})
        .boxed_unsync()
}

fn stream(body: Incoming) -> Body {
    body.map_err(BoxError::from).boxed_unsync()
}

/// The proxy between one runtime and the real Runtime API.
pub struct Proxy {
    /// `host:port` of the real Runtime API.
    upstream: Authority,
    client: Client<HttpConnector, Body>,
    /// `None`: no parameter configured; every call is only forwarded.
    injector: Option<Injector>,
}

impl Proxy {
    pub fn new(upstream: Authority, injector: Option<Injector>) -> Arc<Proxy> {
        let mut http = HttpConnector::new();
        // Small requests on loopback: Nagle's delay would dwarf the rest.
        http.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .http1_preserve_header_case(true)
            .http1_title_case_headers(false)
            // The runtime's connections are few and long-lived.
            .pool_idle_timeout(None)
            .build(http);
        Arc::new(Proxy {
            upstream,
            client,
            injector,
        })
    }

    /// Serves the runtime on `listener` until the process ends.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let proxy = Arc::clone(&self);
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let proxy = Arc::clone(&proxy);
                    async move { Ok::<_, Infallible>(proxy.handle(request).await) }
                });
                let served = hyper::server::conn::http1::Builder::new()
                    .preserve_header_case(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(e) = served {
                    tracing::debug!(error = %e, "runtime connection ended");
                }
            });
        }
    }

    /// One call of the runtime.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        match &self.injector {
            Some(injector) if request.method() == Method::GET && request.uri().path() == NEXT => {
                self.next(injector, request).await
            }
            _ => self.forward(request.map(stream)).await,
        }
    }

    fn upstream_uri(&self, path_and_query: Option<&PathAndQuery>) -> Uri {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(Scheme::HTTP);
        parts.authority = Some(self.upstream.clone());
        parts.path_and_query = Some(
            path_and_query
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        );
        // Scheme, authority and path are all set: this cannot fail.
        Uri::from_parts(parts).unwrap_or_default()
    }

    /// Forward a call as it came; the answer too.
    async fn forward(&self, request: Request<Body>) -> Response<Body> {
        let (mut parts, body) = request.into_parts();
        parts.uri = self.upstream_uri(parts.uri.path_and_query());
        match self.client.request(Request::from_parts(parts, body)).await {
            Ok(response) => response.map(stream),
            Err(e) => unreachable_upstream(&e),
        }
    }

    /// `GET /next`: poll upstream until an event is for the handler.
    async fn next(&self, injector: &Injector, request: Request<Incoming>) -> Response<Body> {
        let (parts, _) = request.into_parts();
        let mut extensions = Some(parts.extensions);
        loop {
            let mut poll = Request::new(full(Bytes::new()));
            *poll.method_mut() = Method::GET;
            *poll.uri_mut() = self.upstream_uri(parts.uri.path_and_query());
            *poll.version_mut() = parts.version;
            *poll.headers_mut() = parts.headers.clone();
            if let Some(ext) = extensions.take() {
                *poll.extensions_mut() = ext;
            }
            let response = match self.client.request(poll).await {
                Ok(response) => response,
                Err(e) => return unreachable_upstream(&e),
            };
            if response.status() != StatusCode::OK {
                return response.map(stream);
            }
            let (head, body) = response.into_parts();
            let event = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) => {
                    tracing::warn!(error = %e, "the event was cut off");
                    return bad_gateway("the Runtime API's event was cut off");
                }
            };
            let request_id = head
                .headers
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let span = tracing::info_span!("invocation", request_id = %request_id);
            let handled = self
                .apply(injector, &head.headers, &request_id, &event, parts.version)
                .instrument(span)
                .await;
            if handled {
                continue;
            }
            return Response::from_parts(head, full(event));
        }
    }

    /// Decide and act on one event: `true` when the proxy answered the
    /// invocation itself, `false` when the handler gets it.
    async fn apply(
        &self,
        injector: &Injector,
        headers: &HeaderMap,
        request_id: &str,
        event: &Bytes,
        version: Version,
    ) -> bool {
        let Some(plan) = injector.plan().await else {
            return false;
        };
        let deadline_ms = headers
            .get(&DEADLINE_MS)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let decision =
            injector.decide::<Value>(&plan, || serde_json::from_slice(event).ok(), deadline_ms);
        if let Some(delay) = decision.delay {
            tokio::time::sleep(delay).await;
        }
        let (path, body, error_type) = match decision.outcome {
            Outcome::Handler => return false,
            Outcome::Respond(response) => ("response", response.to_string(), None),
            Outcome::Raise(message) => (
                "error",
                json!({"errorMessage": message, "errorType": INJECTED_FAULT, "stackTrace": []})
                    .to_string(),
                Some(HeaderValue::from_static(INJECTED_FAULT)),
            ),
        };
        if request_id.is_empty() {
            tracing::warn!("the event has no request id: the handler gets it");
            return false;
        }
        let Ok(path) = PathAndQuery::try_from(format!(
            "/2018-06-01/runtime/invocation/{request_id}/{path}"
        )) else {
            tracing::warn!("the request id is not a path segment: the handler gets the event");
            return false;
        };
        let uri = self.upstream_uri(Some(&path));
        let mut post = Request::new(full(body));
        *post.method_mut() = Method::POST;
        *post.uri_mut() = uri;
        *post.version_mut() = version;
        post.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(kind) = error_type {
            post.headers_mut().insert(ERROR_TYPE, kind);
        }
        match self.client.request(post).await {
            Ok(answer) if answer.status().is_success() => {
                // Drain it, so the connection goes back to the pool.
                let _ = answer.into_body().collect().await;
                true
            }
            Ok(answer) => {
                tracing::warn!(
                    status = answer.status().as_u16(),
                    "the Runtime API refused the injected answer: the handler gets the event"
                );
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot post the injected answer: the handler gets the event");
                false
            }
        }
    }
}

/// What the runtime gets when the real Runtime API cannot be reached: what
/// it would have seen calling it itself, a failed call.
fn unreachable_upstream(e: &hyper_util::client::legacy::Error) -> Response<Body> {
    tracing::warn!(error = %e, "cannot reach the Runtime API");
    bad_gateway("cannot reach the Runtime API")
}

fn bad_gateway(message: &str) -> Response<Body> {
    let mut response = Response::new(full(
        json!({"errorMessage": message, "errorType": "Turbulence.ProxyError"}).to_string(),
    ));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
