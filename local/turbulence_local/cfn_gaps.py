"""What moto 5.2.5's CloudFormation lacks for template.yaml, filled in.

moto has no model for some resource types (it skips them with a warning,
then fails once something references them) and drops properties of
others. Each gap is one `Gap` below: what moto does, and `install()` to
fill it in. `test_cfn_gaps.py` checks every `Gap.moto_lacks()` against the
moto installed (so a moto that learns one fails the self-test: drop the
filler then) and deploys the translated template with the gaps filled.

Install before the first stack is created: moto caches its type -> model
map on first use (`install_all` clears that cache).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

ALARM = "AWS::CloudWatch::Alarm"
QUEUE_POLICY = "AWS::SQS::QueuePolicy"
SCHEDULE = "AWS::Scheduler::Schedule"
SCHEDULE_GROUP = "AWS::Scheduler::ScheduleGroup"

# Lambda properties moto's AWS::Lambda::Function drops, and the
# CreateFunction field each becomes.
LAMBDA_DROPPED = ("Architectures", "Tags", "TracingConfig", "LoggingConfig", "KmsKeyArn")
# State machine properties moto's AWS::StepFunctions::StateMachine drops.
STATE_MACHINE_DROPPED = (
    "DefinitionS3Location",
    "DefinitionSubstitutions",
    "LoggingConfiguration",
    "TracingConfiguration",
)


@dataclass
class Gap:
    name: str
    # What moto does without the filler.
    what_moto_does: str
    # True while the installed moto still has the gap (checked unfilled).
    moto_lacks: Callable[[], bool]
    install: Callable[[], None]


def _model_map() -> dict[str, Any]:
    from moto.cloudformation.parsing import get_model_map

    return get_model_map()


def _has_model(resource_type: str) -> bool:
    return resource_type in _model_map()


def _cfn_tags(tags: Any) -> list[dict[str, str]]:
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in tags or []]


# ---------------------------------------------------------------- types


def _install_alarm() -> None:
    from moto.cloudformation.parsing import CloudFormationModel
    from moto.cloudwatch.models import cloudwatch_backends

    class CfnAlarm(CloudFormationModel):  # registered by subclassing
        def __init__(self, alarm: Any):
            self.alarm = alarm

        @staticmethod
        def cloudformation_type() -> str:
            return ALARM

        @staticmethod
        def cloudformation_name_type() -> str:
            return "AlarmName"

        @property
        def physical_resource_id(self) -> str:
            return self.alarm.name

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Arn"

        def get_cfn_attribute(self, attribute_name: str) -> str:
            return self.alarm.alarm_arn

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> "CfnAlarm":
            p = cloudformation_json["Properties"]
            backend = cloudwatch_backends[account_id][region_name]
            alarm = backend.put_metric_alarm(
                name=p.get("AlarmName", resource_name),
                namespace=p.get("Namespace"),
                metric_name=p.get("MetricName"),
                comparison_operator=p["ComparisonOperator"],
                evaluation_periods=int(p["EvaluationPeriods"]),
                period=int(p.get("Period", 60)),
                threshold=float(p.get("Threshold", 0)),
                statistic=p.get("Statistic"),
                description=p.get("AlarmDescription", ""),
                dimensions=[{"Name": d["Name"], "Value": d["Value"]} for d in p.get("Dimensions", [])],
                alarm_actions=list(p.get("AlarmActions", [])),
                ok_actions=list(p.get("OKActions", [])),
                treat_missing_data=p.get("TreatMissingData"),
                unit=p.get("Unit"),
            )
            return cls(alarm)

        @classmethod
        def delete_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
        ) -> None:
            cloudwatch_backends[account_id][region_name].delete_alarms([resource_name])


def _install_queue_policy() -> None:
    from moto.cloudformation.parsing import CloudFormationModel
    from moto.sqs.models import sqs_backends

    class CfnQueuePolicy(CloudFormationModel):
        def __init__(self, physical_id: str):
            self.physical_id = physical_id

        @staticmethod
        def cloudformation_type() -> str:
            return QUEUE_POLICY

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @property
        def physical_resource_id(self) -> str:
            return self.physical_id

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> "CfnQueuePolicy":
            p = cloudformation_json["Properties"]
            backend = sqs_backends[account_id][region_name]
            document = json.dumps(p["PolicyDocument"])
            for url in p["Queues"]:
                name = str(url).rstrip("/").rsplit("/", 1)[-1]
                backend.set_queue_attributes(name, {"Policy": document})
            return cls(resource_name)


def _install_schedule_group() -> None:
    from moto.cloudformation.parsing import CloudFormationModel
    from moto.scheduler.models import scheduler_backends

    class CfnScheduleGroup(CloudFormationModel):
        def __init__(self, group: Any):
            self.group = group

        @staticmethod
        def cloudformation_type() -> str:
            return SCHEDULE_GROUP

        @staticmethod
        def cloudformation_name_type() -> str:
            return "Name"

        @property
        def physical_resource_id(self) -> str:
            return self.group.name

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Arn"

        def get_cfn_attribute(self, attribute_name: str) -> str:
            return self.group.arn

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> "CfnScheduleGroup":
            p = cloudformation_json["Properties"]
            backend = scheduler_backends[account_id][region_name]
            return cls(backend.create_schedule_group(p.get("Name", resource_name), _cfn_tags(p.get("Tags"))))


def _install_schedule() -> None:
    from moto.cloudformation.parsing import CloudFormationModel
    from moto.scheduler.models import scheduler_backends

    class CfnSchedule(CloudFormationModel):
        def __init__(self, schedule: Any):
            self.schedule = schedule

        @staticmethod
        def cloudformation_type() -> str:
            return SCHEDULE

        @staticmethod
        def cloudformation_name_type() -> str:
            return "Name"

        @property
        def physical_resource_id(self) -> str:
            return self.schedule.name

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Arn"

        def get_cfn_attribute(self, attribute_name: str) -> str:
            return self.schedule.arn

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> "CfnSchedule":
            p = cloudformation_json["Properties"]
            backend = scheduler_backends[account_id][region_name]
            schedule = backend.create_schedule(
                description=p.get("Description", ""),
                end_date=p.get("EndDate"),
                flexible_time_window=p["FlexibleTimeWindow"],
                group_name=p.get("GroupName"),
                kms_key_arn=p.get("KmsKeyArn"),
                name=p.get("Name", resource_name),
                schedule_expression=p["ScheduleExpression"],
                schedule_expression_timezone=p.get("ScheduleExpressionTimezone"),
                start_date=p.get("StartDate"),
                state=p.get("State", "ENABLED"),
                target=p["Target"],
                action_after_completion=None,
            )
            return cls(schedule)


# ---------------------------------------------------------- properties


def _lambda_drops_properties() -> bool:
    import inspect

    from moto.awslambda.models import LambdaFunction

    source = inspect.getsource(LambdaFunction.create_from_cloudformation_json)
    return any(f'"{p}"' not in source for p in LAMBDA_DROPPED)


def _install_lambda_properties() -> None:
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any) -> Any:
        fn = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        p = cloudformation_json["Properties"]
        if "Architectures" in p:
            fn.architectures = list(p["Architectures"])
        if "TracingConfig" in p:
            fn.tracing_config = dict(p["TracingConfig"])
        if "LoggingConfig" in p:
            fn.logging_config = dict(p["LoggingConfig"])
        if "KmsKeyArn" in p:
            fn.kms_key_arn = p["KmsKeyArn"]
        if "Tags" in p:
            from moto.awslambda.utils import get_backend

            # The backend the Lambda API uses (the simple one without docker).
            backend = get_backend(account_id, region_name)
            backend.tag_resource(fn.function_arn, {t["Key"]: t["Value"] for t in _cfn_tags(p["Tags"])})
        return fn

    LambdaFunction.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign]


def _state_machine_drops_properties() -> bool:
    import inspect

    from moto.stepfunctions.models import StateMachine

    source = inspect.getsource(StateMachine.create_from_cloudformation_json)
    return any(p not in source for p in STATE_MACHINE_DROPPED)


def substitute(definition: str, values: dict[str, Any]) -> str:
    """`${Key}` -> value, as DefinitionSubstitutions does; a placeholder with
    no value is an error (CloudFormation fails the resource too)."""
    import re

    missing = sorted({m for m in re.findall(r"\$\{([^}]+)\}", definition) if m not in values})
    if missing:
        raise ValueError(f"DefinitionSubstitutions has no value for: {', '.join(missing)}")
    return re.sub(r"\$\{([^}]+)\}", lambda m: str(values[m.group(1)]), definition)


def _install_state_machine_properties() -> None:
    from moto.s3.models import s3_backends
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.responses import get_backend
    from moto.stepfunctions.utils import cfn_to_api_tags

    def create(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any) -> Any:
        p = cloudformation_json["Properties"]
        definition = p.get("DefinitionString", "")
        location = p.get("DefinitionS3Location")
        if location:
            bucket = s3_backends[account_id]["aws"].get_bucket(location["Bucket"])
            definition = bucket.keys[location["Key"]].value.decode()
        if "DefinitionSubstitutions" in p:
            definition = substitute(definition, p["DefinitionSubstitutions"])
        # The backend StartExecution uses: the executing one when
        # execute_state_machine is on (moto's CloudFormation always took
        # the other, whose machines never run).
        backend = get_backend(account_id, region_name)
        kwargs_sm: dict[str, Any] = {}
        if "LoggingConfiguration" in p:
            kwargs_sm["loggingConfiguration"] = p["LoggingConfiguration"]
        if "TracingConfiguration" in p:
            kwargs_sm["tracingConfiguration"] = p["TracingConfiguration"]
        return backend.create_state_machine(
            p.get("StateMachineName", resource_name),
            definition,
            p.get("RoleArn", ""),
            tags=cfn_to_api_tags(p.get("Tags", [])),
            **kwargs_sm,
        )

    def delete(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str) -> None:
        # From the backend it was created in (a stack replaced under the
        # same name would otherwise keep the old machine and definition).
        get_backend(account_id, region_name).delete_state_machine(resource_name)

    StateMachine.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign]
    StateMachine.delete_from_cloudformation_json = classmethod(delete)  # type: ignore[method-assign]


def _role_policies_unreadable() -> bool:
    import inspect

    from moto.iam.models import Role

    source = inspect.getsource(Role.create_from_cloudformation_json)
    return "role.put_policy(policy_name, policy_json)" in source and "json.dumps(policy_json" not in source


def _install_role_policies() -> None:
    from moto.iam.models import Role

    original = Role.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any) -> Any:
        role = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        # GetRolePolicy (and moto's own IAM) read the document as JSON text.
        for name, document in list(role.policies.items()):
            if not isinstance(document, str):
                role.policies[name] = json.dumps(document)
        return role

    Role.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign]


def _parses_json_as_yaml() -> bool:
    import inspect

    from moto.cloudformation.models import Stack as FakeStack

    source = inspect.getsource(FakeStack.parse_template)
    return source.index("yaml.load") < source.index("json.loads")


def _install_json_first() -> None:
    from moto.cloudformation.models import Stack as FakeStack

    original = FakeStack.parse_template

    def parse_template(template: str) -> dict[str, Any]:
        # The translated template is JSON: 10x faster than pure-Python YAML
        # (3 s of each deploy otherwise).
        try:
            parsed = json.loads(template)
        except ValueError:
            return original(template)
        return parsed if isinstance(parsed, dict) else original(template)

    FakeStack.parse_template = staticmethod(parse_template)  # type: ignore[method-assign]


def _keeps_no_value_in_lists() -> bool:
    from moto.cloudformation.parsing import clean_json

    return None in clean_json([{"Ref": "AWS::NoValue"}], {"AWS::NoValue": None})  # type: ignore[arg-type]


def _install_no_value_in_lists() -> None:
    from moto.cloudformation import parsing

    original = parsing.clean_json

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        cleaned = original(resource_json, resources_map)
        # CloudFormation removes a list element that is AWS::NoValue (an
        # `!If [Cond, {statement}, !Ref AWS::NoValue]` in a policy).
        if isinstance(resource_json, list) and isinstance(cleaned, list):
            return [v for v in cleaned if v is not None]
        return cleaned

    parsing.clean_json = clean_json


GAPS = [
    Gap(ALARM, "no model: the alarm is skipped, a reference to it fails", lambda: not _has_model(ALARM), _install_alarm),
    Gap(
        QUEUE_POLICY,
        "no model: the queue gets no policy",
        lambda: not _has_model(QUEUE_POLICY),
        _install_queue_policy,
    ),
    Gap(
        SCHEDULE_GROUP,
        "no model: the group is skipped, a reference to it fails",
        lambda: not _has_model(SCHEDULE_GROUP),
        _install_schedule_group,
    ),
    Gap(SCHEDULE, "no model: the schedule is skipped", lambda: not _has_model(SCHEDULE), _install_schedule),
    Gap(
        "AWS::Lambda::Function properties",
        f"drops {', '.join(LAMBDA_DROPPED)}",
        _lambda_drops_properties,
        _install_lambda_properties,
    ),
    Gap(
        "AWS::StepFunctions::StateMachine properties",
        f"drops {', '.join(STATE_MACHINE_DROPPED)}, and creates (and deletes) the machine where executions never run",
        _state_machine_drops_properties,
        _install_state_machine_properties,
    ),
    Gap(
        "AWS::IAM::Role Policies",
        "stores inline policy documents as dicts, which GetRolePolicy cannot return",
        _role_policies_unreadable,
        _install_role_policies,
    ),
    Gap(
        "AWS::NoValue in a list",
        "leaves a null element (a policy statement `null`) where CloudFormation removes it",
        _keeps_no_value_in_lists,
        _install_no_value_in_lists,
    ),
    Gap(
        "JSON templates",
        "parses a JSON template with the pure-Python YAML parser first (3 s per stack)",
        _parses_json_as_yaml,
        _install_json_first,
    ),
]

_installed = False


def install_all() -> None:
    """Fill every gap (once per process)."""
    global _installed
    if _installed:
        return
    from moto.cloudformation import parsing

    for gap in GAPS:
        gap.install()
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    _installed = True
