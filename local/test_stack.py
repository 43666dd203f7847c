"""Self-test of local/stack.py, run by hand:

    .tools/venv/bin/python local/test_stack.py        # plain runner
    .tools/venv/bin/python -m pytest local/test_stack.py   # if pytest is there

Starts stack.py on a free loopback port with a fake `cargo lambda watch` (an
HTTP server on another loopback port) and checks the forwarding, the error
mapping through Step Functions, and the ECS scheduler/autoscaling stand-in.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
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
        for service in ("lambda", "iam", "stepfunctions", "ecs", "application-autoscaling", "ec2"):
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


TESTS = [
    test_invoke_is_forwarded_with_payload,
    test_watch_500_becomes_function_error,
    test_unknown_function_is_not_forwarded,
    test_state_machine_catch_sees_error_type,
    test_cloudwatch_speaks_cbor,
    test_reconciler_starts_and_replaces_tasks,
    test_reconciler_stops_extra_tasks,
    test_autoscaling_restores_min_capacity,
    test_tasks_only_does_not_autoscale,
    test_off_leaves_service_alone,
    test_unreachable_watch_is_a_service_exception,
]


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
