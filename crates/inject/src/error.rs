//! The layer's error: the injected fault, or the handler's own error
//! untouched. Both become a `lambda_runtime::Diagnostic`; the injected one
//! has the stable error type `InjectedFault` (Step Functions `Retry` and
//! `Catch` match on it), the handler's keeps its own diagnostic.

use crate::INJECTED_FAULT;
use lambda_runtime::Diagnostic;
use std::fmt;

/// What a wrapped handler can fail with.
#[derive(Debug)]
pub enum FaultError<E> {
    /// The exception mode fired.
    Injected(InjectedFault),
    /// The handler failed on its own.
    Handler(E),
}

/// An injected exception, carrying the configured `exception_msg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFault {
    pub message: String,
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InjectedFault {}

impl<E: fmt::Display> fmt::Display for FaultError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultError::Injected(fault) => write!(f, "{INJECTED_FAULT}: {fault}"),
            FaultError::Handler(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for FaultError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FaultError::Injected(fault) => Some(fault),
            FaultError::Handler(e) => Some(e),
        }
    }
}

impl<E: Into<Diagnostic>> From<FaultError<E>> for Diagnostic {
    fn from(error: FaultError<E>) -> Diagnostic {
        match error {
            FaultError::Injected(fault) => Diagnostic {
                error_type: INJECTED_FAULT.to_string(),
                error_message: fault.message,
            },
            FaultError::Handler(e) => e.into(),
        }
    }
}
