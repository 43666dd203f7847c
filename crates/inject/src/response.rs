//! How an injected status code becomes the handler's response type.
//!
//! The layer answers a status without calling the handler, so it has to
//! build a value of the handler's response type. [`FaultResponse`] is that
//! one constructor. Types that cannot carry a status return `None`: the
//! statuscode mode is then skipped (and logged once), the others still work.
//! Implement it for your own response types.

use serde_json::{json, Value};

/// A response type the layer can build for an injected status code.
pub trait FaultResponse: Sized {
    /// The response for `status`, or `None` when this type has no status.
    fn injected_status(status: u16) -> Option<Self>;
}

/// The body of an injected response: `{"message":"Injected status code N"}`.
pub fn injected_body(status: u16) -> String {
    format!(r#"{{"message":"Injected status code {status}"}}"#)
}

/// An API Gateway (or function URL, or ALB) proxy response:
/// `{"statusCode":N,"headers":{"Content-Type":"application/json"},"body":"{\"message\":\"Injected status code N\"}"}`.
impl FaultResponse for Value {
    fn injected_status(status: u16) -> Option<Self> {
        Some(json!({
            "statusCode": status,
            "headers": {"Content-Type": "application/json"},
            "body": injected_body(status),
        }))
    }
}

macro_rules! no_status {
    ($($t:ty),*) => {$(
        /// Cannot carry a status: statuscode is skipped.
        impl FaultResponse for $t {
            fn injected_status(_: u16) -> Option<Self> {
                None
            }
        }
    )*};
}

no_status!((), String, Vec<u8>, bool);

#[cfg(feature = "apigw")]
mod apigw {
    use super::{injected_body, FaultResponse};
    use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayV2httpResponse};
    use aws_lambda_events::encodings::Body;
    use aws_lambda_events::http::{header::CONTENT_TYPE, HeaderMap, HeaderValue};

    fn headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers
    }

    /// REST API (v1) proxy response.
    impl FaultResponse for ApiGatewayProxyResponse {
        fn injected_status(status: u16) -> Option<Self> {
            let mut response = ApiGatewayProxyResponse::default();
            response.status_code = i64::from(status);
            response.headers = headers();
            response.body = Some(Body::Text(injected_body(status)));
            Some(response)
        }
    }

    /// HTTP API (v2) and function URL response.
    impl FaultResponse for ApiGatewayV2httpResponse {
        fn injected_status(status: u16) -> Option<Self> {
            let mut response = ApiGatewayV2httpResponse::default();
            response.status_code = i64::from(status);
            response.headers = headers();
            response.body = Some(Body::Text(injected_body(status)));
            Some(response)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_response_is_the_api_gateway_shape() {
        let response = Value::injected_status(503).expect("json carries a status");
        let expected = r#"{"statusCode":503,"headers":{"Content-Type":"application/json"},"body":"{\"message\":\"Injected status code 503\"}"}"#;
        let expected: Value = serde_json::from_str(expected).expect("json");
        assert_eq!(response, expected);
        assert_eq!(String::injected_status(503), None);
    }

    #[cfg(feature = "apigw")]
    #[test]
    fn api_gateway_responses_carry_the_status() {
        use aws_lambda_events::apigw::ApiGatewayProxyResponse;
        let response = ApiGatewayProxyResponse::injected_status(404).expect("carries a status");
        let json = serde_json::to_value(&response).expect("serializes");
        assert_eq!(json["statusCode"], 404);
        assert_eq!(json["headers"]["content-type"], "application/json");
        assert_eq!(json["body"], r#"{"message":"Injected status code 404"}"#);
    }
}
