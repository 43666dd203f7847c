//! Managed-runtime functions on the local stack: the turbulence-extension
//! layer (published from the workspace's build), Python functions behind
//! it, and the Runtime API emulator that runs them (`local/stack.py`
//! forwards their invocations there; see `local/lambda-emulator`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, Runtime};
use serde_json::Value;

use crate::{aws, error_code, http_call, manifest, zip, Error, LocalStack, Result, LAMBDA_ROLE};

/// Environment variable holding the emulator's URL (`.local-stack/env`).
pub const EMULATOR_VAR: &str = "TURBULENCE_EMULATOR_URL";

/// What goes into a published copy of the extension layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The wrapper and the proxy, as `sam build` packs them.
    Extension,
    /// The wrapper alone: the proxy binary is missing (a fault-matrix row).
    WrapperOnly,
}

/// A Python function for the emulator.
#[derive(Debug, Clone)]
pub struct PythonFunction {
    pub name: String,
    /// Files of the code, from a directory of the workspace (every regular
    /// file in it, not recursive).
    pub code_dir: PathBuf,
    pub handler: String,
    pub timeout_s: i32,
    pub environment: BTreeMap<String, String>,
    pub layer: Option<Layer>,
    pub opt_in: bool,
}

impl PythonFunction {
    /// A function running `handler` from `code_dir` (relative to the
    /// workspace), without the layer.
    pub fn new(name: impl Into<String>, code_dir: impl Into<PathBuf>, handler: &str) -> Self {
        PythonFunction {
            name: name.into(),
            code_dir: code_dir.into(),
            handler: handler.into(),
            timeout_s: 30,
            environment: BTreeMap::new(),
            layer: None,
            opt_in: true,
        }
    }

    /// Behind the extension's proxy, reading faults from `parameter`: the
    /// layer, `AWS_LAMBDA_EXEC_WRAPPER` and `FAILURE_INJECTION_PARAM`, the
    /// three things the README asks of a team.
    pub fn with_layer(mut self, parameter: &str) -> Self {
        self.layer = Some(Layer::Extension);
        self.environment.insert(
            "AWS_LAMBDA_EXEC_WRAPPER".into(),
            manifest::EXEC_WRAPPER.into(),
        );
        self.environment
            .insert("FAILURE_INJECTION_PARAM".into(), parameter.into());
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.environment.insert(key.into(), value.into());
        self
    }
}

/// The layer's files from the workspace: `turbulence/wrapper` and the
/// debug build of `turbulence-extension` (`scripts/stack start` builds it).
fn layer_zip(root: &Path, layer: Layer) -> Result<Vec<u8>> {
    let read = |path: PathBuf| {
        std::fs::read(&path).map_err(|e| {
            Error::Unexpected(format!(
                "{}: {e} (build it: cargo build --bin turbulence-extension)",
                path.display()
            ))
        })
    };
    let wrapper = read(root.join(manifest::EXTENSION_WRAPPER_SOURCE))?;
    let proxy = match layer {
        Layer::Extension => Some(read(root.join("target/debug/turbulence-extension"))?),
        Layer::WrapperOnly => None,
    };
    let mut files: Vec<(&str, u32, &[u8])> = vec![("turbulence/wrapper", 0o755, &wrapper)];
    if let Some(proxy) = &proxy {
        files.push(("turbulence/turbulence-extension", 0o755, proxy));
    }
    Ok(zip::archive(&files))
}

fn code_zip(dir: &Path) -> Result<Vec<u8>> {
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::Unexpected(format!("{}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let data = std::fs::read(&path)
                .map_err(|e| Error::Unexpected(format!("{}: {e}", path.display())))?;
            files.push((name, data));
        }
    }
    files.sort();
    let files: Vec<(&str, u32, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), 0o644, d.as_slice()))
        .collect();
    Ok(zip::archive(&files))
}

impl LocalStack {
    pub fn lambda(&self) -> &aws_sdk_lambda::Client {
        &self.lambda
    }

    /// Publishes a version of the extension layer and returns its ARN.
    pub async fn publish_extension_layer(&self, layer: Layer) -> Result<String> {
        let name = match layer {
            Layer::Extension => manifest::EXTENSION_LAYER.to_string(),
            Layer::WrapperOnly => format!("{}-wrapper-only", manifest::EXTENSION_LAYER),
        };
        let zip = layer_zip(&self.root, layer)?;
        let out = self
            .lambda
            .publish_layer_version()
            .layer_name(&name)
            .content(
                aws_sdk_lambda::types::LayerVersionContentInput::builder()
                    .zip_file(Blob::new(zip))
                    .build(),
            )
            .compatible_runtimes(Runtime::Python312)
            .send()
            .await
            .map_err(aws(format!("PublishLayerVersion {name}")))?;
        out.layer_version_arn
            .ok_or_else(|| Error::Unexpected(format!("no ARN for layer {name}")))
    }

    /// Creates (or replaces the code and configuration of) a Python function
    /// run by the Runtime API emulator. Returns its name.
    pub async fn create_python_function(&self, f: &PythonFunction) -> Result<String> {
        let role = self.role(LAMBDA_ROLE, "lambda.amazonaws.com").await?;
        let zip = code_zip(&self.root.join(&f.code_dir))?;
        let layers = match f.layer {
            Some(layer) => vec![self.publish_extension_layer(layer).await?],
            None => Vec::new(),
        };
        let environment = Environment::builder()
            .set_variables(Some(f.environment.clone().into_iter().collect()))
            .build();
        let created = self
            .lambda
            .create_function()
            .function_name(&f.name)
            .runtime(Runtime::Python312)
            .handler(&f.handler)
            .role(&role)
            .timeout(f.timeout_s)
            .memory_size(256)
            .set_layers(Some(layers.clone()))
            .environment(environment.clone())
            .code(
                FunctionCode::builder()
                    .zip_file(Blob::new(zip.clone()))
                    .build(),
            )
            .send()
            .await;
        let arn = match created {
            Ok(out) => out.function_arn,
            Err(e) if error_code(&e) == Some("ResourceConflictException") => {
                self.lambda
                    .update_function_code()
                    .function_name(&f.name)
                    .zip_file(Blob::new(zip))
                    .send()
                    .await
                    .map_err(aws(format!("UpdateFunctionCode {}", f.name)))?;
                self.lambda
                    .update_function_configuration()
                    .function_name(&f.name)
                    .handler(&f.handler)
                    .timeout(f.timeout_s)
                    .set_layers(Some(layers))
                    .environment(environment)
                    .send()
                    .await
                    .map_err(aws(format!("UpdateFunctionConfiguration {}", f.name)))?
                    .function_arn
            }
            Err(e) => return Err(aws(format!("CreateFunction {}", f.name))(e)),
        };
        let arn =
            arn.ok_or_else(|| Error::Unexpected(format!("no ARN for function {}", f.name)))?;
        if f.opt_in {
            self.lambda
                .tag_resource()
                .resource(&arn)
                .tags(manifest::OPT_IN_TAG, "true")
                .send()
                .await
                .map_err(aws(format!("TagResource {}", f.name)))?;
        }
        Ok(f.name.clone())
    }

    /// The Python twin of the moderation target, behind the layer, as
    /// [`manifest::PYTHON_MODERATION`] describes it.
    pub async fn deploy_python_target(&self) -> Result<String> {
        let m = &manifest::PYTHON_MODERATION;
        self.create_python_function(
            &PythonFunction::new(m.name, m.code_dir, m.handler).with_layer(m.fault_parameter),
        )
        .await
    }
}

/// The Runtime API emulator's control endpoints (`/_emulator/...`).
#[derive(Debug, Clone)]
pub struct Emulator {
    authority: String,
}

impl Emulator {
    /// The emulator at `$TURBULENCE_EMULATOR_URL` (loopback only).
    pub fn from_env() -> Result<Emulator> {
        let url = std::env::var(EMULATOR_VAR).map_err(|_| {
            Error::Unexpected(format!(
                "{EMULATOR_VAR} is not set: start the local stack with `scripts/stack start`, then `source .local-stack/env`"
            ))
        })?;
        let url = url.trim().trim_end_matches('/');
        if !crate::is_loopback_url(url) {
            return Err(Error::NotLoopback(url.to_string()));
        }
        Ok(Emulator {
            authority: url.trim_start_matches("http://").to_string(),
        })
    }

    async fn get(&self, path: &str) -> Result<Value> {
        let (status, body) = http_call(
            &self.authority,
            "GET",
            path,
            "Content-Type: application/json\r\n",
            "",
        )
        .await?;
        if status != 200 {
            return Err(Error::Unexpected(format!(
                "GET {path}: HTTP {status}: {body}"
            )));
        }
        serde_json::from_str(&body).map_err(|e| Error::Unexpected(format!("GET {path}: {e}")))
    }

    /// What reached the Runtime API for `function`'s invocations, oldest
    /// first: `outcome`, `error_type`, `xray_cause`, `payload_bytes`, `event`.
    pub async fn invocations(&self, function: &str) -> Result<Vec<Value>> {
        let all = self
            .get(&format!("/_emulator/invocations?function={function}"))
            .await?;
        Ok(all.as_array().cloned().unwrap_or_default())
    }

    /// `function`'s live execution environments, with their processes.
    pub async fn environments(&self, function: &str) -> Result<Vec<Value>> {
        let all = self
            .get(&format!("/_emulator/environments?function={function}"))
            .await?;
        Ok(all.as_array().cloned().unwrap_or_default())
    }
}
