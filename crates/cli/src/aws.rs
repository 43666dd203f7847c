//! The Step Functions calls: start an execution, read its history (only the
//! events not seen yet), describe it, and follow it to its end. Credentials
//! and region come from the SDK's usual chain (environment, profile, SSO
//! cache, instance role); `--endpoint-url` or `AWS_ENDPOINT_URL` point it
//! at the local stack.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_sfn::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::types::HistoryEvent;
use aws_sdk_sfn::Client;

use crate::events::Event;
use crate::journal::Ended;
use crate::progress::Progress;
use crate::Error;

/// Events asked for per GetExecutionHistory page. Each may carry a state
/// document of up to 256 KB.
const PAGE_SIZE: i32 = 100;
/// An execution has at most 25,000 events.
const MAX_PAGES: usize = 300;
/// Consecutive failed polls tolerated while following.
const MAX_POLL_FAILURES: u32 = 5;

/// A Step Functions client from the usual configuration chain, with
/// `endpoint_url` and `region` overriding it when given.
pub async fn connect(endpoint_url: Option<&str>, region: Option<&str>) -> Result<Client, Error> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_timeout(Duration::from_secs(60))
            .build(),
    );
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_string()));
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return Err(Error::Other(
            "no AWS region: pass --region, or set AWS_REGION, or give your AWS profile a region"
                .into(),
        ));
    }
    Ok(Client::new(&config))
}

/// `ExecutionDoesNotExist: Execution Does Not Exist: 'arn:...'`, or the
/// whole chain for a transport error (connection refused, timeout).
fn sdk_message<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => chain(e),
    }
}

/// `dispatch failure: io error: ...: Connection refused (os error 111)`:
/// each cause's own words, without the debug dump.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
        if parts.len() > 8 {
            break;
        }
    }
    if parts.is_empty() {
        DisplayErrorContext(e).to_string()
    } else {
        parts.join(": ")
    }
}

fn aws_error<E, R>(call: String) -> impl FnOnce(SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    move |e| {
        let message = sdk_message(&e);
        let message = match hint(e.code(), &message) {
            Some(hint) => format!("{message}\n  hint: {hint}"),
            None => message,
        };
        Error::Aws { call, message }
    }
}

/// What a person can do about an AWS error, when it is a common one.
pub fn hint(code: Option<&str>, message: &str) -> Option<&'static str> {
    let lower = message.to_ascii_lowercase();
    Some(match code {
        Some("ExpiredToken" | "ExpiredTokenException" | "RequestExpired") => {
            "your AWS session expired: `aws sso login` (with --profile NAME if you use one), or refresh your credentials"
        }
        Some("UnrecognizedClientException" | "InvalidSignatureException" | "InvalidClientTokenId") => {
            "these credentials are not valid here: check AWS_PROFILE / AWS_ACCESS_KEY_ID, and that the profile is for this account"
        }
        Some("AccessDeniedException" | "AccessDenied") => {
            "your identity may not make this call: ask for the permission named above (the README's Deploying section lists what `turbulence run` needs)"
        }
        Some("StateMachineDoesNotExist") => {
            "no such state machine in this Region: check the ARN (the stack's StateMachineArn output) and --region / AWS_REGION"
        }
        Some("ExecutionDoesNotExist") => {
            "no such execution in this Region: check the ARN and --region / AWS_REGION"
        }
        _ if lower.contains("credentials") => {
            "no AWS credentials found: set AWS_PROFILE (and run `aws sso login` if it uses SSO), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        }
        _ if lower.contains("connection refused") || lower.contains("dns error") => {
            "nothing answered: check --endpoint-url / AWS_ENDPOINT_URL (the local stack: `scripts/stack start && source .local-stack/env`) and your network"
        }
        _ => return None,
    })
}

/// Refuse an ARN that is not of `kind` (`stateMachine`, `execution`)
/// before any call is made, naming the option it came from.
pub fn check_arn(arn: &str, kind: &str, option: &str) -> Result<(), Error> {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    let ok = parts.len() >= 7
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "states"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5] == kind
        && !parts[6].is_empty();
    if ok {
        return Ok(());
    }
    let example = match kind {
        "stateMachine" => "arn:aws:states:us-east-1:123456789012:stateMachine:turbulence-Experiment-abc (the stack's StateMachineArn output)",
        _ => "arn:aws:states:us-east-1:123456789012:execution:<state machine>:<name> (what `turbulence run` printed)",
    };
    Err(Error::Usage(format!(
        "{option}: '{arn}' is not a Step Functions {kind} ARN; expected {example}"
    )))
}

/// Starts an execution; returns its ARN.
pub async fn start(
    client: &Client,
    state_machine_arn: &str,
    name: &str,
    input: &str,
) -> Result<String, Error> {
    client
        .start_execution()
        .state_machine_arn(state_machine_arn)
        .name(name)
        .input(input)
        .send()
        .await
        .map(|out| out.execution_arn)
        .map_err(aws_error(format!(
            "StartExecution {name} of {state_machine_arn}"
        )))
}

pub async fn describe(client: &Client, execution_arn: &str) -> Result<Ended, Error> {
    let d = client
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .map_err(aws_error(format!("DescribeExecution {execution_arn}")))?;
    Ok(Ended {
        status: d.status().as_str().to_string(),
        output: d.output().map(str::to_string),
        error: d.error().map(str::to_string),
        cause: d.cause().map(str::to_string),
    })
}

/// The events with an id above `after_id`, oldest first. Pages are read
/// newest first and reading stops at a known event, or once an event
/// satisfies `enough` (a server that ignores `reverseOrder`, like moto,
/// returns everything at once: that works too).
pub async fn events_after(
    client: &Client,
    execution_arn: &str,
    after_id: i64,
    enough: impl Fn(&Event) -> bool,
) -> Result<Vec<Event>, Error> {
    let mut events: Vec<Event> = Vec::new();
    let mut token = None;
    for _ in 0..MAX_PAGES {
        let page = client
            .get_execution_history()
            .execution_arn(execution_arn)
            .reverse_order(true)
            .include_execution_data(true)
            .max_results(PAGE_SIZE)
            .set_next_token(token)
            .send()
            .await
            .map_err(aws_error(format!("GetExecutionHistory {execution_arn}")))?;
        let mut reached_known = false;
        let mut done = false;
        for e in page.events() {
            if e.id() <= after_id {
                reached_known = true;
                continue;
            }
            let event = flatten(e);
            done |= enough(&event);
            events.push(event);
        }
        token = page.next_token;
        if reached_known || done || token.is_none() {
            break;
        }
    }
    events.sort_by_key(|e| e.id);
    events.dedup_by_key(|e| e.id);
    Ok(events)
}

/// An SDK history event as an [`Event`].
pub fn flatten(e: &HistoryEvent) -> Event {
    let json = |s: Option<&str>| s.and_then(|s| serde_json::from_str(s).ok());
    let mut state = None;
    let mut data = None;
    let mut error = None;
    let mut cause = None;
    let mut failed = |e: Option<&str>, c: Option<&str>| {
        error = e.map(str::to_string);
        cause = c.map(str::to_string);
    };
    if let Some(d) = e.state_entered_event_details() {
        state = Some(d.name().to_string());
        data = json(d.input());
    } else if let Some(d) = e.state_exited_event_details() {
        state = Some(d.name().to_string());
        data = json(d.output());
    } else if let Some(d) = e.execution_started_event_details() {
        data = json(d.input());
    } else if let Some(d) = e.execution_succeeded_event_details() {
        data = json(d.output());
    } else if let Some(d) = e.execution_failed_event_details() {
        failed(d.error(), d.cause());
    } else if let Some(d) = e.execution_aborted_event_details() {
        failed(d.error(), d.cause());
    } else if let Some(d) = e.execution_timed_out_event_details() {
        failed(d.error(), d.cause());
    } else if let Some(d) = e.task_failed_event_details() {
        failed(d.error(), d.cause());
    } else if let Some(d) = e.task_timed_out_event_details() {
        failed(d.error(), d.cause());
    } else if let Some(d) = e.task_start_failed_event_details() {
        failed(d.error(), d.cause());
    } else if let Some(d) = e.task_submit_failed_event_details() {
        failed(d.error(), d.cause());
    } else if let Some(d) = e.lambda_function_failed_event_details() {
        failed(d.error(), d.cause());
    } else if let Some(d) = e.lambda_function_timed_out_event_details() {
        failed(d.error(), d.cause());
    }
    Event {
        id: e.id(),
        kind: e.r#type().as_str().to_string(),
        timestamp: e.timestamp().as_secs_f64(),
        state,
        data,
        error,
        cause,
    }
}

/// Follows an execution to its end, calling `print` with each progress
/// line; returns the events the journal is taken from (every `Journal`
/// exit and the last event). Polls every `poll`; gives up after
/// [`MAX_POLL_FAILURES`] failed polls in a row.
pub async fn follow(
    client: &Client,
    execution_arn: &str,
    poll: Duration,
    mut print: impl FnMut(&str),
) -> Result<Vec<Event>, Error> {
    let mut progress = Progress::new();
    let mut kept = Vec::new();
    let mut failures = 0;
    loop {
        match events_after(client, execution_arn, progress.last_id(), |_| false).await {
            Ok(events) => {
                failures = 0;
                for line in progress.feed(&events) {
                    print(&line);
                }
                kept.extend(events.into_iter().filter(|e| {
                    e.ends_execution()
                        || (e.is_state_exited() && e.state.as_deref() == Some("Journal"))
                }));
                if progress.finished() {
                    return Ok(kept);
                }
            }
            Err(e) => {
                failures += 1;
                if failures >= MAX_POLL_FAILURES {
                    return Err(e);
                }
                print(&format!("(could not read the history, retrying: {e})"));
            }
        }
        tokio::time::sleep(poll).await;
    }
}
