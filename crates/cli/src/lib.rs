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
//! - [`report`]: a self-contained HTML report of a journal (the `report`
//!   crate, which the journal function renders with too).
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
pub use report;
pub mod validate;
pub mod vars;

/// The process exit codes: the constants, and per command what each means.
/// `--help` and the README's table are made from [`exit::COMMANDS`]; a test
/// checks the README and runs every command into every code.
pub mod exit {
    /// Everything went well.
    pub const OK: u8 = 0;
    /// An experiment is invalid, or a run did not complete cleanly (status
    /// other than `completed`, or deviated), as `chaos run` exits.
    pub const NOT_COMPLETED: u8 = 1;
    /// Bad usage: an unknown flag, a missing or malformed argument.
    pub const USAGE: u8 = 2;
    /// Turbulence could not do what was asked: a file could not be read,
    /// decoded, parsed or written, an AWS call failed, an execution has no
    /// journal.
    pub const ERROR: u8 = 3;
    /// `turbulence run` was interrupted with Ctrl-C; the execution goes on.
    pub const INTERRUPTED: u8 = 130;

    /// Each command's exit codes and what they mean there.
    pub const COMMANDS: &[(&str, &[(u8, &str)])] = &[
        (
            "validate",
            &[
                (OK, "every file is a valid experiment"),
                (NOT_COMPLETED, "an experiment is invalid"),
                (USAGE, "bad usage"),
                (ERROR, "a file could not be read as an experiment (unreadable, too large, not UTF-8, not JSON) or a var file could not be used"),
            ],
        ),
        (
            "run",
            &[
                (OK, "the run completed and did not deviate"),
                (NOT_COMPLETED, "the experiment is invalid (not started), or the run did not complete or deviated (as `chaos run` exits)"),
                (USAGE, "bad usage (a malformed state machine ARN, --var with --parameter, ...)"),
                (ERROR, "could not do it: a file could not be read or written, an AWS call failed, the run has no journal"),
                (INTERRUPTED, "interrupted by Ctrl-C (the execution keeps running)"),
            ],
        ),
        (
            "journal",
            &[
                (OK, "the journal was written"),
                (USAGE, "bad usage (a malformed execution ARN, ...)"),
                (ERROR, "no journal (still running, or ended before its Journal state), an AWS call failed, or it could not be written"),
            ],
        ),
        (
            "report",
            &[
                (OK, "the report was written"),
                (USAGE, "bad usage"),
                (ERROR, "the journal could not be read, decoded or parsed, or the report could not be written"),
            ],
        ),
    ];

    /// The codes of `command`.
    pub fn of(command: &str) -> &'static [(u8, &'static str)] {
        COMMANDS
            .iter()
            .find(|(name, _)| *name == command)
            .map_or(&[], |(_, codes)| *codes)
    }

    /// `Exit codes:` and one line per code, for a command's `--help`.
    pub fn help(command: &str) -> String {
        let mut text = String::from("Exit codes:");
        for (code, meaning) in of(command) {
            text.push_str(&format!("\n  {code:<4} {meaning}"));
        }
        text
    }

    /// The top-level `--help`: every command's codes.
    pub fn help_all() -> String {
        let mut text = String::from("Exit codes (see each command's --help):");
        for (command, codes) in COMMANDS {
            let list: Vec<String> = codes.iter().map(|(c, _)| c.to_string()).collect();
            text.push_str(&format!("\n  {command:<9} {}", list.join(", ")));
        }
        text
    }

    /// The README's table: one row per command and code.
    pub fn markdown() -> String {
        let mut text = String::from("| Command | Exit code | Meaning |\n| --- | --- | --- |\n");
        for (command, codes) in COMMANDS {
            for (code, meaning) in *codes {
                text.push_str(&format!("| `{command}` | {code} | {meaning} |\n"));
            }
        }
        text
    }
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
    #[error("{path}: not UTF-8 text (the first {valid_up_to} bytes are; then byte 0x{byte:02x}): save it as UTF-8")]
    NotUtf8 {
        path: String,
        valid_up_to: usize,
        byte: u8,
    },
    /// A file that was read but is not what it must be (a var file).
    #[error("{path}: {message}")]
    File { path: String, message: String },
    /// Options that do not go together, or a value they cannot take.
    #[error("{0}")]
    Usage(String),
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

impl Error {
    /// The exit code a command ends with when it fails this way.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Invalid { .. } => exit::NOT_COMPLETED,
            Error::Usage(_) => exit::USAGE,
            _ => exit::ERROR,
        }
    }
}
