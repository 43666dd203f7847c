"""Self-test of cfn_gaps.py and deploy.py: moto still has each gap (else
the filler is to go), and template.yaml, translated, deploys with every
gap filled. In-process moto (`mock_aws`), no server; about 15 s (the first
translation).

    .tools/venv/bin/python -m unittest discover -s local/turbulence_local -p 'test_*.py'
"""

from __future__ import annotations

import json
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from turbulence_local import cfn_gaps, deploy  # noqa: E402

TEMPLATE = HERE.parent.parent / "template.yaml"
REGION = "us-east-1"


class Gaps(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        # Checked before anything is filled: once filled they cannot be.
        cls.lacking = {gap.name: gap.moto_lacks() for gap in cfn_gaps.GAPS}
        cfn_gaps.install_all()

    def test_moto_still_lacks_every_gap_filled(self) -> None:
        learned = [name for name, lacks in self.lacking.items() if not lacks]
        self.assertEqual(
            learned,
            [],
            "moto now does this itself: remove its filler from cfn_gaps.GAPS (and say so in local/README.md)",
        )

    def test_the_translated_template_deploys_with_every_gap_filled(self) -> None:
        import boto3
        from moto import mock_aws
        from moto.core.config import default_user_config

        with mock_aws():
            default_user_config["stepfunctions"] = {"execute_state_machine": True}
            default_user_config["lambda"] = {"use_docker": False}
            functions: list[dict] = []

            def client(service: str):  # noqa: ANN202
                return boto3.client(service, region_name=REGION)

            deployer = deploy.Deployer(TEMPLATE, client, functions.append, REGION)
            out = deployer.deploy("gaps", {"KillSwitchParameter": "/gaps/kill-switch"})
            resources = out["resources"]

            # AWS::CloudWatch::Alarm
            alarms = client("cloudwatch").describe_alarms(AlarmNames=["gaps-example-abort", "gaps-dead-letters"])
            self.assertEqual(len(alarms["MetricAlarms"]), 2)
            # AWS::SQS::QueuePolicy: EventBridge may send the janitor's dead letters.
            queue = out["outputs"]["DeadLetterQueueUrl"]
            attrs = client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
            policy = json.loads(attrs["Policy"])
            self.assertEqual(policy["Statement"][0]["Principal"], {"Service": "events.amazonaws.com"})
            # AWS::Scheduler::ScheduleGroup and ::Schedule
            scheduler = client("scheduler")
            names = {s["Name"] for s in scheduler.list_schedules(GroupName="gaps")["Schedules"]}
            self.assertEqual(names, {"ecs-random-task", "lambda-fault-injection", "api-abuse", "JanitorFunctionSweep"})
            sweep = scheduler.get_schedule(GroupName="gaps", Name="JanitorFunctionSweep")
            self.assertEqual(sweep["Target"]["DeadLetterConfig"]["Arn"].rsplit(":", 1)[-1], queue.rsplit("/", 1)[-1])
            # Lambda properties
            plan = client("lambda").get_function(FunctionName=resources["PlanFunction"])
            self.assertEqual(plan["Configuration"]["Architectures"], ["arm64"])
            self.assertEqual(plan["Configuration"]["TracingConfig"], {"Mode": "Active"})
            moderation = client("lambda").get_function(FunctionName=resources["ModerationFunction"])
            self.assertEqual(moderation["Tags"].get("turbulence:opt-in"), "true")
            # State machine: the definition from S3, substituted, where executions run.
            sfn = client("stepfunctions")
            machine = sfn.describe_state_machine(stateMachineArn=out["outputs"]["StateMachineArn"])
            self.assertNotIn("${", machine["definition"])
            self.assertIn(resources["PlanFunction"], machine["definition"])
            self.assertIn("/gaps/kill-switch", machine["definition"])
            # Role inline policies readable by GetRolePolicy.
            iam = client("iam")
            role = resources["PlanFunctionRole"]
            document = iam.get_role_policy(RoleName=role, PolicyName="turbulence-plan")["PolicyDocument"]
            self.assertIn("AbortAlarms", {s["Sid"] for s in document["Statement"]})
            # Every function registered under its deployed name, with its binary.
            self.assertEqual(
                {f["logical_id"]: f["binary"] for f in functions}["JanitorFunction"], "turbulence-janitor"
            )
            self.assertLess(
                deployer.deploy("gaps2", {})["seconds"], 5.0, "a stack per test must stay cheap"
            )
            # Replaced under the same name: the new functions, not the old.
            again = deployer.deploy("gaps", {"KillSwitchParameter": "/gaps/kill-switch"})
            machine = sfn.describe_state_machine(stateMachineArn=again["outputs"]["StateMachineArn"])
            self.assertIn(again["resources"]["PlanFunction"], machine["definition"])
            self.assertNotIn(resources["PlanFunction"], machine["definition"])

    def test_substitute_refuses_a_placeholder_without_a_value(self) -> None:
        self.assertEqual(cfn_gaps.substitute("a${X}b", {"X": 1}), "a1b")
        with self.assertRaises(ValueError):
            cfn_gaps.substitute("${X}${Y}", {"X": 1})


if __name__ == "__main__":
    unittest.main()
