//! The crate's one error type.

use std::fmt;

/// Why an attack or a probe was refused, or why a probe failed.
///
/// Validation errors name the field (a JSON path into the spec, such as
/// `stages[1].users`) and the offending value, so the experiment author can
/// fix the spec without reading code.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The JSON is not an attack spec or probe at all (wrong type, unknown
    /// or missing field): serde's message, which names the field.
    #[error("invalid {what}: {message}")]
    Spec {
        /// `attack` or `http probe`.
        what: &'static str,
        /// serde's message.
        message: String,
    },
    /// A field has a value the spec or the limits do not allow.
    #[error("{field} = {value}: {reason}")]
    Invalid {
        /// JSON path of the field, e.g. `stages[1].users`.
        field: String,
        /// The offending value as written (JSON).
        value: String,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// The URL's host is not on the allow-list.
    #[error("{field}: host `{host}` is not allow-listed (allowed: {allowed})")]
    HostNotAllowed {
        /// JSON path of the URL field.
        field: String,
        /// The host as written in the URL.
        host: String,
        /// The allow-list, comma separated (or `nothing`).
        allowed: String,
    },
    /// The probe's request failed before a response came back.
    #[error("{kind} error: {message}")]
    Http {
        /// What failed.
        kind: ErrorKind,
        /// The underlying error.
        message: String,
    },
}

impl LoadError {
    /// A stable name for Step Functions `Retry`/`Catch` (through a Lambda
    /// `Diagnostic`): `LoadSpecInvalid`, `HostNotAllowed` or `HttpRequestFailed`.
    pub fn error_type(&self) -> &'static str {
        match self {
            LoadError::Spec { .. } | LoadError::Invalid { .. } => "LoadSpecInvalid",
            LoadError::HostNotAllowed { .. } => "HostNotAllowed",
            LoadError::Http { .. } => "HttpRequestFailed",
        }
    }

    pub(crate) fn invalid(
        field: impl Into<String>,
        value: impl fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        LoadError::Invalid {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// Kinds of transport failure, counted per stage (`errors` in reports).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The TCP connection could not be made (refused, unreachable, DNS).
    Connect,
    /// The TLS handshake failed.
    Tls,
    /// No complete response within `timeout_ms` (connecting included).
    Timeout,
    /// The connection broke while the request or response was in flight.
    Io,
    /// The response was not valid HTTP/1.1.
    Protocol,
}

impl ErrorKind {
    pub(crate) const ALL: [ErrorKind; 5] = [
        ErrorKind::Connect,
        ErrorKind::Tls,
        ErrorKind::Timeout,
        ErrorKind::Io,
        ErrorKind::Protocol,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Io => "io",
            ErrorKind::Protocol => "protocol",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
