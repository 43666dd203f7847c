//! What the attack and the probe share: URL checks against the host
//! allow-list, and the HTTP/1.1 connector (hyper-util's `HttpConnector`
//! under hyper-rustls with aws-lc-rs, the stack the AWS SDK already links).

use crate::error::{ErrorKind, LoadError};
use crate::reach::{check_literal, GuardedResolver};
use crate::Limits;
use http::uri::{Authority, Scheme};
use http::Uri;
use hyper_rustls::{ConfigBuilderExt, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::error::Error as StdError;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The connector type every request goes through.
pub(crate) type Connector = HttpsConnector<HttpConnector<GuardedResolver>>;

/// Whether `host` matches the allow-list: an entry is an exact host
/// (`api.example.com`, `127.0.0.1`; case-insensitive) or `*.suffix`, which
/// matches any name ending in `.suffix` but not `suffix` itself. There is
/// no match-everything entry; an empty list allows nothing.
pub fn host_allowed(allowed_hosts: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.');
    allowed_hosts.iter().any(|entry| {
        let entry = entry.trim();
        match entry.strip_prefix("*.") {
            Some(suffix) if !suffix.is_empty() => {
                host.len() > suffix.len() + 1
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
            _ => !entry.is_empty() && entry.eq_ignore_ascii_case(host),
        }
    })
}

/// A checked absolute http(s) URL.
#[derive(Debug, Clone)]
pub(crate) struct CheckedUrl {
    pub https: bool,
    pub authority: Authority,
    /// Path and query, `/` when empty.
    pub path_and_query: String,
}

impl CheckedUrl {
    /// `scheme://authority`, what the connector connects to.
    pub fn origin(&self) -> Uri {
        Uri::builder()
            .scheme(if self.https {
                Scheme::HTTPS
            } else {
                Scheme::HTTP
            })
            .authority(self.authority.clone())
            .path_and_query("/")
            .build()
            .expect("scheme, authority and / make a URI")
    }
}

/// Parses `raw` as an absolute http(s) URL whose host is allow-listed and
/// not an address that is never reached (`crate::reach`).
pub(crate) fn check_url(field: &str, raw: &str, limits: &Limits) -> Result<CheckedUrl, LoadError> {
    let allowed_hosts = &limits.allowed_hosts;
    let value = || serde_json::Value::from(raw).to_string();
    let uri: Uri = raw
        .parse()
        .map_err(|e| LoadError::invalid(field, value(), format!("not a URL ({e})")))?;
    let https = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => false,
        Some(s) if s.eq_ignore_ascii_case("https") => true,
        Some(s) => {
            return Err(LoadError::invalid(
                field,
                value(),
                format!("scheme `{s}` is not supported; use http:// or https://"),
            ))
        }
        None => {
            return Err(LoadError::invalid(
                field,
                value(),
                "not an absolute URL; write http://host[:port]/... or https://...",
            ))
        }
    };
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| LoadError::invalid(field, value(), "the URL has no host"))?;
    if authority.as_str().contains('@') {
        return Err(LoadError::invalid(
            field,
            value(),
            "credentials in the URL are not supported; send them in headers",
        ));
    }
    let host = authority.host();
    if host.is_empty() {
        return Err(LoadError::invalid(field, value(), "the URL has no host"));
    }
    if !host_allowed(allowed_hosts, host) {
        return Err(LoadError::HostNotAllowed {
            field: field.to_string(),
            host: host.to_string(),
            allowed: if allowed_hosts.is_empty() {
                "nothing".to_string()
            } else {
                allowed_hosts.join(", ")
            },
        });
    }
    check_literal(host, limits.allow_loopback)
        .map_err(|why| LoadError::invalid(field, value(), format!("{why}: never a target")))?;
    let path_and_query = uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .filter(|pq| !pq.is_empty())
        .unwrap_or("/")
        .to_string();
    Ok(CheckedUrl {
        https,
        authority,
        path_and_query,
    })
}

/// How the connector treats TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tls {
    /// Plain http only: no root certificates loaded (an https URL then
    /// fails its handshake).
    None,
    /// Verify certificates against the system's roots.
    Verify,
    /// Accept any certificate (`verify_tls: false`).
    AcceptAny,
}

impl Tls {
    pub fn for_url(https: bool, verify: bool) -> Tls {
        match (https, verify) {
            (false, _) => Tls::None,
            (true, true) => Tls::Verify,
            (true, false) => Tls::AcceptAny,
        }
    }
}

/// A connector for plain http and https (HTTP/1.1 only; ALPN `http/1.1`).
/// TCP_NODELAY is on: requests are small and latency is measured.
pub(crate) fn connector(tls: Tls, connect_timeout: Duration, allow_loopback: bool) -> Connector {
    let mut http = HttpConnector::new_with_resolver(GuardedResolver::new(allow_loopback));
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(tls))
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// The TLS configuration, built once per process and mode: loading the
/// system's root certificates takes milliseconds.
fn tls_config(tls: Tls) -> ClientConfig {
    static NONE: OnceLock<ClientConfig> = OnceLock::new();
    static VERIFIED: OnceLock<ClientConfig> = OnceLock::new();
    static UNVERIFIED: OnceLock<ClientConfig> = OnceLock::new();
    let builder = || {
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports the default TLS versions")
    };
    match tls {
        Tls::None => NONE.get_or_init(|| {
            builder()
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth()
        }),
        // No system roots: every https request fails its handshake (a
        // `tls` error), which is the safe outcome.
        Tls::Verify => VERIFIED.get_or_init(|| match builder().with_native_roots() {
            Ok(with_roots) => with_roots.with_no_client_auth(),
            Err(_) => builder()
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth(),
        }),
        Tls::AcceptAny => UNVERIFIED.get_or_init(|| {
            builder()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
                .with_no_client_auth()
        }),
    }
    .clone()
}

/// `verify_tls: false`: accept any certificate (still check handshake
/// signatures, so the connection is at least consistent).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Classifies a failure to connect: `tls` when rustls is in the chain,
/// `timeout` for the connect timeout, else `connect`.
pub(crate) fn connect_error_kind(error: &(dyn StdError + 'static)) -> ErrorKind {
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return ErrorKind::Tls;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return ErrorKind::Timeout;
            }
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                return ErrorKind::Tls;
            }
        }
        source = e.source();
    }
    ErrorKind::Connect
}

/// Classifies a hyper error on an established connection.
pub(crate) fn hyper_error_kind(error: &hyper::Error) -> ErrorKind {
    if error.is_parse() || error.is_parse_status() {
        ErrorKind::Protocol
    } else if error.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Io
    }
}

/// An error and its sources on one line.
pub(crate) fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn allow_list_matches_exact_hosts_and_suffixes_only() {
        let allowed = list(&[
            "127.0.0.1",
            "*.execute-api.eu-west-1.amazonaws.com",
            "API.test",
        ]);
        assert!(host_allowed(&allowed, "127.0.0.1"));
        assert!(host_allowed(&allowed, "api.TEST"));
        assert!(host_allowed(
            &allowed,
            "abc123.execute-api.eu-west-1.amazonaws.com"
        ));
        assert!(!host_allowed(
            &allowed,
            "execute-api.eu-west-1.amazonaws.com"
        ));
        assert!(!host_allowed(
            &allowed,
            "evilexecute-api.eu-west-1.amazonaws.com"
        ));
        assert!(!host_allowed(&allowed, "127.0.0.2"));
        assert!(!host_allowed(&allowed, "localhost"));
        assert!(!host_allowed(&list(&["*"]), "anything"));
        assert!(!host_allowed(&list(&["*."]), "anything."));
        assert!(!host_allowed(&[], "127.0.0.1"));
    }

    #[test]
    fn urls_are_checked_before_anything_is_sent() {
        // The local stack's opt-out: its targets are on loopback.
        let allowed = Limits {
            allowed_hosts: list(&["127.0.0.1"]),
            allow_loopback: true,
            ..Default::default()
        };
        let ok = check_url("target", "http://127.0.0.1:8080/prod?x=1", &allowed).unwrap();
        assert!(!ok.https);
        assert_eq!(ok.authority.as_str(), "127.0.0.1:8080");
        assert_eq!(ok.path_and_query, "/prod?x=1");
        assert_eq!(ok.origin().to_string(), "http://127.0.0.1:8080/");

        let cases = [
            ("ftp://127.0.0.1/", "scheme `ftp`"),
            ("127.0.0.1:8080", "not an absolute URL"),
            ("/just/a/path", "not an absolute URL"),
            ("http://user:pw@127.0.0.1/", "credentials"),
            ("http://exa mple.com/", "not a URL"),
        ];
        for (raw, expected) in cases {
            let err = check_url("target", raw, &allowed).unwrap_err().to_string();
            assert!(err.starts_with("target = "), "{raw}: {err}");
            assert!(err.contains(expected), "{raw}: {err}");
        }
        let err = check_url("target", "https://example.com/", &allowed).unwrap_err();
        assert_eq!(err.error_type(), "HostNotAllowed");
        assert_eq!(
            err.to_string(),
            "target: host `example.com` is not allow-listed (allowed: 127.0.0.1)"
        );
    }

    #[test]
    fn loopback_and_link_local_are_never_targets_even_allow_listed() {
        let limits = Limits {
            allowed_hosts: list(&["127.0.0.1", "169.254.169.254", "[::1]", "0.0.0.0"]),
            ..Default::default()
        };
        for (raw, why) in [
            (
                "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next",
                "loopback",
            ),
            (
                "http://169.254.169.254/latest/meta-data/",
                "instance metadata",
            ),
            ("http://[::1]:8080/", "loopback"),
            ("http://0.0.0.0:80/", "unspecified"),
        ] {
            let err = check_url("target", raw, &limits).unwrap_err().to_string();
            assert!(
                err.contains(why) && err.contains("never a target"),
                "{raw}: {err}"
            );
        }
    }
}
