//! The configuration source of the proxy: SSM `GetParameter` (with
//! decryption) over the proxy's own hyper client, signed with `aws-sigv4`
//! using the credentials Lambda puts in the runtime's environment. The AWS
//! SDK would do the same for twice the layer's size and a slower start.
//!
//! Every failure is a [`SourceError`] whose text does not vary between
//! calls (no request ids), so the injector logs each reason once.

use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{ConfigBuilderExt, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use inject::{ConfigSource, SourceError};
use serde_json::Value;

use crate::settings::Aws;

/// SSM answers a GetParameter in well under this; more is not an answer.
const MAX_ANSWER_BYTES: usize = 1 << 20;

type Https = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One SSM parameter, read with a signed GetParameter.
pub struct SsmParameter {
    name: String,
    aws: Aws,
    endpoint: Option<String>,
    /// Built on the first fetch: loading the root certificates takes
    /// milliseconds that a cold start should not pay.
    client: OnceLock<Https>,
}

impl SsmParameter {
    pub fn new(name: impl Into<String>, aws: Aws) -> Self {
        SsmParameter {
            name: name.into(),
            endpoint: aws.ssm_endpoint(),
            aws,
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> &Https {
        self.client.get_or_init(|| {
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_nodelay(true);
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls_config())
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            Client::builder(TokioExecutor::new()).build(connector)
        })
    }

    fn request(&self) -> Result<Request<Full<Bytes>>, SourceError> {
        let fail = |what: &str| SourceError(format!("GetParameter {}: {what}", self.name));
        let endpoint = self
            .endpoint
            .as_deref()
            .ok_or_else(|| fail("no AWS_REGION (or AWS_ENDPOINT_URL) in the environment"))?;
        let (Some(key), Some(secret)) = (&self.aws.access_key_id, &self.aws.secret_access_key)
        else {
            return Err(fail(
                "no credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)",
            ));
        };
        let region = self.aws.region.as_deref().unwrap_or("us-east-1");
        let uri: Uri = format!("{endpoint}/")
            .parse()
            .map_err(|_| fail("the SSM endpoint is not a URL"))?;
        let host = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .ok_or_else(|| fail("the SSM endpoint has no host"))?;
        let body = serde_json::json!({"Name": self.name, "WithDecryption": true}).to_string();
        let headers = [
            ("host", host.as_str()),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "AmazonSSM.GetParameter"),
        ];
        let mut request = Request::post(uri.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let mut request = request
            .body(Full::new(Bytes::from(body.clone())))
            .map_err(|_| fail("cannot build the request"))?;

        let identity: Identity = Credentials::new(
            key.clone(),
            secret.clone(),
            self.aws.session_token.clone(),
            None,
            "lambda-environment",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("ssm")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|_| fail("cannot sign the request"))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            uri.to_string(),
            headers.into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|_| fail("cannot sign the request"))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|_| fail("cannot sign the request"))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }
}

/// TLS with the system's root certificates (Lambda's CA bundle).
fn tls_config() -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = || {
        rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports the default TLS versions")
    };
    match builder().with_native_roots() {
        Ok(with_roots) => with_roots.with_no_client_auth(),
        // No system roots: every https fetch fails its handshake, which
        // injects nothing.
        Err(_) => builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    }
}

impl ConfigSource for SsmParameter {
    async fn fetch(&self) -> Result<Option<String>, SourceError> {
        let fail = |what: String| SourceError(format!("GetParameter {}: {what}", self.name));
        let request = self.request()?;
        let response = self
            .client()
            .request(request)
            .await
            .map_err(|e| fail(format!("cannot reach SSM: {}", connect_error(&e))))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|_| fail("the answer was cut off or too long".into()))?
            .to_bytes();
        let json: Value = serde_json::from_slice(&body)
            .map_err(|_| fail(format!("HTTP {}: the answer is not JSON", status.as_u16())))?;
        if status.is_success() {
            return Ok(json["Parameter"]["Value"].as_str().map(str::to_string));
        }
        let kind = json["__type"].as_str().unwrap_or("unknown error");
        // `com.amazonaws.ssm#ParameterNotFound` or `ParameterNotFound`.
        let kind = kind.rsplit('#').next().unwrap_or(kind);
        if kind == "ParameterNotFound" {
            return Ok(None);
        }
        let message = json["message"]
            .as_str()
            .or_else(|| json["Message"].as_str())
            .unwrap_or("");
        Err(fail(format!("HTTP {} {kind}: {message}", status.as_u16())))
    }

    fn describe(&self) -> String {
        format!("SSM parameter {}", self.name)
    }
}

/// The innermost cause of a client error (the legacy client's own text is
/// only "client error (Connect)").
fn connect_error(e: &hyper_util::client::legacy::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(inner) = source.source() {
        source = inner;
    }
    source.to_string()
}
