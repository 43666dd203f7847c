//! The Chaos Toolkit `http` provider, natively: one request, its output
//! `{"status", "headers", "body"}` for a tolerance to judge.

use crate::client::{check_url, connect_error_kind, connector, error_chain, hyper_error_kind, Tls};
use crate::error::{ErrorKind, LoadError};
use crate::Limits;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Method, Request};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Largest response body a probe keeps (the output travels in a Step
/// Functions state); the rest is cut and the body reported as a string.
pub const MAX_PROBE_BODY_BYTES: usize = 64 * 1024;
/// Longest probe timeout, in seconds.
pub const MAX_PROBE_TIMEOUT_S: f64 = 300.0;

/// An HTTP probe, as in a Chaos Toolkit `http` provider.
///
/// ```json
/// {"url": "https://api.example.com/health", "method": "GET",
///  "headers": {"Authorization": "Bearer ..."}, "timeout_s": 10, "verify_tls": true}
/// ```
/// `arguments` and `timeout` are accepted as Chaos Toolkit's names for
/// `body` and `timeout_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProbe {
    /// Absolute http(s) URL; its host must be allow-listed.
    pub url: String,
    /// Method (default GET).
    #[serde(default = "default_method")]
    pub method: String,
    /// Request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Body: a string is sent as is; an object or array as JSON (with
    /// `Content-Type: application/json` unless a header sets one).
    #[serde(default, alias = "arguments", skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Whole-request timeout in seconds (default 30, at most 300).
    #[serde(default = "default_timeout_s", alias = "timeout")]
    pub timeout_s: f64,
    /// Check the server's certificate (default true).
    #[serde(default = "default_true")]
    pub verify_tls: bool,
}

fn default_method() -> String {
    "GET".to_string()
}

fn default_timeout_s() -> f64 {
    30.0
}

fn default_true() -> bool {
    true
}

/// What a probe saw: Chaos Toolkit's `http` provider output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpOutput {
    /// The status code.
    pub status: u16,
    /// Response headers, lower-case names; repeated headers joined by `, `.
    pub headers: BTreeMap<String, String>,
    /// The body: parsed JSON when the content type says JSON and it
    /// parses, else a string (cut at 64 KiB).
    pub body: Value,
}

impl HttpProbe {
    /// Reads a probe from JSON.
    pub fn from_json(value: Value) -> Result<HttpProbe, LoadError> {
        serde_json::from_value(value).map_err(|e| LoadError::Spec {
            what: "http probe",
            message: e.to_string(),
        })
    }

    /// Sends the request (after checking the URL against the limits' host
    /// allow-list and the addresses never reached) and returns the
    /// response. Any status is an output, not an error; errors are for
    /// requests that got no response.
    pub async fn run(&self, limits: &Limits) -> Result<HttpOutput, LoadError> {
        let url = check_url("url", &self.url, limits)?;
        if !self.timeout_s.is_finite()
            || self.timeout_s <= 0.0
            || self.timeout_s > MAX_PROBE_TIMEOUT_S
        {
            return Err(LoadError::invalid(
                "timeout_s",
                self.timeout_s,
                format!("must be more than 0 and at most {MAX_PROBE_TIMEOUT_S}"),
            ));
        }
        let method =
            Method::from_bytes(self.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
                LoadError::invalid(
                    "method",
                    Value::from(self.method.as_str()),
                    "not an HTTP method",
                )
            })?;
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.method_mut() = method;
        *request.uri_mut() = format!(
            "{}://{}{}",
            if url.https { "https" } else { "http" },
            url.authority,
            url.path_and_query
        )
        .parse()
        .map_err(|e| LoadError::invalid("url", Value::from(self.url.as_str()), format!("{e}")))?;
        for (name, value) in &self.headers {
            let field = format!("headers.{name}");
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                LoadError::invalid(&field, format!("{name:?}"), "not a valid header name")
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                LoadError::invalid(&field, format!("{value:?}"), "not a valid header value")
            })?;
            request.headers_mut().append(name, value);
        }
        let body = match &self.body {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(Bytes::from(text.clone())),
            Some(json) => {
                if !request.headers().contains_key(CONTENT_TYPE) {
                    request
                        .headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
                Some(Bytes::from(json.to_string()))
            }
        };
        if let Some(body) = body {
            *request.body_mut() = Full::new(body);
        }

        let timeout = Duration::from_secs_f64(self.timeout_s);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build::<_, Full<Bytes>>(connector(
                Tls::for_url(url.https, self.verify_tls),
                timeout,
                limits.allow_loopback,
            ));
        let exchange = async {
            let response = client.request(request).await.map_err(|e| {
                let kind = if e.is_connect() {
                    connect_error_kind(&e)
                } else {
                    source_hyper_kind(&e)
                };
                LoadError::Http {
                    kind,
                    message: error_chain(&e),
                }
            })?;
            let status = response.status().as_u16();
            let headers = header_map(response.headers());
            let mut body = response.into_body();
            let mut bytes = Vec::new();
            let mut cut = false;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| LoadError::Http {
                    kind: hyper_error_kind(&e),
                    message: error_chain(&e),
                })?;
                if let Some(data) = frame.data_ref() {
                    let room = MAX_PROBE_BODY_BYTES - bytes.len();
                    bytes.extend_from_slice(&data[..room.min(data.len())]);
                    if data.len() > room {
                        cut = true;
                        break;
                    }
                }
            }
            let is_json = headers
                .get("content-type")
                .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"));
            let body = match (is_json && !cut)
                .then(|| serde_json::from_slice::<Value>(&bytes).ok())
                .flatten()
            {
                Some(json) => json,
                None => {
                    let mut text = String::from_utf8_lossy(&bytes).into_owned();
                    if cut {
                        text.push_str("…[cut at 64 KiB]");
                    }
                    Value::String(text)
                }
            };
            Ok(HttpOutput {
                status,
                headers,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(LoadError::Http {
                    kind: ErrorKind::Timeout,
                    message: format!("no complete response within {} s", self.timeout_s),
                })
            })
    }
}

fn source_hyper_kind(error: &(dyn std::error::Error + 'static)) -> ErrorKind {
    let mut source = error.source();
    while let Some(e) = source {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            return hyper_error_kind(h);
        }
        source = e.source();
    }
    ErrorKind::Io
}

fn header_map(headers: &http::HeaderMap) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        map.entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    map
}
