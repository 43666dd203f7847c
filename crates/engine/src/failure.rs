//! Failures, and the stable names the state machine sees them by.

use activities::AwsError;
use experiment::journal::names;
use experiment::ErrorReport;
use lambda_runtime::Diagnostic;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    /// The experiment was refused before anything ran.
    #[error("{0}")]
    Invalid(String),
    /// An abort alarm went to ALARM.
    #[error("{}", .0.message)]
    Aborted(ErrorReport),
    /// A steady-state probe's output fell outside its tolerance.
    #[error("{}", .0.message)]
    Deviated(ErrorReport),
    /// A probe or action could not do its work.
    #[error("{}", .0.message)]
    ActivityFailed(ErrorReport),
    /// AWS throttled a call before anything changed; retry.
    #[error("{0}")]
    Throttled(String),
    /// The state document is unusable.
    #[error("{0}")]
    StateInvalid(String),
    /// A guard refused the experiment; nothing was touched.
    #[error("{0}")]
    Refused(String),
}

impl Failure {
    pub fn name(&self) -> &'static str {
        match self {
            Failure::Invalid(_) => names::EXPERIMENT_INVALID,
            Failure::Aborted(_) => names::EXPERIMENT_ABORTED,
            Failure::Deviated(_) => names::STEADY_STATE_DEVIATED,
            Failure::ActivityFailed(_) => names::ACTIVITY_FAILED,
            Failure::Throttled(_) => names::THROTTLED,
            Failure::StateInvalid(_) => names::STATE_INVALID,
            Failure::Refused(_) => names::GUARD_REFUSED,
        }
    }

    /// An AWS error met outside an activity (checking alarms, sending to
    /// the dead-letter queue).
    pub fn from_aws(doing: &str, e: AwsError) -> Failure {
        match e {
            AwsError::Throttled(m) => Failure::Throttled(format!("{doing}: {m}")),
            other => Failure::ActivityFailed(ErrorReport {
                message: format!("{doing}: {other}"),
                record: None,
            }),
        }
    }

    /// The failure as a Catch records it in the state.
    pub fn caught(&self) -> experiment::CaughtError {
        experiment::CaughtError::of_lambda(self.name(), &self.report())
    }

    fn report(&self) -> ErrorReport {
        match self {
            Failure::Aborted(r) | Failure::Deviated(r) | Failure::ActivityFailed(r) => r.clone(),
            other => ErrorReport {
                message: other.to_string(),
                record: None,
            },
        }
    }

    /// The error message: the report as JSON, so the journal gets the
    /// failed step's record through the state machine's Catch.
    fn message(&self) -> String {
        let report = self.report();
        serde_json::to_string(&report).unwrap_or(report.message)
    }
}

impl From<Failure> for Diagnostic {
    fn from(f: Failure) -> Diagnostic {
        Diagnostic {
            error_type: f.name().to_string(),
            error_message: f.message(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use experiment::CaughtError;

    #[test]
    fn names_are_stable() {
        let r = || ErrorReport {
            message: "m".into(),
            record: None,
        };
        let all = [
            (Failure::Invalid("m".into()), "ExperimentInvalid"),
            (Failure::Aborted(r()), "ExperimentAborted"),
            (Failure::Deviated(r()), "SteadyStateDeviated"),
            (Failure::ActivityFailed(r()), "ActivityFailed"),
            (Failure::Throttled("m".into()), "Throttled"),
            (Failure::StateInvalid("m".into()), "StateInvalid"),
            (Failure::Refused("m".into()), "GuardRefused"),
        ];
        for (f, name) in all {
            assert_eq!(Diagnostic::from(f).error_type, name);
        }
    }

    #[test]
    fn the_message_comes_back_through_a_catch() {
        let d = Diagnostic::from(Failure::Invalid(
            "activity 'x': field 'provider' is required".into(),
        ));
        // What Step Functions puts in the Catch's Cause for a Lambda error.
        let cause = serde_json::json!({"errorType": d.error_type, "errorMessage": d.error_message})
            .to_string();
        let caught = CaughtError {
            error: "ExperimentInvalid".into(),
            cause,
        };
        assert_eq!(
            caught.report().message,
            "activity 'x': field 'provider' is required"
        );
    }
}
