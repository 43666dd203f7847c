//! What the local stack adds to template.yaml, which the template cannot
//! say. Everything else — the functions and their binaries, the state
//! machine and its substitutions, the janitor's rule, the guards' defaults —
//! the local stack reads from template.yaml itself, which it deploys.

/// Where the local stack lets load attacks and http probes go: loopback
/// (its stacks' `LoadAllowedHosts`).
pub const LOAD_ALLOWED_HOSTS: &str = "127.0.0.1,localhost";

/// The tag targets carry to opt in: the literal template.yaml's
/// `OptInTagKey` and IAM conditions name (tests tag their targets with it).
pub const OPT_IN_TAG: &str = "turbulence:opt-in";

/// The fault-injection layer for every runtime (crates/extension), as the
/// local stack publishes it: `turbulence/wrapper` and
/// `turbulence/turbulence-extension`, which Lambda puts under `/opt`.
pub const EXTENSION_LAYER: &str = "turbulence-extension";
/// The wrapper's source in the workspace.
pub const EXTENSION_WRAPPER_SOURCE: &str = "crates/extension/layer/wrapper";
/// What a function sets `AWS_LAMBDA_EXEC_WRAPPER` to, to run behind the proxy.
pub use experiment::faults::EXEC_WRAPPER;

/// A demo target with a managed runtime, run by the local stack's Runtime
/// API emulator behind the extension layer (local stack only: template.yaml
/// deploys the Rust target).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManagedTarget {
    pub name: &'static str,
    /// The handler's files, relative to the workspace root.
    pub code_dir: &'static str,
    pub handler: &'static str,
    pub fault_parameter: &'static str,
}

/// The Python twin of the moderation target (functions/moderation-python).
pub const PYTHON_MODERATION: ManagedTarget = ManagedTarget {
    name: "turbulence-moderation-python",
    code_dir: "functions/moderation-python",
    handler: "app.handler",
    fault_parameter: "/turbulence/faults/moderation-python",
};
