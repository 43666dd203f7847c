//! Checks of template.yaml as CloudFormation receives it: translated by
//! aws-sam-translator (`local/turbulence_local/translate.py`, the version
//! aws-sam-cli pins), so the roles, permissions, rules, schedules and queues
//! SAM generates are checked too. cfn-lint and `sam validate --lint` pass
//! on what these tests refuse.
//!
//! - every EventBridge rule target and Scheduler schedule has a dead-letter
//!   queue, and it is the project's `DeadLetterQueue` (SAM's
//!   `DeadLetterConfig: {Type: SQS}` makes a bare queue of its own, and it
//!   knows no `Destination`: the janitor rule's failed deliveries went to a
//!   queue nothing watched);
//! - the queue's policy lets EventBridge deliver them, for those rules only;
//! - every role trusted by an AWS service other than Lambda is scoped with
//!   `aws:SourceAccount` and `aws:SourceArn` (the confused-deputy guard);
//! - the control-plane functions have reserved concurrency (by default), the
//!   queue and the logs are encrypted (with `KmsKeyArn` when given), and log
//!   retention is the parameter.
//!
//! `a_template_with_the_old_janitor_rule_fails` runs the checks on the
//! template as it was, to show they can fail.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `template.yaml` (or `text`, a variant of it) translated to CloudFormation.
fn translate(text: Option<&str>) -> Value {
    let python = root().join(".tools/venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/bootstrap",
        python.display()
    );
    let path = match text {
        None => root().join("template.yaml"),
        Some(text) => {
            // Beside template.yaml: the translation resolves relative paths.
            let path = root().join(format!(
                ".translated-test-{}.yaml",
                std::process::id() as u64 * 1000 + text.len() as u64 % 1000
            ));
            std::fs::write(&path, text).unwrap();
            path
        }
    };
    let out = Command::new(python)
        .arg(root().join("local/turbulence_local/translate.py"))
        .arg(&path)
        .output()
        .expect("translate.py runs");
    if text.is_some() {
        let _ = std::fs::remove_file(&path);
    }
    assert!(
        out.status.success(),
        "translate.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("translate.py prints JSON")
}

fn resources<'a>(t: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, r)| (id.as_str(), r))
        .collect()
}

fn dead_letter_queue() -> Value {
    json!({"Fn::GetAtt": ["DeadLetterQueue", "Arn"]})
}

/// The dead-letter problems of a translated template.
fn dead_letter_problems(t: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, rule) in resources(t, "AWS::Events::Rule") {
        for target in rule["Properties"]["Targets"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let dlq = &target["DeadLetterConfig"]["Arn"];
            if *dlq != dead_letter_queue() {
                problems.push(format!(
                    "{id}: target {} sends failed deliveries to {dlq}, not the DeadLetterQueue",
                    target["Id"]
                ));
            }
        }
    }
    for (id, schedule) in resources(t, "AWS::Scheduler::Schedule") {
        let dlq = &schedule["Properties"]["Target"]["DeadLetterConfig"]["Arn"];
        if *dlq != dead_letter_queue() {
            problems.push(format!(
                "{id}: failed starts go to {dlq}, not the DeadLetterQueue"
            ));
        }
    }
    for (id, _) in resources(t, "AWS::SQS::Queue") {
        if id != "DeadLetterQueue" {
            problems.push(format!(
                "{id}: a queue the template does not declare (SAM made it; nothing watches it)"
            ));
        }
    }
    // EventBridge needs the queue's permission, for exactly those rules.
    let rules: BTreeSet<String> = resources(t, "AWS::Events::Rule")
        .into_iter()
        .filter(|(_, r)| {
            r["Properties"]["Targets"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|x| x["DeadLetterConfig"]["Arn"] == dead_letter_queue())
        })
        .map(|(id, r)| {
            let name = &r["Properties"]["Name"]["Fn::Sub"];
            assert!(name.is_string(), "{id}: give the rule a Name (RuleName)");
            name.as_str().unwrap().to_string()
        })
        .collect();
    let mut allowed = BTreeSet::new();
    for (_, policy) in resources(t, "AWS::SQS::QueuePolicy") {
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if st["Effect"] == "Allow"
                && st["Principal"]["Service"] == "events.amazonaws.com"
                && st["Action"] == "sqs:SendMessage"
                && st["Resource"] == dead_letter_queue()
            {
                if let Some(arn) = st["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"].as_str()
                {
                    allowed.insert(arn.to_string());
                }
            }
        }
    }
    for rule in rules {
        let arn = format!(
            "arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/{rule}"
        );
        if !allowed.contains(&arn) {
            problems.push(format!(
                "no queue policy lets EventBridge send rule {rule}'s dead letters ({arn})"
            ));
        }
    }
    problems
}

/// Roles trusted by AWS services (other than Lambda) without both
/// confused-deputy conditions.
fn confused_deputy_problems(t: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, role) in resources(t, "AWS::IAM::Role") {
        for st in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
            .as_array()
            .into_iter()
            .flatten()
        {
            // SAM writes `Service: [..]`, the template a string.
            let services: Vec<&str> = match &st["Principal"]["Service"] {
                Value::String(s) => vec![s.as_str()],
                Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            let condition = &st["Condition"];
            let account = &condition["StringEquals"]["aws:SourceAccount"];
            let arn = condition["ArnLike"]["aws:SourceArn"]
                .as_object()
                .or(condition["ArnEquals"]["aws:SourceArn"].as_object());
            for service in services {
                // Lambda documents no aws:SourceArn / SourceAccount for the
                // AssumeRole of an execution role (README, Security review).
                if service == "lambda.amazonaws.com" {
                    continue;
                }
                if account.is_null() || arn.is_none() {
                    problems.push(format!(
                        "{id}: trusted by {service} without aws:SourceAccount and aws:SourceArn"
                    ));
                }
            }
        }
    }
    problems
}

fn assert_none(what: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

#[test]
fn every_rule_and_schedule_sends_its_dead_letters_to_the_project_queue() {
    assert_none("dead letters", dead_letter_problems(&translate(None)));
}

#[test]
fn roles_trusted_by_services_carry_the_confused_deputy_guard() {
    assert_none(
        "confused deputy",
        confused_deputy_problems(&translate(None)),
    );
}

#[test]
fn a_template_with_the_old_janitor_rule_fails() {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let fixed = "            DeadLetterConfig:\n              Arn: !GetAtt DeadLetterQueue.Arn\n        Sweep:";
    assert!(
        text.contains(fixed),
        "the janitor rule's DeadLetterConfig moved: update this test"
    );
    let old = text.replace(
        fixed,
        "            DeadLetterConfig:\n              Type: SQS\n              Destination: !GetAtt DeadLetterQueue.Arn\n        Sweep:",
    );
    let problems = dead_letter_problems(&translate(Some(&old)));
    assert!(
        problems
            .iter()
            .any(|p| p.contains("JanitorFunctionExecutionEnded")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("a queue the template does not declare")),
        "{problems:#?}"
    );
    // And SAM's own role for the sweep schedule has no guard.
    let sam_role = text.replace(
        "            RoleArn: !GetAtt JanitorSweepSchedulerRole.Arn\n",
        "",
    );
    let problems = confused_deputy_problems(&translate(Some(&sam_role)));
    assert!(
        problems
            .iter()
            .any(|p| p.contains("JanitorFunctionSweepRole")),
        "{problems:#?}"
    );
}

#[test]
fn the_control_plane_has_reserved_concurrency_encryption_and_retention() {
    let t = translate(None);
    let mut problems = Vec::new();
    for (id, f) in resources(&t, "AWS::Lambda::Function") {
        let reserved = &f["Properties"]["ReservedConcurrentExecutions"]["Fn::If"];
        let target = id == "ModerationFunction";
        if target != reserved.is_null() {
            problems.push(format!(
                "{id}: ReservedConcurrentExecutions {reserved} (control-plane functions reserve, the demo target does not)"
            ));
        }
        if f["Properties"]["KmsKeyArn"]["Fn::If"][0] != "HasKmsKey" {
            problems.push(format!("{id}: environment not encrypted with KmsKeyArn"));
        }
    }
    for (id, g) in resources(&t, "AWS::Logs::LogGroup") {
        if g["Properties"]["KmsKeyId"]["Fn::If"][0] != "HasKmsKey" {
            problems.push(format!("{id}: not encrypted with KmsKeyArn"));
        }
        if g["Properties"]["RetentionInDays"] != json!({"Ref": "LogRetentionInDays"}) {
            problems.push(format!("{id}: retention is not LogRetentionInDays"));
        }
    }
    let q = &t["Resources"]["DeadLetterQueue"]["Properties"];
    if q["KmsMasterKeyId"]["Fn::If"][0] != "HasKmsKey"
        || q["SqsManagedSseEnabled"]["Fn::If"][0] != "HasKmsKey"
    {
        problems.push(format!(
            "DeadLetterQueue: not encrypted (SSE-SQS, or KmsKeyArn): {q}"
        ));
    }
    assert_none("control plane", problems);
}
