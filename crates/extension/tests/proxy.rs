//! The proxy between a runtime and a fake Runtime API, in process: what is
//! forwarded unchanged (everything but the faults) and what each fault does
//! on `/next`. The end-to-end rows (a real Python handler under the local
//! stack's emulator) are in tests/tests/lambda_layer.rs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use inject::{Injector, SeededDice, StaticSource};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use turbulence_extension::{start, Settings};

const NEXT: &str = "/2018-06-01/runtime/invocation/next";

/// What the fake Runtime API was sent.
#[derive(Debug, Clone)]
struct Post {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    trailers: Option<HeaderMap>,
}

/// A Runtime API: hands out queued events on `/next`, records the rest.
struct Upstream {
    addr: SocketAddr,
    events: mpsc::UnboundedSender<(String, u128, Bytes)>,
    posts: Arc<Mutex<Vec<Post>>>,
}

impl Upstream {
    async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (events, queue) = mpsc::unbounded_channel::<(String, u128, Bytes)>();
        let queue = Arc::new(tokio::sync::Mutex::new(queue));
        let posts: Arc<Mutex<Vec<Post>>> = Arc::default();
        let recorded = Arc::clone(&posts);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (queue, posts) = (Arc::clone(&queue), Arc::clone(&recorded));
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let (queue, posts) = (Arc::clone(&queue), Arc::clone(&posts));
                        async move {
                            let path = request.uri().path().to_string();
                            if path == NEXT {
                                let (id, deadline, body) =
                                    queue.lock().await.recv().await.expect("an event");
                                let response = Response::builder()
                                    .header("Content-Type", "application/json")
                                    .header("Lambda-Runtime-Aws-Request-Id", id)
                                    .header("Lambda-Runtime-Deadline-Ms", deadline.to_string())
                                    .header(
                                        "Lambda-Runtime-Invoked-Function-Arn",
                                        "arn:aws:lambda:us-east-1:123456789012:function:f",
                                    )
                                    .header(
                                        "Lambda-Runtime-Trace-Id",
                                        "Root=1-5e1b4151-5ac6c58f5b5daa1d2b1e2f3a;Sampled=0",
                                    )
                                    .body(Full::new(body))
                                    .unwrap();
                                return Ok::<_, Infallible>(response);
                            }
                            let (head, body) = request.into_parts();
                            let collected = body.collect().await.unwrap();
                            let trailers = collected.trailers().cloned();
                            posts.lock().unwrap().push(Post {
                                path,
                                headers: head.headers,
                                body: collected.to_bytes(),
                                trailers,
                            });
                            Ok(Response::builder()
                                .status(StatusCode::ACCEPTED)
                                .header("Content-Type", "application/json")
                                .body(Full::new(Bytes::from_static(b"{\"status\":\"OK\"}")))
                                .unwrap())
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream {
            addr,
            events,
            posts,
        }
    }

    fn event(&self, id: &str, deadline_in: Duration, body: Value) {
        let deadline = (SystemTime::now() + deadline_in)
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis();
        self.events
            .send((id.to_string(), deadline, Bytes::from(body.to_string())))
            .unwrap();
    }

    fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }
}

/// The proxy over `upstream` with this configuration (`None`: no parameter).
async fn proxy(upstream: &Upstream, config: Option<Value>) -> SocketAddr {
    let vars: HashMap<&str, String> =
        HashMap::from([("AWS_LAMBDA_RUNTIME_API", upstream.addr.to_string())]);
    let settings = Settings::from_vars(|name| vars.get(name).cloned());
    let injector = config.map(|c| {
        Injector::builder(StaticSource::new(c.to_string()))
            .dice(SeededDice::new(7))
            .build()
    });
    let (listener, addr, proxy) = start(&settings, injector).await.expect("started");
    tokio::spawn(proxy.serve(listener));
    addr
}

type Runtime = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn runtime() -> Runtime {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn next(runtime: &Runtime, proxy: SocketAddr) -> (http::response::Parts, Bytes) {
    let response = runtime
        .get(format!("http://{proxy}{NEXT}").parse().unwrap())
        .await
        .expect("next answers");
    let (head, body) = response.into_parts();
    (head, body.collect().await.unwrap().to_bytes())
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

// ---- pass-through ----------------------------------------------------------

#[tokio::test]
async fn without_faults_the_event_and_its_headers_come_through_unchanged() {
    let upstream = Upstream::start().await;
    for config in [
        None,
        Some(json!({})),
        Some(json!({"exception": {"enabled": true, "percentage": 0}})),
    ] {
        let addr = proxy(&upstream, config.clone()).await;
        let event = json!({"body": "{\"text\": \"hi\"}", "n": [1, 2, 3]});
        upstream.event("id-1", Duration::from_secs(30), event.clone());
        let (head, body) = next(&runtime(), addr).await;
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(body, Bytes::from(event.to_string()), "{config:?}");
        assert_eq!(header(&head.headers, "content-type"), "application/json");
        assert_eq!(
            header(&head.headers, "lambda-runtime-aws-request-id"),
            "id-1"
        );
        assert!(header(&head.headers, "lambda-runtime-deadline-ms")
            .parse::<u64>()
            .is_ok());
        assert_eq!(
            header(&head.headers, "lambda-runtime-trace-id"),
            "Root=1-5e1b4151-5ac6c58f5b5daa1d2b1e2f3a;Sampled=0"
        );
    }
    assert!(
        upstream.posts().is_empty(),
        "nothing was answered for the handler"
    );
}

#[tokio::test]
async fn responses_and_errors_are_forwarded_with_every_header() {
    let upstream = Upstream::start().await;
    let addr = proxy(&upstream, Some(json!({}))).await;
    let runtime = runtime();
    let cause = r#"{"working_directory":"/var/task","exceptions":[{"type":"ValueError","message":"bad"}],"paths":["/var/task/app.py"]}"#;
    let error = Request::post(format!(
        "http://{addr}/2018-06-01/runtime/invocation/id-2/error"
    ))
    .header("Content-Type", "application/json")
    .header("Lambda-Runtime-Function-Error-Type", "ValueError")
    .header("Lambda-Runtime-Function-XRay-Error-Cause", cause)
    .body(Full::new(Bytes::from_static(
        br#"{"errorMessage":"bad","errorType":"ValueError","stackTrace":["x"]}"#,
    )))
    .unwrap();
    let answer = runtime.request(error).await.unwrap();
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let big = Bytes::from(vec![b'x'; 5 * 1024 * 1024]);
    let response = Request::post(format!(
        "http://{addr}/2018-06-01/runtime/invocation/id-3/response"
    ))
    .body(Full::new(big.clone()))
    .unwrap();
    assert_eq!(
        runtime.request(response).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let posts = upstream.posts();
    assert_eq!(posts[0].path, "/2018-06-01/runtime/invocation/id-2/error");
    assert_eq!(
        header(&posts[0].headers, "lambda-runtime-function-error-type"),
        "ValueError"
    );
    assert_eq!(
        header(
            &posts[0].headers,
            "lambda-runtime-function-xray-error-cause"
        ),
        cause
    );
    assert_eq!(
        posts[0].body,
        Bytes::from_static(
            br#"{"errorMessage":"bad","errorType":"ValueError","stackTrace":["x"]}"#
        )
    );
    assert_eq!(posts[1].body, big, "5 MB, byte for byte");
}

#[tokio::test]
async fn a_streamed_response_keeps_its_mode_and_trailers() {
    let upstream = Upstream::start().await;
    let addr = proxy(&upstream, Some(json!({}))).await;
    let mut trailers = HeaderMap::new();
    trailers.insert(
        "Lambda-Runtime-Function-Error-Type",
        "Runtime.StreamError".parse().unwrap(),
    );
    trailers.insert(
        "Lambda-Runtime-Function-Error-Body",
        "eyJlcnJvciI6ImJvb20ifQ==".parse().unwrap(),
    );
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![
        Ok(Frame::data(Bytes::from_static(b"chunk one,"))),
        Ok(Frame::data(Bytes::from_static(b"chunk two"))),
        Ok(Frame::trailers(trailers)),
    ];
    let body = StreamBody::new(futures_util::stream::iter(frames));
    let request = Request::post(format!(
        "http://{addr}/2018-06-01/runtime/invocation/id-4/response"
    ))
    .header("Lambda-Runtime-Function-Response-Mode", "streaming")
    .header("Transfer-Encoding", "chunked")
    .header(
        "Trailer",
        "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
    )
    .body(body)
    .unwrap();
    let client: Client<_, StreamBody<_>> = Client::builder(TokioExecutor::new()).build_http();
    assert_eq!(
        client.request(request).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let posts = upstream.posts();
    assert_eq!(posts[0].body, Bytes::from_static(b"chunk one,chunk two"));
    assert_eq!(
        header(&posts[0].headers, "lambda-runtime-function-response-mode"),
        "streaming"
    );
    let trailers = posts[0].trailers.as_ref().expect("trailers arrived");
    assert_eq!(
        header(trailers, "lambda-runtime-function-error-type"),
        "Runtime.StreamError"
    );
    assert_eq!(
        header(trailers, "lambda-runtime-function-error-body"),
        "eyJlcnJvciI6ImJvb20ifQ=="
    );
}

#[tokio::test]
async fn header_names_keep_their_case_on_the_wire() {
    // A raw Runtime API: read the request head as bytes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = listener.local_addr().unwrap();
    let (seen, mut heads) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            head.extend_from_slice(&buf[..n]);
        }
        seen.send(String::from_utf8_lossy(&head).into_owned())
            .unwrap();
        stream
            .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
    });
    let vars: HashMap<&str, String> =
        HashMap::from([("AWS_LAMBDA_RUNTIME_API", upstream_addr.to_string())]);
    let settings = Settings::from_vars(|name| vars.get(name).cloned());
    let (listener, addr, proxy) = start(&settings, None).await.unwrap();
    tokio::spawn(proxy.serve(listener));
    let mut runtime = tokio::net::TcpStream::connect(addr).await.unwrap();
    runtime
        .write_all(
            b"POST /2018-06-01/runtime/invocation/id-5/response HTTP/1.1\r\nHost: x\r\n\
              Lambda-Runtime-Function-Response-Mode: buffered\r\nX-Custom-Header: Yes\r\n\
              Content-Length: 2\r\n\r\n{}",
        )
        .await
        .unwrap();
    let head = heads.recv().await.unwrap();
    assert!(
        head.contains("\r\nLambda-Runtime-Function-Response-Mode: buffered\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nX-Custom-Header: Yes\r\n"), "{head}");
}

#[tokio::test]
async fn several_next_polls_are_in_flight_at_once() {
    let upstream = Upstream::start().await;
    let addr = proxy(&upstream, Some(json!({}))).await;
    let runtime = runtime();
    // Four workers poll before any event exists.
    let polls: Vec<_> = (0..4)
        .map(|_| {
            let runtime = runtime.clone();
            tokio::spawn(async move { next(&runtime, addr).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..4 {
        upstream.event(&format!("id-{i}"), Duration::from_secs(30), json!({"i": i}));
    }
    let mut ids = Vec::new();
    for poll in polls {
        let (head, _) = tokio::time::timeout(Duration::from_secs(5), poll)
            .await
            .expect("every poll got an event")
            .unwrap();
        ids.push(header(&head.headers, "lambda-runtime-aws-request-id").to_string());
    }
    ids.sort();
    assert_eq!(ids, ["id-0", "id-1", "id-2", "id-3"]);
}

// ---- faults on /next -------------------------------------------------------

#[tokio::test]
async fn a_status_code_is_answered_upstream_and_the_handler_gets_the_next_event() {
    let upstream = Upstream::start().await;
    let addr = proxy(
        &upstream,
        Some(json!({"statuscode": {"enabled": true, "status_code": 503,
                                   "match": [{"path": "inject", "value": true}]}})),
    )
    .await;
    upstream.event("injected", Duration::from_secs(30), json!({"inject": true}));
    upstream.event("spared", Duration::from_secs(30), json!({"inject": false}));
    let (head, body) = next(&runtime(), addr).await;
    assert_eq!(
        header(&head.headers, "lambda-runtime-aws-request-id"),
        "spared"
    );
    assert_eq!(body, Bytes::from(json!({"inject": false}).to_string()));
    let posts = upstream.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0].path,
        "/2018-06-01/runtime/invocation/injected/response"
    );
    let answered: Value = serde_json::from_slice(&posts[0].body).unwrap();
    assert_eq!(
        answered,
        json!({"statusCode": 503, "headers": {"Content-Type": "application/json"},
               "body": "{\"message\":\"Injected status code 503\"}"})
    );
}

#[tokio::test]
async fn an_exception_is_posted_as_an_injected_fault_error() {
    let upstream = Upstream::start().await;
    let addr = proxy(
        &upstream,
        Some(
            json!({"exception": {"enabled": true, "exception_msg": "model down"},
                    "expires_at": "2100-01-01T00:00:00Z"}),
        ),
    )
    .await;
    upstream.event("boom", Duration::from_secs(30), json!({}));
    let poll = tokio::spawn(async move { next(&runtime(), addr).await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while upstream.posts().is_empty() {
        assert!(Instant::now() < deadline, "nothing was posted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    poll.abort();
    let post = &upstream.posts()[0];
    assert_eq!(post.path, "/2018-06-01/runtime/invocation/boom/error");
    assert_eq!(
        header(&post.headers, "lambda-runtime-function-error-type"),
        "InjectedFault"
    );
    let error: Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(error["errorType"], "InjectedFault");
    assert_eq!(error["errorMessage"], "model down");
}

#[tokio::test]
async fn latency_is_slept_before_the_handler_and_capped_below_the_deadline() {
    let upstream = Upstream::start().await;
    let addr = proxy(
        &upstream,
        Some(json!({"latency": {"enabled": true, "min_latency": 5000, "max_latency": 5000}})),
    )
    .await;
    // The deadline is 600 ms away: the sleep stops 100 ms before it.
    upstream.event("slow", Duration::from_millis(600), json!({}));
    let started = Instant::now();
    let (head, _) = next(&runtime(), addr).await;
    let took = started.elapsed();
    assert_eq!(
        header(&head.headers, "lambda-runtime-aws-request-id"),
        "slow"
    );
    assert!(
        (Duration::from_millis(400)..Duration::from_millis(600)).contains(&took),
        "{took:?}"
    );
    assert!(upstream.posts().is_empty());
}

#[tokio::test]
async fn an_expired_configuration_injects_nothing() {
    let upstream = Upstream::start().await;
    let addr = proxy(
        &upstream,
        Some(json!({"exception": {"enabled": true}, "expires_at": "2001-01-01T00:00:00Z"})),
    )
    .await;
    upstream.event("calm", Duration::from_secs(30), json!({}));
    let (head, _) = next(&runtime(), addr).await;
    assert_eq!(
        header(&head.headers, "lambda-runtime-aws-request-id"),
        "calm"
    );
    assert!(upstream.posts().is_empty());
}

#[tokio::test]
async fn without_a_runtime_api_or_with_its_port_taken_the_proxy_does_not_start() {
    let settings = Settings::from_vars(|_| None);
    assert!(start(&settings, None).await.is_err(), "no Runtime API");
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let vars: HashMap<&str, String> = HashMap::from([
        ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001".to_string()),
        ("TURBULENCE_PROXY_PORT", port),
    ]);
    let settings = Settings::from_vars(|name| vars.get(name).cloned());
    let err = start(&settings, None)
        .await
        .err()
        .expect("the port is taken");
    assert!(err.to_string().contains("cannot listen"), "{err}");
}
