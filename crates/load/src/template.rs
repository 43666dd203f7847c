//! The abuse templates: what each sends, and which statuses it expects.

use crate::error::LoadError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderMap, Method, Uri};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Largest `size_bytes` of `oversized_body` (and of any body): 8 MiB.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Default `size_bytes` of `oversized_body`: 1 MiB + 1 byte, just past the
/// usual body limits of web frameworks (64 KiB to 1 MiB). API Gateway's own
/// limit (10 MB) is above the cap: set a size the API itself should refuse.
pub const DEFAULT_OVERSIZED_BYTES: usize = 1024 * 1024 + 1;
/// How much of a request or response body a violation sample keeps.
pub const SAMPLE_BODY_BYTES: usize = 256;

/// A built-in request template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// The base body with its JSON broken (cut before its last character,
    /// then a dangling `,`); `Content-Type: application/json`. Expects 400.
    MalformedJson,
    /// The base body, valid JSON, sent as `content_type` (default
    /// `text/plain`). Expects 400 or 415.
    WrongContentType,
    /// No `Authorization` header at all. Expects 401 or 403.
    MissingToken,
    /// `Authorization: Bearer <token>` with a token that is not valid
    /// (default `turbulence-invalid-token`). Expects 401 or 403.
    InvalidToken,
    /// A well-formed HS256 JWT whose `exp` is in 2000, with a garbage
    /// signature. Expects 401 or 403.
    ExpiredToken,
    /// A valid JSON body of `size_bytes` bytes (default 1 MiB + 1, at most
    /// 8 MiB). Expects 400 or 413.
    OversizedBody,
    /// `method`, `headers` and `body` exactly as given. Expects any 2xx.
    Custom,
}

impl Template {
    /// Every template, in documentation order.
    pub const ALL: [Template; 7] = [
        Template::MalformedJson,
        Template::WrongContentType,
        Template::MissingToken,
        Template::InvalidToken,
        Template::ExpiredToken,
        Template::OversizedBody,
        Template::Custom,
    ];

    /// The name used in specs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Template::MalformedJson => "malformed_json",
            Template::WrongContentType => "wrong_content_type",
            Template::MissingToken => "missing_token",
            Template::InvalidToken => "invalid_token",
            Template::ExpiredToken => "expired_token",
            Template::OversizedBody => "oversized_body",
            Template::Custom => "custom",
        }
    }

    /// Parses a template name.
    pub fn parse(name: &str) -> Option<Template> {
        Template::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The statuses a correct API answers this template with.
    pub fn default_expect(self) -> Vec<Expect> {
        let codes: &[u64] = match self {
            Template::MalformedJson => &[400],
            Template::WrongContentType => &[400, 415],
            Template::MissingToken | Template::InvalidToken | Template::ExpiredToken => &[401, 403],
            Template::OversizedBody => &[400, 413],
            Template::Custom => return vec![Expect::Class("2xx".to_string())],
        };
        codes.iter().map(|&c| Expect::Code(c)).collect()
    }

    /// The method used when the spec names none: GET for `custom`, POST
    /// for the others (they all carry a body).
    pub fn default_method(self) -> &'static str {
        match self {
            Template::Custom => "GET",
            _ => "POST",
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One accepted status: a code (`401`) or a class (`"4xx"`). 5xx is never
/// accepted: a server error is always a violation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Expect {
    /// An exact status code, 100–499.
    Code(u64),
    /// A class: `"1xx"`, `"2xx"`, `"3xx"` or `"4xx"`.
    Class(String),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Code(c) => write!(f, "{c}"),
            Expect::Class(c) => f.write_str(c),
        }
    }
}

/// `expected 401 or 403` → the `401 or 403` part.
pub(crate) fn describe_expect(expect: &[Expect]) -> String {
    let parts: Vec<String> = expect.iter().map(Expect::to_string).collect();
    match parts.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// A set of statuses 0..=639, as a bitmap: one lookup per response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StatusSet([u64; 10]);

impl StatusSet {
    pub fn insert(&mut self, status: u16) {
        let s = usize::from(status);
        if s < 640 {
            self.0[s / 64] |= 1 << (s % 64);
        }
    }

    pub fn contains(&self, status: u16) -> bool {
        let s = usize::from(status);
        s < 640 && self.0[s / 64] & (1 << (s % 64)) != 0
    }

    /// Checks `expect` (at `field`) and builds the set.
    pub fn from_expect(field: &str, expect: &[Expect]) -> Result<StatusSet, LoadError> {
        if expect.is_empty() {
            return Err(LoadError::invalid(
                field,
                "[]",
                "expect at least one status (e.g. [401, 403] or [\"4xx\"])",
            ));
        }
        let mut set = StatusSet::default();
        for (i, e) in expect.iter().enumerate() {
            let field = format!("{field}[{i}]");
            match e {
                Expect::Code(c) if (500..=599).contains(c) => {
                    return Err(LoadError::invalid(
                        field,
                        c,
                        "a 5xx status is always a violation and cannot be expected",
                    ))
                }
                Expect::Code(c) if (100..=499).contains(c) => set.insert(*c as u16),
                Expect::Code(c) => {
                    return Err(LoadError::invalid(
                        field,
                        c,
                        "not an HTTP status code (100-499 can be expected)",
                    ))
                }
                Expect::Class(class) => {
                    let digit = match class.to_ascii_lowercase().as_str() {
                        "1xx" => 1,
                        "2xx" => 2,
                        "3xx" => 3,
                        "4xx" => 4,
                        "5xx" => {
                            return Err(LoadError::invalid(
                                field,
                                format!("{class:?}"),
                                "a 5xx status is always a violation and cannot be expected",
                            ))
                        }
                        _ => {
                            return Err(LoadError::invalid(
                                field,
                                format!("{class:?}"),
                                "not a status class; use \"1xx\" to \"4xx\" or a code",
                            ))
                        }
                    };
                    for s in digit * 100..digit * 100 + 100 {
                        set.insert(s);
                    }
                }
            }
        }
        Ok(set)
    }
}

/// A request as the attack sends it, built once: each send clones
/// reference-counted parts only (the body is `Bytes`).
#[derive(Debug)]
pub(crate) struct Prepared {
    pub name: String,
    pub template: Template,
    pub method: Method,
    /// Origin-form: path and query.
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub expect: StatusSet,
    pub expected: Vec<Expect>,
    /// What a violation sample shows of the request.
    pub sample: SampleRequest,
}

impl Prepared {
    /// The request to send.
    pub fn request(&self) -> http::Request<http_body_util::Full<Bytes>> {
        let mut request = http::Request::new(http_body_util::Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }

    /// Whether `status` breaks the expectation (5xx always does).
    pub fn violates(&self, status: u16) -> bool {
        status >= 500 || !self.expect.contains(status)
    }
}

/// The request part of a violation sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRequest {
    /// The method.
    pub method: String,
    /// Path and query, relative to the target's host.
    pub path: String,
    /// Headers sent (credentials redacted to a short prefix).
    pub headers: BTreeMap<String, String>,
    /// The body, cut to 256 bytes (lossy UTF-8).
    pub body: String,
}

/// Everything a template needs from the request spec, already checked.
pub(crate) struct Parts<'a> {
    pub field: &'a str,
    pub name: String,
    pub template: Template,
    pub method: Method,
    pub path_and_query: String,
    pub host: &'a str,
    pub headers: &'a BTreeMap<String, String>,
    pub body: Option<&'a serde_json::Value>,
    pub token: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub size_bytes: Option<u64>,
    pub expect: Vec<Expect>,
    pub expect_set: StatusSet,
}

/// The body the auth templates send when the spec gives none: a valid,
/// harmless JSON object (`{}`), so only the credential is wrong.
const DEFAULT_BASE_BODY: &str = "{}";

/// A well-formed JWT: header `{"alg":"HS256","typ":"JWT"}`, claims
/// `{"sub":"turbulence","iat":946684800,"exp":946688400}` (2000-01-01),
/// and a signature that verifies against no key.
pub(crate) fn expired_jwt() -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"turbulence","iat":946684800,"exp":946688400}"#);
    let signature = URL_SAFE_NO_PAD.encode(b"turbulence-expired-token-signature");
    format!("{header}.{claims}.{signature}")
}

pub(crate) fn prepare(p: Parts<'_>) -> Result<Prepared, LoadError> {
    let field = p.field;
    let uri: Uri = p.path_and_query.parse().map_err(|e| {
        LoadError::invalid(
            format!("{field}.path"),
            serde_json::Value::from(p.path_and_query.as_str()),
            format!("not a valid path ({e})"),
        )
    })?;

    let mut headers = HeaderMap::new();
    headers.insert(
        HOST,
        HeaderValue::from_str(p.host).expect("an authority is a valid header value"),
    );
    for (name, value) in p.headers {
        let header_field = format!("{field}.headers.{name}");
        let name_parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            LoadError::invalid(
                &header_field,
                format!("{name:?}"),
                "not a valid header name",
            )
        })?;
        if name_parsed == HOST || name_parsed == http::header::CONTENT_LENGTH {
            return Err(LoadError::invalid(
                &header_field,
                format!("{value:?}"),
                "set by the load generator; remove it",
            ));
        }
        let value_parsed = HeaderValue::from_str(value).map_err(|_| {
            LoadError::invalid(
                &header_field,
                format!("{value:?}"),
                "not a valid header value",
            )
        })?;
        headers.append(name_parsed, value_parsed);
    }

    let base_text = match p.body {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    let json = HeaderValue::from_static("application/json");
    let base = || {
        base_text
            .clone()
            .unwrap_or_else(|| DEFAULT_BASE_BODY.to_string())
    };
    let body: Bytes = match p.template {
        Template::MalformedJson => {
            headers.insert(CONTENT_TYPE, json);
            let mut text = base();
            // Cut the closing bracket and leave a dangling comma: invalid
            // whatever the base was (`{}` becomes `{,`).
            if text.ends_with('}') || text.ends_with(']') {
                text.pop();
            }
            text.push(',');
            text.into()
        }
        Template::WrongContentType => {
            let ct = p.content_type.unwrap_or("text/plain");
            let value = HeaderValue::from_str(ct).map_err(|_| {
                LoadError::invalid(
                    format!("{field}.content_type"),
                    format!("{ct:?}"),
                    "not a valid header value",
                )
            })?;
            headers.insert(CONTENT_TYPE, value);
            base().into()
        }
        Template::MissingToken => {
            headers.remove(AUTHORIZATION);
            headers.entry(CONTENT_TYPE).or_insert(json);
            base().into()
        }
        Template::InvalidToken | Template::ExpiredToken => {
            let token = match p.template {
                Template::ExpiredToken => expired_jwt(),
                _ => p.token.unwrap_or("turbulence-invalid-token").to_string(),
            };
            let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                LoadError::invalid(
                    format!("{field}.token"),
                    format!("{token:?}"),
                    "not a valid header value",
                )
            })?;
            headers.insert(AUTHORIZATION, value);
            headers.entry(CONTENT_TYPE).or_insert(json);
            base().into()
        }
        Template::OversizedBody => {
            let size = p.size_bytes.unwrap_or(DEFAULT_OVERSIZED_BYTES as u64);
            if size > MAX_BODY_BYTES as u64 || size < 16 {
                return Err(LoadError::invalid(
                    format!("{field}.size_bytes"),
                    size,
                    format!("must be between 16 and {MAX_BODY_BYTES} (8 MiB)"),
                ));
            }
            headers.entry(CONTENT_TYPE).or_insert(json);
            // {"padding":"xxxx…"}: valid JSON of exactly `size` bytes.
            let size = size as usize;
            let mut body = Vec::with_capacity(size);
            body.extend_from_slice(br#"{"padding":""#);
            body.resize(size - 2, b'x');
            body.extend_from_slice(br#""}"#);
            body.into()
        }
        Template::Custom => base_text.clone().unwrap_or_default().into(),
    };
    if body.len() > MAX_BODY_BYTES {
        return Err(LoadError::invalid(
            format!("{field}.body"),
            format!("<{} bytes>", body.len()),
            format!("a body can be at most {MAX_BODY_BYTES} bytes (8 MiB)"),
        ));
    }

    let sample = SampleRequest {
        method: p.method.to_string(),
        path: p.path_and_query.clone(),
        headers: headers
            .iter()
            .filter(|(name, _)| **name != HOST)
            .map(|(name, value)| (name.to_string(), redact(name, value)))
            .collect(),
        body: truncate_lossy(&body, SAMPLE_BODY_BYTES),
    };
    Ok(Prepared {
        name: p.name,
        template: p.template,
        method: p.method,
        uri,
        headers,
        body,
        expect: p.expect_set,
        expected: p.expect,
        sample,
    })
}

/// Header values shown in samples: credentials cut to a prefix that tells
/// which token was sent without leaking a usable one.
fn redact(name: &HeaderName, value: &HeaderValue) -> String {
    let text = String::from_utf8_lossy(value.as_bytes());
    let sensitive = matches!(
        name.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "x-api-key" | "x-amz-security-token"
    );
    if !sensitive {
        return truncate_lossy(value.as_bytes(), SAMPLE_BODY_BYTES);
    }
    // Keep the scheme (`Bearer `) and up to 8 characters of the credential.
    let (scheme, credential) = match text.split_once(' ') {
        Some((scheme, rest)) if name.as_str().ends_with("authorization") => {
            (format!("{scheme} "), rest.to_string())
        }
        _ => (String::new(), text.to_string()),
    };
    let shown: String = credential.chars().take(8).collect();
    if shown.len() == credential.len() && credential.len() <= 4 {
        format!("{scheme}[redacted]")
    } else {
        format!("{scheme}{shown}…[redacted]")
    }
}

/// At most `max` bytes of `bytes` as text (lossy UTF-8), with a note of how
/// much was cut.
pub(crate) fn truncate_lossy(bytes: &[u8], max: usize) -> String {
    if bytes.len() <= max {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut text = String::from_utf8_lossy(&bytes[..max]).into_owned();
    text.push_str(&format!("…(+{} bytes)", bytes.len() - max));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(
        template: Template,
        headers: &'a BTreeMap<String, String>,
        body: Option<&'a serde_json::Value>,
    ) -> Parts<'a> {
        let expect = template.default_expect();
        Parts {
            field: "requests[0]",
            name: template.to_string(),
            template,
            method: Method::POST,
            path_and_query: "/moderate".into(),
            host: "127.0.0.1:8080",
            headers,
            body,
            token: None,
            content_type: None,
            size_bytes: Some(100),
            expect_set: StatusSet::from_expect("expect", &expect).unwrap(),
            expect,
        }
    }

    #[test]
    fn templates_break_exactly_one_thing() {
        let mut headers = BTreeMap::new();
        headers.insert("authorization".to_string(), "Bearer demo-token".to_string());
        let body = serde_json::json!({"image_url": "https://example.com/a.jpg"});

        let malformed = prepare(parts(Template::MalformedJson, &headers, Some(&body))).unwrap();
        assert_eq!(
            malformed.body,
            Bytes::from_static(br#"{"image_url":"https://example.com/a.jpg","#)
        );
        assert!(serde_json::from_slice::<serde_json::Value>(&malformed.body).is_err());
        assert_eq!(malformed.headers[AUTHORIZATION], "Bearer demo-token");
        assert_eq!(malformed.headers[HOST], "127.0.0.1:8080");

        let wrong_ct = prepare(parts(Template::WrongContentType, &headers, Some(&body))).unwrap();
        assert_eq!(wrong_ct.headers[CONTENT_TYPE], "text/plain");
        assert!(serde_json::from_slice::<serde_json::Value>(&wrong_ct.body).is_ok());

        let missing = prepare(parts(Template::MissingToken, &headers, Some(&body))).unwrap();
        assert!(missing.headers.get(AUTHORIZATION).is_none());
        assert_eq!(missing.headers[CONTENT_TYPE], "application/json");

        let invalid = prepare(parts(Template::InvalidToken, &headers, None)).unwrap();
        assert_eq!(
            invalid.headers[AUTHORIZATION],
            "Bearer turbulence-invalid-token"
        );
        assert_eq!(invalid.body, Bytes::from_static(b"{}"));

        let expired = prepare(parts(Template::ExpiredToken, &headers, None)).unwrap();
        let auth = expired.headers[AUTHORIZATION].to_str().unwrap();
        let jwt = auth.strip_prefix("Bearer ").unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(jwt.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert!(claims["exp"].as_u64().unwrap() < 1_000_000_000);

        let oversized = prepare(parts(Template::OversizedBody, &headers, None)).unwrap();
        assert_eq!(oversized.body.len(), 100);
        assert!(serde_json::from_slice::<serde_json::Value>(&oversized.body).is_ok());

        let custom = prepare(parts(Template::Custom, &headers, Some(&body))).unwrap();
        assert_eq!(custom.body, Bytes::from(body.to_string()));
    }

    #[test]
    fn samples_redact_credentials_and_cut_bodies() {
        let mut headers = BTreeMap::new();
        headers.insert("x-api-key".to_string(), "supersecretkey123".to_string());
        headers.insert("x-trace".to_string(), "abc".to_string());
        let body = serde_json::Value::String("y".repeat(1000));
        let p = prepare(parts(Template::ExpiredToken, &headers, Some(&body))).unwrap();
        let h = &p.sample.headers;
        assert_eq!(h["authorization"], "Bearer eyJhbGci…[redacted]");
        assert_eq!(h["x-api-key"], "supersec…[redacted]");
        assert_eq!(h["x-trace"], "abc");
        assert!(!h.contains_key("host"));
        assert!(p.sample.body.starts_with(&"y".repeat(256)));
        assert!(p.sample.body.ends_with("…(+744 bytes)"));
    }

    #[test]
    fn expectations_never_accept_server_errors() {
        let set =
            StatusSet::from_expect("expect", &[Expect::Code(401), Expect::Class("2xx".into())])
                .unwrap();
        assert!(set.contains(401) && set.contains(204) && !set.contains(403));
        let err = |e: Vec<Expect>| {
            StatusSet::from_expect("requests[1].expect", &e)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(vec![Expect::Code(401), Expect::Code(503)]),
            "requests[1].expect[1] = 503: a 5xx status is always a violation and cannot be expected"
        );
        assert!(err(vec![Expect::Class("5XX".into())]).contains("always a violation"));
        assert!(err(vec![Expect::Code(99)]).contains("not an HTTP status code"));
        assert!(err(vec![Expect::Class("ok".into())]).contains("not a status class"));
        assert!(err(vec![]).contains("at least one status"));
        assert_eq!(
            describe_expect(&[
                Expect::Code(400),
                Expect::Code(413),
                Expect::Class("3xx".into())
            ]),
            "400, 413 or 3xx"
        );
    }
}
