//! Invoking Lambda functions, once or many times, and telling what came
//! back: a status code, an error by type, or a plain answer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};
use tokio::time::Instant;

use crate::ports::{AwsError, Invocation};
use crate::{ActivityError, Context, Outcome, Ports};

/// The request body: the arguments as JSON, `{}` when none were given.
pub(crate) fn body(payload: &Value) -> Vec<u8> {
    match payload {
        Value::Null => b"{}".to_vec(),
        other => other.to_string().into_bytes(),
    }
}

/// The response as JSON when it is JSON, else as text.
pub(crate) fn payload_value(payload: &[u8]) -> Value {
    serde_json::from_slice(payload).unwrap_or_else(|_| json!(String::from_utf8_lossy(payload)))
}

/// One word for what an invocation came back with: `status:<code>` for an
/// API Gateway-style answer, `error:<errorType>` for a function error, `ok`
/// for anything else, `invoke-failed` when Lambda itself refused.
pub(crate) fn outcome(result: &Result<Invocation, AwsError>) -> String {
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
pub(crate) async fn invoke_repeatedly(
    ports: &Ports<'_>,
    ctx: &Context<'_>,
    function_name: &str,
    payload: &Value,
    count: u32,
    concurrency: u32,
    slow_ms: u32,
) -> Result<Outcome, ActivityError> {
    let body = body(payload);
    let next = AtomicU32::new(0);
    let results: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::with_capacity(count as usize));
    // Checked first thing, then every poll interval.
    let last_check = Mutex::new(
        Instant::now()
            .checked_sub(ctx.poll_interval)
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
                Ok(mut at) if at.elapsed() >= ctx.poll_interval => {
                    *at = Instant::now();
                    true
                }
                _ => false,
            };
            if due {
                if let Some(reason) = ctx.stop_reason(ports).await? {
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
}
