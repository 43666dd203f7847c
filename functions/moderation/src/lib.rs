//! Moderation: the demo target of the Lambda fault-injection experiment, a
//! stand-in for the write-up's ML moderation service behind API Gateway.
//!
//! `POST {"text": "..."}` answers 200 with `{"verdict":"approved"}`, or
//! `{"verdict":"rejected","reasons":[...]}` when the text contains a
//! blocked word; a body that is not such JSON answers 400. It never fails
//! on its own: every 5XX or error it returns is injected by the layer.

use lambda_runtime::LambdaEvent;
use serde_json::{json, Value};
use std::convert::Infallible;

/// The "model": words that get a text rejected (whole words, any case).
pub const BLOCKED_WORDS: &[&str] = &["scam", "spam", "phishing", "malware"];

/// The handler: an API Gateway proxy event (REST or HTTP API) in, a proxy
/// response out.
pub async fn handler(event: LambdaEvent<Value>) -> Result<Value, Infallible> {
    Ok(moderate(&event.payload))
}

/// The moderation of one proxy event.
pub fn moderate(event: &Value) -> Value {
    let text = match read_text(event) {
        Ok(text) => text,
        Err(problem) => return respond(400, &json!({"message": problem})),
    };
    let reasons: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter_map(|word| {
            BLOCKED_WORDS
                .iter()
                .find(|blocked| word.eq_ignore_ascii_case(blocked))
                .copied()
        })
        .collect();
    if reasons.is_empty() {
        respond(200, &json!({"verdict": "approved"}))
    } else {
        respond(200, &json!({"verdict": "rejected", "reasons": reasons}))
    }
}

fn read_text(event: &Value) -> Result<String, &'static str> {
    if event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        return Err("send the body as JSON text, not base64");
    }
    let body = event
        .get("body")
        .and_then(Value::as_str)
        .ok_or("missing body: send {\"text\": \"...\"}")?;
    let body: Value = serde_json::from_str(body).map_err(|_| "the body is not JSON")?;
    body.get("text")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or("the body must be an object with a string \"text\"")
}

fn respond(status: u16, body: &Value) -> Value {
    json!({
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": body.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use inject::{FaultLayer, SeededDice, StaticSource};
    use lambda_runtime::tower::{service_fn, ServiceBuilder, ServiceExt};
    use lambda_runtime::{Context, Diagnostic};

    fn request(body: &str) -> Value {
        json!({"httpMethod": "POST", "path": "/moderate", "body": body, "isBase64Encoded": false})
    }

    fn verdict(response: &Value) -> (u64, Value) {
        let body = response["body"].as_str().expect("a string body");
        (
            response["statusCode"].as_u64().expect("a status"),
            serde_json::from_str(body).expect("a JSON body"),
        )
    }

    #[test]
    fn clean_text_is_approved() {
        let response = moderate(&request(r#"{"text": "Lovely bricks, thank you!"}"#));
        assert_eq!(response["headers"]["Content-Type"], "application/json");
        assert_eq!(verdict(&response), (200, json!({"verdict": "approved"})));
    }

    #[test]
    fn blocked_words_are_rejected_with_reasons() {
        let response = moderate(&request(r#"{"text": "Free bricks! Not a SCAM, no spam."}"#));
        assert_eq!(
            verdict(&response),
            (
                200,
                json!({"verdict": "rejected", "reasons": ["scam", "spam"]})
            )
        );
        // Whole words only.
        let response = moderate(&request(r#"{"text": "spammer"}"#));
        assert_eq!(verdict(&response).1["verdict"], "approved");
    }

    #[test]
    fn a_malformed_request_is_a_400() {
        for event in [
            request("not json"),
            request(r#"{"txt": "hi"}"#),
            request(r#"{"text": 5}"#),
            request("[]"),
            json!({"httpMethod": "POST"}),
            json!({"body": "{}", "isBase64Encoded": true}),
            json!(null),
        ] {
            assert_eq!(verdict(&moderate(&event)).0, 400, "{event}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn wrapped_like_main_it_answers_injected_faults() {
        let compose = |config: &str| {
            let layer = FaultLayer::builder(StaticSource::new(config))
                .dice(SeededDice::new(1))
                .build();
            ServiceBuilder::new()
                .layer(layer)
                .service(service_fn(handler))
        };
        let event = || LambdaEvent::new(request(r#"{"text": "hi"}"#), Context::default());

        let ok = compose("{}").oneshot(event()).await.expect("answers");
        assert_eq!(verdict(&ok), (200, json!({"verdict": "approved"})));

        let status = compose(r#"{"statuscode": {"enabled": true, "status_code": 503}}"#)
            .oneshot(event())
            .await
            .expect("answers");
        assert_eq!(
            verdict(&status),
            (503, json!({"message": "Injected status code 503"}))
        );

        let err = compose(r#"{"exception": {"enabled": true, "exception_msg": "model down"}}"#)
            .oneshot(event())
            .await
            .expect_err("fails");
        assert_eq!(Diagnostic::from(err).error_type, "InjectedFault");

        let start = tokio::time::Instant::now();
        let slow =
            compose(r#"{"latency": {"enabled": true, "min_latency": 1500, "max_latency": 1500}}"#)
                .oneshot(event())
                .await
                .expect("answers");
        assert_eq!(start.elapsed(), std::time::Duration::from_millis(1500));
        assert_eq!(verdict(&slow).0, 200);
    }
}
