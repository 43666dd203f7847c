//! Chaos Toolkit experiments as Turbulence runs them.
//!
//! - [`model`]: parse and validate an experiment (the execution input).
//! - [`catalogue`]: the `module.func` activities Turbulence runs natively.
//! - [`plan`]: expand a valid experiment into the steps the state machine walks.
//! - [`tolerance`]: judge a probe's output against its tolerance.
//! - [`guards`]: the deployment's guards, targets, locks and undo logs.
//! - [`state`]: the document passed from function to function.
//! - [`journal`]: the Chaos Toolkit journal built from that state.

pub mod background;
pub mod catalogue;
pub mod faults;
pub mod guards;
pub mod journal;
pub mod model;
pub mod plan;
pub mod state;
pub mod suggest;
pub mod tolerance;

pub use catalogue::{Call, CallSpec};
pub use model::{Experiment, Invalid, Lookups, SecretRef};
pub use plan::{Phase, Plan, Settings, Step, StepKind};
pub use state::{
    Background, CaughtError, Compensation, ErrorReport, Next, NextKind, Record, Round, RunStatus,
    State,
};
pub use tolerance::Tolerance;

/// RFC 3339 text of an instant, as the journal records times.
pub fn timestamp(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}
