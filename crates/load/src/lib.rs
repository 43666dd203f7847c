//! Load: the "API abuse" experiment's load generator, and the http probe.
//!
//! An [`AttackSpec`] (an activity's JSON `arguments`) names a target,
//! load stages and request templates — malformed payloads, missing,
//! invalid or expired tokens, oversized bodies, or custom requests — each
//! with the statuses a correct API answers. [`AttackSpec::validate`]
//! checks it against the deployment's [`Limits`] (host allow-list, caps on
//! users, rate, stage length and total requests) before anything is sent;
//! [`ValidAttack::run`] runs it: closed-loop users on keep-alive HTTP/1.1
//! connections, a global rate cap, every response classified against its
//! template's expectations (a 5xx always violates them), early stops on
//! thresholds or on a [`StopSignal`] (abort alarms), and an
//! [`AttackReport`] small enough for a Step Functions state.
//! [`plan_shares`] fans a large attack out over several invocations and
//! [`merge`] puts their reports back together.
//!
//! [`http::HttpProbe`] is Chaos Toolkit's `http` provider, under the same
//! allow-list.
//!
//! No AWS dependencies: the HTTP stack is the hyper / hyper-rustls /
//! rustls (aws-lc-rs) the AWS SDK already links.

mod client;
mod conn;
mod error;
mod hist;
pub mod http;
mod plan;
pub mod reach;
mod report;
mod run;
mod spec;
mod template;

pub use client::host_allowed;
pub use error::{ErrorKind, LoadError};
pub use plan::plan_shares;
pub use report::{
    merge, AttackReport, Classes, Latency, SampleResponse, StageReport, Stats, StopReason,
    TemplateReport, ViolationSample, MAX_REPORT_BYTES, MAX_SAMPLES,
};
pub use run::{NeverStop, StopSignal};
pub use spec::{
    AttackSpec, Limits, RequestSpec, Share, Stage, StopRules, ValidAttack, MAX_REQUESTS, MAX_STAGES,
};
pub use template::{Expect, SampleRequest, Template};
