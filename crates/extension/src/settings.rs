//! Everything the proxy reads from its environment, read once at start.

/// The Runtime API the runtime would have used (`host:port`).
pub const RUNTIME_API_VAR: &str = "AWS_LAMBDA_RUNTIME_API";
/// The proxy's port on 127.0.0.1; unset or 0: one the kernel picks, so no
/// other process can hold it. The wrapper learns it through the pipe.
pub const PORT_VAR: &str = "TURBULENCE_PROXY_PORT";

/// The proxy's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the real Runtime API is: `AWS_LAMBDA_RUNTIME_API`.
    pub upstream: Option<String>,
    pub port: u16,
    /// The injector's: parameter, TTL, jitter (`FAILURE_*`).
    pub inject: inject::Settings,
    pub aws: Aws,
    /// `AWS_LAMBDA_LOG_LEVEL` (the runtime's own level), default INFO.
    pub log_level: tracing::Level,
}

/// What a signed GetParameter needs: the credentials and Region Lambda gives
/// the runtime, and the endpoint (`AWS_ENDPOINT_URL_SSM`, else
/// `AWS_ENDPOINT_URL`, else SSM's public endpoint of the Region).
#[derive(Clone)]
pub struct Aws {
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Aws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys.
        f.debug_struct("Aws")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.access_key_id.is_some())
            .finish()
    }
}

impl Aws {
    /// The SSM endpoint to call.
    pub fn ssm_endpoint(&self) -> Option<String> {
        if let Some(url) = &self.endpoint {
            return Some(url.trim_end_matches('/').to_string());
        }
        let region = self.region.as_deref()?;
        let suffix = match region.starts_with("cn-") {
            true => "amazonaws.com.cn",
            false => "amazonaws.com",
        };
        Some(format!("https://ssm.{region}.{suffix}"))
    }
}

impl Settings {
    pub fn from_env() -> Settings {
        Settings::from_vars(|name| std::env::var(name).ok())
    }

    /// From any variable lookup (tests pass a map, not the process env).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Settings {
        let present = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let port = match present(PORT_VAR) {
            None => 0,
            Some(raw) => raw.trim().parse().unwrap_or_else(|_| {
                tracing::warn!("{PORT_VAR}={raw:?} is not a port; letting the kernel pick one");
                0
            }),
        };
        let log_level = present("AWS_LAMBDA_LOG_LEVEL")
            .and_then(|l| match l.trim().to_ascii_uppercase().as_str() {
                "TRACE" => Some(tracing::Level::TRACE),
                "DEBUG" => Some(tracing::Level::DEBUG),
                "INFO" => Some(tracing::Level::INFO),
                "WARN" => Some(tracing::Level::WARN),
                "ERROR" | "FATAL" => Some(tracing::Level::ERROR),
                _ => None,
            })
            .unwrap_or(tracing::Level::INFO);
        Settings {
            upstream: present(RUNTIME_API_VAR),
            port,
            inject: inject::Settings::from_vars(&var),
            aws: Aws {
                region: present("AWS_REGION").or_else(|| present("AWS_DEFAULT_REGION")),
                endpoint: present("AWS_ENDPOINT_URL_SSM").or_else(|| present("AWS_ENDPOINT_URL")),
                access_key_id: present("AWS_ACCESS_KEY_ID"),
                secret_access_key: present("AWS_SECRET_ACCESS_KEY"),
                session_token: present("AWS_SESSION_TOKEN"),
            },
            log_level,
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
    fn the_ssm_endpoint_is_the_override_else_the_regions() {
        let s = settings(&[("AWS_REGION", "eu-west-1")]);
        assert_eq!(
            s.aws.ssm_endpoint().as_deref(),
            Some("https://ssm.eu-west-1.amazonaws.com")
        );
        let s = settings(&[("AWS_REGION", "cn-north-1")]);
        assert_eq!(
            s.aws.ssm_endpoint().as_deref(),
            Some("https://ssm.cn-north-1.amazonaws.com.cn")
        );
        let s = settings(&[
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/"),
        ]);
        assert_eq!(
            s.aws.ssm_endpoint().as_deref(),
            Some("http://127.0.0.1:5000")
        );
        let s = settings(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:5001"),
        ]);
        assert_eq!(
            s.aws.ssm_endpoint().as_deref(),
            Some("http://127.0.0.1:5001")
        );
        assert_eq!(settings(&[]).aws.ssm_endpoint(), None);
    }

    #[test]
    fn the_port_defaults_to_one_the_kernel_picks() {
        assert_eq!(settings(&[]).port, 0);
        assert_eq!(settings(&[(PORT_VAR, "9140")]).port, 9140);
        assert_eq!(settings(&[(PORT_VAR, "lots")]).port, 0);
    }

    #[test]
    fn keys_never_show_in_debug_output() {
        let s = settings(&[
            ("AWS_ACCESS_KEY_ID", "AKIDSECRETID"),
            ("AWS_SECRET_ACCESS_KEY", "verysecret"),
            ("AWS_SESSION_TOKEN", "token"),
        ]);
        let text = format!("{s:?}");
        for secret in ["AKIDSECRETID", "verysecret", "token"] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}
