//! The emulator over HTTP, for the local stack:
//!
//! - `POST /2015-03-31/functions/{name}/invocations`: Lambda's Invoke. The
//!   function comes in `X-Turbulence-Function` (its [`FunctionConfig`] as
//!   base64 JSON; the local stack's forwarder sends it, moto holds the
//!   function); `X-Amz-Client-Context` is passed on. The answer is the
//!   payload, with `X-Amz-Function-Error: Unhandled` when the function
//!   failed, as Lambda's.
//! - `GET /_emulator/invocations[?function=NAME]`: what reached the
//!   Runtime API, newest last (error types, X-Ray causes, sizes).
//! - `GET /_emulator/environments[?function=NAME]`: live environments with
//!   their processes and init times.

use std::convert::Infallible;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

use crate::{Emulator, FunctionConfig};

/// Where the local stack's forwarder puts the function's configuration.
pub const FUNCTION_HEADER: &str = "x-turbulence-function";
/// Lambda's limit on a synchronous request payload.
const MAX_REQUEST_BYTES: usize = 6 * 1024 * 1024;

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed_unsync());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

fn problem(status: StatusCode, kind: &str, message: String) -> Response<Body> {
    respond(
        status,
        json!({"__type": kind, "Type": "User", "message": message}).to_string(),
    )
}

/// Serve the Invoke API until the process ends.
pub async fn serve(emulator: Arc<Emulator>, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let emulator = Arc::clone(&emulator);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let emulator = Arc::clone(&emulator);
                async move { Ok::<_, Infallible>(route(&emulator, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn function_filter(request: &Request<Incoming>) -> Option<String> {
    request.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("function="))
            .map(str::to_string)
    })
}

async fn route(emulator: &Emulator, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (request.method(), segments.as_slice()) {
        (&Method::POST, ["2015-03-31", "functions", name, "invocations"]) => {
            let name = name.to_string();
            invoke(emulator, &name, request).await
        }
        (&Method::GET, ["_emulator", "invocations"]) => {
            let records = emulator.records(function_filter(&request).as_deref());
            respond(StatusCode::OK, json!(records).to_string())
        }
        (&Method::GET, ["_emulator", "environments"]) => {
            let envs = emulator
                .environments(function_filter(&request).as_deref())
                .await;
            respond(StatusCode::OK, json!(envs).to_string())
        }
        _ => problem(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!("no such call: {} {path}", request.method()),
        ),
    }
}

async fn invoke(emulator: &Emulator, name: &str, request: Request<Incoming>) -> Response<Body> {
    let header = |n: &str| {
        request
            .headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let Some(encoded) = header(FUNCTION_HEADER) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            format!(
                "{FUNCTION_HEADER} is missing: the emulator needs the function's configuration"
            ),
        );
    };
    let config: FunctionConfig = match base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
    {
        Some(config) => config,
        None => {
            return problem(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                format!("{FUNCTION_HEADER} is not a base64 JSON function configuration"),
            )
        }
    };
    if config.name != name {
        return problem(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            format!("{FUNCTION_HEADER} is for {}, not {name}", config.name),
        );
    }
    // Lambda passes the client context to the runtime decoded.
    let client_context = header("x-amz-client-context").and_then(|c| {
        base64::engine::general_purpose::STANDARD
            .decode(c.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    });
    let payload = match Limited::new(request.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestTooLargeException",
                format!("the request payload is over {MAX_REQUEST_BYTES} bytes"),
            )
        }
    };
    let payload = if payload.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        payload
    };
    let invoked = emulator.invoke(config, payload, client_context).await;
    let mut response = respond(StatusCode::OK, invoked.payload);
    let headers = response.headers_mut();
    headers.insert(
        "x-amz-executed-version",
        HeaderValue::from_static("$LATEST"),
    );
    if let Ok(id) = HeaderValue::from_str(&invoked.request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    if let Some(kind) = invoked
        .function_error
        .and_then(|e| HeaderValue::from_str(&e).ok())
    {
        headers.insert("x-amz-function-error", kind);
    }
    response
}
