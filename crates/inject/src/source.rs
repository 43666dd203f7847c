//! Where the configuration text comes from, behind a trait: SSM in Lambda
//! (feature `ssm` here; the Runtime API proxy signs its own GetParameter),
//! a fixed value in tests and local runs. And the environment variables
//! that switch injection on and tune its cache, read once.

use std::future::Future;
use std::time::Duration;

/// Names the parameter holding the configuration (failure-lambda's name).
pub const PARAM_VAR: &str = "FAILURE_INJECTION_PARAM";
/// chaos_lambda's name for it, read when the first is unset.
pub const LEGACY_PARAM_VAR: &str = "CHAOS_PARAM";
/// Seconds the configuration is cached per execution environment.
pub const TTL_VAR: &str = "FAILURE_CACHE_TTL";
/// Short, so chaos stops within seconds of the experiment's cleanup
/// (failure-lambda uses 60 s).
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);
/// `FAILURE_CACHE_TTL` is not taken below this: the SSM quota is shared by
/// the account (40 GetParameter/s by default).
pub const MIN_ENV_TTL: Duration = Duration::from_secs(1);
/// The part of the TTL (0–1) an environment's first refresh comes early by,
/// at random, so environments started together do not read in step.
pub const JITTER_VAR: &str = "FAILURE_CACHE_JITTER";
pub const DEFAULT_JITTER: f64 = 0.5;

/// A place the configuration is read from.
///
/// `Ok(None)` means "no configuration" (e.g. SSM's ParameterNotFound);
/// both it and an error inject nothing.
pub trait ConfigSource: Send + Sync + 'static {
    fn fetch(&self) -> impl Future<Output = Result<Option<String>, SourceError>> + Send;

    /// For logs: where the configuration is read from.
    fn describe(&self) -> String {
        "configuration source".to_string()
    }
}

/// The source could not be read. The message should not vary between
/// calls (no request IDs): it is logged once per distinct message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// A fixed configuration (or none): tests, local runs, benchmarks.
#[derive(Debug, Clone, Default)]
pub struct StaticSource(Option<String>);

impl StaticSource {
    pub fn new(config: impl Into<String>) -> Self {
        StaticSource(Some(config.into()))
    }

    /// No configuration, as when the parameter does not exist.
    pub fn missing() -> Self {
        StaticSource(None)
    }
}

impl ConfigSource for StaticSource {
    async fn fetch(&self) -> Result<Option<String>, SourceError> {
        Ok(self.0.clone())
    }

    fn describe(&self) -> String {
        "static configuration".to_string()
    }
}

/// The injector's settings from the environment, read once at start.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `FAILURE_INJECTION_PARAM`, else `CHAOS_PARAM`; `None`: injection is
    /// off (a pass-through).
    pub parameter: Option<String>,
    /// `FAILURE_CACHE_TTL` seconds (at least 1), else [`DEFAULT_TTL`].
    pub ttl: Duration,
    /// `FAILURE_CACHE_JITTER` (0–1), else [`DEFAULT_JITTER`].
    pub jitter: f64,
}

impl Settings {
    pub fn from_env() -> Settings {
        Settings::from_vars(|name| std::env::var(name).ok())
    }

    /// From any variable lookup (tests pass a map, not the process env).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Settings {
        let present = |name| var(name).filter(|v| !v.trim().is_empty());
        let parameter = present(PARAM_VAR).or_else(|| present(LEGACY_PARAM_VAR));
        let ttl = match present(TTL_VAR) {
            None => DEFAULT_TTL,
            Some(raw) => match raw.trim().parse::<f64>() {
                Ok(secs) if secs.is_finite() && secs >= MIN_ENV_TTL.as_secs_f64() => {
                    Duration::from_secs_f64(secs.min(86_400.0))
                }
                Ok(secs) if secs.is_finite() && secs >= 0.0 => {
                    tracing::warn!(
                        "{TTL_VAR}={raw}: below the {}s minimum that protects the SSM quota; using it",
                        MIN_ENV_TTL.as_secs()
                    );
                    MIN_ENV_TTL
                }
                _ => {
                    tracing::warn!(
                        "{TTL_VAR}={raw:?} is not a number of seconds; using {}s",
                        DEFAULT_TTL.as_secs()
                    );
                    DEFAULT_TTL
                }
            },
        };
        let jitter = match present(JITTER_VAR) {
            None => DEFAULT_JITTER,
            Some(raw) => match raw.trim().parse::<f64>() {
                Ok(j) if (0.0..=1.0).contains(&j) => j,
                _ => {
                    tracing::warn!(
                        "{JITTER_VAR}={raw:?} is not a fraction between 0 and 1; using {DEFAULT_JITTER}"
                    );
                    DEFAULT_JITTER
                }
            },
        };
        Settings {
            parameter,
            ttl,
            jitter,
        }
    }
}

#[cfg(feature = "ssm")]
pub use ssm::SsmSource;

#[cfg(feature = "ssm")]
mod ssm {
    use super::{ConfigSource, SourceError};
    use aws_sdk_ssm::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
    use aws_sdk_ssm::operation::get_parameter::GetParameterError;

    fn is_not_found<R>(e: &SdkError<GetParameterError, R>) -> bool {
        e.as_service_error()
            .is_some_and(GetParameterError::is_parameter_not_found)
            || e.code() == Some("ParameterNotFound")
    }

    /// An SSM parameter (String or SecureString), read with `GetParameter`
    /// (`WithDecryption`). Needs `ssm:GetParameter` on it (and `kms:Decrypt`
    /// for a SecureString under a customer key).
    #[derive(Debug, Clone)]
    pub struct SsmSource {
        client: aws_sdk_ssm::Client,
        name: String,
    }

    impl SsmSource {
        pub fn new(client: aws_sdk_ssm::Client, name: impl Into<String>) -> Self {
            SsmSource {
                client,
                name: name.into(),
            }
        }
    }

    impl ConfigSource for SsmSource {
        async fn fetch(&self) -> Result<Option<String>, SourceError> {
            let request = self
                .client
                .get_parameter()
                .name(&self.name)
                .with_decryption(true);
            match request.send().await {
                Ok(output) => Ok(output.parameter.and_then(|p| p.value)),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(SourceError(format!(
                    "GetParameter {}: {}",
                    self.name,
                    DisplayErrorContext(&e)
                ))),
            }
        }

        fn describe(&self) -> String {
            format!("SSM parameter {}", self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Settings {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_parameter_comes_from_failure_lambdas_variable_then_chaos_lambdas() {
        assert_eq!(settings(&[]).parameter, None);
        assert_eq!(settings(&[(PARAM_VAR, " ")]).parameter, None);
        assert_eq!(
            settings(&[(LEGACY_PARAM_VAR, "/chaos")])
                .parameter
                .as_deref(),
            Some("/chaos")
        );
        assert_eq!(
            settings(&[(PARAM_VAR, "/faults"), (LEGACY_PARAM_VAR, "/chaos")])
                .parameter
                .as_deref(),
            Some("/faults")
        );
    }

    #[test]
    fn the_ttl_defaults_to_five_seconds_and_is_at_least_one() {
        assert_eq!(settings(&[]).ttl, Duration::from_secs(5));
        assert_eq!(settings(&[(TTL_VAR, "60")]).ttl, Duration::from_secs(60));
        assert_eq!(
            settings(&[(TTL_VAR, "2.5")]).ttl,
            Duration::from_millis(2500)
        );
        assert_eq!(settings(&[(TTL_VAR, "0")]).ttl, Duration::from_secs(1));
        assert_eq!(settings(&[(TTL_VAR, "soon")]).ttl, DEFAULT_TTL);
        assert_eq!(settings(&[(TTL_VAR, "-3")]).ttl, DEFAULT_TTL);
        assert_eq!(settings(&[(TTL_VAR, "NaN")]).ttl, DEFAULT_TTL);
    }

    #[test]
    fn the_jitter_is_a_fraction_of_the_ttl() {
        assert_eq!(settings(&[]).jitter, DEFAULT_JITTER);
        assert_eq!(settings(&[(JITTER_VAR, "0")]).jitter, 0.0);
        assert_eq!(settings(&[(JITTER_VAR, "0.25")]).jitter, 0.25);
        assert_eq!(settings(&[(JITTER_VAR, "1")]).jitter, 1.0);
        for bad in ["2", "-0.1", "NaN", "lots"] {
            assert_eq!(
                settings(&[(JITTER_VAR, bad)]).jitter,
                DEFAULT_JITTER,
                "{bad}"
            );
        }
    }

    #[cfg(feature = "ssm")]
    mod ssm {
        use super::super::*;
        use aws_sdk_ssm::operation::get_parameter::{GetParameterError, GetParameterOutput};
        use aws_sdk_ssm::types::error::{InternalServerError, ParameterNotFound};
        use aws_sdk_ssm::types::Parameter;
        use aws_smithy_mocks::{mock, mock_client};

        #[tokio::test]
        async fn a_parameter_is_read_with_decryption() {
            let get = mock!(aws_sdk_ssm::Client::get_parameter)
                .match_requests(|r| {
                    r.name() == Some("/faults") && r.with_decryption() == Some(true)
                })
                .then_output(|| {
                    GetParameterOutput::builder()
                        .parameter(Parameter::builder().name("/faults").value("{}").build())
                        .build()
                });
            let source = SsmSource::new(mock_client!(aws_sdk_ssm, [&get]), "/faults");
            assert_eq!(source.fetch().await, Ok(Some("{}".to_string())));
            assert_eq!(source.describe(), "SSM parameter /faults");
        }

        #[tokio::test]
        async fn a_missing_parameter_is_no_configuration() {
            let get = mock!(aws_sdk_ssm::Client::get_parameter).then_error(|| {
                GetParameterError::ParameterNotFound(ParameterNotFound::builder().build())
            });
            let source = SsmSource::new(mock_client!(aws_sdk_ssm, [&get]), "/faults");
            assert_eq!(source.fetch().await, Ok(None));
        }

        #[tokio::test]
        async fn other_errors_are_source_errors_naming_the_parameter() {
            let get = mock!(aws_sdk_ssm::Client::get_parameter).then_error(|| {
                GetParameterError::InternalServerError(
                    InternalServerError::builder().message("try later").build(),
                )
            });
            let source = SsmSource::new(mock_client!(aws_sdk_ssm, [&get]), "/faults");
            let err = source.fetch().await.expect_err("an error");
            assert!(err.0.starts_with("GetParameter /faults: "), "{err}");
            assert!(err.0.contains("try later"), "{err}");
        }
    }
}
