//! The `turbulence` command-line client, as a library so every part of it
//! is testable without AWS:
//!
//! - [`validate`]: the checks Plan makes, offline.
//! - [`catalogue`]: `turbulence catalogue`, from the catalogue's declarations.
//! - [`events`]: execution history events, flattened (from the SDK or from
//!   `get-execution-history` JSON).
//! - [`progress`]: progress lines, a pure function of history events.
//! - [`journal`]: the journal of a finished execution, and `chaos run`'s
//!   exit code for it.
//! - [`report`]: a self-contained HTML report of a journal.
//! - [`aws`]: the Step Functions calls (start, history, describe) and the
//!   follow loop of `turbulence run`.
//! - [`commands`]: one function per subcommand, for a thin `main`.
//! - [`files`]: reading and writing files with size caps and messages that
//!   name the file.

pub mod aws;
pub mod catalogue;
pub mod commands;
pub mod events;
pub mod files;
pub mod journal;
pub mod progress;
pub mod report;
pub mod validate;

/// The process exit codes, as documented in `--help`.
pub mod exit {
    /// Everything went well: every experiment is valid; the run completed
    /// without deviation; the journal or report was written.
    pub const OK: u8 = 0;
    /// An experiment is invalid, or a run did not complete cleanly (status
    /// other than `completed`, or deviated), as `chaos run` exits.
    pub const NOT_COMPLETED: u8 = 1;
    /// Bad usage (unknown flag, missing argument).
    pub const USAGE: u8 = 2;
    /// Turbulence could not do what was asked: a file could not be read,
    /// parsed or written, an AWS call failed, an execution has no journal.
    pub const ERROR: u8 = 3;
    /// `turbulence run` was interrupted with Ctrl-C; the execution goes on.
    pub const INTERRUPTED: u8 = 130;

    /// The text for `--help`.
    pub const HELP: &str = "Exit codes:
  0    success (all experiments valid; run completed and not deviated; file written)
  1    an experiment is invalid, or the run did not complete: status other than
       `completed`, or deviated (as `chaos run` exits)
  2    bad usage
  3    could not do it: a file could not be read, parsed or written, an AWS call
       failed, or the execution has no journal
  130  `run` interrupted by Ctrl-C (the execution keeps running)";
}

/// Why a command could not do its job. Every message names what was wrong:
/// the file, the field or the AWS call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: larger than {limit} bytes, the most {what} may be")]
    TooLarge {
        path: String,
        limit: u64,
        what: &'static str,
    },
    #[error("{path}: not valid JSON: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{call}: {message}")]
    Aws { call: String, message: String },
    #[error("{0}")]
    Other(String),
}
