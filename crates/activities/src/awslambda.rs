//! AWS Lambda: chaosaws's `awslambda` module, and invoking functions many
//! times to see what comes back: a status code, an error by type, or a
//! plain answer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::catalogue::{
    int, json as any_json, one_of, tagged, text, Activity, Call, Module, OptIn, Refusal, Resource,
    ResourceType, Revert,
};
use crate::ports::{unavailable, AwsError, Unavailable};
use crate::{run, ActivityError, Context, Outcome, Ports, Watch};

/// What one Lambda invocation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub status_code: i32,
    /// `Unhandled` when the function raised.
    pub function_error: Option<String>,
    pub payload: Vec<u8>,
}

#[async_trait]
pub trait Functions: Send + Sync {
    async fn invoke(
        &self,
        function_name: &str,
        payload: &[u8],
        invocation_type: &str,
        qualifier: Option<&str>,
    ) -> Result<Invocation, AwsError>;
    async fn tags(&self, function_name: &str) -> Result<BTreeMap<String, String>, AwsError>;
}

#[async_trait]
impl Functions for Unavailable {
    async fn invoke(
        &self,
        _: &str,
        _: &[u8],
        _: &str,
        _: Option<&str>,
    ) -> Result<Invocation, AwsError> {
        Err(unavailable("Lambda"))
    }
    async fn tags(&self, _: &str) -> Result<BTreeMap<String, String>, AwsError> {
        Err(unavailable("Lambda"))
    }
}

fn function_tags<'a>(
    r: &'a Resource,
    ports: &'a Ports<'a>,
) -> futures_util::future::BoxFuture<'a, Result<BTreeMap<String, String>, AwsError>> {
    Box::pin(async move { ports.functions.tags(&r.id).await })
}

/// A Lambda function, by name or ARN.
pub static FUNCTION: ResourceType = ResourceType {
    service: "lambda",
    name: "function",
    noun: "Lambda function",
    parent: None,
    lock: "lambda",
    opt_in: OptIn::Tag {
        read: function_tags,
        iam: &["lambda:GetFunction"],
    },
};

/// The most invocations one `invoke_function_repeatedly` makes.
pub const MAX_INVOCATIONS: i64 = 10_000;
/// The most at a time.
pub const MAX_CONCURRENCY: i64 = 50;

pub static MODULE: Module = Module {
    service: "awslambda",
    title: "AWS Lambda",
    activities: &[
        Activity::action("chaosaws.awslambda.actions.invoke_function", run!(invoke_function))
            .doc("`StatusCode`, `FunctionError`, `Payload`.")
            .params(&[
                text("function_name"),
                any_json("function_arguments").optional(),
                one_of("invocation_type", &["RequestResponse", "Event", "DryRun"])
                    .or_text("RequestResponse"),
                any_json("client_context").refused(
                    "Turbulence does not pass a client context yet, and the function would see a different invocation without it",
                ),
                text("qualifier").optional(),
            ])
            .touches(&[&FUNCTION], function)
            .undo(Revert::NotNeeded("an invocation changes nothing Turbulence can put back"))
            .iam(&[tagged("lambda:InvokeFunction")])
            .example(r#"{"function_name": "moderation", "function_arguments": {"body": "{}"}}"#),
        Activity::action(
            "turbulence.awslambda.actions.invoke_function_repeatedly",
            run!(invoke_function_repeatedly),
        )
        .doc("Counts outcomes (`status:<code>`, `error:<errorType>`, `ok`, `invoke-failed`), their rates, latency percentiles and calls at least `slow_ms` long; polls the abort alarms while it runs.")
        .params(&[
            text("function_name"),
            int("count", 1, MAX_INVOCATIONS),
            any_json("function_arguments").optional(),
            int("concurrency", 1, MAX_CONCURRENCY).or_int(1),
            int("slow_ms", 0, 900_000).or_int(1000),
        ])
        .touches(&[&FUNCTION], function)
        .undo(Revert::NotNeeded("an invocation changes nothing Turbulence can put back"))
        .iam(&[tagged("lambda:InvokeFunction")])
        .example(r#"{"function_name": "moderation", "count": 200, "concurrency": 4}"#),
    ],
    refused: &[
        Refusal::destructive(
            "chaosaws.awslambda.actions.delete_event_source_mapping",
            "the mapping is gone, and a new one starts from a different position in its stream or queue",
        ),
        Refusal::not_native(
            "chaosaws.awslambda.actions.put_function_concurrency",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.awslambda.actions.delete_function_concurrency",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.awslambda.actions.put_function_timeout",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.awslambda.actions.put_function_memory_size",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.awslambda.actions.toggle_event_source_mapping_state",
            "not in the catalogue yet",
        ),
        Refusal::not_native("chaosaws.awslambda.actions.add_layer", "not in the catalogue yet"),
        Refusal::not_native("chaosaws.awslambda.actions.remove_layer", "not in the catalogue yet"),
        Refusal::not_native(
            "chaosaws.awslambda.actions.add_latency",
            "it drives chaosaws's own chaos layer; turbulence.faults.actions.inject_lambda_faults injects latency with an expiry instead",
        ),
        Refusal::not_native(
            "chaosaws.awslambda.actions.remove_latency",
            "it drives chaosaws's own chaos layer; turbulence.faults.actions.clear_lambda_faults clears what inject_lambda_faults set",
        ),
        Refusal::not_native(
            "chaosaws.awslambda.actions.add_error",
            "it drives chaosaws's own chaos layer; turbulence.faults.actions.inject_lambda_faults injects errors with an expiry instead",
        ),
        Refusal::not_native(
            "chaosaws.awslambda.actions.remove_error",
            "it drives chaosaws's own chaos layer; turbulence.faults.actions.clear_lambda_faults clears what inject_lambda_faults set",
        ),
        Refusal::not_native(
            "chaosaws.awslambda.probes.get_function_concurrency",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.awslambda.probes.get_function_timeout",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.awslambda.probes.get_function_memory_size",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.awslambda.probes.list_event_source_mapping",
            "not in the catalogue yet",
        ),
    ],
};

fn function(c: &Call) -> Vec<Resource> {
    vec![FUNCTION.of(c.text("function_name"))]
}

async fn invoke_function(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let body = body(c.value("function_arguments"));
    let inv = ports
        .functions
        .invoke(
            c.text("function_name"),
            &body,
            c.text("invocation_type"),
            c.opt_text("qualifier"),
        )
        .await?;
    Ok(Outcome::output(json!({
        "StatusCode": inv.status_code,
        "FunctionError": inv.function_error,
        "Payload": payload_value(&inv.payload),
    })))
}

async fn invoke_function_repeatedly(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    invoke_repeatedly(c, ports, ctx.watch(), ctx.poll_interval).await
}

/// The request body: the arguments as JSON, `{}` when none were given.
fn body(payload: &Value) -> Vec<u8> {
    match payload {
        Value::Null => b"{}".to_vec(),
        other => other.to_string().into_bytes(),
    }
}

/// The response as JSON when it is JSON, else as text.
fn payload_value(payload: &[u8]) -> Value {
    serde_json::from_slice(payload).unwrap_or_else(|_| json!(String::from_utf8_lossy(payload)))
}

/// One word for what an invocation came back with: `status:<code>` for an
/// API Gateway-style answer, `error:<errorType>` for a function error, `ok`
/// for anything else, `invoke-failed` when Lambda itself refused.
fn outcome(result: &Result<Invocation, AwsError>) -> String {
    match result {
        Err(_) => "invoke-failed".into(),
        Ok(inv) => {
            let payload = payload_value(&inv.payload);
            if inv.function_error.is_some() {
                let kind = payload
                    .get("errorType")
                    .and_then(Value::as_str)
                    .unwrap_or("Unhandled");
                return format!("error:{kind}");
            }
            match payload.get("statusCode").and_then(Value::as_u64) {
                Some(code) => format!("status:{code}"),
                None => "ok".into(),
            }
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Invoke `count` times, `concurrency` at a time, checking the abort alarms
/// and the kill switch every poll interval; count outcomes and latencies.
async fn invoke_repeatedly(
    c: &Call,
    ports: &Ports<'_>,
    watch: Watch<'_>,
    poll_interval: std::time::Duration,
) -> Result<Outcome, ActivityError> {
    let number = |name| u32::try_from(c.int(name)).unwrap_or(1);
    let (count, concurrency, slow_ms) = (number("count"), number("concurrency"), number("slow_ms"));
    let function_name = c.text("function_name");
    let body = body(c.value("function_arguments"));
    let next = AtomicU32::new(0);
    let results: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::with_capacity(count as usize));
    // Checked first thing, then every poll interval.
    let last_check = Mutex::new(
        Instant::now()
            .checked_sub(poll_interval)
            .unwrap_or_else(Instant::now),
    );
    let aborted: Mutex<Option<String>> = Mutex::new(None);

    let worker = || async {
        loop {
            if next.fetch_add(1, Ordering::SeqCst) >= count {
                return Ok::<(), AwsError>(());
            }
            if aborted.lock().map(|a| a.is_some()).unwrap_or(true) {
                return Ok(());
            }
            let due = match last_check.lock() {
                Ok(mut at) if at.elapsed() >= poll_interval => {
                    *at = Instant::now();
                    true
                }
                _ => false,
            };
            if due {
                if let Some(reason) = watch.stop_reason(ports).await? {
                    if let Ok(mut a) = aborted.lock() {
                        *a = Some(reason);
                    }
                    return Ok(());
                }
            }
            let started = Instant::now();
            let result = ports
                .functions
                .invoke(function_name, &body, "RequestResponse", None)
                .await;
            let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            if let Err(AwsError::Other(e)) = &result {
                tracing::warn!(function = function_name, error = %e, "invoke failed");
            }
            if let Ok(mut r) = results.lock() {
                r.push((outcome(&result), ms));
            }
        }
    };
    let workers: Vec<_> = (0..concurrency.min(count)).map(|_| worker()).collect();
    for r in futures_util::future::join_all(workers).await {
        r?;
    }
    if let Some(reason) = aborted.lock().ok().and_then(|mut a| a.take()) {
        return Err(ActivityError::Aborted(reason));
    }

    let results = results.into_inner().unwrap_or_default();
    let n = results.len();
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    for (o, _) in &results {
        *outcomes.entry(o.clone()).or_default() += 1;
    }
    let rates: BTreeMap<&String, f64> = outcomes
        .iter()
        .map(|(k, v)| (k, *v as f64 / n.max(1) as f64))
        .collect();
    let mut latencies: Vec<u64> = results.iter().map(|(_, ms)| *ms).collect();
    latencies.sort_unstable();
    let slow = latencies
        .iter()
        .filter(|ms| **ms >= u64::from(slow_ms))
        .count();
    Ok(Outcome {
        output: json!({
            "function_name": function_name,
            "invocations": n,
            "outcomes": outcomes,
            "rates": rates,
            "slow": {"at_least_ms": slow_ms, "count": slow, "rate": slow as f64 / n.max(1) as f64},
            "latency_ms": {
                "p50": percentile(&latencies, 50.0),
                "p90": percentile(&latencies, 90.0),
                "p99": percentile(&latencies, 99.0),
                "max": latencies.last().copied().unwrap_or(0),
            },
        }),
        detail: None,
        undo: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{FakeEcs, FakeFunctions};
    use crate::testing::{call, T};

    const REPEATEDLY: &str = "turbulence.awslambda.actions.invoke_function_repeatedly";

    fn inv(error: Option<&str>, payload: Value) -> Result<Invocation, AwsError> {
        Ok(Invocation {
            status_code: 200,
            function_error: error.map(str::to_string),
            payload: payload.to_string().into_bytes(),
        })
    }

    #[test]
    fn outcomes_are_told_apart() {
        assert_eq!(
            outcome(&inv(None, json!({"statusCode": 500, "body": "{}"}))),
            "status:500"
        );
        assert_eq!(
            outcome(&inv(
                Some("Unhandled"),
                json!({"errorType": "InjectedFault"})
            )),
            "error:InjectedFault"
        );
        assert_eq!(
            outcome(&inv(Some("Unhandled"), json!("boom"))),
            "error:Unhandled"
        );
        assert_eq!(outcome(&inv(None, json!({"verdict": "ok"}))), "ok");
        assert_eq!(outcome(&Err(AwsError::Other("x".into()))), "invoke-failed");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&[7], 90.0), 7);
        assert_eq!(percentile(&[], 90.0), 0);
    }

    #[tokio::test]
    async fn the_kill_switch_stops_a_long_activity() {
        let mut t = T::new(FakeEcs::default());
        t.kill_switch = Some("/kill".into());
        t.parameters.set("/kill", "incident 12");
        let repeatedly = call(
            REPEATEDLY,
            json!({"function_name": "f", "count": 10, "concurrency": 1, "slow_ms": 1000}),
        );
        let err = t.run(&repeatedly).await.unwrap_err();
        assert_eq!(
            err,
            ActivityError::Aborted("kill switch '/kill' is set (incident 12)".into())
        );
        assert_eq!(t.functions.calls(), 0);
    }

    #[tokio::test]
    async fn repeated_invocations_stop_once_their_run_is_stopped() {
        let mut t = T::new(FakeEcs::default());
        let run = "arn:aws:states:us-east-1:1:execution:m:run";
        t.runs = vec![run.into()];
        t.executions.set_status(run, "RUNNING");
        t.poll_interval = std::time::Duration::ZERO;
        let repeatedly = call(
            REPEATEDLY,
            json!({"function_name": "f", "count": 1000, "concurrency": 1, "slow_ms": 1000}),
        );
        // The run is stopped from the console during the third invocation.
        let executions = std::sync::Arc::clone(&t.executions);
        let invoked = std::sync::atomic::AtomicUsize::new(0);
        t.functions = FakeFunctions::answering(move |_, _| {
            if invoked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 2 {
                executions.set_status(run, "ABORTED");
            }
            Ok(Invocation {
                status_code: 200,
                function_error: None,
                payload: b"{}".to_vec(),
            })
        });
        let err = t.run(&repeatedly).await.unwrap_err();
        assert_eq!(
            err,
            ActivityError::Aborted(format!(
                "the run is over: execution {run} is ABORTED (stopped, timed out or failed); its undos are the janitor's"
            ))
        );
        assert_eq!(t.functions.calls(), 3);
    }

    #[tokio::test]
    async fn repeated_invocations_are_counted_by_outcome() {
        let mut t = T::new(FakeEcs::default());
        let n = std::sync::atomic::AtomicUsize::new(0);
        t.functions = FakeFunctions::answering(move |_, _| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(match i % 4 {
                0 => Invocation {
                    status_code: 200,
                    function_error: None,
                    payload: br#"{"statusCode":500}"#.to_vec(),
                },
                1 => Invocation {
                    status_code: 200,
                    function_error: Some("Unhandled".into()),
                    payload: br#"{"errorType":"InjectedFault","errorMessage":"x"}"#.to_vec(),
                },
                _ => Invocation {
                    status_code: 200,
                    function_error: None,
                    payload: br#"{"statusCode":200}"#.to_vec(),
                },
            })
        });
        let repeatedly = call(
            REPEATEDLY,
            json!({"function_name": "f", "count": 100, "concurrency": 4, "slow_ms": 1000, "function_arguments": {"body": "{}"}}),
        );
        let out = t.run(&repeatedly).await.unwrap().output;
        assert_eq!(out["invocations"], 100);
        assert_eq!(
            out["outcomes"],
            json!({"status:500": 25, "error:InjectedFault": 25, "status:200": 50})
        );
        assert_eq!(out["rates"]["status:200"], 0.5);
        assert_eq!(t.functions.calls(), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_invocations_stop_when_an_abort_alarm_fires() {
        let mut t = T::new(FakeEcs::default());
        t.alarms.set("stop", "OK");
        // Checked at the start, at 1 s, and in ALARM at the third read (2 s).
        t.alarms.set_after_reads(2, "stop", "ALARM");
        t.abort_alarms = vec!["stop".into()];
        t.poll_interval = std::time::Duration::from_secs(1);
        t.functions.latency = std::time::Duration::from_millis(100);
        let repeatedly = call(
            REPEATEDLY,
            json!({"function_name": "f", "count": 10000, "concurrency": 2, "slow_ms": 1000}),
        );
        let started = tokio::time::Instant::now();
        let err = t.run(&repeatedly).await.unwrap_err();
        assert_eq!(
            err,
            ActivityError::Aborted("abort alarm 'stop' in ALARM".into())
        );
        let stopped_after = started.elapsed();
        assert!(
            stopped_after <= std::time::Duration::from_millis(2200),
            "{stopped_after:?}"
        );
        assert!(t.functions.calls() <= 44, "{} calls", t.functions.calls());
    }

    #[tokio::test]
    async fn throttled_invocations_are_counted_not_fatal() {
        let mut t = T::new(FakeEcs::default());
        t.functions = FakeFunctions::answering(|_, _| Err(AwsError::Throttled("slow down".into())));
        let repeatedly = call(
            REPEATEDLY,
            json!({"function_name": "f", "count": 3, "concurrency": 1, "slow_ms": 1000}),
        );
        let out = t.run(&repeatedly).await.unwrap().output;
        assert_eq!(out["outcomes"], json!({"invoke-failed": 3}));
    }
}
