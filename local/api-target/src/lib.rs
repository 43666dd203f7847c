//! The demo target of the API abuse experiment: the write-up's "AI
//! Moderation Service" API, small and fast enough to stay out of the way
//! of a load benchmark.
//!
//! - `GET /health` → 200 `{"status":"ok"}`.
//! - `POST /moderate` with `Authorization: Bearer <token>`,
//!   `Content-Type: application/json` and `{"image_url": "..."}` → 200
//!   `{"labels": [...], "person_detected": bool}`. Checked in this order:
//!   authentication (401), content type (415), size (413 over 64 KiB),
//!   JSON (400). A body declared over 64 KiB is refused before the content
//!   type is looked at; it is read and dropped first (up to 16 MiB, as API
//!   Gateway reads up to its limit) so the client gets the 413 on a live
//!   connection rather than a reset.
//! - `PUT /admin/mode` with body `buggy` or `fixed` switches the mode;
//!   `GET /admin/stats` → `{"mode": ..., "requests": n, "by_status": {...},
//!   "last_request_unix_ms": t}` (the newest request that was not to
//!   `/admin/`: how a test sees when an attack really stopped).
//!
//! **Modes.** `fixed` answers every missing, invalid or expired token with
//! 401. `buggy` reproduces the write-up's bug, a 5XX where a 401 belongs:
//! its auth code reads the token's claims before checking it and unwraps
//! every step, so a *missing* header or a token that is not a decodable
//! JWT (an opaque invalid token) answers 500; a well-formed but expired
//! JWT still gets its 401 (the claims decode, `exp` is checked). The
//! crash is modelled as a 500 response, not a panic, so that the server
//! stays fast and quiet under load.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Body;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Largest `/moderate` body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Largest body read (and dropped) to answer 413 on a usable connection.
pub const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// Reads a body to its end, keeping nothing; `false` on error.
async fn drain<B>(body: B) -> bool
where
    B: Body<Data = Bytes>,
{
    let mut body = std::pin::pin!(body);
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            return false;
        }
    }
    true
}

/// Statuses counted one by one in `/admin/stats`; others count as `other`.
const COUNTED: [u16; 8] = [200, 400, 401, 404, 405, 413, 415, 500];

/// How the auth code behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Unauthorized requests get 401.
    Fixed,
    /// Missing or undecodable tokens get 500 (the bug).
    Buggy,
}

impl Mode {
    /// `buggy` or `fixed`.
    pub fn parse(text: &str) -> Option<Mode> {
        match text.trim() {
            "buggy" => Some(Mode::Buggy),
            "fixed" => Some(Mode::Fixed),
            _ => None,
        }
    }

    /// The mode's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Fixed => "fixed",
            Mode::Buggy => "buggy",
        }
    }
}

/// The API's state: mode, valid token, counters.
#[derive(Debug)]
pub struct App {
    buggy: AtomicBool,
    /// `Bearer <token>`, compared as bytes.
    bearer: Bytes,
    counts: [AtomicU64; COUNTED.len() + 1],
    /// When the newest request other than `/admin/` arrived (ms since the
    /// epoch; 0: none yet).
    last_request_ms: AtomicU64,
}

fn json(status: StatusCode, body: &'static [u8]) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn owned_json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = json(status, b"");
    *response.body_mut() = Full::new(Bytes::from(body));
    response
}

const UNAUTHORIZED: &[u8] = br#"{"message":"Unauthorized"}"#;
const INTERNAL_ERROR: &[u8] = br#"{"message":"Internal server error"}"#;

/// What the buggy auth code does with a token that is not the valid one.
fn buggy_auth(header: Option<&HeaderValue>) -> Result<(), ()> {
    // `.unwrap()` on the header, then on every decoding step.
    let header = header.ok_or(())?.to_str().map_err(|_| ())?;
    let token = header.strip_prefix("Bearer ").ok_or(())?;
    let claims = token.split('.').nth(1).ok_or(())?;
    let claims = URL_SAFE_NO_PAD.decode(claims).map_err(|_| ())?;
    let claims: serde_json::Value = serde_json::from_slice(&claims).map_err(|_| ())?;
    let _exp = claims.get("exp").and_then(|e| e.as_u64()).ok_or(())?;
    Ok(())
}

impl App {
    /// A new API in `mode`, accepting `Bearer <token>`.
    pub fn new(mode: Mode, token: &str) -> App {
        App {
            buggy: AtomicBool::new(mode == Mode::Buggy),
            bearer: Bytes::from(format!("Bearer {token}")),
            counts: Default::default(),
            last_request_ms: AtomicU64::new(0),
        }
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        if self.buggy.load(Ordering::Relaxed) {
            Mode::Buggy
        } else {
            Mode::Fixed
        }
    }

    /// Switches the mode.
    pub fn set_mode(&self, mode: Mode) {
        self.buggy.store(mode == Mode::Buggy, Ordering::Relaxed);
    }

    /// Responses so far with `status`.
    pub fn count(&self, status: u16) -> u64 {
        let i = COUNTED
            .iter()
            .position(|&s| s == status)
            .unwrap_or(COUNTED.len());
        self.counts[i].load(Ordering::Relaxed)
    }

    fn stats(&self) -> String {
        let mut by_status = serde_json::Map::new();
        let mut total = 0;
        for (i, counter) in self.counts.iter().enumerate() {
            let n = counter.load(Ordering::Relaxed);
            total += n;
            if n > 0 {
                let key = COUNTED
                    .get(i)
                    .map_or("other".to_string(), |s| s.to_string());
                by_status.insert(key, n.into());
            }
        }
        serde_json::json!({
            "mode": self.mode().as_str(),
            "requests": total,
            "by_status": by_status,
            "last_request_unix_ms": self.last_request_ms.load(Ordering::Relaxed),
        })
        .to_string()
    }

    /// Answers one request.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        if !request.uri().path().starts_with("/admin/") {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            self.last_request_ms.fetch_max(now, Ordering::Relaxed);
        }
        let response = self.route(request).await;
        let status = response.status().as_u16();
        let i = COUNTED
            .iter()
            .position(|&s| s == status)
            .unwrap_or(COUNTED.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        response
    }

    async fn route<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        match (request.method(), request.uri().path()) {
            (&Method::POST, "/moderate") => self.moderate(request).await,
            (&Method::GET, "/health") => json(StatusCode::OK, br#"{"status":"ok"}"#),
            (&Method::GET, "/admin/stats") => owned_json(StatusCode::OK, self.stats()),
            (&Method::PUT, "/admin/mode") => {
                let body = match Limited::new(request.into_body(), 64).collect().await {
                    Ok(body) => body.to_bytes(),
                    Err(_) => return json(StatusCode::BAD_REQUEST, br#"{"message":"Bad mode"}"#),
                };
                match std::str::from_utf8(&body).ok().and_then(Mode::parse) {
                    Some(mode) => {
                        self.set_mode(mode);
                        owned_json(StatusCode::OK, format!(r#"{{"mode":"{}"}}"#, mode.as_str()))
                    }
                    None => json(
                        StatusCode::BAD_REQUEST,
                        br#"{"message":"Send buggy or fixed"}"#,
                    ),
                }
            }
            (_, "/moderate" | "/health" | "/admin/stats" | "/admin/mode") => json(
                StatusCode::METHOD_NOT_ALLOWED,
                br#"{"message":"Method not allowed"}"#,
            ),
            _ => json(StatusCode::NOT_FOUND, br#"{"message":"Not found"}"#),
        }
    }

    async fn moderate<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let (parts, body) = request.into_parts();
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
            // Too large: read and drop it (up to DRAIN_LIMIT, as API Gateway
            // reads up to its 10 MB limit) so the client sees the answer
            // rather than a reset; past that, answer and close.
            let drained = declared.is_some_and(|n| n <= DRAIN_LIMIT) && drain(body).await;
            let mut response = self.check_auth(&parts.headers).unwrap_or_else(|| {
                json(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    br#"{"message":"Request too large"}"#,
                )
            });
            if !drained {
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            return response;
        }
        // Read the body (bounded) whatever the outcome, as a real API
        // would, so the connection stays usable.
        let body = Limited::new(body, MAX_BODY_BYTES).collect().await;
        if let Some(refusal) = self.check_auth(&parts.headers) {
            return refusal;
        }
        let is_json = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
        if !is_json {
            return json(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                br#"{"message":"Unsupported media type"}"#,
            );
        }
        let body = match body {
            Ok(body) => body.to_bytes(),
            Err(_) => {
                return json(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    br#"{"message":"Request too large"}"#,
                )
            }
        };
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body) else {
            return json(StatusCode::BAD_REQUEST, br#"{"message":"Invalid JSON"}"#);
        };
        match value.get("image_url").and_then(|u| u.as_str()) {
            Some(url) if url.contains("person") => json(
                StatusCode::OK,
                br#"{"labels":["person","toy"],"person_detected":true}"#,
            ),
            Some(_) => json(
                StatusCode::OK,
                br#"{"labels":["toy","brick"],"person_detected":false}"#,
            ),
            None => json(
                StatusCode::BAD_REQUEST,
                br#"{"message":"image_url (a string) is required"}"#,
            ),
        }
    }

    /// `None` when the request may go on; else the answer.
    fn check_auth(&self, headers: &http::HeaderMap) -> Option<Response<Full<Bytes>>> {
        let header = headers.get(AUTHORIZATION);
        if header.is_some_and(|h| h.as_bytes() == self.bearer.as_ref()) {
            return None;
        }
        if self.mode() == Mode::Buggy && buggy_auth(header).is_err() {
            return Some(json(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR));
        }
        Some(json(StatusCode::UNAUTHORIZED, UNAUTHORIZED))
    }
}

/// Serves HTTP/1.1 (keep-alive) on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, app: Arc<App>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let app = app.clone();
                async move { Ok::<_, std::convert::Infallible>(app.handle(request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(auth: Option<&str>, content_type: &str, body: &str) -> Request<Full<Bytes>> {
        let mut builder = Request::post("/moderate").header(CONTENT_TYPE, content_type);
        if let Some(auth) = auth {
            builder = builder.header(AUTHORIZATION, auth);
        }
        builder
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap()
    }

    fn expired_jwt() -> String {
        let part = |s: &str| URL_SAFE_NO_PAD.encode(s);
        format!(
            "Bearer {}.{}.{}",
            part(r#"{"alg":"HS256"}"#),
            part(r#"{"exp":946688400}"#),
            part("sig")
        )
    }

    async fn status(app: &App, request: Request<Full<Bytes>>) -> u16 {
        app.handle(request).await.status().as_u16()
    }

    #[tokio::test]
    async fn fixed_mode_answers_like_a_correct_api() {
        let app = App::new(Mode::Fixed, "demo-token");
        let ok = r#"{"image_url":"https://example.com/a.jpg"}"#;
        let good = Some("Bearer demo-token");
        assert_eq!(status(&app, post(good, "application/json", ok)).await, 200);
        assert_eq!(status(&app, post(None, "application/json", ok)).await, 401);
        assert_eq!(
            status(&app, post(Some("Bearer nope"), "application/json", ok)).await,
            401
        );
        assert_eq!(
            status(&app, post(Some(&expired_jwt()), "application/json", ok)).await,
            401
        );
        assert_eq!(status(&app, post(good, "text/plain", ok)).await, 415);
        assert_eq!(
            status(&app, post(good, "application/json", "{,")).await,
            400
        );
        assert_eq!(
            status(&app, post(good, "application/json", "{}")).await,
            400
        );
        let big = format!(r#"{{"image_url":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
        assert_eq!(
            status(&app, post(good, "application/json", &big)).await,
            413
        );
        // A declared length over the limit: drained (connection kept)
        // up to DRAIN_LIMIT, refused with a close past it.
        for (size, close) in [(MAX_BODY_BYTES + 1, false), (DRAIN_LIMIT + 1, true)] {
            let mut request = post(good, "application/json", &"x".repeat(size));
            request.headers_mut().insert(CONTENT_LENGTH, size.into());
            let response = app.handle(request).await;
            assert_eq!(response.status(), 413);
            assert_eq!(
                response.headers().get(CONNECTION).is_some(),
                close,
                "{size}"
            );
        }
        let health = Request::get("/health")
            .body(Full::new(Bytes::new()))
            .unwrap();
        assert_eq!(status(&app, health).await, 200);
        let nowhere = Request::get("/nope").body(Full::new(Bytes::new())).unwrap();
        assert_eq!(status(&app, nowhere).await, 404);
        assert_eq!(app.count(401), 3);
        assert_eq!(app.count(413), 3);
        assert_eq!(app.count(500), 0);
    }

    #[tokio::test]
    async fn buggy_mode_answers_500_where_401_belongs() {
        let app = App::new(Mode::Buggy, "demo-token");
        let ok = r#"{"image_url":"https://example.com/a.jpg"}"#;
        assert_eq!(
            status(
                &app,
                post(Some("Bearer demo-token"), "application/json", ok)
            )
            .await,
            200
        );
        assert_eq!(status(&app, post(None, "application/json", ok)).await, 500);
        assert_eq!(
            status(&app, post(Some("Bearer nope"), "application/json", ok)).await,
            500
        );
        assert_eq!(
            status(&app, post(Some(&expired_jwt()), "application/json", ok)).await,
            401
        );

        let before_admin = app.last_request_ms.load(Ordering::Relaxed);
        assert!(before_admin > 0);
        let switch = Request::put("/admin/mode")
            .body(Full::new(Bytes::from_static(b"fixed")))
            .unwrap();
        assert_eq!(status(&app, switch).await, 200);
        // Admin requests are not the attack's: they leave the time alone.
        assert_eq!(app.last_request_ms.load(Ordering::Relaxed), before_admin);
        assert_eq!(app.mode(), Mode::Fixed);
        assert_eq!(
            status(&app, post(Some("Bearer nope"), "application/json", ok)).await,
            401
        );
        let stats = app
            .handle(
                Request::get("/admin/stats")
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await;
        let body = stats.into_body().collect().await.unwrap().to_bytes();
        let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(stats["mode"], "fixed");
        assert_eq!(stats["by_status"]["500"], 2);
        assert_eq!(stats["by_status"]["401"], 2);
        assert_eq!(stats["requests"], 6);
        assert!(stats["last_request_unix_ms"].as_u64().unwrap() >= before_admin);
    }
}
