//! Offline checks of what `sam deploy` ships: template.yaml and the state
//! machine definitions in statemachines/. cfn-lint validates the template but
//! not the ASL behind `DefinitionUri`, nor our own rules; these tests do:
//!
//! - every `${Placeholder}` of a definition has a `DefinitionSubstitutions`
//!   entry, and every entry is used;
//! - each definition is a well-formed graph: targets exist, every state is
//!   reachable and has a way on to an end;
//! - template.yaml and `local::manifest` (what the local stack deploys) agree;
//! - IAM is least privilege: exact actions per function (the table below is
//!   the spec), no wildcard actions, `"*"` resources only where AWS offers
//!   no resource-level permission.
//!
//! Each test collects every problem it finds and fails with the whole list.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use local::manifest;
use serde_json::Value as Json;
use serde_yaml::{Mapping, Value};

/// What each function calls, by logical id: its role must grant exactly
/// these actions, plus [`FUNCTION_RUNTIME_ACTIONS`].
const FUNCTION_CALLS: &[(&str, &[&str])] = &[
    ("PlanFunction", &["cloudwatch:DescribeAlarms"]),
    (
        "ProbeFunction",
        &[
            "cloudwatch:DescribeAlarms",
            "ecs:DescribeServices",
            "ecs:ListTasks",
            "ecs:DescribeTasks",
            "ssm:GetParameter",
        ],
    ),
    (
        "ActionFunction",
        &[
            "cloudwatch:DescribeAlarms",
            "ecs:DescribeServices",
            "ecs:ListTasks",
            "ecs:DescribeTasks",
            "ecs:StopTask",
            "ecs:UpdateService",
            "ssm:GetParameter",
            "ssm:PutParameter",
            "ssm:DeleteParameter",
            "lambda:InvokeFunction",
        ],
    ),
    ("WaitFunction", &["cloudwatch:DescribeAlarms"]),
    ("JournalFunction", &["sqs:SendMessage"]),
    // The demo target reads its fault configuration.
    ("ModerationFunction", &["ssm:GetParameter"]),
];

/// What every function needs to run at all: write its own log group (checked
/// to be the one its `LoggingConfig` names) and, with active tracing, send
/// X-Ray segments.
const FUNCTION_RUNTIME_ACTIONS: &[&str] = &[
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
];

/// What the state machine's role grants, besides invoking the functions.
const STATE_MACHINE_RUNTIME_ACTIONS: &[&str] = &[
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
];

const NO_RESOURCE_LEVEL: &str = "the action has no resource-level permissions";

/// The only actions allowed on `Resource: "*"`, and why. Keep this short:
/// anything with resource-level permissions gets an ARN.
const STAR_RESOURCE_ALLOWED: &[(&str, Option<&str>, &str)] = &[
    (
        "cloudwatch:DescribeAlarms",
        None,
        "read-only; DescribeAlarms returns composite alarms only to callers \
         allowed on \"*\" (API reference), so \"*\" unless the account sets an \
         alarm name prefix",
    ),
    (
        "ecs:ListTasks",
        Some("ecs:cluster"),
        "read-only; its resource is a container instance, which Fargate tasks \
         do not have, so it is narrowed by the ecs:cluster condition instead",
    ),
    ("xray:PutTraceSegments", None, NO_RESOURCE_LEVEL),
    ("xray:PutTelemetryRecords", None, NO_RESOURCE_LEVEL),
    ("xray:GetSamplingRules", None, NO_RESOURCE_LEVEL),
    ("xray:GetSamplingTargets", None, NO_RESOURCE_LEVEL),
    ("logs:CreateLogDelivery", None, NO_RESOURCE_LEVEL),
    ("logs:GetLogDelivery", None, NO_RESOURCE_LEVEL),
    ("logs:UpdateLogDelivery", None, NO_RESOURCE_LEVEL),
    ("logs:DeleteLogDelivery", None, NO_RESOURCE_LEVEL),
    ("logs:ListLogDeliveries", None, NO_RESOURCE_LEVEL),
    ("logs:PutResourcePolicy", None, NO_RESOURCE_LEVEL),
    ("logs:DescribeResourcePolicies", None, NO_RESOURCE_LEVEL),
    ("logs:DescribeLogGroups", None, NO_RESOURCE_LEVEL),
];

// ------------------------------------------------------------------ tests

#[test]
fn every_placeholder_has_a_substitution_and_every_substitution_is_used() {
    let template = Template::load();
    let mut problems = Vec::new();
    let mut defined = BTreeSet::new();

    for (id, machine) in template.resources_of_type("AWS::Serverless::StateMachine") {
        let Some(uri) = machine.props().get("DefinitionUri").and_then(Value::as_str) else {
            problems.push(format!(
                "Resources.{id}: no DefinitionUri with a local path (inline definitions are not checked)"
            ));
            continue;
        };
        defined.insert(uri.to_owned());
        let text = match std::fs::read_to_string(root().join(uri)) {
            Ok(text) => text,
            Err(err) => {
                problems.push(format!(
                    "Resources.{id}.DefinitionUri: cannot read {uri}: {err}"
                ));
                continue;
            }
        };
        let used = placeholders(&text);
        let substituted: BTreeSet<String> = machine
            .props()
            .get("DefinitionSubstitutions")
            .and_then(Value::as_mapping)
            .map(|m| {
                m.keys()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        for name in used.difference(&substituted) {
            problems.push(format!(
                "{uri} uses ${{{name}}} but Resources.{id}.Properties.DefinitionSubstitutions has no {name}"
            ));
        }
        for name in substituted.difference(&used) {
            problems.push(format!(
                "Resources.{id}.Properties.DefinitionSubstitutions.{name} is never used in {uri}"
            ));
        }
    }

    for file in asl_files() {
        if !defined.contains(&file) {
            problems.push(format!(
                "{file} is not the DefinitionUri of any state machine in template.yaml"
            ));
        }
    }
    assert_no_problems("placeholders", problems);
}

#[test]
fn state_machine_definitions_are_well_formed_graphs() {
    let files = asl_files();
    assert!(
        !files.is_empty(),
        "no statemachines/*.asl.json found under {}",
        root().display()
    );
    let mut problems = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(root().join(&file))
            .unwrap_or_else(|err| panic!("cannot read {file}: {err}"));
        match serde_json::from_str::<Json>(&text) {
            Ok(definition) => check_machine(&file, &definition, &mut problems),
            Err(err) => problems.push(format!("{file}: not valid JSON: {err}")),
        }
    }
    assert_no_problems("state machine graph", problems);
}

#[test]
fn template_matches_the_local_manifest() {
    let template = Template::load();
    let mut problems = Vec::new();

    let in_template: BTreeSet<(String, String)> = template
        .resources_of_type("AWS::Serverless::Function")
        .map(|(id, function)| {
            let binary = function
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(Value::as_str);
            let method = function.get("Metadata").and_then(|m| m.get("BuildMethod")).and_then(Value::as_str);
            if method != Some("rust-cargolambda") {
                problems.push(format!(
                    "Resources.{id}.Metadata.BuildMethod is {method:?}, expected \"rust-cargolambda\""
                ));
            }
            if binary.is_none() {
                problems.push(format!("Resources.{id}.Metadata.BuildProperties.Binary is missing"));
            }
            (id.to_owned(), binary.unwrap_or_default().to_owned())
        })
        .collect();
    let in_manifest: BTreeSet<(String, String)> = manifest::FUNCTIONS
        .iter()
        .chain(manifest::TARGET_FUNCTIONS)
        .map(|f| (f.logical_id.to_owned(), f.binary.to_owned()))
        .collect();
    for (id, binary) in in_template.difference(&in_manifest) {
        problems.push(format!(
            "template.yaml has function {id} (binary {binary}) that local::manifest::FUNCTIONS / TARGET_FUNCTIONS lack"
        ));
    }
    for (id, binary) in in_manifest.difference(&in_template) {
        problems.push(format!(
            "local::manifest::FUNCTIONS has {id} (binary {binary}) that template.yaml lacks"
        ));
    }

    let machines: Vec<_> = template
        .resources_of_type("AWS::Serverless::StateMachine")
        .collect();
    if machines.len() != 1 {
        problems.push(format!(
            "template.yaml has {} AWS::Serverless::StateMachine resources, local::manifest describes exactly one",
            machines.len()
        ));
    }
    for (id, machine) in machines {
        let uri = machine.props().get("DefinitionUri").and_then(Value::as_str);
        if uri != Some(manifest::STATE_MACHINE_DEFINITION) {
            problems.push(format!(
                "Resources.{id}.Properties.DefinitionUri is {uri:?}, local::manifest::STATE_MACHINE_DEFINITION is {:?}",
                manifest::STATE_MACHINE_DEFINITION
            ));
        }
        let substitutions = machine
            .props()
            .get("DefinitionSubstitutions")
            .and_then(Value::as_mapping);
        let keys: BTreeSet<&str> = substitutions
            .map(|m| m.keys().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let expected: BTreeSet<&str> = manifest::SUBSTITUTIONS.iter().copied().collect();
        for key in keys.difference(&expected) {
            problems.push(format!(
                "Resources.{id}.Properties.DefinitionSubstitutions.{key} is not in local::manifest::SUBSTITUTIONS"
            ));
        }
        for key in expected.difference(&keys) {
            problems.push(format!(
                "local::manifest::SUBSTITUTIONS has {key}, missing from Resources.{id}.Properties.DefinitionSubstitutions"
            ));
        }
        // Each <Logical id>Arn names that function's ARN; the queue URL is the queue's Ref.
        for (key, value) in substitutions.into_iter().flatten() {
            let Some(key) = key.as_str() else { continue };
            let at = format!("Resources.{id}.Properties.DefinitionSubstitutions.{key}");
            if let Some(function) = key.strip_suffix("Arn") {
                if manifest::FUNCTIONS.iter().any(|f| f.logical_id == function) {
                    if get_att(value) != Some((function.to_owned(), "Arn".to_owned())) {
                        problems.push(format!(
                            "{at} is {}, expected !GetAtt {function}.Arn",
                            show(value)
                        ));
                    }
                    continue;
                }
            }
            if key == "DeadLetterQueueUrl" {
                match reference(value)
                    .and_then(|target| template.resource(&target).map(|r| (target, r)))
                {
                    Some((_, queue)) if queue.kind() == "AWS::SQS::Queue" => {}
                    _ => problems.push(format!(
                        "{at} is {}, expected !Ref of an AWS::SQS::Queue",
                        show(value)
                    )),
                }
            }
        }
    }
    assert_no_problems("template/manifest drift", problems);
}

#[test]
fn no_statement_grants_wildcard_actions_or_mutations_on_star() {
    let template = Template::load();
    let mut problems = Vec::new();
    let statements = template.all_statements();
    assert!(
        !statements.is_empty(),
        "template.yaml declares no IAM statements at all"
    );
    for statement in &statements {
        if statement.effect() != "Allow" {
            continue; // a Deny of sqs:* is a guard, not a grant
        }
        if statement.body.get("NotAction").is_some() {
            problems.push(format!(
                "{}: Allow with NotAction grants nearly everything",
                statement.at
            ));
        }
        if statement.body.get("NotResource").is_some() {
            problems.push(format!(
                "{}: Allow with NotResource grants nearly everything",
                statement.at
            ));
        }
        let actions = statement.actions();
        if actions.is_empty() {
            problems.push(format!("{}: no Action this test can read", statement.at));
        }
        for action in &actions {
            if action.contains('*') || action.contains('?') {
                problems.push(format!(
                    "{}: wildcard action {action:?}; name each action",
                    statement.at
                ));
            }
        }
        if statement.resource_is_star() {
            for action in &actions {
                let mutating = !["Describe", "List", "Get"].iter().any(|verb| {
                    action
                        .split_once(':')
                        .is_some_and(|(_, name)| name.starts_with(verb))
                });
                match STAR_RESOURCE_ALLOWED.iter().find(|(allowed, _, _)| allowed == action) {
                    None if mutating => problems.push(format!(
                        "{}: mutating action {action} on Resource \"*\"; scope it to ARNs",
                        statement.at
                    )),
                    None => problems.push(format!(
                        "{}: {action} on Resource \"*\" although it has resource-level permissions; \
                         scope it to ARNs (or add it to STAR_RESOURCE_ALLOWED with the reason)",
                        statement.at
                    )),
                    Some((_, Some(key), _)) if !statement.has_condition_key(key) => problems.push(format!(
                        "{}: {action} on Resource \"*\" must be narrowed by a {key} condition",
                        statement.at
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    assert_no_problems("IAM wildcards", problems);
}

#[test]
fn each_function_is_granted_exactly_what_it_calls() {
    let template = Template::load();
    let mut problems = Vec::new();

    for f in manifest::FUNCTIONS {
        if !FUNCTION_CALLS.iter().any(|(id, _)| *id == f.logical_id) {
            problems.push(format!(
                "{} is in local::manifest::FUNCTIONS but not in FUNCTION_CALLS (this test's spec)",
                f.logical_id
            ));
        }
    }

    for (id, calls) in FUNCTION_CALLS {
        let Some(function) = template.resource(id) else {
            problems.push(format!(
                "FUNCTION_CALLS names {id}, which template.yaml lacks"
            ));
            continue;
        };
        let Some(role_id) = own_role(&template, id, function, &mut problems) else {
            continue;
        };
        let statements = template.role_statements(&role_id);
        let granted: BTreeSet<String> = statements
            .iter()
            .filter(|s| s.effect() == "Allow")
            .flat_map(|s| s.actions())
            .collect();
        let expected: BTreeSet<String> = calls
            .iter()
            .chain(FUNCTION_RUNTIME_ACTIONS)
            .map(|a| (*a).to_owned())
            .collect();
        for extra in granted.difference(&expected) {
            problems.push(format!(
                "{id} (role {role_id}) is granted {extra}, which it does not call"
            ));
        }
        for missing in expected.difference(&granted) {
            problems.push(format!(
                "{id} (role {role_id}) calls {missing} but is not granted it"
            ));
        }

        // The log actions must target the log group the function logs to.
        let log_group = function
            .props()
            .get("LoggingConfig")
            .and_then(|c| c.get("LogGroup"))
            .and_then(reference);
        match &log_group {
            None => problems.push(format!(
                "Resources.{id}.Properties.LoggingConfig.LogGroup must !Ref its own AWS::Logs::LogGroup"
            )),
            Some(group) => {
                for statement in statements.iter().filter(|s| s.actions().iter().any(|a| a.starts_with("logs:"))) {
                    let targets = statement.resources();
                    let own = targets.len() == 1
                        && get_att(&targets[0]) == Some((group.clone(), "Arn".to_owned()));
                    if !own {
                        problems.push(format!(
                            "{}: {id}'s log actions must be on !GetAtt {group}.Arn only, found {}",
                            statement.at,
                            targets.iter().map(show).collect::<Vec<_>>().join(", ")
                        ));
                    }
                }
            }
        }
    }
    assert_no_problems("function permissions", problems);
}

#[test]
fn state_machine_may_invoke_exactly_the_functions() {
    let template = Template::load();
    let mut problems = Vec::new();
    for (id, machine) in template.resources_of_type("AWS::Serverless::StateMachine") {
        let Some(role_id) = own_role(&template, id, machine, &mut problems) else {
            continue;
        };
        let statements = template.role_statements(&role_id);
        let granted: BTreeSet<String> = statements
            .iter()
            .filter(|s| s.effect() == "Allow")
            .flat_map(|s| s.actions())
            .collect();
        let expected: BTreeSet<String> = std::iter::once("lambda:InvokeFunction")
            .chain(STATE_MACHINE_RUNTIME_ACTIONS.iter().copied())
            .map(str::to_owned)
            .collect();
        for extra in granted.difference(&expected) {
            problems.push(format!(
                "{id} (role {role_id}) is granted {extra}, which it does not need"
            ));
        }
        for missing in expected.difference(&granted) {
            problems.push(format!(
                "{id} (role {role_id}) needs {missing} but is not granted it"
            ));
        }

        let invoked: BTreeSet<String> = statements
            .iter()
            .filter(|s| s.actions().iter().any(|a| a == "lambda:InvokeFunction"))
            .flat_map(|s| {
                s.resources()
                    .iter()
                    .map(|r| match get_att(r) {
                        Some((target, attribute)) if attribute == "Arn" => target,
                        _ => format!("<not a function ARN: {}>", show(r)),
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let functions: BTreeSet<String> = manifest::FUNCTIONS
            .iter()
            .map(|f| f.logical_id.to_owned())
            .collect();
        for extra in invoked.difference(&functions) {
            problems.push(format!(
                "{id} may invoke {extra}, which is not one of its functions"
            ));
        }
        for missing in functions.difference(&invoked) {
            problems.push(format!("{id} may not invoke {missing}"));
        }
    }
    assert_no_problems("state machine permissions", problems);
}

/// The graph checks above pass on our definitions; make sure they can fail.
#[test]
fn graph_checks_catch_broken_definitions() {
    let cases = [
        (
            r#"{"StartAt": "Nope", "States": {"A": {"Type": "Succeed"}}}"#,
            "StartAt names \"Nope\"",
        ),
        (
            r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A"}}}"#,
            "no terminal state",
        ),
        (
            r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}"#,
            "Next names \"B\"",
        ),
        (
            r#"{"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "B": {"Type": "Succeed"}}}"#,
            "\"B\" is unreachable",
        ),
        (
            r#"{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "x"}}}"#,
            "neither Next nor End",
        ),
        (
            r#"{"StartAt": "S", "States": {
                "S": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "A"}],
                      "Default": "Done"},
                "A": {"Type": "Pass", "Next": "B"},
                "B": {"Type": "Pass", "Next": "A"},
                "Done": {"Type": "Succeed"}}}"#,
            "\"A\" can never reach an end",
        ),
        (
            r#"{"StartAt": "A", "States": {
                "A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "B"}]},
                "B": {"Type": "Succeed"}}}"#,
            "needs a Default",
        ),
        (
            r#"{"StartAt": "A", "States": {
                "A": {"Type": "Task", "Resource": "x", "End": true,
                      "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Gone"}]}}}"#,
            "Catch[0].Next names \"Gone\"",
        ),
        (
            r#"{"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
                "ItemProcessor": {"StartAt": "In", "States": {"In": {"Type": "Pass", "Next": "Out"}}}}}}"#,
            "M.ItemProcessor: state \"In\": Next names \"Out\"",
        ),
    ];
    for (definition, expected) in cases {
        let mut problems = Vec::new();
        check_machine(
            "case",
            &serde_json::from_str(definition).unwrap(),
            &mut problems,
        );
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "expected a problem containing {expected:?} for {definition}, got {problems:#?}"
        );
    }
    assert_eq!(
        placeholders(r#"{"a": "${One}", "${Two}": "$.path", "b": "x${Three}y"}"#),
        BTreeSet::from(["One".to_owned(), "Two".to_owned(), "Three".to_owned()])
    );
}

// ------------------------------------------------------------ ASL checks

/// Checks one state machine (or a Map/Parallel branch of one): `at` names it.
fn check_machine(at: &str, definition: &Json, problems: &mut Vec<String>) {
    let Some(states) = definition.get("States").and_then(Json::as_object) else {
        problems.push(format!("{at}: no States object"));
        return;
    };
    let start = definition.get("StartAt").and_then(Json::as_str);
    match start {
        None => problems.push(format!("{at}: no StartAt")),
        Some(start) if !states.contains_key(start) => problems.push(format!(
            "{at}: StartAt names {start:?}, which is not a state"
        )),
        Some(_) => {}
    }

    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut terminal: BTreeSet<&str> = BTreeSet::new();
    for (name, state) in states {
        let here = format!("{at}: state {name:?}");
        let kind = state
            .get("Type")
            .and_then(Json::as_str)
            .unwrap_or("<no Type>");
        let mut targets: Vec<(&str, String)> = Vec::new();
        if let Some(next) = state.get("Next") {
            match next.as_str() {
                Some(next) => targets.push((next, "Next".to_owned())),
                None => problems.push(format!("{here}: Next is not a string")),
            }
        }
        if let Some(default) = state.get("Default").and_then(Json::as_str) {
            targets.push((default, "Default".to_owned()));
        }
        for (i, choice) in array(state, "Choices").iter().enumerate() {
            match choice.get("Next").and_then(Json::as_str) {
                Some(next) => targets.push((next, format!("Choices[{i}].Next"))),
                None => problems.push(format!("{here}: Choices[{i}] has no Next")),
            }
        }
        for (i, catcher) in array(state, "Catch").iter().enumerate() {
            match catcher.get("Next").and_then(Json::as_str) {
                Some(next) => targets.push((next, format!("Catch[{i}].Next"))),
                None => problems.push(format!("{here}: Catch[{i}] has no Next")),
            }
        }
        for (target, field) in &targets {
            if !states.contains_key(*target) {
                problems.push(format!(
                    "{here}: {field} names {target:?}, which is not a state"
                ));
            }
        }

        let ends = state.get("End").and_then(Json::as_bool) == Some(true);
        let has_next = state.get("Next").is_some();
        match kind {
            "Succeed" | "Fail" => {
                terminal.insert(name);
                if has_next || ends {
                    problems.push(format!("{here}: a {kind} state takes neither Next nor End"));
                }
            }
            "Choice" => {
                if array(state, "Choices").is_empty() {
                    problems.push(format!(
                        "{here}: a Choice needs at least one rule in Choices"
                    ));
                }
                // No Default means States.NoChoiceMatched, which a Choice cannot
                // catch: the execution would fail without running rollbacks.
                if state.get("Default").is_none() {
                    problems.push(format!("{here}: a Choice needs a Default (unmatched input would skip the rollbacks)"));
                }
            }
            "Task" | "Pass" | "Wait" | "Map" | "Parallel" => match (has_next, ends) {
                (true, true) => problems.push(format!("{here}: has both Next and End")),
                (false, false) => problems.push(format!("{here}: has neither Next nor End: true")),
                (false, true) => {
                    terminal.insert(name);
                }
                (true, false) => {}
            },
            other => problems.push(format!("{here}: unknown Type {other:?}")),
        }

        // Sub-machines: a Map's item processor, a Parallel's branches.
        for key in ["ItemProcessor", "Iterator"] {
            if let Some(inner) = state.get(key) {
                check_machine(&format!("{at} > {name}.{key}"), inner, problems);
            }
        }
        for (i, branch) in array(state, "Branches").iter().enumerate() {
            check_machine(&format!("{at} > {name}.Branches[{i}]"), branch, problems);
        }

        edges.insert(
            name.as_str(),
            targets
                .iter()
                .map(|(t, _)| *t)
                .filter(|t| states.contains_key(*t))
                .collect(),
        );
    }

    // Reachable from StartAt.
    if let Some(start) = start.filter(|s| states.contains_key(*s)) {
        let mut seen: BTreeSet<&str> = BTreeSet::from([start]);
        let mut queue = VecDeque::from([start]);
        while let Some(state) = queue.pop_front() {
            for next in edges.get(state).into_iter().flatten() {
                if seen.insert(next) {
                    queue.push_back(next);
                }
            }
        }
        for name in states.keys() {
            if !seen.contains(name.as_str()) {
                problems.push(format!(
                    "{at}: state {name:?} is unreachable from StartAt {start:?}"
                ));
            }
        }
    }

    // Every state has a way on to an end (no loop without an exit).
    let mut ends: BTreeSet<&str> = terminal.clone();
    loop {
        let before = ends.len();
        for (state, nexts) in &edges {
            if nexts.iter().any(|n| ends.contains(n)) {
                ends.insert(state);
            }
        }
        if ends.len() == before {
            break;
        }
    }
    if terminal.is_empty() {
        problems.push(format!(
            "{at}: no terminal state (Succeed, Fail or End: true)"
        ));
    } else {
        for name in states.keys() {
            if !ends.contains(name.as_str()) {
                problems.push(format!(
                    "{at}: state {name:?} can never reach an end (a loop with no way out)"
                ));
            }
        }
    }
}

fn array<'a>(state: &'a Json, key: &str) -> &'a [Json] {
    state
        .get(key)
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The `${Name}` placeholders in a definition's text.
fn placeholders(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        rest = &rest[start + 2..];
        match rest.find('}') {
            Some(end) => {
                found.insert(rest[..end].to_owned());
                rest = &rest[end + 1..];
            }
            None => break,
        }
    }
    found
}

// -------------------------------------------------------- template model

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

/// statemachines/*.asl.json, relative to the workspace root, sorted.
fn asl_files() -> Vec<String> {
    let dir = root().join("statemachines");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".asl.json"))
        .map(|name| format!("statemachines/{name}"))
        .collect();
    files.sort();
    files
}

struct Template {
    resources: Mapping,
}

#[derive(Clone, Copy)]
struct Resource<'a>(&'a Value);

impl Resource<'_> {
    fn kind(&self) -> &str {
        self.0
            .get("Type")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    fn props(&self) -> &Value {
        static NONE: Value = Value::Null;
        self.0.get("Properties").unwrap_or(&NONE)
    }
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }
}

struct Statement<'a> {
    /// Where it is, for messages: resource, path, Sid.
    at: String,
    body: &'a Value,
}

impl Statement<'_> {
    fn effect(&self) -> &str {
        self.body
            .get("Effect")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    fn actions(&self) -> Vec<String> {
        strings(self.body.get("Action"))
    }
    /// Every value the Resource can take (both branches of an `!If`).
    fn resources(&self) -> Vec<Value> {
        let listed = match self.body.get("Resource") {
            Some(Value::Sequence(items)) => items.clone(),
            Some(one) => vec![one.clone()],
            None => Vec::new(),
        };
        listed.iter().flat_map(alternatives).collect()
    }
    fn resource_is_star(&self) -> bool {
        self.resources().iter().any(|r| {
            let plain = r.as_str();
            // `!Sub "*"` is still a star.
            let sub = match r {
                Value::Tagged(t) if t.tag == "Sub" => t.value.as_str(),
                _ => None,
            };
            plain == Some("*") || sub == Some("*")
        })
    }
    fn has_condition_key(&self, key: &str) -> bool {
        self.body
            .get("Condition")
            .and_then(Value::as_mapping)
            .is_some_and(|ops| ops.values().any(|keys| keys.get(key).is_some()))
    }
}

impl Template {
    fn load() -> Self {
        let path = root().join("template.yaml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
        let value: Value = serde_yaml::from_str(&text)
            .unwrap_or_else(|err| panic!("template.yaml is not valid YAML: {err}"));
        let resources = value
            .get("Resources")
            .and_then(Value::as_mapping)
            .cloned()
            .expect("template.yaml has no Resources mapping");
        Template { resources }
    }

    fn resource(&self, id: &str) -> Option<Resource<'_>> {
        self.resources.get(id).map(Resource)
    }

    fn resources_of_type<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a str, Resource<'a>)> + 'a {
        self.resources.iter().filter_map(move |(id, body)| {
            let resource = Resource(body);
            (resource.kind() == kind).then(|| (id.as_str().unwrap_or_default(), resource))
        })
    }

    /// Every statement of every permission policy in the template (trust
    /// policies excluded), wherever it sits.
    fn all_statements(&self) -> Vec<Statement<'_>> {
        let mut found = Vec::new();
        for (id, body) in &self.resources {
            let id = id.as_str().unwrap_or_default();
            collect_statements(body, &format!("Resources.{id}"), &mut found);
        }
        found
    }

    /// The statements granted to an AWS::IAM::Role of this template: its
    /// inline policies and any AWS::IAM::Policy / ManagedPolicy attached to it.
    fn role_statements(&self, role: &str) -> Vec<Statement<'_>> {
        let mut found = Vec::new();
        if let Some(body) = self.resources.get(role) {
            if let Some(policies) = body.get("Properties").and_then(|p| p.get("Policies")) {
                collect_statements(
                    policies,
                    &format!("Resources.{role}.Properties.Policies"),
                    &mut found,
                );
            }
        }
        for kind in ["AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"] {
            for (id, policy) in self.resources_of_type(kind) {
                let attached = policy
                    .props()
                    .get("Roles")
                    .and_then(Value::as_sequence)
                    .is_some_and(|roles| {
                        roles.iter().any(|r| reference(r).as_deref() == Some(role))
                    });
                if attached {
                    collect_statements(policy.0, &format!("Resources.{id}"), &mut found);
                }
            }
        }
        found
    }
}

/// The role a function or state machine runs as, which must be its own
/// AWS::IAM::Role in this template with inline policies only, so that every
/// permission it has is visible here (SAM-generated roles add managed
/// policies this test cannot see).
fn own_role(
    template: &Template,
    id: &str,
    resource: Resource<'_>,
    problems: &mut Vec<String>,
) -> Option<String> {
    for key in ["Policies", "Connectors"] {
        if resource.props().get(key).is_some() {
            problems.push(format!(
                "Resources.{id}.Properties.{key}: grant permissions on the resource's own AWS::IAM::Role instead"
            ));
        }
    }
    let role = resource.props().get("Role");
    let Some((role_id, _)) = role
        .and_then(get_att)
        .filter(|(_, attribute)| attribute == "Arn")
    else {
        problems.push(format!(
            "Resources.{id}.Properties.Role must be !GetAtt <its AWS::IAM::Role>.Arn, found {}",
            role.map(show)
                .unwrap_or_else(|| "nothing (a SAM-generated role)".to_owned())
        ));
        return None;
    };
    match template.resource(&role_id) {
        Some(r) if r.kind() == "AWS::IAM::Role" => {
            if r.props().get("ManagedPolicyArns").is_some() {
                problems.push(format!(
                    "Resources.{role_id}.Properties.ManagedPolicyArns: {id}'s permissions must be inline and reviewed here"
                ));
            }
            let shared: Vec<String> = template
                .resources
                .iter()
                .filter(|(other, body)| {
                    other.as_str() != Some(id)
                        && body
                            .get("Properties")
                            .and_then(|p| p.get("Role"))
                            .and_then(get_att)
                            .map(|(r, _)| r)
                            == Some(role_id.clone())
                })
                .filter_map(|(other, _)| other.as_str().map(str::to_owned))
                .collect();
            if !shared.is_empty() {
                problems.push(format!(
                    "{id} shares role {role_id} with {}: give each its own",
                    shared.join(", ")
                ));
            }
            Some(role_id)
        }
        _ => {
            problems.push(format!("Resources.{id}.Properties.Role names {role_id}, which is not an AWS::IAM::Role here"));
            None
        }
    }
}

fn collect_statements<'a>(value: &'a Value, at: &str, found: &mut Vec<Statement<'a>>) {
    match value {
        Value::Mapping(map) => {
            for (key, inner) in map {
                let key = key.as_str().unwrap_or_default();
                if key == "AssumeRolePolicyDocument" {
                    continue;
                }
                if key == "Statement" {
                    let statements = match inner {
                        Value::Sequence(items) => items.iter().collect(),
                        one => vec![one],
                    };
                    for (i, statement) in statements.into_iter().enumerate() {
                        let mut here = format!("{at}.Statement[{i}]");
                        if let Some(sid) = statement.get("Sid").and_then(Value::as_str) {
                            let _ = write!(here, " (Sid {sid})");
                        }
                        found.push(Statement {
                            at: here,
                            body: statement,
                        });
                    }
                } else {
                    collect_statements(inner, &format!("{at}.{key}"), found);
                }
            }
        }
        Value::Sequence(items) => {
            for (i, inner) in items.iter().enumerate() {
                collect_statements(inner, &format!("{at}[{i}]"), found);
            }
        }
        Value::Tagged(tagged) => collect_statements(&tagged.value, at, found),
        _ => {}
    }
}

/// `!GetAtt A.B`, `!GetAtt [A, B]` or `Fn::GetAtt: [A, B]` as (A, B).
fn get_att(value: &Value) -> Option<(String, String)> {
    let inner = match value {
        Value::Tagged(t) if t.tag == "GetAtt" => &t.value,
        Value::Mapping(m) if m.len() == 1 => m.get("Fn::GetAtt")?,
        _ => return None,
    };
    match inner {
        Value::String(s) => s.split_once('.').map(|(a, b)| (a.to_owned(), b.to_owned())),
        Value::Sequence(parts) if parts.len() == 2 => {
            Some((parts[0].as_str()?.to_owned(), parts[1].as_str()?.to_owned()))
        }
        _ => None,
    }
}

/// The values `value` may take: both branches of `!If [cond, a, b]` (or
/// `Fn::If`), recursively, leaving out `!Ref AWS::NoValue`; else itself.
fn alternatives(value: &Value) -> Vec<Value> {
    let branches = match value {
        Value::Tagged(t) if t.tag == "If" => t.value.as_sequence(),
        Value::Mapping(m) if m.len() == 1 => m.get("Fn::If").and_then(Value::as_sequence),
        _ => None,
    };
    match branches {
        Some(parts) if parts.len() == 3 => parts[1..]
            .iter()
            .flat_map(alternatives)
            .filter(|v| reference(v).as_deref() != Some("AWS::NoValue"))
            .collect(),
        _ => match value {
            Value::Sequence(items) => items.iter().flat_map(alternatives).collect(),
            _ => vec![value.clone()],
        },
    }
}

/// `!Ref A` or `Ref: A` as A.
fn reference(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str().map(str::to_owned),
        Value::Mapping(m) if m.len() == 1 => m.get("Ref")?.as_str().map(str::to_owned),
        _ => None,
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// A YAML value on one line, for messages.
fn show(value: &Value) -> String {
    serde_yaml::to_string(value)
        .map(|s| s.trim().replace('\n', " "))
        .unwrap_or_else(|_| format!("{value:?}"))
}

fn assert_no_problems(what: &str, problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    );
}
