//! What the local stack deploys, named once. It mirrors template.yaml; the
//! drift test in this crate fails when the two disagree.

/// One Lambda function of the control plane: its logical id in template.yaml
/// and its binary (`BuildProperties.Binary`), which is also its function name
/// in the local stack, because `cargo lambda watch` serves binaries by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    pub logical_id: &'static str,
    pub binary: &'static str,
}

pub const FUNCTIONS: &[Function] = &[
    Function {
        logical_id: "PlanFunction",
        binary: "turbulence-plan",
    },
    Function {
        logical_id: "ProbeFunction",
        binary: "turbulence-probe",
    },
    Function {
        logical_id: "ActionFunction",
        binary: "turbulence-action",
    },
    Function {
        logical_id: "WaitFunction",
        binary: "turbulence-wait",
    },
    Function {
        logical_id: "JournalFunction",
        binary: "turbulence-journal",
    },
];

/// The janitor: woken by EventBridge and a schedule, never by the state
/// machine.
pub const JANITOR: Function = Function {
    logical_id: "JanitorFunction",
    binary: "turbulence-janitor",
};

/// Demo targets deployed beside the control plane (the state machine never
/// invokes them; experiments do).
pub const TARGET_FUNCTIONS: &[Function] = &[Function {
    logical_id: "ModerationFunction",
    binary: "turbulence-moderation",
}];

/// The SSM parameter the moderation function reads its fault configuration
/// from: template.yaml's `${FaultParameterPrefix}moderation` with the default
/// prefix, and `FAILURE_INJECTION_PARAM` in functions/moderation/Cargo.toml
/// for `cargo lambda watch`.
pub const MODERATION_FAULT_PARAMETER: &str = "/turbulence/faults/moderation";

/// The state machine definition, relative to the workspace root.
pub const STATE_MACHINE_DEFINITION: &str = "statemachines/experiment.asl.json";

/// Every `${...}` placeholder of the definition, as template.yaml's
/// `DefinitionSubstitutions` names them.
pub const SUBSTITUTIONS: &[&str] = &[
    "PlanFunctionArn",
    "ProbeFunctionArn",
    "ActionFunctionArn",
    "WaitFunctionArn",
    "JournalFunctionArn",
    "DeadLetterQueueUrl",
    "AllowedAccounts",
    "AllowedRegions",
    "OptInTagKey",
    "KillSwitchParameter",
    "MaxTaskPercent",
    "MinRemainingTasks",
    "LoadAllowedHosts",
    "LoadMaxUsers",
    "LoadMaxRequestsPerSecond",
    "DefaultAbortAlarms",
];

/// Where the local stack lets load attacks and http probes go: loopback.
pub const LOAD_ALLOWED_HOSTS: &str = "127.0.0.1,localhost";

/// The tag targets carry to opt in: template.yaml's `OptInTagKey` default.
pub const OPT_IN_TAG: &str = "turbulence:opt-in";

/// template.yaml's `MaxTaskPercent` and `MinRemainingTasks` defaults.
pub const MAX_TASK_PERCENT: u32 = 50;
pub const MIN_REMAINING_TASKS: u32 = 1;

/// The EventBridge rule that sends the janitor the status changes of
/// executions that ended without their rollbacks (template.yaml's
/// `JanitorFunction` `ExecutionEnded` event).
pub const JANITOR_RULE: &str = "turbulence-janitor-execution-ended";
pub const JANITOR_EVENT_PATTERN: &str = r#"{"source":["aws.states"],"detail-type":["Step Functions Execution Status Change"],"detail":{"status":["ABORTED","TIMED_OUT","FAILED"]}}"#;
