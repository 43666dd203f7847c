//! The turbulence-extension layer on the local stack: a real Python
//! handler (awslambdaric, tests/fixtures/lambda-python/handler.py) behind
//! the layer's wrapper and proxy, run by the Runtime API emulator and
//! invoked through moto's Lambda, as a team's function would be.
//!
//! - Pass-through is invisible: with the layer on and no configuration,
//!   the handler's result, its own error (type, message, X-Ray cause) and a
//!   5 MB response come back as they do without the layer.
//! - The fail-safe matrix: every way the configuration or the proxy can
//!   fail injects nothing, and the handler still answers. Each row prints
//!   `fail-safe row N (what): clean`; row 0 is the control (a working
//!   layer injects), so the others would have seen an injection.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use local::runtimes::{Emulator, Layer, PythonFunction};
use local::{unique_name, LocalStack};
use serde_json::{json, Value};
use tokio::sync::RwLock;

const FIXTURE: &str = "tests/fixtures/lambda-python";
const HANDLER: &str = "handler.handler";
const INVOCATIONS: usize = 5;
/// Every mode at 100 %: a working proxy answers 503 to every invocation.
const INJECT_ALL: &str =
    r#"{"statuscode": {"enabled": true, "status_code": 503}, "exception": {"enabled": true}}"#;

/// The throttling row arms a throttle of every SSM GetParameter on the
/// stack: it runs alone, the others together.
static SSM_THROTTLE: RwLock<()> = RwLock::const_new(());

struct Answer {
    payload: Vec<u8>,
    function_error: Option<String>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or(Value::Null)
    }
}

async fn invoke(local: &LocalStack, function: &str, event: &Value) -> Answer {
    let out = local
        .lambda()
        .invoke()
        .function_name(function)
        .payload(Blob::new(event.to_string()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("invoke {function}: {e:?}"));
    Answer {
        payload: out.payload.map(|p| p.into_inner()).unwrap_or_default(),
        function_error: out.function_error,
    }
}

async fn deploy(local: &LocalStack, function: PythonFunction) -> String {
    local
        .create_python_function(&function)
        .await
        .expect("deploy the function")
}

fn fixture(name: &str) -> PythonFunction {
    PythonFunction::new(unique_name(name), FIXTURE, HANDLER)
}

// ---- pass-through ---------------------------------------------------------------

#[tokio::test]
async fn with_the_layer_and_no_configuration_every_answer_is_unchanged() {
    let _shared = SSM_THROTTLE.read().await;
    let local = LocalStack::for_tests().await;
    let emulator = Emulator::from_env().expect("the emulator");
    let direct = deploy(&local, fixture("direct")).await;
    let parameter = format!("/turbulence/faults/{}", unique_name("none"));
    let proxied = deploy(&local, fixture("proxied").with_layer(&parameter)).await;

    // The proxy is in the path.
    invoke(&local, &proxied, &json!({"action": "echo"})).await;
    let envs = emulator.environments(&proxied).await.unwrap();
    assert!(
        envs.iter()
            .any(|e| e["processes"].to_string().contains("turbulence-ext")),
        "{envs:?}"
    );

    let cases = [
        json!({"action": "echo", "text": "Look at my new LEGO castle!", "n": [1, 2.5, null]}),
        json!({"action": "fail", "message": "moderation model unavailable"}),
        json!({"action": "big", "bytes": 5 * 1024 * 1024}),
    ];
    for case in &cases {
        let a = invoke(&local, &direct, case).await;
        let b = invoke(&local, &proxied, case).await;
        assert_eq!(a.function_error, b.function_error, "{case}");
        if a.function_error.is_some() {
            // awslambdaric's error names its invocation: all else is equal.
            let without_id = |answer: &Answer| {
                let mut json = answer.json();
                json.as_object_mut().map(|o| o.remove("requestId"));
                json
            };
            assert_eq!(without_id(&a), without_id(&b), "{case}");
        } else {
            assert!(
                a.payload == b.payload,
                "{case}: {} vs {} bytes",
                a.payload.len(),
                b.payload.len()
            );
        }
    }
    let echo = invoke(&local, &proxied, &cases[0]).await.json();
    assert_eq!(echo["event"], cases[0]);
    for seen in ["deadline_ahead", "arn_is_mine", "has_request_id"] {
        assert_eq!(echo[seen], true, "{seen}: {echo}");
    }
    let error = invoke(&local, &proxied, &cases[1]).await;
    assert_eq!(error.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(error.json()["errorType"], "ValueError");
    assert_eq!(error.json()["errorMessage"], "moderation model unavailable");
    let big = invoke(&local, &proxied, &cases[2]).await;
    assert_eq!(big.payload.len(), 5 * 1024 * 1024);

    // What reached the Runtime API: the same error type and X-Ray cause.
    let posted = |records: Vec<Value>| {
        records
            .into_iter()
            .filter(|r| r["outcome"] == "error")
            .map(|r| (r["error_type"].clone(), r["xray_cause"].clone()))
            .next_back()
            .expect("an error was posted")
    };
    let (direct_type, direct_cause) = posted(emulator.invocations(&direct).await.unwrap());
    let (proxied_type, proxied_cause) = posted(emulator.invocations(&proxied).await.unwrap());
    assert!(
        proxied_cause
            .as_str()
            .is_some_and(|c| c.contains("moderation model unavailable")),
        "{proxied_cause}"
    );
    assert_eq!((direct_type, direct_cause), (proxied_type, proxied_cause));
}

// ---- the fail-safe matrix --------------------------------------------------------

struct Row {
    local: LocalStack,
    function: String,
    parameter: String,
}

/// A function behind the layer, its fault parameter holding `config`
/// (`None`: never written), with `change` applied to it.
async fn row(
    name: &str,
    config: Option<&str>,
    change: impl FnOnce(PythonFunction) -> PythonFunction,
) -> Row {
    let local = LocalStack::for_tests().await;
    let parameter = format!("/turbulence/faults/{}", unique_name(name));
    if let Some(config) = config {
        local
            .ssm()
            .put_parameter()
            .name(&parameter)
            .value(config)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .expect("put the configuration");
    }
    let function = deploy(&local, change(fixture(name).with_layer(&parameter))).await;
    Row {
        local,
        function,
        parameter,
    }
}

impl Row {
    /// Invoke it `INVOCATIONS` times: how many were injected, and whether
    /// every other one was the handler's own answer.
    async fn injected(&self) -> usize {
        let mut injected = 0;
        for i in 0..INVOCATIONS {
            let answer = invoke(
                &self.local,
                &self.function,
                &json!({"action": "echo", "i": i}),
            )
            .await;
            let body = answer.json();
            match (
                answer.function_error.as_deref(),
                body["statusCode"].as_u64(),
            ) {
                (None, Some(200)) if body["event"]["i"] == i => {}
                (None, Some(503)) => injected += 1,
                (Some(_), _) if body["errorType"] == "InjectedFault" => injected += 1,
                _ => panic!("{}: not the handler's answer: {body}", self.function),
            }
        }
        injected
    }

    async fn clean(&self, n: u32, what: &str) {
        assert_eq!(self.injected().await, 0, "row {n} ({what}) injected");
        println!("fail-safe row {n} ({what}): clean");
        let _ = self
            .local
            .ssm()
            .delete_parameter()
            .name(&self.parameter)
            .send()
            .await;
    }
}

#[tokio::test]
async fn row_0_control_a_working_layer_injects() {
    let _shared = SSM_THROTTLE.read().await;
    let row = row("control", Some(INJECT_ALL), |f| f).await;
    assert_eq!(row.injected().await, INVOCATIONS);
    println!("fail-safe row 0 (control: the layer injects): {INVOCATIONS}/{INVOCATIONS} injected");
}

#[tokio::test]
async fn row_1_no_parameter() {
    let _shared = SSM_THROTTLE.read().await;
    row("absent", None, |f| f)
        .await
        .clean(1, "no parameter")
        .await;
}

#[tokio::test]
async fn row_2_garbage_in_the_parameter() {
    let _shared = SSM_THROTTLE.read().await;
    let row = row("garbage", Some(r#"{"statuscode": {"enabled": tru"#), |f| f).await;
    row.clean(2, "garbage in the parameter").await;
}

#[tokio::test]
async fn row_3_an_expired_configuration() {
    let _shared = SSM_THROTTLE.read().await;
    let expired = r#"{"statuscode": {"enabled": true, "status_code": 503}, "expires_at": "2001-01-01T00:00:00Z"}"#;
    row("expired", Some(expired), |f| f)
        .await
        .clean(3, "an expired configuration")
        .await;
}

#[tokio::test]
async fn row_4_ssm_throttled() {
    let _alone = SSM_THROTTLE.write().await;
    let row = row("throttled", Some(INJECT_ALL), |f| f).await;
    row.local
        .throttle("ssm", "GetParameter", 1000)
        .await
        .unwrap();
    let injected = row.injected().await;
    let throttled = row.local.throttled().await.unwrap();
    row.local.throttle("ssm", "GetParameter", 0).await.unwrap();
    assert_eq!(injected, 0, "throttled reads injected");
    let reads_throttled = throttled["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["service"] == "ssm" && r["operation"] == "GetParameter")
        .map(|r| r["throttled"].as_u64().unwrap_or(0))
        .sum::<u64>();
    assert!(
        reads_throttled > 0,
        "the proxy's reads were throttled: {throttled}"
    );
    println!("fail-safe row 4 (SSM throttled): clean");
}

#[tokio::test]
async fn row_5_ssm_unreachable() {
    let _shared = SSM_THROTTLE.read().await;
    // Port 9 (discard) on loopback: nothing listens there.
    let row = row("unreachable", Some(INJECT_ALL), |f| {
        f.env("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:9")
    })
    .await;
    row.clean(5, "SSM unreachable").await;
}

#[tokio::test]
async fn row_6_the_proxy_binary_missing() {
    let _shared = SSM_THROTTLE.read().await;
    let row = row("missing", Some(INJECT_ALL), |mut f| {
        f.layer = Some(Layer::WrapperOnly);
        f
    })
    .await;
    row.clean(6, "the proxy binary missing").await;
}

#[tokio::test]
async fn row_7_the_proxy_killed_mid_run() {
    let _shared = SSM_THROTTLE.read().await;
    // No experiment runs (an empty configuration): the function must keep
    // answering whatever happens to the proxy.
    let row = row("killed", Some("{}"), |f| f).await;
    let emulator = Emulator::from_env().expect("the emulator");
    assert_eq!(row.injected().await, 0);

    // Kill the proxy while an invocation is in the handler.
    let local = row.local.clone();
    let function = row.function.clone();
    let in_flight = tokio::spawn(async move {
        invoke(&local, &function, &json!({"action": "sleep", "ms": 1500})).await
    });
    let proxy = proxy_pid(&emulator, &row.function).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &proxy.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let lost = in_flight.await.unwrap();
    // The one invocation in flight is lost, as when a runtime crashes:
    // its answer could not reach the Runtime API.
    assert_eq!(lost.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(
        lost.json()["errorType"],
        "Runtime.ExitError",
        "{}",
        lost.json()
    );

    // The environment was replaced (a new proxy) and every later one answers.
    row.clean(7, "the proxy killed mid-run").await;
    let restarted = proxy_pid(&emulator, &row.function).await;
    assert_ne!(restarted, proxy, "a fresh environment with its own proxy");
}

/// The pid of the proxy in the function's (one) environment.
async fn proxy_pid(emulator: &Emulator, function: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let envs = emulator.environments(function).await.unwrap();
        let found = envs
            .iter()
            .flat_map(|e| e["processes"].as_array().cloned().unwrap_or_default())
            .find_map(|p| {
                (p[1].as_str()?.starts_with("turbulence-ext"))
                    .then(|| p[0].as_u64())
                    .flatten()
            });
        if let Some(pid) = found {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no proxy in {function}'s environment: {envs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn row_8_the_proxy_port_already_taken() {
    let _shared = SSM_THROTTLE.read().await;
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let row = row("taken", Some(INJECT_ALL), |f| {
        f.env("TURBULENCE_PROXY_PORT", port.to_string())
    })
    .await;
    row.clean(8, "the proxy port already taken").await;
    drop(taken);
}

// ---- Plan knows who can be injected ---------------------------------------------

/// An experiment injecting `function` through `parameter`.
fn injecting(stack: &local::Stack, function: &str, parameter: &str) -> Value {
    json!({
        "title": "faults for a function that cannot take them", "description": "d",
        "extensions": [{"name": "turbulence", "abort_alarms": [stack.abort_alarm], "poll_interval_seconds": 1}],
        "method": [{"type": "action", "name": "inject-faults",
            "provider": {"type": "python", "module": "turbulence.faults.actions",
                "func": "inject_lambda_faults",
                "arguments": {"parameter_name": parameter, "function_name": function,
                              "configuration": {"exception": {"enabled": true}}}}}]
    })
}

#[tokio::test]
async fn plan_refuses_a_function_without_the_layer_naming_what_is_missing() {
    let _shared = SSM_THROTTLE.read().await;
    let (local, stack) = LocalStack::for_tests_with_stack("layerless").await;
    // Under the stack's FaultParameterPrefix: the only parameters its
    // action function may write.
    let parameter = format!(
        "{}{}",
        stack.fault_parameter_prefix,
        unique_name("layerless")
    );
    // It reads the parameter, but nothing would read it for the handler.
    let bare = deploy(
        &local,
        fixture("layerless").env("FAILURE_INJECTION_PARAM", &parameter),
    )
    .await;
    let execution = local
        .start_execution(&stack, &injecting(&stack, &bare, &parameter))
        .await
        .unwrap();
    let done = local
        .wait_for(&execution, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(done.error.as_deref(), Some("GuardRefused"), "{done:?}");
    let cause = done.cause.unwrap_or_default();
    for piece in [
        "the turbulence-extension layer (Layers)",
        "AWS_LAMBDA_EXEC_WRAPPER=/opt/turbulence/wrapper",
    ] {
        assert!(cause.contains(piece), "{piece}: {cause}");
    }
    assert_eq!(
        local.parameter(&parameter).await.unwrap(),
        None,
        "nothing was written"
    );

    // The same function behind the layer is let through.
    let layered = deploy(&local, fixture("layered").with_layer(&parameter)).await;
    let execution = local
        .start_execution(&stack, &injecting(&stack, &layered, &parameter))
        .await
        .unwrap();
    let done = local
        .wait_for(&execution, Duration::from_secs(120))
        .await
        .unwrap();
    assert!(done.succeeded(), "{done:?}");
    assert_eq!(
        local.parameter(&parameter).await.unwrap(),
        None,
        "the rollback deleted it"
    );
}
