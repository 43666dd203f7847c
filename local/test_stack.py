"""Self-test of local/stack.py, run by hand:

    .tools/venv/bin/python local/test_stack.py        # plain runner
    .tools/venv/bin/python -m pytest local/test_stack.py   # if pytest is there

Starts stack.py on a free loopback port with a fake `cargo lambda watch` (an
HTTP server on another loopback port) and checks the forwarding, the error
mapping through Step Functions, the ECS scheduler/autoscaling stand-in, the
Step Functions status events to Lambda rule targets, and injected throttling.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import types
import urllib.request
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import boto3
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what: str, check: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")


class FakeWatch:
    """Answers like `cargo lambda watch`: 200 with the handler's output, or
    500 with {"errorType","errorMessage"} and no X-Amz-Function-Error."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                parts = self.path.split("/")
                # /2015-03-31/functions/<name>/invocations
                name = parts[3] if len(parts) == 5 and parts[4] == "invocations" else None
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                if name is None:
                    self._answer(404, b"not found")
                    return
                fake.calls.append((name, body))
                if "-slow-" in name:
                    time.sleep(4)
                if "-fails-" in name:
                    self._answer(
                        500,
                        json.dumps({"errorType": "BoomError", "errorMessage": "it broke"}).encode(),
                    )
                else:
                    self._answer(200, json.dumps({"function": name, "echo": body}).encode())

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()


class Stack:
    def __init__(self) -> None:
        self.watch = FakeWatch()
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                os.path.join(HERE, "stack.py"),
                "--port",
                str(self.port),
                "--lambda-url",
                self.watch.url,
                "--poll-ms",
                "100",
                "--scale-up-delay-ms",
                "500",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self._read_ready(timeout_s=60)
        assert ready == f"ready {self.endpoint}", ready
        config = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=30)
        self.clients: dict[str, Any] = {}
        for service in (
            "lambda",
            "iam",
            "stepfunctions",
            "ecs",
            "application-autoscaling",
            "ec2",
            "events",
            "ssm",
        ):
            self.clients[service] = boto3.client(
                service,
                endpoint_url=self.endpoint,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=config,
            )

    def _read_ready(self, timeout_s: float) -> str:
        result: list[str] = []
        reader = threading.Thread(
            target=lambda: result.append((self.proc.stdout.readline() if self.proc.stdout else "").strip()),
            daemon=True,
        )
        reader.start()
        reader.join(timeout_s)
        if not result:
            self.stop()
            raise AssertionError(f"stack.py printed no ready line within {timeout_s}s")
        return result[0]

    def __getitem__(self, service: str) -> Any:
        return self.clients[service]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.watch.stop()
        return self.proc.returncode


STACK: Stack | None = None


def setup_module() -> None:
    global STACK
    STACK = Stack()


def teardown_module() -> None:
    assert STACK is not None
    code = STACK.stop()
    assert code == 0, f"stack.py exited with {code} on SIGTERM"


def stack() -> Stack:
    assert STACK is not None, "setup_module() not run"
    return STACK


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_function(name: str) -> str:
    s = stack()
    role_name = unique("role")
    role = s["iam"].create_role(
        RoleName=role_name,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "not run: the stack forwards to cargo lambda watch")
    return s["lambda"].create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Role=role,
        Handler="bootstrap",
        Code={"ZipFile": buf.getvalue()},
    )["FunctionArn"]


# --------------------------------------------------------------------------
# Lambda forwarding
# --------------------------------------------------------------------------


def test_invoke_is_forwarded_with_payload() -> None:
    s = stack()
    name = unique("echo")
    arn = create_function(name)
    resp = s["lambda"].invoke(FunctionName=arn, Payload=json.dumps({"hello": [1, 2]}))
    assert "FunctionError" not in resp, resp
    body = json.loads(resp["Payload"].read())
    assert body == {"function": name, "echo": {"hello": [1, 2]}}, body
    assert (name, {"hello": [1, 2]}) in s.watch.calls


def test_invocations_are_counted_with_their_start_time() -> None:
    s = stack()
    name = unique("counted")
    create_function(name)
    before = int(time.time() * 1000)
    for _ in range(3):
        s["lambda"].invoke(FunctionName=name, Payload=b"{}")
    with urllib.request.urlopen(s.endpoint + "/_turbulence/invocations", timeout=10) as resp:
        seen = json.loads(resp.read())["functions"][name]
    assert seen["count"] == 3, seen
    assert before <= seen["last_started_unix_ms"] <= int(time.time() * 1000), seen


def test_watch_500_becomes_function_error() -> None:
    s = stack()
    name = unique("x-fails")
    create_function(name)
    resp = s["lambda"].invoke(FunctionName=name, Payload=b"{}")
    assert resp.get("FunctionError") == "Unhandled", resp
    body = json.loads(resp["Payload"].read())
    assert body["errorType"] == "BoomError", body


def test_unknown_function_is_not_forwarded() -> None:
    s = stack()
    before = len(s.watch.calls)
    try:
        s["lambda"].invoke(FunctionName=unique("missing"), Payload=b"{}")
    except s["lambda"].exceptions.ResourceNotFoundException:
        pass
    else:
        raise AssertionError("invoking an unknown function should fail")
    assert len(s.watch.calls) == before


def test_state_machine_catch_sees_error_type() -> None:
    s = stack()
    ok = create_function(unique("step"))
    failing = create_function(unique("step-fails"))
    definition = {
        "StartAt": "First",
        "States": {
            "First": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": ok, "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "Next": "Second",
            },
            "Second": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": failing, "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
                "Next": "Caught",
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    sfn = s["stepfunctions"]
    sm = sfn.create_state_machine(
        name=unique("sm"),
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    execution = sfn.start_execution(
        stateMachineArn=sm, name=unique("run"), input=json.dumps({"n": 1})
    )["executionArn"]

    def finished() -> Any:
        d = sfn.describe_execution(executionArn=execution)
        return d if d["status"] != "RUNNING" else None

    d = wait_until("the execution to finish", finished, timeout_s=30)
    assert d["status"] == "SUCCEEDED", d
    output = json.loads(d["output"])
    assert output["error"]["Error"] == "BoomError", output
    assert json.loads(output["error"]["Cause"])["errorMessage"] == "it broke", output
    # The first task's output (the echo) is what the second one received.
    assert output["echo"] == {"n": 1}, output


def test_a_stopped_execution_is_aborted_while_its_task_still_runs() -> None:
    # As on AWS: ABORTED when StopExecution answers, not when the Lambda
    # under way (4 s here) returns, which is what moto does by itself.
    s = stack()
    slow = create_function(unique("step-slow"))
    definition = {
        "StartAt": "Slow",
        "States": {
            "Slow": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": slow, "Payload.$": "$"},
                "End": True,
            }
        },
    }
    sfn = s["stepfunctions"]
    sm = sfn.create_state_machine(
        name=unique("sm"),
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=sm, name=unique("run"), input="{}")[
        "executionArn"
    ]
    wait_until("the slow task to start", lambda: calls_to(slow.split(":")[-1]))
    sfn.stop_execution(executionArn=execution, cause="stopped from the console")
    started = time.monotonic()
    d = sfn.describe_execution(executionArn=execution)
    assert d["status"] == "ABORTED", d
    assert "stopDate" in d, d
    assert time.monotonic() - started < 1, "answered without waiting for the task"


# --------------------------------------------------------------------------
# CloudWatch over rpc-v2-cbor (what the Rust SDK speaks)
# --------------------------------------------------------------------------


def cbor_call(operation: str, params: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    """Calls CloudWatch the way aws-sdk-cloudwatch does (Smithy RPC v2 CBOR)."""
    import urllib.request

    import botocore.session
    from botocore.parsers import RpcV2CBORParser
    from botocore.serialize import RpcV2CBORSerializer

    model = botocore.session.get_session().get_service_model("cloudwatch")
    op = model.operation_model(operation)
    req = RpcV2CBORSerializer().serialize_to_request(params, op)
    headers = dict(req["headers"])
    # moto routes by the credential scope's service name; it checks no signature.
    headers["Authorization"] = (
        "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/monitoring/aws4_request, "
        "SignedHeaders=host, Signature=0"
    )
    http = urllib.request.Request(
        stack().endpoint + req["url_path"], data=req["body"], method="POST", headers=headers
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(http, timeout=10) as resp:
            status, resp_headers, body = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        status, resp_headers, body = err.code, dict(err.headers), err.read()
    lower = {k.lower(): v for k, v in resp_headers.items()}
    parsed = RpcV2CBORParser().parse(
        {"body": body, "headers": lower, "status_code": status}, op.output_shape
    )
    return status, lower, parsed


def test_cloudwatch_speaks_cbor() -> None:
    s = stack()
    cw = boto3.client(
        "cloudwatch",
        endpoint_url=s.endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    name = unique("alarm")
    cw.put_metric_alarm(
        AlarmName=name,
        MetricName="m",
        Namespace="n",
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    status, headers, _ = cbor_call(
        "SetAlarmState", {"AlarmName": name, "StateValue": "ALARM", "StateReason": "test"}
    )
    assert status == 200 and headers.get("smithy-protocol") == "rpc-v2-cbor", (status, headers)
    status, _, parsed = cbor_call("DescribeAlarms", {"AlarmNames": [name]})
    assert status == 200, parsed
    alarms = parsed["MetricAlarms"]
    assert [a["AlarmName"] for a in alarms] == [name], parsed
    assert alarms[0]["StateValue"] == "ALARM", alarms[0]
    # Timestamps travel as CBOR tag 1 and come back as datetimes.
    assert hasattr(alarms[0]["StateUpdatedTimestamp"], "year"), alarms[0]
    status, _, parsed = cbor_call(
        "SetAlarmState", {"AlarmName": unique("missing"), "StateValue": "OK", "StateReason": "x"}
    )
    assert status >= 400, parsed
    assert parsed["Error"]["Code"].endswith("ResourceNotFound"), parsed


# --------------------------------------------------------------------------
# ECS stand-in
# --------------------------------------------------------------------------


def create_service(desired: int, mode: str | None = None, min_capacity: int | None = None) -> tuple[str, str]:
    s = stack()
    ecs = s["ecs"]
    cluster = unique("cluster")
    service = unique("svc")
    ecs.create_cluster(clusterName=cluster)
    task_def = ecs.register_task_definition(
        family=unique("family"),
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "app", "image": "nginx", "memory": 512, "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    kwargs: dict[str, Any] = {}
    if mode is not None:
        kwargs["tags"] = [{"key": "turbulence-local:reconciler", "value": mode}]
    ecs.create_service(
        cluster=cluster,
        serviceName=service,
        taskDefinition=task_def,
        desiredCount=desired,
        launchType="FARGATE",
        **kwargs,
    )
    if min_capacity is not None:
        s["application-autoscaling"].register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=f"service/{cluster}/{service}",
            ScalableDimension="ecs:service:DesiredCount",
            MinCapacity=min_capacity,
            MaxCapacity=10,
        )
    return cluster, service


def service_tasks(cluster: str, service: str) -> list[dict[str, Any]]:
    ecs = stack()["ecs"]
    arns = ecs.list_tasks(cluster=cluster)["taskArns"]
    if not arns:
        return []
    tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
    return [t for t in tasks if t.get("group") == f"service:{service}"]


def running(cluster: str, service: str) -> list[dict[str, Any]]:
    return [t for t in service_tasks(cluster, service) if t["lastStatus"] == "RUNNING"]


def describe_service(cluster: str, service: str) -> dict[str, Any]:
    return stack()["ecs"].describe_services(cluster=cluster, services=[service])["services"][0]


def test_reconciler_starts_and_replaces_tasks() -> None:
    cluster, service = create_service(desired=3)
    tasks = wait_until("3 running tasks", lambda: len(running(cluster, service)) == 3 and running(cluster, service))
    assert all(t["startedBy"] == f"ecs-svc/{service}" for t in tasks), tasks
    assert all(t["launchType"] == "FARGATE" for t in tasks), tasks
    # Status does not advance on later DescribeTasks (state manager: manual).
    for _ in range(3):
        assert len(running(cluster, service)) == 3
    wait_until("runningCount 3", lambda: describe_service(cluster, service)["runningCount"] == 3)

    victim = tasks[0]["taskArn"]
    stack()["ecs"].stop_task(cluster=cluster, task=victim, reason="chaos")
    stopped = stack()["ecs"].describe_tasks(cluster=cluster, tasks=[victim])["tasks"][0]
    assert stopped["lastStatus"] == "STOPPED", stopped
    wait_until(
        "a replacement task",
        lambda: len(running(cluster, service)) == 3
        and victim not in {t["taskArn"] for t in running(cluster, service)},
    )


def test_reconciler_stops_extra_tasks() -> None:
    cluster, service = create_service(desired=3, mode="tasks-only")
    wait_until("3 running tasks", lambda: len(running(cluster, service)) == 3)
    stack()["ecs"].update_service(cluster=cluster, service=service, desiredCount=1)
    wait_until("1 running task", lambda: len(running(cluster, service)) == 1)
    wait_until("runningCount 1", lambda: describe_service(cluster, service)["runningCount"] == 1)


def test_autoscaling_restores_min_capacity() -> None:
    cluster, service = create_service(desired=2, min_capacity=2)
    wait_until("2 running tasks", lambda: len(running(cluster, service)) == 2)
    stack()["ecs"].update_service(cluster=cluster, service=service, desiredCount=0)
    wait_until("desiredCount back at 2", lambda: describe_service(cluster, service)["desiredCount"] == 2, 10)
    wait_until("2 running tasks again", lambda: len(running(cluster, service)) == 2)


def test_tasks_only_does_not_autoscale() -> None:
    cluster, service = create_service(desired=2, mode="tasks-only", min_capacity=2)
    wait_until("2 running tasks", lambda: len(running(cluster, service)) == 2)
    stack()["ecs"].update_service(cluster=cluster, service=service, desiredCount=0)
    wait_until("no running task", lambda: not running(cluster, service))
    time.sleep(1.5)  # three times the scale-up delay
    assert describe_service(cluster, service)["desiredCount"] == 0
    assert not running(cluster, service)


def test_off_leaves_service_alone() -> None:
    cluster, service = create_service(desired=2, mode="off", min_capacity=2)
    time.sleep(1.0)
    assert not service_tasks(cluster, service)
    stack()["ecs"].update_service(cluster=cluster, service=service, desiredCount=0)
    time.sleep(1.5)
    assert describe_service(cluster, service)["desiredCount"] == 0


# --------------------------------------------------------------------------
# Step Functions status events -> EventBridge -> Lambda
# --------------------------------------------------------------------------


def load_stack_module() -> Any:
    """local/stack.py as a module, for the tests that need no server."""
    import importlib.util

    name = "turbulence_local_stack"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, "stack.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def calls_to(name: str) -> list[Any]:
    return [body for called, body in list(stack().watch.calls) if called == name]


def create_machine(definition: dict[str, Any]) -> str:
    return stack()["stepfunctions"].create_state_machine(
        name=unique("sm"),
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]


def test_sfn_abort_event_reaches_lambda_target() -> None:
    s = stack()
    sfn, events = s["stepfunctions"], s["events"]
    on_abort = unique("on-abort")
    on_abort_arn = create_function(on_abort)
    waiting = create_machine(
        {
            "StartAt": "Wait",
            "States": {
                "Wait": {"Type": "Wait", "Seconds": 30, "Next": "Done"},
                "Done": {"Type": "Succeed"},
            },
        }
    )
    execution = sfn.start_execution(
        stateMachineArn=waiting, name=unique("run"), input=json.dumps({"n": 7})
    )["executionArn"]
    rule = unique("sfn-failures")
    events.put_rule(
        Name=rule,
        EventPattern=json.dumps(
            {
                "source": ["aws.states"],
                "detail-type": ["Step Functions Execution Status Change"],
                "detail": {"status": ["ABORTED", "FAILED", "TIMED_OUT"]},
            }
        ),
    )
    events.put_targets(
        Rule=rule,
        Targets=[
            {"Id": "handler", "Arn": on_abort_arn},
            # Not a Lambda function: skipped (logged), without harm to the other.
            {"Id": "queue", "Arn": f"arn:aws:sqs:{REGION}:123456789012:{unique('q')}"},
        ],
    )
    # A pass-only machine: its RUNNING and SUCCEEDED events must not reach
    # that target, but do reach those of a rule on SUCCEEDED for the machine.
    passing = create_machine(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"ok": 1}, "End": True}}}
    )
    on_success = unique("on-success")
    fixed = unique("fixed-input")
    success_rule = unique("sfn-success")
    events.put_rule(
        Name=success_rule,
        EventPattern=json.dumps(
            {
                "source": ["aws.states"],
                "detail": {"status": ["SUCCEEDED"], "stateMachineArn": [passing]},
            }
        ),
    )
    events.put_targets(
        Rule=success_rule,
        Targets=[
            {"Id": "whole-event", "Arn": create_function(on_success)},
            {"Id": "fixed", "Arn": create_function(fixed), "Input": '{"fixed": true}'},
        ],
    )
    time.sleep(0.5)  # the watcher sees the execution RUNNING first
    assert calls_to(on_abort) == [], calls_to(on_abort)

    sfn.stop_execution(executionArn=execution)
    wait_until(
        "ABORTED",
        lambda: sfn.describe_execution(executionArn=execution)["status"] == "ABORTED",
        timeout_s=5,
    )
    passed = sfn.start_execution(stateMachineArn=passing, name=unique("ok"))["executionArn"]
    wait_until(
        "SUCCEEDED",
        lambda: sfn.describe_execution(executionArn=passed)["status"] == "SUCCEEDED",
        timeout_s=5,
    )
    (event,) = wait_until("the ABORTED event at the target", lambda: calls_to(on_abort), 5)
    success = wait_until("the SUCCEEDED event", lambda: calls_to(on_success), 5)
    assert wait_until("the fixed input", lambda: calls_to(fixed), 5) == [{"fixed": True}]
    time.sleep(1.0)  # ten polling periods: nothing more may come
    assert calls_to(on_abort) == [event], calls_to(on_abort)
    assert len(calls_to(on_success)) == 1 and len(calls_to(fixed)) == 1

    described = sfn.describe_execution(executionArn=execution)
    assert event["source"] == "aws.states", event
    assert event["detail-type"] == "Step Functions Execution Status Change", event
    assert event["version"] == "0" and event["region"] == REGION, event
    assert event["account"] == execution.split(":")[4], event
    assert event["resources"] == [execution], event
    assert event["time"].endswith("Z"), event
    detail = event["detail"]
    assert detail["executionArn"] == execution, detail
    assert detail["stateMachineArn"] == waiting, detail
    assert detail["name"] == described["name"], detail
    assert detail["status"] == "ABORTED", detail
    assert detail["startDate"] == int(described["startDate"].timestamp() * 1000), detail
    assert isinstance(detail["stopDate"], int) and detail["stopDate"] >= detail["startDate"]
    assert json.loads(detail["input"]) == {"n": 7}, detail
    assert detail["output"] is None and detail["outputDetails"] is None, detail
    assert detail["inputDetails"] == {"included": True}, detail
    assert detail["error"] is None and detail["cause"] is None, detail

    (succeeded,) = success
    assert succeeded["detail"]["status"] == "SUCCEEDED", succeeded
    assert succeeded["detail"]["executionArn"] == passed, succeeded
    assert json.loads(succeeded["detail"]["output"]) == {"ok": 1}, succeeded
    assert succeeded["detail"]["outputDetails"] == {"included": True}, succeeded


class FakeExecution:
    """The attributes the watcher reads of moto's engine executions."""

    def __init__(self, arn: str, status: str, started: Any):
        self.execution_arn = arn
        self.exec_status = types.SimpleNamespace(value=status)
        self.start_date = started
        self.stop_date = None
        self.state_machine_arn = "arn:aws:states:us-east-1:123456789012:stateMachine:m"
        self.name = arn.rsplit(":", 1)[-1]
        self.account_id = "123456789012"
        self.region_name = REGION
        self.input_data: Any = {}
        self.output: Any = None
        self.error = self.cause = None

    def set(self, status: str) -> None:
        self.exec_status = types.SimpleNamespace(value=status)


def test_sfn_events_only_for_changes_seen() -> None:
    """No server: what the watcher emits for what it observes, tick by tick."""
    module = load_stack_module()
    emitted: list[tuple[str, str]] = []

    class Recording(module.ExecutionEvents):  # type: ignore[name-defined,misc]
        def emit(self, execution: Any, status: str) -> None:
            key = (execution.execution_arn.rsplit(":", 1)[-1], status)
            if key not in self.delivered:
                self.delivered.add(key)
                emitted.append(key)

    watcher = Recording(forwarder=None, poll_s=0.2)
    before = watcher.started_at - datetime.timedelta(seconds=5)
    after = watcher.started_at + datetime.timedelta(milliseconds=10)
    arn = "arn:aws:states:us-east-1:123456789012:execution:m:"
    old_done = FakeExecution(arn + "old-done", "SUCCEEDED", before)
    old_running = FakeExecution(arn + "old-running", "RUNNING", before)
    quick = FakeExecution(arn + "quick", "FAILED", after)
    slow = FakeExecution(arn + "slow", "RUNNING", after)
    everything = [old_done, old_running, quick, slow]

    def tick() -> None:
        for execution in everything:
            watcher.observe(execution)

    tick()
    # Old executions are silent; new ones start RUNNING; a terminal status
    # waits one tick (moto writes output, error and cause after it).
    assert emitted == [("quick", "RUNNING"), ("slow", "RUNNING")], emitted
    tick()
    assert emitted[2:] == [("quick", "FAILED")], emitted
    old_running.set("ABORTED")
    slow.set("SUCCEEDED")
    tick()
    assert emitted[3:] == [], emitted
    tick()
    assert sorted(emitted[3:]) == [("old-running", "ABORTED"), ("slow", "SUCCEEDED")], emitted
    for _ in range(3):
        tick()
    assert len(emitted) == 5, emitted
    # The event itself, for a failed execution.
    quick.error, quick.cause = "BoomError", "it broke"
    quick.stop_date = after + datetime.timedelta(seconds=1)
    event = module.sfn_status_event(quick, "FAILED")
    assert event["detail"]["error"] == "BoomError" and event["detail"]["cause"] == "it broke"
    assert event["detail"]["stopDate"] - event["detail"]["startDate"] == 1000, event
    assert event["detail"]["output"] is None and event["detail"]["input"] == "{}", event
    assert event["resources"] == [quick.execution_arn], event
    # Rule patterns: moto's parsed EventPattern or a JSON string.
    from moto.events.models import EventPattern

    failed = '{"source": ["aws.states"], "detail": {"status": ["FAILED"]}}'
    aborted = '{"source": ["aws.states"], "detail": {"status": ["ABORTED"]}}'
    for pattern, state, matches in (
        (failed, "ENABLED", True),
        (EventPattern.load(failed), "ENABLED", True),
        (aborted, "ENABLED", False),
        (failed, "DISABLED", False),
        (EventPattern.load(None), "ENABLED", False),  # a schedule rule
    ):
        rule = types.SimpleNamespace(state=state, event_pattern=pattern)
        assert module.rule_matches(rule, event) is matches, (pattern, state)


# --------------------------------------------------------------------------
# Injected throttling
# --------------------------------------------------------------------------


def throttle(method: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        stack().endpoint + "/_turbulence/throttle",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def single_attempt(service: str) -> Any:
    """A client that never retries. botocore's `retries.max_attempts` counts
    retries (so the stack's clients retry once); `total_max_attempts` counts
    attempts."""
    return boto3.client(
        service,
        endpoint_url=stack().endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=30),
    )


def error_code(call: Callable[[], Any]) -> str | None:
    """The error code `call` fails with, None if it succeeds."""
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as err:
        return str(err.response["Error"]["Code"])
    return None


class no_throttles:
    """Clears every throttle rule on entry and on exit, so that a failing
    test leaves none armed for the next ones."""

    def __enter__(self) -> None:
        assert throttle("DELETE")[0] == 200

    def __exit__(self, *_exc: Any) -> None:
        throttle("DELETE")


def arm(service: str, count: int, operation: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"service": service, "count": count}
    if operation is not None:
        body["operation"] = operation
    status, rule = throttle("POST", body)
    assert status == 200, rule
    return rule


def throttle_rules() -> list[dict[str, Any]]:
    status, body = throttle("GET")
    assert status == 200, body
    return body["rules"]


def test_throttle_ssm_and_ecs() -> None:
    with no_throttles():
        s = stack()
        ssm = single_attempt("ssm")
        name = unique("/turbulence/param")
        ssm.put_parameter(Name=name, Value="v", Type="String")
        rule = arm("ssm", 2, "GetParameter")
        assert rule == {
            "service": "ssm",
            "operation": "GetParameter",
            "remaining": 2,
            "throttled": 0,
        }, rule
        codes = [error_code(lambda: ssm.get_parameter(Name=name)) for _ in range(3)]
        assert codes == ["ThrottlingException", "ThrottlingException", None], codes
        assert throttle_rules() == [
            {"service": "ssm", "operation": "GetParameter", "remaining": 0, "throttled": 2}
        ]
        # A client that retries (botocore's standard mode retries throttling)
        # gets through; a new POST replaces the rule.
        arm("ssm", 1, "GetParameter")
        assert s["ssm"].get_parameter(Name=name)["Parameter"]["Value"] == "v"
        assert throttle_rules()[0]["throttled"] == 1

        ecs = single_attempt("ecs")
        arm("ecs", 2, "ListClusters")
        # Another operation of the service goes through.
        assert error_code(lambda: ecs.list_task_definitions()) is None
        codes = [error_code(lambda: ecs.list_clusters()) for _ in range(3)]
        assert codes == ["ThrottlingException", "ThrottlingException", None], codes
        # Without an operation: any operation of the service.
        arm("ecs", 1)
        assert error_code(lambda: ecs.list_task_definitions()) == "ThrottlingException"
        assert error_code(lambda: ecs.list_task_definitions()) is None
        rules = {(r["service"], r["operation"]): r for r in throttle_rules()}
        assert rules[("ecs", "ListClusters")]["throttled"] == 2, rules
        assert rules[("ecs", None)] == {
            "service": "ecs",
            "operation": None,
            "remaining": 0,
            "throttled": 1,
        }, rules
        assert throttle("DELETE") == (200, {"cleared": 3})
        assert throttle_rules() == []


def test_throttle_query_and_rest_protocols() -> None:
    with no_throttles():
        iam = single_attempt("iam")  # query protocol (XML errors)
        arm("iam", 1, "ListRoles")
        assert error_code(lambda: iam.list_roles()) == "Throttling"
        assert error_code(lambda: iam.list_roles()) is None
        name = unique("echo")
        create_function(name)
        lam = single_attempt("lambda")  # REST JSON
        arm("lambda", 1, "Invoke")
        before = len(calls_to(name))
        assert error_code(lambda: lam.invoke(FunctionName=name, Payload=b"{}")) == (
            "TooManyRequestsException"
        )
        assert len(calls_to(name)) == before  # never reached the function
        assert error_code(lambda: lam.invoke(FunctionName=name, Payload=b"{}")) is None
        assert throttle("DELETE") == (200, {"cleared": 2})


def test_throttle_cloudwatch_cbor() -> None:
    with no_throttles():
        # "cloudwatch" is accepted for the signing name "monitoring".
        rule = arm("cloudwatch", 1, "DescribeAlarms")
        assert rule["service"] == "monitoring", rule
        status, headers, parsed = cbor_call("DescribeAlarms", {})
        assert status == 400 and headers.get("smithy-protocol") == "rpc-v2-cbor", (status, headers)
        assert parsed["Error"]["Code"] == "Throttling", parsed
        assert headers.get("x-amzn-query-error") == "Throttling;Sender", headers
        status, _, parsed = cbor_call("DescribeAlarms", {})
        assert status == 200, parsed
        assert throttle_rules()[0]["throttled"] == 1


def test_throttle_rejects_bad_rules() -> None:
    with no_throttles():
        for body in (
            {"service": "ecs"},
            {"service": "ecs", "count": -1},
            {"service": "", "count": 1},
            {"service": "ecs", "operation": 3, "count": 1},
            {"service": "ecs", "count": 1, "times": 2},
        ):
            status, answer = throttle("POST", body)
            assert status == 400 and answer["message"], (body, status, answer)
        assert throttle_rules() == []


def test_throttle_answer_bodies() -> None:
    """No server: each protocol's answer parses as throttling in botocore."""
    import botocore.session
    from botocore.parsers import create_parser

    module = load_stack_module()
    session = botocore.session.get_session()
    cases = [
        ("cbor", "monitoring", "cloudwatch", "DescribeAlarms", "Throttling"),
        ("json", "ssm", "ssm", "GetParameter", "ThrottlingException"),
        ("json", "ecs", "ecs", "DescribeServices", "ThrottlingException"),
        ("query", "iam", "iam", "ListRoles", "Throttling"),
        ("ec2", "ec2", "ec2", "DescribeVpcs", "RequestLimitExceeded"),
        ("rest", "lambda", "lambda", "Invoke", "TooManyRequestsException"),
    ]
    for protocol, service, model_name, operation, code in cases:
        request = module.AwsRequest(service, operation, protocol, "application/x-amz-json-1.1")
        status, headers, body = module.throttling_answer(request)
        model = session.get_service_model(model_name)
        wire = "smithy-rpc-v2-cbor" if protocol == "cbor" else model.metadata["protocol"]
        parsed = create_parser(wire).parse(
            {
                "body": body,
                "headers": {k.lower(): v for k, v in headers},
                "status_code": int(status.split()[0]),
            },
            model.operation_model(operation).output_shape,
        )
        assert parsed["Error"]["Code"] == code, (protocol, parsed)
        assert "injected by turbulence-local" in parsed["Error"]["Message"], parsed
    assert module.cbor_encode({"__type": "Throttling", "message": "m"}) == (
        b"\xa2\x66__type\x6aThrottling\x67message\x61m"
    )


def test_unreachable_watch_is_a_service_exception() -> None:
    """Runs last: it stops the fake watch. The function never ran, so it is a
    Lambda service error (retryable), not a function error."""
    s = stack()
    name = unique("late")
    create_function(name)
    s.watch.stop()
    try:
        s["lambda"].invoke(FunctionName=name, Payload=b"{}")
    except s["lambda"].exceptions.ServiceException as err:
        assert "cannot reach cargo lambda watch" in str(err), err
    else:
        raise AssertionError("an invoke with watch down should fail")


# Every test_ function, in the order written (none is left out by hand).
TESTS = [f for name, f in list(globals().items()) if name.startswith("test_") and callable(f)]


if __name__ == "__main__":
    failed = 0
    setup_module()
    try:
        for test in TESTS:
            started = time.monotonic()
            try:
                test()
                print(f"ok   {test.__name__} ({time.monotonic() - started:.1f}s)")
            except Exception as err:  # noqa: BLE001 - report and go on
                failed += 1
                print(f"FAIL {test.__name__}: {type(err).__name__}: {err}")
    finally:
        teardown_module()
    print(f"{len(TESTS) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
