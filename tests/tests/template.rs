//! Offline checks of what `sam deploy` ships: template.yaml and the state
//! machine definitions in statemachines/. cfn-lint validates the template but
//! not the ASL behind `DefinitionUri`, nor our own rules; these tests do:
//!
//! - every `${Placeholder}` of a definition has a `DefinitionSubstitutions`
//!   entry, and every entry is used;
//! - each definition is a well-formed graph: targets exist, every state is
//!   reachable and has a way on to an end;
//! - every function names the binary `sam build` (and the local stack, which
//!   deploys template.yaml itself) runs;
//! - IAM is least privilege: exact actions per function (the engine's own,
//!   below, and its activities' from the catalogue), no wildcard actions, `"*"` resources only where AWS offers
//!   no resource-level permission; every role belongs to a function, the
//!   state machine or the schedules, and trusts only that service;
//! - one schedule per experiments/*.json, starting the experiment state
//!   machine with a reference under `ExperimentParameterPrefix`, DISABLED
//!   unless its enable parameter says "true", run by a role that can only
//!   start that state machine (and send its failed starts to the DLQ);
//! - the dashboard graphs the journal's run metrics, the executions and the
//!   dead-letter queue, which an alarm watches; everything is traced.
//!
//! Each test collects every problem it finds and fails with the whole list;
//! `schedule_role_and_dashboard_checks_catch_broken_templates` breaks the
//! template in memory to make sure those checks can fail.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use local::manifest;
use serde_json::Value as Json;
use serde_yaml::{Mapping, Value};

/// What each function calls besides the activities it runs, by logical id:
/// the engine's own reads and writes (abort alarms, the kill switch, run
/// records and locks, background executions). Its role must grant exactly
/// these, the calls of its activities ([`function_calls`], from the
/// catalogue) and [`FUNCTION_RUNTIME_ACTIONS`].
const ENGINE_CALLS: &[(&str, &[&str])] = &[
    // Plan also reads experiments published under ExperimentParameterPrefix
    // and the kill switch, takes the locks and writes the run record.
    (
        "PlanFunction",
        &[
            "cloudwatch:DescribeAlarms",
            "ssm:GetParameter",
            "ssm:PutParameter",
            "ssm:DeleteParameter",
        ],
    ),
    (
        "ProbeFunction",
        &["cloudwatch:DescribeAlarms", "ssm:GetParameter"],
    ),
    (
        "ActionFunction",
        &[
            "cloudwatch:DescribeAlarms",
            "ssm:GetParameter",
            "ssm:PutParameter",
            "ssm:DeleteParameter",
            // Background activities: start, follow, stop their executions.
            "states:StartExecution",
            "states:DescribeExecution",
            "states:StopExecution",
        ],
    ),
    // The wait polls the kill switch with the alarms; the join follows
    // background activities and moves their undos into the run record.
    (
        "WaitFunction",
        &[
            "cloudwatch:DescribeAlarms",
            "ssm:GetParameter",
            "ssm:PutParameter",
            "ssm:DeleteParameter",
            "states:DescribeExecution",
        ],
    ),
    // The journal removes the run record once every undo ran, and reads
    // the target over the run (the abort alarms' and metric probes'
    // metrics) into the journal.
    (
        "JournalFunction",
        &[
            "sqs:SendMessage",
            "ssm:DeleteParameter",
            "cloudwatch:DescribeAlarms",
            "cloudwatch:GetMetricData",
        ],
    ),
    // The janitor reads an ended execution and its record, and sweeps.
    (
        "JanitorFunction",
        &[
            "states:DescribeExecution",
            "states:GetExecutionHistory",
            "states:StopExecution",
            "ssm:GetParameter",
            "ssm:GetParametersByPath",
            "ssm:PutParameter",
            "ssm:DeleteParameter",
            "sqs:SendMessage",
        ],
    ),
    // The demo target reads its fault configuration.
    ("ModerationFunction", &["ssm:GetParameter"]),
];

/// What each function calls: the engine's own, and from the catalogue the
/// calls of what it runs. The probe function runs the probes; the action
/// function the actions, and every undo in the rollbacks; the janitor every
/// undo (and the lock releases); Plan reads the opt-in tags of what the
/// actions touch and makes the activities' preflight checks.
fn function_calls() -> Vec<(&'static str, BTreeSet<String>)> {
    use experiment::catalogue::{self, Kind, OptIn};
    let all: Vec<&catalogue::Activity> = catalogue::activities().collect();
    let of =
        |kinds: &[Kind]| catalogue::iam_of(all.iter().copied().filter(|a| kinds.contains(&a.kind)));
    let janitor =
        catalogue::iam_of(catalogue::undos().chain(all.iter().copied().filter(|a| a.internal)));
    let mut plan: BTreeSet<&str> = all
        .iter()
        .flat_map(|a| a.preflight_iam.iter().map(|i| i.action))
        .collect();
    for ty in all
        .iter()
        .filter(|a| a.kind != Kind::Probe)
        .flat_map(|a| a.touched.iter())
    {
        if let OptIn::Tag { iam, .. } = ty.opt_in {
            plan.extend(iam.iter().copied());
        }
    }
    ENGINE_CALLS
        .iter()
        .map(|(id, engine)| {
            let activities = match *id {
                "PlanFunction" => plan.clone(),
                "ProbeFunction" => of(&[Kind::Probe, Kind::Either]),
                "ActionFunction" => of(&[Kind::Action, Kind::Either]),
                "JanitorFunction" => janitor.clone(),
                _ => BTreeSet::new(),
            };
            let calls = engine
                .iter()
                .copied()
                .chain(activities)
                .map(str::to_owned)
                .collect();
            (*id, calls)
        })
        .collect()
}

/// Actions that change an opted-in target (the catalogue's
/// `Fence::OptInTag`): every grant of one must be conditioned on the
/// opt-in tag, so IAM refuses what the guards would.
fn target_mutations() -> BTreeSet<&'static str> {
    use experiment::catalogue::{self, Fence};
    catalogue::activities()
        .flat_map(|a| a.iam.iter())
        .filter(|i| i.fence == Fence::OptInTag)
        .map(|i| i.action)
        .collect()
}

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
    ("cloudwatch:GetMetricStatistics", None, NO_RESOURCE_LEVEL),
    ("cloudwatch:GetMetricData", None, NO_RESOURCE_LEVEL),
    ("lambda:ListEventSourceMappings", None, NO_RESOURCE_LEVEL),
    (
        "elasticloadbalancing:DescribeTargetGroups",
        None,
        NO_RESOURCE_LEVEL,
    ),
    (
        "elasticloadbalancing:DescribeTargetHealth",
        None,
        NO_RESOURCE_LEVEL,
    ),
    (
        "elasticloadbalancing:DescribeLoadBalancers",
        None,
        NO_RESOURCE_LEVEL,
    ),
    (
        "elasticloadbalancing:DescribeLoadBalancerAttributes",
        None,
        NO_RESOURCE_LEVEL,
    ),
    ("elasticloadbalancing:DescribeTags", None, NO_RESOURCE_LEVEL),
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

/// The local stack runs each deployed function's `target/debug/<Binary>`,
/// and `sam build` builds it: every function names its binary.
#[test]
fn every_function_is_built_by_cargo_lambda_and_names_its_binary() {
    let template = Template::load();
    let mut problems = Vec::new();
    for (id, function) in template.resources_of_type("AWS::Serverless::Function") {
        let metadata = function.get("Metadata");
        let method = metadata
            .and_then(|m| m.get("BuildMethod"))
            .and_then(Value::as_str);
        if method != Some("rust-cargolambda") {
            problems.push(format!(
                "Resources.{id}.Metadata.BuildMethod is {method:?}, expected \"rust-cargolambda\""
            ));
        }
        let binary = metadata
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str);
        if binary.is_none() {
            problems.push(format!(
                "Resources.{id}.Metadata.BuildProperties.Binary is missing"
            ));
        }
    }
    assert_no_problems("function builds", problems);
}

/// The functions the state machine runs: those whose ARN its
/// `DefinitionSubstitutions` pass (`!GetAtt <Function>.Arn`).
fn state_machine_functions(template: &Template) -> BTreeSet<String> {
    template
        .resources_of_type("AWS::Serverless::StateMachine")
        .flat_map(|(_, machine)| {
            machine
                .props()
                .get("DefinitionSubstitutions")
                .and_then(Value::as_mapping)
                .into_iter()
                .flatten()
                .filter_map(|(_, value)| get_att(value))
                .filter(|(target, attribute)| {
                    attribute == "Arn"
                        && template
                            .resource(target)
                            .is_some_and(|r| r.kind() == "AWS::Serverless::Function")
                })
                .map(|(target, _)| target)
                .collect::<Vec<_>>()
        })
        .collect()
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
fn every_target_mutation_is_conditioned_on_the_opt_in_tag() {
    let template = Template::load();
    let tag = template.resource("ExperimentStateMachine").and_then(|m| {
        m.props()
            .get("DefinitionSubstitutions")
            .and_then(|d| d.get("OptInTagKey"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    assert_eq!(
        tag.as_deref(),
        Some(manifest::OPT_IN_TAG),
        "DefinitionSubstitutions.OptInTagKey must be the literal tag the local stack uses"
    );
    let key = format!("aws:ResourceTag/{}", manifest::OPT_IN_TAG);
    let mutations = target_mutations();
    let mut problems = Vec::new();
    let mut seen = 0;
    for statement in template.all_statements() {
        if statement.effect() != "Allow" {
            continue;
        }
        for action in statement.actions() {
            if !mutations.contains(action.as_str()) {
                continue;
            }
            // The state machine invoking Turbulence's own functions.
            let own = statement
                .resources()
                .iter()
                .all(|r| get_att(r).is_some_and(|(id, _)| template.resource(&id).is_some()));
            if own {
                continue;
            }
            seen += 1;
            let condition = statement
                .body
                .get("Condition")
                .and_then(|c| c.get("StringEquals"))
                .and_then(|c| c.get(key.as_str()));
            if condition.and_then(Value::as_str) != Some("true") {
                problems.push(format!(
                    "{}: {action} must have Condition StringEquals {key}: \"true\"",
                    statement.at
                ));
            }
        }
    }
    assert!(seen >= 3, "the template grants no target mutation at all?");
    assert_no_problems("opt-in conditions", problems);
}

#[test]
fn each_function_is_granted_exactly_what_it_calls() {
    let template = Template::load();
    let mut problems = Vec::new();

    let function_calls = function_calls();
    for (function, _) in template.resources_of_type("AWS::Serverless::Function") {
        if !function_calls.iter().any(|(id, _)| *id == function) {
            problems.push(format!(
                "{function} is a function of template.yaml but not in ENGINE_CALLS (this test's spec)"
            ));
        }
    }

    for (id, calls) in &function_calls {
        let Some(function) = template.resource(id) else {
            problems.push(format!(
                "ENGINE_CALLS names {id}, which template.yaml lacks"
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
            .cloned()
            .chain(FUNCTION_RUNTIME_ACTIONS.iter().map(|a| (*a).to_owned()))
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
        let functions = state_machine_functions(&template);
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

#[test]
fn each_shipped_experiment_has_one_schedule_that_is_off_by_default() {
    let template = Template::load();
    let stems = experiment_stems();
    assert!(
        !stems.is_empty(),
        "no experiments/*.json found under {}",
        root().display()
    );
    assert_no_problems("schedules", check_schedules(&template, &stems));
}

#[test]
fn schedules_may_only_start_the_experiment_state_machine() {
    let template = Template::load();
    assert_no_problems("scheduler role", check_scheduler_roles(&template));
}

#[test]
fn every_role_has_a_checked_user_and_trusts_only_its_service() {
    let template = Template::load();
    assert_no_problems("roles", check_roles(&template));
}

#[test]
fn dashboard_and_alarm_watch_runs_executions_and_dead_letters() {
    let template = Template::load();
    assert_no_problems("observability", check_observability(&template));
}

/// The schedule, role and dashboard checks pass on template.yaml; make sure
/// they fail on templates broken the ways that matter.
#[test]
fn schedule_role_and_dashboard_checks_catch_broken_templates() {
    type Check = fn(&Template) -> Vec<String>;
    let schedules: Check = |t| check_schedules(t, &experiment_stems());
    let roles: Check = |t| {
        let mut problems = check_scheduler_roles(t);
        problems.extend(check_roles(t));
        problems
    };
    let observability: Check = check_observability;
    let ecs = "Resources.EcsRandomTaskSchedule.Properties";
    let role = "Resources.ExperimentSchedulerRole.Properties";
    let cases: &[(&str, &str, Option<&str>, Check, &str)] = &[
        (
            "enabled outright",
            &format!("{ecs}.State"),
            Some("ENABLED"),
            schedules,
            "State must be !If",
        ),
        (
            "branches swapped",
            &format!("{ecs}.State"),
            Some("!If [EcsRandomTaskScheduleEnabled, DISABLED, ENABLED]"),
            schedules,
            "ENABLED when the condition holds, DISABLED otherwise",
        ),
        (
            "enabled by default",
            "Parameters.EnableEcsRandomTaskSchedule.Default",
            Some("\"true\""),
            schedules,
            "ENABLED on deploy",
        ),
        (
            "a condition no parameter can turn on",
            "Conditions.EcsRandomTaskScheduleEnabled",
            Some("!Equals [a, b]"),
            schedules,
            "nothing can enable",
        ),
        (
            "another target",
            &format!("{ecs}.Target.Arn"),
            Some("!GetAtt PlanFunction.Arn"),
            schedules,
            "Target.Arn must be !Ref ExperimentStateMachine",
        ),
        (
            "no retries",
            &format!("{ecs}.Target.RetryPolicy"),
            None,
            schedules,
            "Target.RetryPolicy",
        ),
        (
            "no time window",
            &format!("{ecs}.FlexibleTimeWindow"),
            None,
            schedules,
            "FlexibleTimeWindow",
        ),
        (
            "a hard-coded parameter name",
            &format!("{ecs}.Target.Input"),
            Some(r#"'{"experiment_parameter": "/turbulence/experiments/ecs-random-task"}'"#),
            schedules,
            "must start with ${ExperimentParameterPrefix}",
        ),
        (
            "the whole experiment as input",
            &format!("{ecs}.Target.Input"),
            Some(
                r#"!Sub '{"experiment_parameter": "${ExperimentParameterPrefix}ecs-random-task", "title": "x"}'"#,
            ),
            schedules,
            "exactly one key",
        ),
        (
            "a schedule for no experiment",
            &format!("{ecs}.Target.Input"),
            Some(r#"!Sub '{"experiment_parameter": "${ExperimentParameterPrefix}nope"}'"#),
            schedules,
            "experiments/nope.json does not exist",
        ),
        (
            "an experiment without a schedule",
            "Resources.LambdaFaultInjectionSchedule",
            None,
            schedules,
            "experiments/lambda-fault-injection.json has no schedule",
        ),
        (
            "a shared expression parameter",
            "Resources.LambdaFaultInjectionSchedule.Properties.ScheduleExpression",
            Some("!Ref EcsRandomTaskScheduleExpression"),
            schedules,
            "also the ScheduleExpression of",
        ),
        (
            "a scheduler that may invoke functions",
            &format!("{role}.Policies[0].PolicyDocument.Statement[0].Action"),
            Some("[states:StartExecution, lambda:InvokeFunction]"),
            roles,
            "granted lambda:InvokeFunction",
        ),
        (
            "a scheduler that may start any state machine",
            &format!("{role}.Policies[0].PolicyDocument.Statement[0].Resource"),
            Some(
                "!Sub arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:*",
            ),
            roles,
            "states:StartExecution only on !Ref ExperimentStateMachine",
        ),
        (
            "a scheduler trusted by Lambda too",
            &format!("{role}.AssumeRolePolicyDocument.Statement[0].Principal.Service"),
            Some("[scheduler.amazonaws.com, lambda.amazonaws.com]"),
            roles,
            "must trust only scheduler.amazonaws.com",
        ),
        (
            "a scheduler trust without aws:SourceAccount",
            &format!("{role}.AssumeRolePolicyDocument.Statement[0].Condition"),
            None,
            roles,
            "aws:SourceAccount",
        ),
        (
            "dead letters the role may not send",
            &format!("{role}.Policies[0].PolicyDocument.Statement[1]"),
            None,
            roles,
            "needs sqs:SendMessage",
        ),
        (
            "a role nobody checks",
            "Resources.SpareRole",
            Some("{Type: AWS::IAM::Role, Properties: {AssumeRolePolicyDocument: {Statement: []}}}"),
            roles,
            "SpareRole is not the role of any function, state machine or schedule",
        ),
        (
            "a function role trusted by the scheduler",
            "Resources.PlanFunctionRole.Properties.AssumeRolePolicyDocument.Statement[0].Principal.Service",
            Some("scheduler.amazonaws.com"),
            roles,
            "must trust only lambda.amazonaws.com",
        ),
        (
            "a dashboard without failures",
            "Resources.Dashboard.Properties.DashboardBody",
            Some(
                r#"!Sub '{"widgets": [{"type": "metric", "properties": {"metrics": [["Turbulence", "Runs"], [".", "Completed"]]}}]}'"#,
            ),
            observability,
            "no graph of Turbulence Failed",
        ),
        (
            "a dashboard graphing a metric nobody emits",
            "Resources.Dashboard.Properties.DashboardBody",
            Some(
                r#"!Sub '{"widgets": [{"type": "metric", "properties": {"metrics": [["Turbulence", "Run"]]}}]}'"#,
            ),
            observability,
            "Turbulence Run, which the journal function does not emit",
        ),
        (
            "an alarm that waits for two messages",
            "Resources.DeadLetterQueueNotEmptyAlarm.Properties.Threshold",
            Some("1"),
            observability,
            "Threshold",
        ),
        (
            "untraced functions",
            "Globals.Function.Tracing",
            None,
            observability,
            "Tracing: Active",
        ),
    ];
    let original = load_yaml();
    for (what, path, replacement, check, expected) in cases {
        let mut broken = original.clone();
        let replacement = replacement.map(|text| {
            serde_yaml::from_str::<Value>(text)
                .unwrap_or_else(|err| panic!("{what}: bad replacement {text}: {err}"))
        });
        set_path(&mut broken, path, replacement);
        let problems = check(&Template::from_value(broken));
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{what} ({path}): expected a problem containing {expected:?}, got {problems:#?}"
        );
    }
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

// ------------------------------------------------- schedules, roles, alarms

/// Each `AWS::Scheduler::Schedule`: starts the experiment state machine with
/// `{"experiment_parameter": "${ExperimentParameterPrefix}<stem>"}` for an
/// experiments/<stem>.json, one schedule per file; is DISABLED unless a
/// true/false parameter (default not "true") enables it; spreads its start
/// over a flexible window; retries; has its own expression and time zone
/// parameters; sends failed starts, if anywhere, to an SQS queue.
fn check_schedules(template: &Template, stems: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(machine) = state_machine_id(template, &mut problems) else {
        return problems;
    };
    let parameters = template.section("Parameters");
    if parameters.get("ExperimentParameterPrefix").is_none() {
        problems.push("Parameters.ExperimentParameterPrefix is missing".to_owned());
    }
    let mut scheduled: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut parameter_users: BTreeMap<String, String> = BTreeMap::new();

    for (id, schedule) in template.resources_of_type("AWS::Scheduler::Schedule") {
        let at = format!("Resources.{id}.Properties");
        let props = schedule.props();
        let target = props.get("Target");

        match target
            .and_then(|t| t.get("Arn"))
            .map(|arn| (arn, reference(arn)))
        {
            Some((_, Some(r))) if r == machine => {}
            found => problems.push(format!(
                "{at}.Target.Arn must be !Ref {machine} (the experiment state machine), found {}",
                found
                    .map(|(v, _)| show(v))
                    .unwrap_or_else(|| "nothing".to_owned())
            )),
        }
        if target
            .and_then(|t| t.get("RoleArn"))
            .and_then(get_att)
            .is_none_or(|(_, attribute)| attribute != "Arn")
        {
            problems.push(format!(
                "{at}.Target.RoleArn must be !GetAtt <its AWS::IAM::Role>.Arn"
            ));
        }

        check_schedule_state(template, &at, props.get("State"), &mut problems);

        let window = props.get("FlexibleTimeWindow");
        let mode = window.and_then(|w| w.get("Mode")).and_then(Value::as_str);
        let minutes = window
            .and_then(|w| w.get("MaximumWindowInMinutes"))
            .and_then(Value::as_u64);
        if mode != Some("FLEXIBLE") || minutes.is_none_or(|m| m == 0) {
            problems.push(format!(
                "{at}.FlexibleTimeWindow must be Mode FLEXIBLE with a MaximumWindowInMinutes, found {}",
                window.map(show).unwrap_or_else(|| "nothing".to_owned())
            ));
        }

        let retry = target.and_then(|t| t.get("RetryPolicy"));
        for key in ["MaximumRetryAttempts", "MaximumEventAgeInSeconds"] {
            if retry
                .and_then(|r| r.get(key))
                .and_then(Value::as_u64)
                .is_none()
            {
                problems.push(format!("{at}.Target.RetryPolicy.{key} must be set"));
            }
        }

        if let Some(dlq) = target.and_then(|t| t.get("DeadLetterConfig")) {
            let queue = dlq.get("Arn").and_then(get_att);
            let is_queue = queue.as_ref().is_some_and(|(q, attribute)| {
                attribute == "Arn"
                    && template
                        .resource(q)
                        .is_some_and(|r| r.kind() == "AWS::SQS::Queue")
            });
            if !is_queue {
                problems.push(format!(
                    "{at}.Target.DeadLetterConfig.Arn must be !GetAtt <an AWS::SQS::Queue>.Arn, found {}",
                    show(dlq)
                ));
            }
        }

        for key in ["ScheduleExpression", "ScheduleExpressionTimezone"] {
            match props.get(key).and_then(reference) {
                Some(p) if parameters.contains_key(p.as_str()) => {
                    if let Some(other) = parameter_users.insert(p.clone(), id.to_owned()) {
                        problems.push(format!(
                            "{at}.{key} is !Ref {p}, also the {key} of {other}: give each schedule its own parameter"
                        ));
                    }
                }
                _ => problems.push(format!(
                    "{at}.{key} must be !Ref of a template parameter (one per schedule), found {}",
                    props
                        .get(key)
                        .map(show)
                        .unwrap_or_else(|| "nothing".to_owned())
                )),
            }
        }

        let input = target.and_then(|t| t.get("Input"));
        match input.and_then(sub_text).map(serde_json::from_str::<Json>) {
            None => problems.push(format!(
                "{at}.Target.Input must be a JSON string (or !Sub of one), found {}",
                input.map(show).unwrap_or_else(|| "nothing".to_owned())
            )),
            Some(Err(err)) => problems.push(format!("{at}.Target.Input is not JSON: {err}")),
            Some(Ok(json)) => {
                let object = json.as_object();
                let name = object
                    .filter(|o| o.len() == 1)
                    .and_then(|o| o.get("experiment_parameter"))
                    .and_then(Json::as_str);
                match name {
                    None => problems.push(format!(
                        "{at}.Target.Input must be an object with exactly one key, experiment_parameter (a string), found {json}"
                    )),
                    Some(name) => match name.strip_prefix("${ExperimentParameterPrefix}") {
                        None => problems.push(format!(
                            "{at}.Target.Input: experiment_parameter {name:?} must start with ${{ExperimentParameterPrefix}} (!Sub), so the schedule follows the parameter"
                        )),
                        Some(stem) => {
                            if !stems.iter().any(|s| s == stem) {
                                problems.push(format!(
                                    "{at}.Target.Input names experiment {stem:?}, but experiments/{stem}.json does not exist"
                                ));
                            }
                            scheduled
                                .entry(stem.to_owned())
                                .or_default()
                                .push(id.to_owned());
                        }
                    },
                }
            }
        }
    }

    for stem in stems {
        match scheduled.get(stem).map(Vec::as_slice).unwrap_or_default() {
            [] => problems.push(format!(
                "experiments/{stem}.json has no schedule (an AWS::Scheduler::Schedule with experiment_parameter ${{ExperimentParameterPrefix}}{stem})"
            )),
            [_] => {}
            many => problems.push(format!(
                "experiments/{stem}.json has {} schedules: {}",
                many.len(),
                many.join(", ")
            )),
        }
    }
    problems
}

/// `State: !If [<condition>, ENABLED, DISABLED]`, where the condition is
/// false with every parameter at its default and true once its true/false
/// parameters are "true".
fn check_schedule_state(
    template: &Template,
    at: &str,
    state: Option<&Value>,
    problems: &mut Vec<String>,
) {
    let Some((condition, when_true, when_false)) = state.and_then(if_parts) else {
        problems.push(format!(
            "{at}.State must be !If [<condition on an Enable... parameter>, ENABLED, DISABLED], found {}",
            state.map(show).unwrap_or_else(|| "nothing".to_owned())
        ));
        return;
    };
    if when_true.as_str() != Some("ENABLED") || when_false.as_str() != Some("DISABLED") {
        problems.push(format!(
            "{at}.State must be ENABLED when the condition holds, DISABLED otherwise, found {}",
            show(state.unwrap_or(&Value::Null))
        ));
    }
    let defaults = template.parameter_defaults();
    match template.condition_holds(&condition, &defaults) {
        Ok(false) => {}
        Ok(true) => problems.push(format!(
            "{at}.State: condition {condition} holds with every parameter at its default: the schedule would be ENABLED on deploy"
        )),
        Err(err) => problems.push(format!("{at}.State: {err}")),
    }
    let parameters = template.section("Parameters");
    let mut read = BTreeSet::new();
    template.condition_parameters(&condition, &mut read, 0);
    let switches: Vec<String> = read
        .into_iter()
        .filter(|name| {
            let allowed: BTreeSet<String> = parameters
                .get(name.as_str())
                .and_then(|p| p.get("AllowedValues"))
                .and_then(Value::as_sequence)
                .map(|values| values.iter().filter_map(scalar_text).collect())
                .unwrap_or_default();
            allowed == BTreeSet::from(["true".to_owned(), "false".to_owned()])
        })
        .collect();
    let mut enabled = defaults;
    for switch in &switches {
        enabled.insert(switch.clone(), "true".to_owned());
    }
    if switches.is_empty() || template.condition_holds(&condition, &enabled) != Ok(true) {
        problems.push(format!(
            "{at}.State: condition {condition} reads no true/false parameter that turns it on: nothing can enable the schedule"
        ));
    }
}

/// The roles the schedules run as: trusted by scheduler.amazonaws.com only,
/// from this account; allowed states:StartExecution on the experiment state
/// machine and, when the schedules have a dead-letter queue, sqs:SendMessage
/// on it; nothing else.
fn check_scheduler_roles(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(machine) = state_machine_id(template, &mut problems) else {
        return problems;
    };
    // role -> (schedules, their dead-letter queues)
    let mut roles: BTreeMap<String, (Vec<String>, BTreeSet<String>)> = BTreeMap::new();
    for (id, schedule) in template.resources_of_type("AWS::Scheduler::Schedule") {
        let target = schedule.props().get("Target");
        let Some((role, _)) = target.and_then(|t| t.get("RoleArn")).and_then(get_att) else {
            continue; // check_schedules reports it
        };
        let entry = roles.entry(role).or_default();
        entry.0.push(id.to_owned());
        if let Some((queue, _)) = target
            .and_then(|t| t.get("DeadLetterConfig"))
            .and_then(|d| d.get("Arn"))
            .and_then(get_att)
        {
            entry.1.insert(queue);
        }
    }

    for (role, (schedules, queues)) in &roles {
        let users = schedules.join(", ");
        let Some(body) = template
            .resource(role)
            .filter(|r| r.kind() == "AWS::IAM::Role")
        else {
            problems.push(format!(
                "{users} run as {role}, which is not an AWS::IAM::Role of this template"
            ));
            continue;
        };
        if body.props().get("ManagedPolicyArns").is_some() {
            problems.push(format!(
                "Resources.{role}.Properties.ManagedPolicyArns: the scheduler's permissions must be inline and reviewed here"
            ));
        }
        check_trust(
            template,
            role,
            "scheduler.amazonaws.com",
            true,
            &mut problems,
        );

        let statements = template.role_statements(role);
        let granted: BTreeSet<String> = statements
            .iter()
            .filter(|s| s.effect() == "Allow")
            .flat_map(|s| s.actions())
            .collect();
        let mut expected = BTreeSet::from(["states:StartExecution".to_owned()]);
        if !queues.is_empty() {
            expected.insert("sqs:SendMessage".to_owned());
        }
        for extra in granted.difference(&expected) {
            problems.push(format!(
                "{role} (the role of {users}) is granted {extra}, which a schedule does not need"
            ));
        }
        for missing in expected.difference(&granted) {
            problems.push(format!(
                "{role} (the role of {users}) needs {missing} but is not granted it"
            ));
        }
        for statement in statements.iter().filter(|s| s.effect() == "Allow") {
            let actions = statement.actions();
            for resource in statement.resources() {
                if actions.iter().any(|a| a == "states:StartExecution")
                    && reference(&resource).as_deref() != Some(machine.as_str())
                {
                    problems.push(format!(
                        "{}: states:StartExecution only on !Ref {machine}, found {}",
                        statement.at,
                        show(&resource)
                    ));
                }
                if actions.iter().any(|a| a == "sqs:SendMessage") {
                    let ok = get_att(&resource)
                        .is_some_and(|(q, attribute)| attribute == "Arn" && queues.contains(&q));
                    if !ok {
                        problems.push(format!(
                            "{}: sqs:SendMessage only on the schedules' dead-letter queue ({}), found {}",
                            statement.at,
                            queues.iter().cloned().collect::<Vec<_>>().join(", "),
                            show(&resource)
                        ));
                    }
                }
            }
        }
    }
    problems
}

/// Every AWS::IAM::Role is the role of a function (checked against
/// function_calls), of the state machine or of schedules (checked above), of
/// one kind only, and trusts only that kind's service.
fn check_roles(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    // role -> [(user, service)]
    let mut users: BTreeMap<String, Vec<(String, &str)>> = BTreeMap::new();
    for (id, body) in &template.resources {
        let id = id.as_str().unwrap_or_default();
        let resource = Resource(body);
        let service = match resource.kind() {
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => "lambda.amazonaws.com",
            "AWS::Serverless::StateMachine" | "AWS::StepFunctions::StateMachine" => {
                "states.amazonaws.com"
            }
            "AWS::Scheduler::Schedule" => "scheduler.amazonaws.com",
            _ => continue,
        };
        let role = resource
            .props()
            .get("Role")
            .or_else(|| resource.props().get("RoleArn"))
            .or_else(|| {
                resource
                    .props()
                    .get("Target")
                    .and_then(|t| t.get("RoleArn"))
            })
            .and_then(get_att);
        if let Some((role, _)) = role {
            users
                .entry(role)
                .or_default()
                .push((id.to_owned(), service));
        }
        // A function's ScheduleV2 events run as the scheduler role they name.
        for (event, body) in resource
            .props()
            .get("Events")
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
        {
            if body.get("Type").and_then(Value::as_str) != Some("ScheduleV2") {
                continue;
            }
            if let Some((role, _)) = body
                .get("Properties")
                .and_then(|p| p.get("RoleArn"))
                .and_then(get_att)
            {
                let user = format!("{id}.Events.{}", event.as_str().unwrap_or_default());
                users
                    .entry(role)
                    .or_default()
                    .push((user, "scheduler.amazonaws.com"));
            }
        }
    }
    for (role, _) in template.resources_of_type("AWS::IAM::Role") {
        let Some(of) = users.get(role) else {
            problems.push(format!(
                "Resources.{role}: {role} is not the role of any function, state machine or schedule, so no test checks what it may do"
            ));
            continue;
        };
        let services: BTreeSet<&str> = of.iter().map(|(_, s)| *s).collect();
        if services.len() > 1 {
            problems.push(format!(
                "{role} is the role of {}: give each kind of user its own role",
                of.iter()
                    .map(|(user, service)| format!("{user} ({service})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            continue;
        }
        let service = services.into_iter().next().unwrap_or_default();
        let needs_source_account = service == "scheduler.amazonaws.com";
        check_trust(template, role, service, needs_source_account, &mut problems);
    }
    problems
}

/// A role's trust policy: each statement lets exactly `service` assume it
/// (sts:AssumeRole), with an aws:SourceAccount condition if asked for.
fn check_trust(
    template: &Template,
    role: &str,
    service: &str,
    source_account: bool,
    problems: &mut Vec<String>,
) {
    let at = format!("Resources.{role}.Properties.AssumeRolePolicyDocument");
    let statements: Vec<Value> = match template
        .resources
        .get(role)
        .and_then(|body| body.get("Properties"))
        .and_then(|p| p.get("AssumeRolePolicyDocument"))
        .and_then(|d| d.get("Statement"))
    {
        Some(Value::Sequence(items)) => items.clone(),
        Some(one) => vec![one.clone()],
        None => Vec::new(),
    };
    if statements.is_empty() {
        problems.push(format!("{at}: no statement lets {service} assume {role}"));
    }
    for (i, statement) in statements.iter().enumerate() {
        let here = format!("{at}.Statement[{i}]");
        if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        let principal = statement.get("Principal");
        let services = strings(principal.and_then(|p| p.get("Service")));
        let others = principal
            .and_then(Value::as_mapping)
            .is_none_or(|m| m.keys().any(|k| k.as_str() != Some("Service")));
        if others || services != [service] {
            problems.push(format!(
                "{here}: {role} must trust only {service}, found Principal {}",
                principal.map(show).unwrap_or_else(|| "nothing".to_owned())
            ));
        }
        if strings(statement.get("Action")) != ["sts:AssumeRole"] {
            problems.push(format!(
                "{here}: the trust must allow sts:AssumeRole only, found {}",
                statement.get("Action").map(show).unwrap_or_default()
            ));
        }
        let condition = statement
            .get("Condition")
            .and_then(Value::as_mapping)
            .is_some_and(|ops| {
                ops.values()
                    .any(|keys| keys.get("aws:SourceAccount").is_some())
            });
        if source_account && !condition {
            problems.push(format!(
                "{here}: {service} may assume {role} for another account's schedules: add a Condition on aws:SourceAccount"
            ));
        }
    }
}

/// The metrics the journal function emits for every run, in embedded metric
/// format, in namespace [`METRICS_NAMESPACE`] with dimension sets
/// `[["Experiment"], []]` (per experiment, and over all).
const RUN_METRICS: &[&str] = &[
    "Runs",
    "Completed",
    "Failed",
    "Aborted",
    "Deviated",
    "RollbacksFailed",
    "DurationSeconds",
    "Steps",
    "Rollbacks",
];
const METRICS_NAMESPACE: &str = "Turbulence";

/// The state machine's execution outcomes the dashboard graphs.
const EXECUTION_METRICS: &[&str] = &[
    "ExecutionsSucceeded",
    "ExecutionsFailed",
    "ExecutionsAborted",
    "ExecutionsTimedOut",
];

/// The dashboard graphs every run metric (the series without dimension), the
/// state machine's executions and the dead-letter queue's depth; an alarm
/// fires on the first dead letter; functions and state machine are traced;
/// the stack outputs the dashboard's and the alarm's names.
fn check_observability(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(machine) = state_machine_id(template, &mut problems) else {
        return problems;
    };
    let Some(queue) = dead_letter_queue(template, &machine) else {
        problems.push(format!(
            "Resources.{machine}.Properties.DefinitionSubstitutions.DeadLetterQueueUrl must be !Ref the dead-letter queue"
        ));
        return problems;
    };

    // Tracing.
    let traced = template
        .root
        .get("Globals")
        .and_then(|g| g.get("Function"))
        .and_then(|f| f.get("Tracing"))
        .and_then(Value::as_str);
    if traced != Some("Active") {
        for (id, function) in template.resources_of_type("AWS::Serverless::Function") {
            if function.props().get("Tracing").and_then(Value::as_str) != Some("Active") {
                problems.push(format!(
                    "Resources.{id}: needs Tracing: Active (in Globals.Function or its own)"
                ));
            }
        }
    }
    if let Some(machine_body) = template.resource(&machine) {
        let enabled = machine_body
            .props()
            .get("Tracing")
            .and_then(|t| t.get("Enabled"))
            .and_then(Value::as_bool);
        if enabled != Some(true) {
            problems.push(format!(
                "Resources.{machine}.Properties.Tracing.Enabled must be true"
            ));
        }
    }

    // The dashboard.
    let dashboards: Vec<_> = template
        .resources_of_type("AWS::CloudWatch::Dashboard")
        .collect();
    if dashboards.len() != 1 {
        problems.push(format!(
            "expected one AWS::CloudWatch::Dashboard, found {}",
            dashboards.len()
        ));
    }
    for (id, dashboard) in &dashboards {
        let at = format!("Resources.{id}.Properties.DashboardBody");
        let body = dashboard.props().get("DashboardBody");
        // ${...} placeholders sit inside JSON strings: the !Sub text is JSON.
        let json = match body.and_then(sub_text).map(serde_json::from_str::<Json>) {
            Some(Ok(json)) => json,
            Some(Err(err)) => {
                problems.push(format!("{at} is not JSON: {err}"));
                continue;
            }
            None => {
                problems.push(format!("{at} must be a JSON string or !Sub of one"));
                continue;
            }
        };
        let graphed = dashboard_metrics(&json);
        let has = |namespace: &str, name: &str, dimensions: &[(&str, &str)]| {
            graphed.iter().any(|(n, m, d)| {
                n == namespace
                    && m == name
                    && d.len() == dimensions.len()
                    && d.iter()
                        .zip(dimensions)
                        .all(|((k, v), (ek, ev))| k == ek && v == ev)
            })
        };
        for metric in RUN_METRICS {
            if !has(METRICS_NAMESPACE, metric, &[]) {
                problems.push(format!(
                    "{at}: no graph of {METRICS_NAMESPACE} {metric} without dimensions (the series over all experiments)"
                ));
            }
        }
        let names: BTreeSet<(&str, &str)> = graphed
            .iter()
            .map(|(namespace, metric, _)| (namespace.as_str(), metric.as_str()))
            .collect();
        for (namespace, metric) in names {
            if namespace == METRICS_NAMESPACE && !RUN_METRICS.contains(&metric) {
                problems.push(format!(
                    "{at}: graphs {METRICS_NAMESPACE} {metric}, which the journal function does not emit"
                ));
            }
        }
        let arn = format!("${{{machine}}}");
        for metric in EXECUTION_METRICS {
            if !has("AWS/States", metric, &[("StateMachineArn", &arn)]) {
                problems.push(format!(
                    "{at}: no graph of AWS/States {metric} for StateMachineArn {arn}"
                ));
            }
        }
        let queue_name = format!("${{{queue}.QueueName}}");
        if !has(
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            &[("QueueName", &queue_name)],
        ) {
            problems.push(format!(
                "{at}: no graph of AWS/SQS ApproximateNumberOfMessagesVisible for QueueName {queue_name}"
            ));
        }
    }

    // The dead-letter alarm.
    let alarm_id = "DeadLetterQueueNotEmptyAlarm";
    match template.resource(alarm_id) {
        Some(alarm) if alarm.kind() == "AWS::CloudWatch::Alarm" => {
            let props = alarm.props();
            let at = format!("Resources.{alarm_id}.Properties");
            let text = |key: &str| props.get(key).and_then(scalar_text);
            for (key, expected) in [
                ("Namespace", "AWS/SQS"),
                ("MetricName", "ApproximateNumberOfMessagesVisible"),
                ("Statistic", "Maximum"),
                ("Period", "60"),
                ("EvaluationPeriods", "1"),
                ("Threshold", "0"),
                ("ComparisonOperator", "GreaterThanThreshold"),
                ("TreatMissingData", "notBreaching"),
            ] {
                if text(key).as_deref() != Some(expected) {
                    problems.push(format!(
                        "{at}.{key} must be {expected}, found {}",
                        props
                            .get(key)
                            .map(show)
                            .unwrap_or_else(|| "nothing".to_owned())
                    ));
                }
            }
            let dimensions = props
                .get("Dimensions")
                .and_then(Value::as_sequence)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let on_queue = matches!(dimensions, [d]
                if d.get("Name").and_then(Value::as_str) == Some("QueueName")
                    && d.get("Value").and_then(get_att) == Some((queue.clone(), "QueueName".to_owned())));
            if !on_queue {
                problems.push(format!(
                    "{at}.Dimensions must be QueueName: !GetAtt {queue}.QueueName only"
                ));
            }
        }
        _ => problems.push(format!(
            "Resources.{alarm_id} (an AWS::CloudWatch::Alarm on the dead-letter queue) is missing"
        )),
    }

    // Outputs.
    let outputs = template.section("Outputs");
    let mut wanted: Vec<String> = dashboards.iter().map(|(id, _)| (*id).to_owned()).collect();
    wanted.push(alarm_id.to_owned());
    for id in wanted {
        let output = outputs
            .values()
            .any(|o| o.get("Value").and_then(reference).as_deref() == Some(id.as_str()));
        if !output {
            problems.push(format!("Outputs: none is !Ref {id} (its name)"));
        }
    }
    problems
}

/// (namespace, metric name, [(dimension, value)]).
type GraphedMetric = (String, String, Vec<(String, String)>);

/// Every metric graphed by a dashboard's metric widgets, as (namespace,
/// name, [(dimension, value)]), with the "." shorthand (same as the row
/// above) resolved; math and search expressions left out.
fn dashboard_metrics(body: &Json) -> Vec<GraphedMetric> {
    let mut found = Vec::new();
    for widget in body
        .get("widgets")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let rows = widget
            .get("properties")
            .and_then(|p| p.get("metrics"))
            .and_then(Json::as_array);
        let mut previous: Vec<String> = Vec::new();
        for row in rows.into_iter().flatten().filter_map(Json::as_array) {
            let mut fields: Vec<String> = Vec::new();
            for (i, field) in row.iter().enumerate() {
                match field.as_str() {
                    Some(".") => fields.push(previous.get(i).cloned().unwrap_or_default()),
                    Some(text) => fields.push(text.to_owned()),
                    None => break, // the rendering options object, or an expression
                }
            }
            if fields.len() < 2 {
                continue;
            }
            let dimensions = fields[2..]
                .chunks(2)
                .map(|pair| (pair[0].clone(), pair.get(1).cloned().unwrap_or_default()))
                .collect();
            found.push((fields[0].clone(), fields[1].clone(), dimensions));
            previous = fields;
        }
    }
    found
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
    /// The whole document: Parameters, Conditions, Globals, Outputs.
    root: Value,
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
        Self::from_value(load_yaml())
    }

    fn from_value(root: Value) -> Self {
        let resources = root
            .get("Resources")
            .and_then(Value::as_mapping)
            .cloned()
            .expect("template.yaml has no Resources mapping");
        Template { root, resources }
    }

    /// A section of the template (`Parameters`, `Conditions`, `Outputs`...),
    /// empty when absent.
    fn section(&self, name: &str) -> Mapping {
        self.root
            .get(name)
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default()
    }

    /// Every parameter's `Default`, as the text CloudFormation would pass.
    fn parameter_defaults(&self) -> BTreeMap<String, String> {
        self.section("Parameters")
            .iter()
            .filter_map(|(name, body)| {
                Some((
                    name.as_str()?.to_owned(),
                    scalar_text(body.get("Default")?)?,
                ))
            })
            .collect()
    }

    /// Whether the condition `name` holds with these parameter values.
    fn condition_holds(
        &self,
        name: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<bool, String> {
        self.evaluate_condition(name, values, 0)
    }

    fn evaluate_condition(
        &self,
        name: &str,
        values: &BTreeMap<String, String>,
        depth: usize,
    ) -> Result<bool, String> {
        if depth > 16 {
            return Err(format!("condition {name} refers to itself"));
        }
        let conditions = self.section("Conditions");
        let body = conditions
            .get(name)
            .ok_or_else(|| format!("no condition named {name} in Conditions"))?;
        self.evaluate(body, values, depth)
    }

    fn evaluate(
        &self,
        body: &Value,
        values: &BTreeMap<String, String>,
        depth: usize,
    ) -> Result<bool, String> {
        let operands = |v: &Value| v.as_sequence().cloned().unwrap_or_default();
        match intrinsic(body) {
            Some(("Equals", args)) => match operands(args).as_slice() {
                [a, b] => Ok(condition_operand(a, values)? == condition_operand(b, values)?),
                _ => Err(format!("Fn::Equals takes two values: {}", show(body))),
            },
            Some(("Not", args)) => match operands(args).as_slice() {
                [inner] => Ok(!self.evaluate(inner, values, depth + 1)?),
                _ => Err(format!("Fn::Not takes one condition: {}", show(body))),
            },
            Some(("And", args)) => operands(args).iter().try_fold(true, |all, inner| {
                Ok(all & self.evaluate(inner, values, depth + 1)?)
            }),
            Some(("Or", args)) => operands(args).iter().try_fold(false, |any, inner| {
                Ok(any | self.evaluate(inner, values, depth + 1)?)
            }),
            Some(("Condition", name)) => match name.as_str() {
                Some(name) => self.evaluate_condition(name, values, depth + 1),
                None => Err(format!("Condition takes a name: {}", show(body))),
            },
            _ => Err(format!("cannot evaluate condition {}", show(body))),
        }
    }

    /// The parameters a condition reads, through the conditions it names.
    fn condition_parameters(&self, name: &str, found: &mut BTreeSet<String>, depth: usize) {
        fn walk(template: &Template, value: &Value, found: &mut BTreeSet<String>, depth: usize) {
            if let Some(target) = reference(value) {
                found.insert(target);
                return;
            }
            match (intrinsic(value), value) {
                (Some(("Condition", name)), _) => {
                    if let (Some(name), true) = (name.as_str(), depth < 16) {
                        template.condition_parameters(name, found, depth + 1);
                    }
                }
                (Some((_, args)), _) => walk(template, args, found, depth),
                (None, Value::Sequence(items)) => {
                    for item in items {
                        walk(template, item, found, depth);
                    }
                }
                _ => {}
            }
        }
        if let Some(body) = self.section("Conditions").get(name) {
            walk(self, body, found, depth);
        }
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

/// template.yaml as YAML.
fn load_yaml() -> Value {
    let path = root().join("template.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    serde_yaml::from_str(&text)
        .unwrap_or_else(|err| panic!("template.yaml is not valid YAML: {err}"))
}

/// The stems of experiments/*.json (what scripts/publish-experiments
/// publishes as `<prefix><stem>`), sorted.
fn experiment_stems() -> Vec<String> {
    let dir = root().join("experiments");
    let mut stems: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| name.strip_suffix(".json").map(str::to_owned))
        .collect();
    stems.sort();
    stems
}

/// The logical id of the template's one state machine.
fn state_machine_id(template: &Template, problems: &mut Vec<String>) -> Option<String> {
    let machines: Vec<&str> = template
        .resources_of_type("AWS::Serverless::StateMachine")
        .map(|(id, _)| id)
        .collect();
    match machines.as_slice() {
        [one] => Some((*one).to_owned()),
        _ => {
            problems.push(format!(
                "expected one AWS::Serverless::StateMachine, found {machines:?}"
            ));
            None
        }
    }
}

/// The queue the state machine sends dead letters to (its
/// `DeadLetterQueueUrl` substitution).
fn dead_letter_queue(template: &Template, machine: &str) -> Option<String> {
    let queue = template
        .resource(machine)?
        .props()
        .get("DefinitionSubstitutions")?
        .get("DeadLetterQueueUrl")
        .and_then(reference)?;
    (template.resource(&queue)?.kind() == "AWS::SQS::Queue").then_some(queue)
}

/// An intrinsic function as (name without `Fn::`, its argument): `!Equals
/// [...]` or `Fn::Equals: [...]`, `!Condition X` or `Condition: X`, `!Ref X`.
fn intrinsic(value: &Value) -> Option<(&'static str, &Value)> {
    const NAMES: &[&str] = &[
        "Equals",
        "Not",
        "And",
        "Or",
        "If",
        "Condition",
        "Ref",
        "Sub",
        "GetAtt",
    ];
    match value {
        Value::Tagged(t) => NAMES.iter().find(|n| t.tag == **n).map(|n| (*n, &t.value)),
        Value::Mapping(m) if m.len() == 1 => {
            let (key, inner) = m.iter().next()?;
            let key = key.as_str()?;
            let name = key.strip_prefix("Fn::").unwrap_or(key);
            NAMES.iter().find(|n| **n == name).map(|n| (*n, inner))
        }
        _ => None,
    }
}

/// A scalar as the text CloudFormation sees (numbers and booleans too).
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An operand of `Fn::Equals`: a literal, or `!Ref` of a parameter.
fn condition_operand(value: &Value, values: &BTreeMap<String, String>) -> Result<String, String> {
    if let Some(name) = reference(value) {
        return values
            .get(&name)
            .cloned()
            .ok_or_else(|| format!("!Ref {name}: no such parameter with a value"));
    }
    scalar_text(value).ok_or_else(|| format!("cannot evaluate {}", show(value)))
}

/// `!If [condition, a, b]` as (condition, a, b).
fn if_parts(value: &Value) -> Option<(String, &Value, &Value)> {
    match intrinsic(value)? {
        ("If", args) => match args.as_sequence()?.as_slice() {
            [condition, a, b] => Some((condition.as_str()?.to_owned(), a, b)),
            _ => None,
        },
        _ => None,
    }
}

/// The text of a plain string or of `!Sub "text"` (not the list form).
fn sub_text(value: &Value) -> Option<&str> {
    match (value, intrinsic(value)) {
        (Value::String(s), _) => Some(s),
        (_, Some(("Sub", text))) => text.as_str(),
        _ => None,
    }
}

/// Sets (or, with None, removes) the value at a dotted path such as
/// `Resources.X.Properties.Policies[0].PolicyDocument`; mappings get the key
/// if missing. For the tests that break the template on purpose.
fn set_path(root: &mut Value, path: &str, replacement: Option<Value>) {
    let mut steps: Vec<Result<&str, usize>> = Vec::new();
    for part in path.split('.') {
        let (key, indexes) = part
            .split_once('[')
            .map_or((part, ""), |(k, rest)| (k, rest));
        steps.push(Ok(key));
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            let index = index.trim_end_matches(']');
            steps.push(Err(index
                .parse()
                .unwrap_or_else(|_| panic!("bad index in {path}"))));
        }
    }
    let (last, parents) = steps.split_last().expect("an empty path");
    let mut here = root;
    for step in parents {
        here = match step {
            Ok(key) => here.get_mut(*key),
            Err(index) => here.get_mut(*index),
        }
        .unwrap_or_else(|| panic!("{path}: nothing at {step:?}"));
    }
    match (last, replacement) {
        (Ok(key), Some(value)) => {
            here.as_mapping_mut()
                .unwrap_or_else(|| panic!("{path}: not a mapping"))
                .insert(Value::from(*key), value);
        }
        (Ok(key), None) => {
            here.as_mapping_mut()
                .unwrap_or_else(|| panic!("{path}: not a mapping"))
                .remove(*key)
                .unwrap_or_else(|| panic!("{path}: nothing to remove"));
        }
        (Err(index), Some(value)) => {
            *here
                .get_mut(*index)
                .unwrap_or_else(|| panic!("{path}: no item {index}")) = value;
        }
        (Err(index), None) => {
            here.as_sequence_mut()
                .unwrap_or_else(|| panic!("{path}: not a sequence"))
                .remove(*index);
        }
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
