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
    flag, int, json as any_json, one_of, read, scoped, spec, tagged, text, Activity, Call, Module,
    OptIn, Refusal, Resource, ResourceType, Revert, Rule,
};
use crate::ports::{unavailable, AwsError, Unavailable};
use crate::{run, ActivityError, Context, Outcome, Ports, Undo, Watch};

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
    /// What the function is set up with (lambda:GetFunction): runtime,
    /// layers, environment names, tags; Plan checks a fault target with it.
    async fn setup(&self, function_name: &str) -> Result<crate::faults::FunctionSetup, AwsError>;
    /// GetFunctionConfiguration.
    async fn configuration(
        &self,
        function_name: &str,
        qualifier: Option<&str>,
    ) -> Result<FunctionConfig, AwsError>;
    /// UpdateFunctionConfiguration of what `update` sets.
    async fn update_configuration(
        &self,
        function_name: &str,
        update: &ConfigUpdate,
    ) -> Result<FunctionConfig, AwsError>;
    /// The reserved concurrency; `None` when none is reserved.
    async fn concurrency(&self, function_name: &str) -> Result<Option<i32>, AwsError>;
    async fn put_concurrency(&self, function_name: &str, reserved: i32) -> Result<(), AwsError>;
    async fn delete_concurrency(&self, function_name: &str) -> Result<(), AwsError>;
    /// ListEventSourceMappings of a function or an event source (or both).
    async fn event_source_mappings(
        &self,
        function_name: Option<&str>,
        source_arn: Option<&str>,
    ) -> Result<Vec<EventSourceMapping>, AwsError>;
    async fn event_source_mapping(&self, uuid: &str) -> Result<EventSourceMapping, AwsError>;
    /// UpdateEventSourceMapping's `Enabled`.
    async fn enable_event_source_mapping(
        &self,
        uuid: &str,
        enabled: bool,
    ) -> Result<EventSourceMapping, AwsError>;
}

/// What a function is configured with (GetFunctionConfiguration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionConfig {
    pub name: String,
    pub arn: String,
    pub timeout: i32,
    pub memory_size: i32,
    pub last_update_status: Option<String>,
}

/// What an UpdateFunctionConfiguration sets (the rest stays).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigUpdate {
    pub timeout: Option<i32>,
    pub memory_size: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSourceMapping {
    pub uuid: String,
    /// `Enabled`, `Disabled`, `Enabling`, `Disabling`, `Creating`, ...
    pub state: String,
    pub function_arn: String,
    pub event_source_arn: String,
    pub batch_size: Option<i32>,
}

impl EventSourceMapping {
    /// Whether it is (or is becoming) enabled.
    pub fn enabled(&self) -> bool {
        matches!(
            self.state.as_str(),
            "Enabled" | "Enabling" | "Creating" | "Updating"
        )
    }

    fn to_json(&self) -> Value {
        json!({
            "UUID": self.uuid,
            "State": self.state,
            "FunctionArn": self.function_arn,
            "EventSourceArn": self.event_source_arn,
            "BatchSize": self.batch_size,
        })
    }
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
    async fn setup(&self, _: &str) -> Result<crate::faults::FunctionSetup, AwsError> {
        Err(unavailable("Lambda"))
    }
    async fn configuration(&self, _: &str, _: Option<&str>) -> Result<FunctionConfig, AwsError> {
        Err(unavailable("Lambda"))
    }
    async fn update_configuration(
        &self,
        _: &str,
        _: &ConfigUpdate,
    ) -> Result<FunctionConfig, AwsError> {
        Err(unavailable("Lambda"))
    }
    async fn concurrency(&self, _: &str) -> Result<Option<i32>, AwsError> {
        Err(unavailable("Lambda"))
    }
    async fn put_concurrency(&self, _: &str, _: i32) -> Result<(), AwsError> {
        Err(unavailable("Lambda"))
    }
    async fn delete_concurrency(&self, _: &str) -> Result<(), AwsError> {
        Err(unavailable("Lambda"))
    }
    async fn event_source_mappings(
        &self,
        _: Option<&str>,
        _: Option<&str>,
    ) -> Result<Vec<EventSourceMapping>, AwsError> {
        Err(unavailable("Lambda"))
    }
    async fn event_source_mapping(&self, _: &str) -> Result<EventSourceMapping, AwsError> {
        Err(unavailable("Lambda"))
    }
    async fn enable_event_source_mapping(
        &self,
        _: &str,
        _: bool,
    ) -> Result<EventSourceMapping, AwsError> {
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

/// An event source mapping opts in through the function it invokes: the
/// function's tags are its tags.
fn mapping_tags<'a>(
    r: &'a Resource,
    ports: &'a Ports<'a>,
) -> futures_util::future::BoxFuture<'a, Result<BTreeMap<String, String>, AwsError>> {
    Box::pin(async move {
        let mapping = ports.functions.event_source_mapping(&r.id).await?;
        ports.functions.tags(&mapping.function_arn).await
    })
}

/// An event source mapping (a queue or stream feeding a function), by
/// UUID.
pub static EVENT_SOURCE_MAPPING: ResourceType = ResourceType {
    service: "lambda",
    name: "event-source-mapping",
    noun: "Lambda event source mapping",
    parent: None,
    lock: "lambda-esm",
    opt_in: OptIn::Tag {
        read: mapping_tags,
        iam: &["lambda:GetEventSourceMapping", "lambda:GetFunction"],
    },
};

const PUT_CONCURRENCY: &str = "chaosaws.awslambda.actions.put_function_concurrency";
const DELETE_CONCURRENCY: &str = "chaosaws.awslambda.actions.delete_function_concurrency";
const PUT_TIMEOUT: &str = "chaosaws.awslambda.actions.put_function_timeout";
const PUT_MEMORY: &str = "chaosaws.awslambda.actions.put_function_memory_size";
const TOGGLE_MAPPING: &str = "chaosaws.awslambda.actions.toggle_event_source_mapping_state";
/// UpdateEventSourceMapping supports no resource tags of the mapping's
/// function; its grant is narrowed by `lambda:FunctionArn` instead.
const MAPPING_FENCE: &str = "conditioned on lambda:FunctionArn within TargetFunctionNamePattern; the mapping's function must carry the opt-in tag (checked at Plan)";

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
        Activity::action(PUT_CONCURRENCY, run!(put_function_concurrency))
            .doc("Reserves `concurrent_executions` for the function: 0 throttles every invocation. The undo puts back the reservation it found, or deletes the one it made. Output: `ReservedConcurrentExecutions`.")
            .params(&[text("function_name"), int("concurrent_executions", 0, 1_000_000)])
            .touches(&[&FUNCTION], function)
            .undo(Revert::By(&[PUT_CONCURRENCY, DELETE_CONCURRENCY]))
            .iam(&[
                read("lambda:GetFunctionConcurrency"),
                tagged("lambda:PutFunctionConcurrency"),
            ])
            .example(r#"{"function_name": "moderation", "concurrent_executions": 0}"#),
        Activity::action(DELETE_CONCURRENCY, run!(delete_function_concurrency))
            .doc("Removes the function's reserved concurrency; the undo reserves what it found again. Nothing reserved: nothing changes.")
            .params(&[text("function_name")])
            .touches(&[&FUNCTION], function)
            .undo(Revert::By(&[PUT_CONCURRENCY]))
            .iam(&[
                read("lambda:GetFunctionConcurrency"),
                tagged("lambda:DeleteFunctionConcurrency"),
            ])
            .example(r#"{"function_name": "moderation"}"#),
        Activity::action(PUT_TIMEOUT, run!(put_function_timeout))
            .doc("Sets the function's timeout (seconds); the undo sets the one it found. Output: `FunctionName`, `Timeout`, `MemorySize`, `LastUpdateStatus`.")
            .params(&[text("function_name"), int("timeout", 1, 900)])
            .touches(&[&FUNCTION], function)
            .undo(Revert::By(&[PUT_TIMEOUT]))
            .iam(&[
                read("lambda:GetFunctionConfiguration"),
                tagged("lambda:UpdateFunctionConfiguration"),
            ])
            .example(r#"{"function_name": "moderation", "timeout": 1}"#),
        Activity::action(PUT_MEMORY, run!(put_function_memory_size))
            .doc("Sets the function's memory (MB); the undo sets the size it found. Output as `put_function_timeout`.")
            .params(&[text("function_name"), int("memory_size", 128, 10_240)])
            .touches(&[&FUNCTION], function)
            .undo(Revert::By(&[PUT_MEMORY]))
            .iam(&[
                read("lambda:GetFunctionConfiguration"),
                tagged("lambda:UpdateFunctionConfiguration"),
            ])
            .example(r#"{"function_name": "moderation", "memory_size": 128}"#),
        Activity::action(TOGGLE_MAPPING, run!(toggle_event_source_mapping_state))
            .doc("Enables or disables an event source mapping (the queue or stream stops feeding its function); the undo puts back the state it found. The mapping's function must opt in. Output: the mapping's `UUID`, `State`, `FunctionArn`, `EventSourceArn`, `BatchSize`.")
            .params(&[text("event_uuid"), flag("enabled")])
            .touches(&[&EVENT_SOURCE_MAPPING], mapping)
            .undo(Revert::By(&[TOGGLE_MAPPING]))
            .iam(&[
                read("lambda:GetEventSourceMapping"),
                scoped("lambda:UpdateEventSourceMapping", MAPPING_FENCE),
            ])
            .example(r#"{"event_uuid": "a1b2c3d4-5678-90ab-cdef-11111EXAMPLE", "enabled": false}"#),
        Activity::probe(
            "chaosaws.awslambda.probes.get_function_concurrency",
            run!(get_function_concurrency),
        )
        .doc("The reserved concurrency, or `null` when none is reserved (chaosaws raises a KeyError then).")
        .params(&[text("function_name")])
        .iam(&[read("lambda:GetFunctionConcurrency")])
        .example(r#"{"function_name": "moderation"}"#),
        Activity::probe(
            "chaosaws.awslambda.probes.get_function_timeout",
            run!(get_function_timeout),
        )
        .doc("The timeout in seconds.")
        .params(&[text("function_name"), text("qualifier").optional()])
        .iam(&[read("lambda:GetFunctionConfiguration")])
        .example(r#"{"function_name": "moderation"}"#),
        Activity::probe(
            "chaosaws.awslambda.probes.get_function_memory_size",
            run!(get_function_memory_size),
        )
        .doc("The memory size in MB.")
        .params(&[text("function_name"), text("qualifier").optional()])
        .iam(&[read("lambda:GetFunctionConfiguration")])
        .example(r#"{"function_name": "moderation"}"#),
        Activity::probe(
            "chaosaws.awslambda.probes.list_event_source_mapping",
            run!(list_event_source_mapping),
        )
        .doc("`EventSourceMappings`: each with `UUID`, `State`, `FunctionArn`, `EventSourceArn`, `BatchSize`.")
        .params(&[text("source_arn").optional(), text("function_name").optional()])
        .rules(&[Rule::AtLeastOne(&["source_arn", "function_name"])])
        .iam(&[read("lambda:ListEventSourceMappings")])
        .example(r#"{"function_name": "moderation"}"#),
    ],
    refused: &[
        Refusal::destructive(
            "chaosaws.awslambda.actions.delete_event_source_mapping",
            "the mapping is gone, and a new one starts from a different position in its stream or queue",
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
    ],
};

fn function(c: &Call) -> Vec<Resource> {
    vec![FUNCTION.of(c.text("function_name"))]
}

fn mapping(c: &Call) -> Vec<Resource> {
    vec![EVENT_SOURCE_MAPPING.of(c.text("event_uuid"))]
}

fn i32_arg(c: &Call, name: &str) -> i32 {
    i32::try_from(c.int(name)).unwrap_or(i32::MAX)
}

async fn put_function_concurrency(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let (name, reserved) = (c.text("function_name"), i32_arg(c, "concurrent_executions"));
    let before = ports.functions.concurrency(name).await?;
    let undo = match before {
        Some(n) if n == reserved => None,
        Some(n) => Some(Undo {
            name: format!("reserve {n} concurrent executions of '{name}' again"),
            call: spec(
                PUT_CONCURRENCY,
                json!({"function_name": name, "concurrent_executions": n}),
            ),
        }),
        None => Some(Undo {
            name: format!("remove the reserved concurrency of '{name}'"),
            call: spec(DELETE_CONCURRENCY, json!({"function_name": name})),
        }),
    };
    if let Some(undo) = &undo {
        ctx.undo_log.will_change(undo).await?;
    }
    ports.functions.put_concurrency(name, reserved).await?;
    Ok(Outcome {
        output: json!({"ReservedConcurrentExecutions": reserved}),
        detail: Some(json!({"previous": before})),
        undo,
    })
}

async fn delete_function_concurrency(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let name = c.text("function_name");
    let Some(before) = ports.functions.concurrency(name).await? else {
        return Ok(Outcome {
            output: json!({}),
            detail: Some(json!({"previous": null})),
            undo: None,
        });
    };
    let undo = Undo {
        name: format!("reserve {before} concurrent executions of '{name}' again"),
        call: spec(
            PUT_CONCURRENCY,
            json!({"function_name": name, "concurrent_executions": before}),
        ),
    };
    ctx.undo_log.will_change(&undo).await?;
    ports.functions.delete_concurrency(name).await?;
    Ok(Outcome {
        output: json!({}),
        detail: Some(json!({"previous": before})),
        undo: Some(undo),
    })
}

fn config_json(c: &FunctionConfig) -> Value {
    json!({
        "FunctionName": c.name,
        "FunctionArn": c.arn,
        "Timeout": c.timeout,
        "MemorySize": c.memory_size,
        "LastUpdateStatus": c.last_update_status,
    })
}

/// Set one of a function's settings (`timeout`, `memory_size`) and record
/// the undo that sets what it found.
async fn put_setting(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
    (param, undo_with, what): (&str, &str, &str),
) -> Result<Outcome, ActivityError> {
    let (name, wanted) = (c.text("function_name"), i32_arg(c, param));
    let before = ports.functions.configuration(name, None).await?;
    let found = if param == "timeout" {
        before.timeout
    } else {
        before.memory_size
    };
    let undo = (found != wanted).then(|| Undo {
        name: format!("set the {what} of '{name}' back to {found}"),
        call: spec(undo_with, json!({"function_name": name, param: found})),
    });
    if let Some(undo) = &undo {
        ctx.undo_log.will_change(undo).await?;
    }
    let update = if param == "timeout" {
        ConfigUpdate {
            timeout: Some(wanted),
            ..ConfigUpdate::default()
        }
    } else {
        ConfigUpdate {
            memory_size: Some(wanted),
            ..ConfigUpdate::default()
        }
    };
    let after = ports.functions.update_configuration(name, &update).await?;
    Ok(Outcome {
        output: config_json(&after),
        detail: Some(json!({"previous": found})),
        undo,
    })
}

async fn put_function_timeout(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    put_setting(c, ports, ctx, ("timeout", PUT_TIMEOUT, "timeout")).await
}

async fn put_function_memory_size(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    put_setting(c, ports, ctx, ("memory_size", PUT_MEMORY, "memory size")).await
}

async fn toggle_event_source_mapping_state(
    c: &Call,
    ports: &Ports<'_>,
    ctx: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let (uuid, enabled) = (c.text("event_uuid"), c.flag("enabled"));
    let before = ports.functions.event_source_mapping(uuid).await?;
    let undo = (before.enabled() != enabled).then(|| Undo {
        name: format!(
            "{} event source mapping '{uuid}' again",
            if before.enabled() {
                "enable"
            } else {
                "disable"
            }
        ),
        call: spec(
            TOGGLE_MAPPING,
            json!({"event_uuid": uuid, "enabled": before.enabled()}),
        ),
    });
    if let Some(undo) = &undo {
        ctx.undo_log.will_change(undo).await?;
    }
    let after = ports
        .functions
        .enable_event_source_mapping(uuid, enabled)
        .await?;
    Ok(Outcome {
        output: after.to_json(),
        detail: Some(json!({"previous_state": before.state})),
        undo,
    })
}

async fn get_function_concurrency(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let reserved = ports.functions.concurrency(c.text("function_name")).await?;
    Ok(Outcome::output(json!(reserved)))
}

async fn get_function_timeout(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let config = ports
        .functions
        .configuration(c.text("function_name"), c.opt_text("qualifier"))
        .await?;
    Ok(Outcome::output(json!(config.timeout)))
}

async fn get_function_memory_size(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let config = ports
        .functions
        .configuration(c.text("function_name"), c.opt_text("qualifier"))
        .await?;
    Ok(Outcome::output(json!(config.memory_size)))
}

async fn list_event_source_mapping(
    c: &Call,
    ports: &Ports<'_>,
    _: &mut Context<'_>,
) -> Result<Outcome, ActivityError> {
    let mappings = ports
        .functions
        .event_source_mappings(c.opt_text("function_name"), c.opt_text("source_arn"))
        .await?;
    let mappings: Vec<Value> = mappings.iter().map(EventSourceMapping::to_json).collect();
    Ok(Outcome::output(json!({"EventSourceMappings": mappings})))
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

    fn with_function() -> T {
        let mut t = T::new(FakeEcs::default());
        t.functions = FakeFunctions::default()
            .with_function("f", 3, 128)
            .with_mapping("m-1", "f", true);
        t
    }

    #[tokio::test]
    async fn concurrency_is_reserved_and_the_undo_removes_or_restores_it() {
        let mut t = with_function();
        let zero = call(
            PUT_CONCURRENCY,
            json!({"function_name": "f", "concurrent_executions": 0}),
        );
        let out = t.run(&zero).await.unwrap();
        assert_eq!(out.output, json!({"ReservedConcurrentExecutions": 0}));
        assert_eq!(t.functions.settings("f"), Some((3, 128, Some(0))));
        let undo = out.undo.unwrap();
        assert_eq!(undo.call.function, DELETE_CONCURRENCY);
        assert_eq!(
            t.undo_log.undos(),
            vec![undo.clone()],
            "logged before the change"
        );
        t.run(&Call::parse(&undo.call).unwrap()).await.unwrap();
        assert_eq!(t.functions.settings("f"), Some((3, 128, None)));

        // A reservation it found is put back as it was.
        t.functions.put_concurrency("f", 5).await.unwrap();
        let undo = t.run(&zero).await.unwrap().undo.unwrap();
        assert_eq!(undo.call.arguments["concurrent_executions"], json!(5));
        t.run(&Call::parse(&undo.call).unwrap()).await.unwrap();
        assert_eq!(t.functions.settings("f"), Some((3, 128, Some(5))));
        // Asked for what it is already: nothing to undo.
        let five = call(
            PUT_CONCURRENCY,
            json!({"function_name": "f", "concurrent_executions": 5}),
        );
        assert!(t.run(&five).await.unwrap().undo.is_none());
    }

    #[tokio::test]
    async fn no_undo_on_record_means_no_change() {
        let mut t = with_function();
        t.undo_log.fail = true;
        let zero = call(
            PUT_CONCURRENCY,
            json!({"function_name": "f", "concurrent_executions": 0}),
        );
        assert!(t.run(&zero).await.is_err());
        let timeout = call(PUT_TIMEOUT, json!({"function_name": "f", "timeout": 30}));
        assert!(t.run(&timeout).await.is_err());
        let off = call(
            TOGGLE_MAPPING,
            json!({"event_uuid": "m-1", "enabled": false}),
        );
        assert!(t.run(&off).await.is_err());
        assert_eq!(t.functions.settings("f"), Some((3, 128, None)));
        assert_eq!(t.functions.mapping_state("m-1").as_deref(), Some("Enabled"));
    }

    #[tokio::test]
    async fn deleting_a_reservation_records_it_and_deleting_none_changes_nothing() {
        let mut t = with_function();
        let delete = call(DELETE_CONCURRENCY, json!({"function_name": "f"}));
        let out = t.run(&delete).await.unwrap();
        assert!(out.undo.is_none());
        assert!(t.undo_log.undos().is_empty());
        t.functions.put_concurrency("f", 7).await.unwrap();
        let undo = t.run(&delete).await.unwrap().undo.unwrap();
        assert_eq!(t.functions.settings("f"), Some((3, 128, None)));
        t.run(&Call::parse(&undo.call).unwrap()).await.unwrap();
        assert_eq!(t.functions.settings("f"), Some((3, 128, Some(7))));
    }

    #[tokio::test]
    async fn timeout_and_memory_are_set_and_put_back() {
        let mut t = with_function();
        let timeout = call(PUT_TIMEOUT, json!({"function_name": "f", "timeout": 30}));
        let out = t.run(&timeout).await.unwrap();
        assert_eq!(out.output["Timeout"], 30);
        let memory = call(
            PUT_MEMORY,
            json!({"function_name": "f", "memory_size": 512}),
        );
        let out2 = t.run(&memory).await.unwrap();
        assert_eq!(t.functions.settings("f"), Some((30, 512, None)));
        for undo in [out2.undo.unwrap(), out.undo.unwrap()] {
            t.run(&Call::parse(&undo.call).unwrap()).await.unwrap();
        }
        assert_eq!(t.functions.settings("f"), Some((3, 128, None)));
        let probe = |f: &str| call(f, json!({"function_name": "f"}));
        assert_eq!(
            t.run(&probe("chaosaws.awslambda.probes.get_function_timeout"))
                .await
                .unwrap()
                .output,
            json!(3)
        );
        assert_eq!(
            t.run(&probe("chaosaws.awslambda.probes.get_function_memory_size"))
                .await
                .unwrap()
                .output,
            json!(128)
        );
        assert_eq!(
            t.run(&probe("chaosaws.awslambda.probes.get_function_concurrency"))
                .await
                .unwrap()
                .output,
            Value::Null
        );
    }

    #[tokio::test]
    async fn a_mapping_is_toggled_and_toggled_back_and_opts_in_through_its_function() {
        let mut t = with_function();
        let off = call(
            TOGGLE_MAPPING,
            json!({"event_uuid": "m-1", "enabled": false}),
        );
        let out = t.run(&off).await.unwrap();
        assert_eq!(out.output["State"], "Disabled");
        let undo = out.undo.unwrap();
        assert_eq!(undo.call.arguments["enabled"], json!(true));
        // Already disabled: nothing to undo.
        assert!(t.run(&off).await.unwrap().undo.is_none());
        t.run(&Call::parse(&undo.call).unwrap()).await.unwrap();
        assert_eq!(t.functions.mapping_state("m-1").as_deref(), Some("Enabled"));
        let listed = t
            .run(&call(
                "chaosaws.awslambda.probes.list_event_source_mapping",
                json!({"function_name": "f"}),
            ))
            .await
            .unwrap();
        assert_eq!(listed.output["EventSourceMappings"][0]["UUID"], "m-1");

        let mapping = &off.touches()[0];
        let tag = "turbulence:opt-in";
        assert!(!crate::guard::opted_in(&t.ports(), mapping, tag)
            .await
            .unwrap());
        t.functions.tag("f", tag, "true");
        assert!(crate::guard::opted_in(&t.ports(), mapping, tag)
            .await
            .unwrap());
    }
}
