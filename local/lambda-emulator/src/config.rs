//! A function as the emulator runs it, and how its runtime process is
//! started: the runtime's own bootstrap, behind `AWS_LAMBDA_EXEC_WRAPPER`
//! on managed runtimes (Lambda ignores the wrapper on OS-only runtimes,
//! `provided.*`), with the layers' files where `/opt` would be.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What the emulator needs of a function. The local stack sends it with
/// every invocation (moto holds the function); a change of any field gives
/// the function fresh execution environments, as a Lambda update does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionConfig {
    pub name: String,
    /// For `Lambda-Runtime-Invoked-Function-Arn`; made from the name when absent.
    #[serde(default)]
    pub arn: Option<String>,
    /// Lambda's runtime identifier: `python3.12`, `nodejs22.x`, `provided.al2023`.
    pub runtime: String,
    #[serde(default)]
    pub handler: String,
    /// The unpacked code: `LAMBDA_TASK_ROOT` and the working directory.
    pub code_dir: PathBuf,
    /// The unpacked layers: what `/opt` holds.
    #[serde(default)]
    pub opt_dir: Option<PathBuf>,
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
    #[serde(default = "default_memory")]
    pub memory_mb: u64,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// The runtime's command line instead of the one `runtime` implies
    /// (tests and benchmarks run a runtime of their own).
    #[serde(default)]
    pub command: Option<Vec<String>>,
}

fn default_timeout() -> u64 {
    3
}

fn default_memory() -> u64 {
    128
}

/// Where the emulator finds the runtimes' interface clients.
#[derive(Debug, Clone, Default)]
pub struct Runtimes {
    /// A Python with `awslambdaric` installed (`python -m awslambdaric`).
    pub python: Option<PathBuf>,
    /// Node.js and `aws-lambda-ric`'s entry point.
    pub node: Option<(PathBuf, PathBuf)>,
}

pub const EXEC_WRAPPER: &str = "AWS_LAMBDA_EXEC_WRAPPER";

impl FunctionConfig {
    pub fn arn(&self, region: &str, account: &str) -> String {
        self.arn
            .clone()
            .unwrap_or_else(|| format!("arn:aws:lambda:{region}:{account}:function:{}", self.name))
    }

    /// OS-only runtimes run `bootstrap` themselves and ignore exec wrappers.
    pub fn is_os_only(&self) -> bool {
        self.runtime.starts_with("provided")
    }

    /// The command line of the runtime process.
    pub fn command_line(&self, runtimes: &Runtimes) -> Result<Vec<String>, String> {
        let mut argv = match (&self.command, self.runtime.as_str()) {
            (Some(command), _) if !command.is_empty() => command.clone(),
            (_, r) if r.starts_with("python") => {
                let python = runtimes.python.as_ref().ok_or_else(|| {
                    format!("{r}: no Python with awslambdaric configured (--python)")
                })?;
                vec![
                    path(python),
                    "-m".into(),
                    "awslambdaric".into(),
                    self.handler.clone(),
                ]
            }
            (_, r) if r.starts_with("nodejs") => {
                let (node, ric) = runtimes.node.as_ref().ok_or_else(|| {
                    format!("{r}: no Node.js with aws-lambda-ric configured (--node, --node-ric)")
                })?;
                vec![path(node), path(ric), self.handler.clone()]
            }
            (_, r) if r.starts_with("provided") => vec![path(&self.code_dir.join("bootstrap"))],
            (_, r) => return Err(format!("runtime {r} is not emulated")),
        };
        if !self.is_os_only() {
            if let Some(wrapper) = self.environment.get(EXEC_WRAPPER) {
                argv.insert(0, path(&self.on_host(wrapper)));
            }
        }
        Ok(argv)
    }

    /// A path inside the environment, on this host: `/opt/...` is the
    /// layers' directory.
    pub fn on_host(&self, path: &str) -> PathBuf {
        match (path.strip_prefix("/opt/"), &self.opt_dir) {
            (Some(rest), Some(opt)) => opt.join(rest),
            _ => PathBuf::from(path),
        }
    }
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(runtime: &str, wrapper: Option<&str>) -> FunctionConfig {
        let mut environment = BTreeMap::new();
        if let Some(w) = wrapper {
            environment.insert(EXEC_WRAPPER.to_string(), w.to_string());
        }
        FunctionConfig {
            name: "f".into(),
            arn: None,
            runtime: runtime.into(),
            handler: "app.handler".into(),
            code_dir: "/code".into(),
            opt_dir: Some("/layers/f".into()),
            timeout_s: 3,
            memory_mb: 128,
            environment,
            command: None,
        }
    }

    fn runtimes() -> Runtimes {
        Runtimes {
            python: Some("/venv/bin/python".into()),
            node: None,
        }
    }

    #[test]
    fn a_managed_runtime_runs_behind_its_wrapper_from_the_layers() {
        let f = function("python3.12", Some("/opt/turbulence/wrapper"));
        assert_eq!(
            f.command_line(&runtimes()).unwrap(),
            [
                "/layers/f/turbulence/wrapper",
                "/venv/bin/python",
                "-m",
                "awslambdaric",
                "app.handler"
            ]
        );
        let f = function("python3.12", None);
        assert_eq!(f.command_line(&runtimes()).unwrap()[0], "/venv/bin/python");
    }

    #[test]
    fn os_only_runtimes_ignore_the_wrapper_as_lambda_does() {
        let f = function("provided.al2023", Some("/opt/turbulence/wrapper"));
        assert_eq!(f.command_line(&runtimes()).unwrap(), ["/code/bootstrap"]);
    }

    #[test]
    fn a_runtime_without_its_client_is_refused() {
        let err = function("nodejs22.x", None)
            .command_line(&runtimes())
            .unwrap_err();
        assert!(err.contains("aws-lambda-ric"), "{err}");
        assert!(function("java21", None).command_line(&runtimes()).is_err());
    }
}
