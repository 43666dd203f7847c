//! The http probe over real sockets (127.0.0.1).

mod support;

use api_target::Mode;
use load::http::{HttpOutput, HttpProbe};
use load::{ErrorKind, LoadError};
use serde_json::json;

async fn probe(spec: serde_json::Value) -> Result<HttpOutput, LoadError> {
    HttpProbe::from_json(spec)?.run(&support::limits()).await
}

#[tokio::test]
async fn json_bodies_are_parsed_and_sent() {
    let (_app, url) = support::target(Mode::Fixed).await;
    let health = probe(json!({"url": format!("{url}/health")}))
        .await
        .unwrap();
    assert_eq!(health.status, 200);
    assert_eq!(health.body, json!({"status": "ok"}));
    assert_eq!(health.headers["content-type"], "application/json");

    // A JSON object body is sent as JSON (Content-Type added).
    let moderated = probe(json!({
        "url": format!("{url}/moderate"), "method": "post",
        "headers": {"Authorization": "Bearer demo-token"},
        "arguments": {"image_url": "https://example.com/person.jpg"},
        "timeout": 5
    }))
    .await
    .unwrap();
    assert_eq!(moderated.status, 200);
    assert_eq!(moderated.body["person_detected"], true);

    // A string body is sent as is: here, not JSON.
    let refused = probe(json!({
        "url": format!("{url}/moderate"), "method": "POST",
        "headers": {"Authorization": "Bearer demo-token", "Content-Type": "application/json"},
        "body": "{not json"
    }))
    .await
    .unwrap();
    assert_eq!(refused.status, 400);

    // Any status is an output, not an error.
    let missing = probe(json!({"url": format!("{url}/nope")})).await.unwrap();
    assert_eq!(missing.status, 404);
}

/// In a deployed stack (no opt-out), a name that resolves to loopback is
/// not connected to, though it is allow-listed and a server answers there.
#[tokio::test]
async fn a_name_resolving_to_loopback_is_never_connected_to() {
    let (app, url) = support::target(Mode::Fixed).await;
    let by_name = url.replace("127.0.0.1", "localhost");
    let deployed = load::Limits {
        allowed_hosts: vec!["localhost".into(), "127.0.0.1".into()],
        ..load::Limits::default()
    };
    let err = HttpProbe::from_json(json!({"url": format!("{by_name}/health")}))
        .unwrap()
        .run(&deployed)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("resolves to"), "{err}");
    assert!(err.to_string().contains("loopback"), "{err}");
    let err = HttpProbe::from_json(json!({"url": format!("{url}/health")}))
        .unwrap()
        .run(&deployed)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("never a target"), "{err}");
    assert_eq!(app.count(200), 0, "no request reached the server");
    // The local stack's opt-out reaches it.
    let local = load::Limits {
        allow_loopback: true,
        ..deployed
    };
    let ok = HttpProbe::from_json(json!({"url": format!("{by_name}/health")}))
        .unwrap()
        .run(&local)
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn other_bodies_are_strings() {
    let url = support::raw(
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nx-a: 1\r\nx-a: 2\r\ncontent-length: 5\r\n\r\nbusy!",
    )
    .await;
    let out = probe(json!({"url": url})).await.unwrap();
    assert_eq!(out.status, 503);
    assert_eq!(out.body, json!("busy!"));
    assert_eq!(out.headers["x-a"], "1, 2");
}

#[tokio::test]
async fn refuses_hosts_off_the_allow_list_and_reports_failures() {
    let err = probe(json!({"url": "http://169.254.169.254/latest/meta-data/"}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "HostNotAllowed");

    let err = probe(json!({"url": "http://127.0.0.1:1/", "verify_tsl": false}))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("unknown field `verify_tsl`"),
        "{err}"
    );

    let url = support::silent().await;
    let err = probe(json!({"url": url, "timeout_s": 0.2}))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Http {
                kind: ErrorKind::Timeout,
                ..
            }
        ),
        "{err}"
    );

    let url = support::refused().await;
    let err = probe(json!({"url": url})).await.unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Http {
                kind: ErrorKind::Connect,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.error_type(), "HttpRequestFailed");
}
