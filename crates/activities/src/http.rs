//! Chaos Toolkit's `http` provider: one request, as a probe or an action.

use serde_json::{json, Value};

use crate::catalogue::{
    flag, int, json as any_json, object, text, Activity, Call, Module, Revert, HTTP,
};
use crate::{run, ActivityError, Context, Outcome, Ports};

pub static MODULE: Module = Module {
    service: "http",
    title: "HTTP (Chaos Toolkit's http provider)",
    activities: &[Activity::either(HTTP, run!(http))
        .doc("`{status, headers, body}` (JSON bodies parsed); a probe or an action. Only hosts on the `LoadAllowedHosts` allow-list, checked at Plan.")
        .params(&[
            text("url"),
            text("method").optional(),
            object("headers").optional(),
            any_json("arguments").optional().doc("The request body."),
            any_json("timeout").optional(),
            flag("verify_tls").optional(),
            int("max_retries", 0, i64::MAX).optional(),
        ])
        .check(valid_request)
        .undo(Revert::NotNeeded("a request changes nothing Turbulence can put back"))
        .example(r#"{"url": "https://api.example.com/health", "timeout": 5}"#)],
    refused: &[],
};

/// The request of an http call, as [`load::http::HttpProbe`] reads it.
pub fn request(c: &Call) -> Value {
    let mut request = json!({"url": c.text("url")});
    for (from, to) in [
        ("method", "method"),
        ("headers", "headers"),
        ("arguments", "body"),
        ("timeout", "timeout_s"),
        ("verify_tls", "verify_tls"),
    ] {
        let v = c.value(from);
        if !v.is_null() {
            request[to] = v.clone();
        }
    }
    request
}

fn valid_request(c: &Call) -> Result<(), String> {
    if c.opt_int("max_retries").unwrap_or(0) != 0 {
        return Err(c.err("max_retries", "is not supported yet (only 0)"));
    }
    load::http::HttpProbe::from_json(request(c))
        .map(|_| ())
        .map_err(|e| format!("http provider: {e}"))
}

async fn http(c: &Call, _: &Ports<'_>, ctx: &mut Context<'_>) -> Result<Outcome, ActivityError> {
    let probe = load::http::HttpProbe::from_json(request(c))
        .map_err(|e| ActivityError::Failed(e.to_string()))?;
    let out = probe.run(ctx.load_limits).await.map_err(|e| match e {
        load::LoadError::Invalid { .. }
        | load::LoadError::Spec { .. }
        | load::LoadError::HostNotAllowed { .. } => ActivityError::Refused(e.to_string()),
        other => ActivityError::Failed(other.to_string()),
    })?;
    Ok(Outcome::output(
        serde_json::to_value(out).unwrap_or(Value::Null),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeEcs;
    use crate::testing::{call, T};

    #[tokio::test]
    async fn an_http_probe_to_a_host_off_the_allow_list_is_refused_unsent() {
        let mut t = T::new(FakeEcs::default());
        let probe = call(HTTP, json!({"url": "http://10.9.8.7:1/health"}));
        let err = t.run(&probe).await.unwrap_err();
        assert!(matches!(err, ActivityError::Refused(_)), "{err:?}");
        assert!(err.to_string().contains("10.9.8.7"), "{err}");
    }
}
