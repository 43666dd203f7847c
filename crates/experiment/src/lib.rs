//! Chaos Toolkit experiments as Turbulence runs them.
//!
//! - [`model`]: parse and validate an experiment (the execution input).
//! - [`catalogue`]: the `module.func` activities Turbulence runs natively
//!   (the `activities` crate's, re-exported: every call is checked there).
//! - [`plan`]: expand a valid experiment into the steps the state machine walks.
//! - [`tolerance`]: judge a probe's output against its tolerance.
//! - [`guards`]: the deployment's guards, targets, locks and undo logs.
//! - [`state`]: the document passed from function to function.
//! - [`journal`]: the Chaos Toolkit journal built from that state.

pub mod background;
pub mod guards;
pub mod journal;
pub mod model;
pub mod plan;
pub mod state;
pub mod tolerance;

pub use activities::{attack, catalogue, faults, parse_timestamp, suggest, timestamp};
pub use catalogue::{Call, CallSpec};
pub use model::{Experiment, Invalid, Lookups, SecretRef};
pub use plan::{Phase, Plan, Settings, Step, StepKind};
pub use state::{
    Background, CaughtError, Compensation, ErrorReport, Next, NextKind, Record, Round, RunStatus,
    State,
};
pub use tolerance::Tolerance;
