#!/usr/bin/env python3
"""The local AWS for Turbulence: moto's server plus the two things moto lacks.

1. Lambda forwarding. moto's no-docker Lambda backend only echoes the payload;
   here every Invoke is forwarded to `cargo lambda watch`, which runs the real
   Rust binaries. A handler error (HTTP 500 from watch, no
   X-Amz-Function-Error header) becomes `FunctionError: Unhandled` with the
   `{"errorType", "errorMessage"}` body as payload, so a Step Functions Catch
   sees `Error = errorType`, as on AWS.
2. An ECS service scheduler and Application Auto Scaling stand-in. moto never
   starts tasks for a service. A background thread keeps, for every ACTIVE
   service, RUNNING tasks == desiredCount, and raises desiredCount back to the
   scalable target's MinCapacity when it stays below it for a while. A
   service tagged `turbulence-local:reconciler` = `off` is left alone;
   `tasks-only` gets the scheduler but no auto scaling.
3. CloudWatch over Smithy RPC v2 CBOR. The AWS SDK for Rust's CloudWatch
   client (aws-sdk-cloudwatch >= 1.1xx) only speaks rpc-v2-cbor, which moto
   5.2.5 does not; requests are translated to moto's JSON 1.0 protocol and
   answers back to CBOR, driven by botocore's CloudWatch model.

Run with the venv's python (`.tools/venv/bin/python local/stack.py`). Prints
`ready <endpoint>` on stdout once usable; stops on SIGTERM/SIGINT. Listens on
loopback only and only ever talks to loopback.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

LOG = logging.getLogger("turbulence-local")

RECONCILER_TAG = "turbulence-local:reconciler"
RECONCILER_MODES = ("on", "off", "tasks-only")
ECS_DESIRED_COUNT = "ecs:service:DesiredCount"
# Name tag of the VPC, subnet and security group the stand-in creates for the
# tasks it starts (services without a networkConfiguration of their own).
NETWORK_NAME = "turbulence-local"


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------
# Lambda forwarding
# --------------------------------------------------------------------------


class LambdaForwarder:
    """Forwards one Invoke to `cargo lambda watch` and maps its answer."""

    def __init__(self, watch_url: str, timeout_s: float):
        self.watch_url = watch_url.rstrip("/")
        self.timeout_s = timeout_s
        # No proxies: the registry proxy of this machine must never see
        # invocations, and watch is on loopback anyway.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def forward(self, function_name: str, payload: bytes) -> tuple[bytes, str | None]:
        """Returns (payload, function_error); function_error is None on success.

        Raises WatchUnreachable when watch cannot be reached at all: the
        function never ran, so it's a Lambda service failure (retryable), not
        a function error."""
        url = (
            f"{self.watch_url}/2015-03-31/functions/"
            f"{urllib.parse.quote(function_name, safe='')}/invocations"
        )
        req = urllib.request.Request(
            url,
            data=payload or b"{}",
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        started = time.monotonic()
        try:
            with self.opener.open(req, timeout=self.timeout_s) as resp:
                body = resp.read()
                LOG.info(
                    "lambda %s -> %d (%.1fs)",
                    function_name,
                    resp.status,
                    time.monotonic() - started,
                )
                return body, resp.headers.get("X-Amz-Function-Error")
        except urllib.error.HTTPError as err:
            body = err.read()
            LOG.info(
                "lambda %s -> HTTP %d (%.1fs): %s",
                function_name,
                err.code,
                time.monotonic() - started,
                body[:300].decode("utf-8", "replace"),
            )
            return error_payload(body, err.code), "Unhandled"
        except (socket.timeout, TimeoutError):
            return self.timed_out(function_name)
        except (urllib.error.URLError, ConnectionError, OSError) as err:
            reason = getattr(err, "reason", err)
            if isinstance(reason, (socket.timeout, TimeoutError)):
                return self.timed_out(function_name)
            LOG.warning("lambda %s: cannot reach %s: %s", function_name, url, reason)
            raise WatchUnreachable(
                f"local stack: cannot reach cargo lambda watch at {self.watch_url} for "
                f"{function_name}: {reason} (is `scripts/stack start` running?)"
            ) from err

    def timed_out(self, function_name: str) -> tuple[bytes, str]:
        # What Lambda reports when a function runs past its timeout.
        LOG.warning("lambda %s timed out after %.0fs", function_name, self.timeout_s)
        body = {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"no answer from cargo lambda watch within {self.timeout_s:.0f}s",
        }
        return json.dumps(body).encode(), "Unhandled"


def error_payload(body: bytes, status: int) -> bytes:
    """The payload of a function error: watch's own `{"errorType", ...}` body
    when it has one, else a JSON wrapper (the SFN engine parses it as JSON)."""
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict) and "errorType" in parsed:
            return body
    except ValueError:
        pass
    return json.dumps(
        {
            "errorType": "Local.InvokeFailed",
            "errorMessage": f"cargo lambda watch answered HTTP {status}: "
            + body[:2000].decode("utf-8", "replace"),
        }
    ).encode()


class WatchUnreachable(Exception):
    pass


def install_lambda_forwarding(forwarder: LambdaForwarder) -> None:
    """Replace the simple backend's echo with a forward to watch."""
    from moto.awslambda.exceptions import LambdaClientError
    from moto.awslambda_simple.models import LambdaSimpleBackend

    class ServiceException(LambdaClientError):
        code = 500

        def __init__(self, message: str):
            super().__init__("ServiceException", message)

    def invoke(
        self: Any,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        # Resolves names, ARNs and partial ARNs; unknown functions get moto's
        # own ResourceNotFoundException, as on AWS.
        fn = self.get_function(function_name, qualifier)
        payload = body.encode("utf-8") if isinstance(body, str) else (body or b"")
        invocation_type = headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type == "DryRun":
            return b""
        if invocation_type == "Event":
            # Asynchronous invoke: answer 202 at once, run in the background.
            threading.Thread(
                target=_forward_quietly,
                args=(forwarder, fn.function_name, payload),
                daemon=True,
            ).start()
            return b""
        try:
            result, function_error = forwarder.forward(fn.function_name, payload)
        except WatchUnreachable as err:
            raise ServiceException(str(err)) from err
        if function_error:
            response_headers["x-amz-function-error"] = function_error
        response_headers["Content-Length"] = str(len(result))
        return result

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]


def _forward_quietly(forwarder: LambdaForwarder, name: str, payload: bytes) -> None:
    try:
        forwarder.forward(name, payload)
    except Exception as err:  # noqa: BLE001 - async invoke: nobody to tell
        LOG.warning("async lambda %s failed: %s", name, err)


# --------------------------------------------------------------------------
# CloudWatch: Smithy RPC v2 CBOR <-> JSON 1.0
# --------------------------------------------------------------------------

CBOR_SERVICES = {
    # Smithy service name in the request path -> botocore service name
    "GraniteServiceVersion20100801": "cloudwatch",
}


class CborTranslator:
    """WSGI middleware: serves `POST /service/<Service>/operation/<Op>` with
    `smithy-protocol: rpc-v2-cbor` by calling moto's JSON 1.0 handler of the
    same operation. botocore's shape-aware (de)serializers do the work, so
    timestamps go out as CBOR tag 1, as the Smithy clients require."""

    def __init__(self, app: Any):
        import botocore.session

        self.app = app
        self.session = botocore.session.get_session()
        self.models: dict[str, Any] = {}

    def model(self, service: str) -> Any:
        if service not in self.models:
            self.models[service] = self.session.get_service_model(service)
        return self.models[service]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        parts = environ.get("PATH_INFO", "").strip("/").split("/")
        protocol = environ.get("HTTP_SMITHY_PROTOCOL", "")
        if (
            len(parts) != 4
            or parts[0] != "service"
            or parts[2] != "operation"
            or parts[1] not in CBOR_SERVICES
            or protocol != "rpc-v2-cbor"
        ):
            return self.app(environ, start_response)
        try:
            return self.translate(environ, start_response, parts[1], parts[3])
        except Exception as err:  # noqa: BLE001 - answer, never hang the client
            LOG.warning("cbor %s/%s: %s: %s", parts[1], parts[3], type(err).__name__, err)
            body = cbor_encode({"__type": "InternalFailure", "message": f"local stack: {err}"})
            start_response(
                "500 Internal Server Error",
                [
                    ("Content-Type", "application/cbor"),
                    ("smithy-protocol", "rpc-v2-cbor"),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]

    def translate(self, environ: dict[str, Any], start_response: Any, target: str, op_name: str) -> Any:
        import io

        from botocore.parsers import JSONParser, RpcV2CBORParser
        from botocore.serialize import JSONSerializer, RpcV2CBORSerializer

        model = self.model(CBOR_SERVICES[target])
        if op_name not in model.operation_names:
            body = cbor_encode({"__type": "UnknownOperationException", "message": op_name})
            start_response(
                "400 Bad Request",
                [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")],
            )
            return [body]
        op = model.operation_model(op_name)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        params: dict[str, Any] = {}
        if raw and op.input_shape is not None:
            params = RpcV2CBORParser().parse(
                {"body": raw, "headers": {}, "status_code": 200}, op.input_shape
            )
            params.pop("ResponseMetadata", None)
        json_body = JSONSerializer().serialize_to_request(params, op)["body"]
        if isinstance(json_body, str):
            json_body = json_body.encode()

        inner = dict(environ)
        inner["PATH_INFO"] = "/"
        inner["RAW_URI"] = inner["REQUEST_URI"] = "/"
        inner["CONTENT_TYPE"] = "application/x-amz-json-1.0"
        inner["HTTP_X_AMZ_TARGET"] = f"{target}.{op_name}"
        inner["CONTENT_LENGTH"] = str(len(json_body))
        inner["wsgi.input"] = io.BytesIO(json_body)
        inner.pop("HTTP_SMITHY_PROTOCOL", None)

        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"] = status
            captured["headers"] = headers
            return lambda _data: None

        chunks = self.app(inner, capture)
        try:
            answer = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        status = captured.get("status", "500 Internal Server Error")
        code = int(status.split()[0])
        headers = {k.lower(): v for k, v in captured.get("headers", [])}

        if 200 <= code < 300:
            out = b""
            if op.output_shape is not None:
                parsed = JSONParser().parse(
                    {"body": answer, "headers": headers, "status_code": code}, op.output_shape
                )
                parsed.pop("ResponseMetadata", None)
                out = RpcV2CBORSerializer()._serialize_body_params(parsed, op.output_shape)
        else:
            try:
                err = json.loads(answer or b"{}")
            except ValueError:
                err = {"message": answer.decode("utf-8", "replace")}
            error_type = str(err.get("__type") or err.get("code") or "InternalFailure")
            message = str(err.get("message") or err.get("Message") or "")
            out = cbor_encode({"__type": error_type.split("#")[-1], "message": message})

        reply = [
            ("Content-Type", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Length", str(len(out))),
        ]
        for name in ("x-amzn-requestid", "x-amzn-query-error"):
            if name in headers:
                reply.append((name, headers[name]))
        start_response(status, reply)
        return [out]


def cbor_encode(value: Any) -> bytes:
    """Minimal CBOR (RFC 8949) for error bodies: maps, strings, ints."""
    out = bytearray()

    def head(major: int, n: int) -> None:
        if n < 24:
            out.append(major << 5 | n)
        elif n < 0x100:
            out.extend([major << 5 | 24, n])
        elif n < 0x10000:
            out.append(major << 5 | 25)
            out.extend(n.to_bytes(2, "big"))
        elif n < 0x100000000:
            out.append(major << 5 | 26)
            out.extend(n.to_bytes(4, "big"))
        else:
            out.append(major << 5 | 27)
            out.extend(n.to_bytes(8, "big"))

    def item(v: Any) -> None:
        if isinstance(v, dict):
            head(5, len(v))
            for k, x in v.items():
                item(str(k))
                item(x)
        elif isinstance(v, str):
            data = v.encode("utf-8")
            head(3, len(data))
            out.extend(data)
        elif isinstance(v, bool):
            out.append(0xF5 if v else 0xF4)
        elif isinstance(v, int) and v >= 0:
            head(0, v)
        else:
            raise TypeError(f"cbor_encode: unsupported {type(v).__name__}")

    item(value)
    return bytes(out)


class MotoServer:
    """moto's ThreadedMotoServer, plus the CBOR translator in front."""

    def __init__(self, host: str, port: int):
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = CborTranslator(DomainDispatcherApplication(create_backend_app))
        self.server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="moto", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# --------------------------------------------------------------------------
# ECS scheduler + Application Auto Scaling stand-in
# --------------------------------------------------------------------------


class Reconciler:
    """Keeps ECS services at their desired count, like ECS's scheduler, and
    restores MinCapacity, like the write-up's auto-scaling policy.

    Works in-process on moto's backends: polling through the HTTP API every
    200 ms for every service would cost most of a core on this machine.
    """

    def __init__(
        self,
        account_id: str,
        region: str,
        network: dict[str, Any],
        poll_s: float,
        scale_up_delay_s: float,
    ):
        self.account_id = account_id
        self.region = region
        self.network = network
        self.poll_s = poll_s
        self.scale_up_delay_s = scale_up_delay_s
        self.stop_event = threading.Event()
        # service key -> monotonic time desiredCount was first seen below min
        self.below_min_since: dict[str, float] = {}
        self.last_error = ""
        self.thread = threading.Thread(target=self.run, name="reconciler", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=5)

    def run(self) -> None:
        while not self.stop_event.wait(self.poll_s):
            try:
                self.tick()
                self.last_error = ""
            except Exception as err:  # noqa: BLE001 - keep the scheduler alive
                # moto's dicts can change under us (requests run in other
                # threads); the next tick sees a consistent view again.
                message = f"{type(err).__name__}: {err}"
                if message != self.last_error:
                    LOG.warning("reconciler tick failed: %s", message)
                self.last_error = message

    def tick(self) -> None:
        from moto.applicationautoscaling.models import applicationautoscaling_backends
        from moto.ecs.models import ecs_backends

        ecs = ecs_backends[self.account_id][self.region]
        aas = applicationautoscaling_backends[self.account_id][self.region]
        targets = dict(aas.targets.get(ECS_DESIRED_COUNT, {}))
        seen = set()
        for key, service in list(ecs.services.items()):
            if service.status != "ACTIVE":
                continue
            seen.add(key)
            mode = service_mode(service)
            running = self.running_tasks(ecs, service)
            if mode != "off":
                if mode == "on":
                    self.autoscale(ecs, service, key, targets)
                running = self.schedule(ecs, service, running)
            # Keep moto's counters honest in every mode: moto copies
            # desiredCount into runningCount on UpdateService.
            self.publish_counts(service, len(running))
        for key in list(self.below_min_since):
            if key not in seen:
                del self.below_min_since[key]

    @staticmethod
    def running_tasks(ecs: Any, service: Any) -> list[Any]:
        group = f"service:{service.name}"
        tasks = list(ecs.tasks.get(service.cluster_name, {}).values())
        return [
            t
            for t in tasks
            if t.group == group
            and t.desired_status == "RUNNING"
            and t.last_status == "RUNNING"
        ]

    def schedule(self, ecs: Any, service: Any, running: list[Any]) -> list[Any]:
        desired = int(service.desired_count or 0)
        if len(running) < desired:
            if not service.task_definition:
                return running
            started = ecs.run_task(
                cluster_str=service.cluster_name,
                task_definition_str=service.task_definition,
                count=desired - len(running),
                overrides=None,
                started_by=f"ecs-svc/{service.name}",
                tags=None,
                launch_type="FARGATE",
                networking_configuration=service.network_configuration or self.network,
                group=f"service:{service.name}",
            )
            LOG.info(
                "ecs %s/%s: started %d task(s) (desired %d)",
                service.cluster_name,
                service.name,
                len(started),
                desired,
            )
            return running + list(started)
        if len(running) > desired:
            extra = running[desired:]
            for task in extra:
                ecs.stop_task(
                    service.cluster_name,
                    task.task_arn,
                    f"Scaling activity initiated by (service {service.name})",
                )
            LOG.info(
                "ecs %s/%s: stopped %d task(s) (desired %d)",
                service.cluster_name,
                service.name,
                len(extra),
                desired,
            )
            return running[:desired]
        return running

    def autoscale(self, ecs: Any, service: Any, key: str, targets: dict[str, Any]) -> None:
        target = targets.get(f"service/{service.cluster_name}/{service.name}")
        minimum = getattr(target, "min_capacity", None)
        desired = int(service.desired_count or 0)
        if minimum is None or desired >= int(minimum):
            self.below_min_since.pop(key, None)
            return
        now = time.monotonic()
        since = self.below_min_since.setdefault(key, now)
        if now - since < self.scale_up_delay_s:
            return
        ecs.update_service(
            {
                "cluster": service.cluster_name,
                "service": service.name,
                "desired_count": int(minimum),
            }
        )
        self.below_min_since.pop(key, None)
        LOG.info(
            "autoscaling %s/%s: desiredCount %d -> %d (MinCapacity)",
            service.cluster_name,
            service.name,
            desired,
            int(minimum),
        )

    @staticmethod
    def publish_counts(service: Any, running: int) -> None:
        desired = int(service.desired_count or 0)
        service.running_count = running
        service.pending_count = max(desired - running, 0)
        for deployment in getattr(service, "deployments", None) or []:
            if deployment.get("status") == "PRIMARY":
                deployment["desiredCount"] = desired
                deployment["runningCount"] = running
                deployment["pendingCount"] = max(desired - running, 0)
                deployment["rolloutState"] = (
                    "COMPLETED" if running == desired else "IN_PROGRESS"
                )


def service_mode(service: Any) -> str:
    for tag in service.tags or []:
        if tag.get("key") == RECONCILER_TAG:
            value = str(tag.get("value", "")).strip().lower()
            return value if value in RECONCILER_MODES else "on"
    return "on"


# --------------------------------------------------------------------------
# Start-up
# --------------------------------------------------------------------------


def post_json(url: str, body: dict[str, Any], timeout_s: float = 10) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with opener.open(req, timeout=timeout_s) as resp:
        if resp.status >= 300:
            raise RuntimeError(f"POST {url} -> HTTP {resp.status}")


def create_network(endpoint: str, region: str) -> dict[str, Any]:
    """A VPC, subnet and security group in moto EC2 for the tasks it starts
    (moto needs them for awsvpc tasks; ENIs need EnableDnsHostnames)."""
    import boto3

    ec2 = boto3.client(
        "ec2",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    tags = [{"Key": "Name", "Value": NETWORK_NAME}]
    vpc = ec2.create_vpc(
        CidrBlock="10.42.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": tags}],
    )["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(
        VpcId=vpc,
        CidrBlock="10.42.0.0/20",
        AvailabilityZone=f"{region}a",
        TagSpecifications=[{"ResourceType": "subnet", "Tags": tags}],
    )["Subnet"]["SubnetId"]
    group = ec2.create_security_group(
        GroupName=NETWORK_NAME,
        Description="Tasks started by the local ECS scheduler stand-in",
        VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}],
    )["GroupId"]
    return {
        "awsvpcConfiguration": {
            "subnets": [subnet],
            "securityGroups": [group],
            "assignPublicIp": "DISABLED",
        }
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--lambda-url", default="http://127.0.0.1:9000", help="cargo lambda watch")
    p.add_argument(
        "--lambda-timeout-s",
        type=float,
        default=960.0,
        help="how long one forwarded invocation may take (a wait chunk is up to 15 min)",
    )
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--poll-ms", type=int, default=200, help="reconciler period")
    p.add_argument("--scale-up-delay-ms", type=int, default=1000)
    p.add_argument("--verbose", action="store_true", help="log every HTTP request")
    args = p.parse_args(argv)
    if not is_loopback_host(args.host):
        p.error(f"--host must be a loopback address, not {args.host}")
    lambda_host = urllib.parse.urlsplit(args.lambda_url).hostname or ""
    if not is_loopback_host(lambda_host):
        p.error(f"--lambda-url must point at loopback, not {args.lambda_url}")
    if args.poll_ms < 10:
        p.error("--poll-ms must be at least 10")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s stack: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    # moto's Step Functions engine calls the other services through boto3 at
    # http://localhost:$MOTO_PORT (moto.settings.moto_server_port); only the
    # moto_server CLI sets it, so set it before anything runs.
    os.environ["MOTO_PORT"] = str(args.port)
    # Loopback must never go through an HTTP proxy (botocore honours these).
    no_proxy = ",".join(
        filter(None, [os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost", "::1"])
    )
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = no_proxy
    # boto3 at start-up (EC2 network) and inside moto's SFN engine: never
    # pick up real credentials or instance metadata.
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ.pop("AWS_PROFILE", None)

    from moto.core import DEFAULT_ACCOUNT_ID

    install_lambda_forwarding(LambdaForwarder(args.lambda_url, args.lambda_timeout_s))

    host_in_url = f"[{args.host}]" if ":" in args.host else args.host
    endpoint = f"http://{host_in_url}:{args.port}"
    try:
        server = MotoServer(args.host, args.port)
        server.start()
    except OSError as err:
        LOG.error("cannot listen on %s: %s", endpoint, err)
        return 1

    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        LOG.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    reconciler = None
    try:
        # Execution must be on before state machines are created, and the
        # no-docker Lambda backend before functions are created.
        post_json(
            f"{endpoint}/moto-api/config",
            {
                "stepfunctions": {"execute_state_machine": True},
                "lambda": {"use_docker": False},
            },
        )
        # ECS tasks advance one status on every DescribeTasks by default
        # (manual, times=1): RUNNING would become DEACTIVATING on the second
        # look. Make the advance never come; StopTask still sets STOPPED.
        post_json(
            f"{endpoint}/moto-api/state-manager/set-transition",
            {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 2**62}},
        )
        network = create_network(endpoint, args.region)
        reconciler = Reconciler(
            account_id=DEFAULT_ACCOUNT_ID,
            region=args.region,
            network=network,
            poll_s=args.poll_ms / 1000.0,
            scale_up_delay_s=args.scale_up_delay_ms / 1000.0,
        )
        reconciler.start()
        LOG.info(
            "moto on %s, lambda -> %s, reconciler every %d ms",
            endpoint,
            args.lambda_url,
            args.poll_ms,
        )
        print(f"ready {endpoint}", flush=True)
        while not stop.wait(0.5):
            pass
    except Exception as err:  # noqa: BLE001 - report start-up failures plainly
        LOG.error("start-up failed: %s", err)
        return 1
    finally:
        if reconciler is not None:
            reconciler.stop()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
