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
