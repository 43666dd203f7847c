#!/usr/bin/env python3
"""The local AWS for Turbulence: moto's server plus what moto lacks.

1. Lambda forwarding. moto's no-docker Lambda backend only echoes the payload;
   here every Invoke is forwarded to `cargo lambda watch`, which runs the real
   Rust binaries. A handler error (HTTP 500 from watch, no
   X-Amz-Function-Error header) becomes `FunctionError: Unhandled` with the
   `{"errorType", "errorMessage"}` body as payload, so a Step Functions Catch
   sees `Error = errorType`, as on AWS. Functions with a managed runtime
   (Python, Node.js) that no stack deployed go to the Runtime API emulator
   instead (turbulence_local/runtimes.py).
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
4. Step Functions status events to Lambda rule targets. moto's Step Functions
   emits no "Step Functions Execution Status Change" events and moto's
   EventBridge delivers nothing to Lambda targets. A background thread watches
   every execution (in-process, like the scheduler) and, for each status
   change it sees (RUNNING, then SUCCEEDED / FAILED / TIMED_OUT / ABORTED),
   builds the event AWS puts on the default bus and invokes, asynchronously
   (like an `Event` invoke, through the forwarding of 1.), every Lambda target
   of every ENABLED rule on the default bus whose pattern matches it, with
   the target's `Input` if set, else the event. At most once per (execution,
   status); executions already finished when the stack started never fire.
   InputPath / InputTransformer are ignored (logged once); other target kinds
   get nothing from these events.
5. Injected throttling. `POST /_turbulence/throttle` arms a rule: the next
   `count` requests of that service (and operation, if given) are answered
   with the throttling error the service's protocol uses, which the AWS SDKs
   retry with backoff and report as throttling once out of attempts.
   The service is the SigV4 credential scope's (`ecs`, `ssm`, `monitoring`;
   `cloudwatch`, `stepfunctions` are accepted for `monitoring`, `states`);
   the operation comes from `X-Amz-Target`, the rpc-v2-cbor path, `Action=`
   (query protocol) or, for Lambda, `Invoke` from the path. Answers: JSON
   protocols HTTP 400 `{"__type": "ThrottlingException"}`, CloudWatch (CBOR
   or JSON) `Throttling`, query protocol the XML `<ErrorResponse>` with
   `Throttling`, EC2 HTTP 503 `RequestLimitExceeded`, other REST services
   (Lambda) HTTP 429 `TooManyRequestsException`. `/moto-api/` and
   `/_turbulence/` are never throttled; moto's own Step Functions engine
   calls the other services over HTTP, so its calls can be throttled too.

Usage of 4: put a rule on the default bus with a pattern on
`"source": ["aws.states"]`, `"detail-type": ["Step Functions Execution
Status Change"]` (and `detail.status`, `detail.stateMachineArn`, ...) and a
Lambda function ARN as target; the function is invoked through watch within
about two polling periods of the change (`--poll-ms`).

Usage of 5 (JSON in and out; `operation` optional, `count` >= 0; a new POST
for the same service and operation replaces that rule):

    t=$TURBULENCE_ENDPOINT/_turbulence/throttle   # from .local-stack/env
    curl -X POST $t -d '{"service": "ecs", "operation": "DescribeServices", "count": 4}'
    curl $t         # {"rules": [{"service": "ecs", "operation":
                    #   "DescribeServices", "remaining": 1, "throttled": 3}]}
    curl -X DELETE $t                             # {"cleared": 1}

Run with the venv's python (`.tools/venv/bin/python local/stack.py`). Prints
`ready <endpoint>` on stdout once usable; stops on SIGTERM/SIGINT. Listens on
loopback only and only ever talks to loopback.
"""

from __future__ import annotations

import argparse
import datetime
import io
import ipaddress
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
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

    def __init__(self, watch_url: str, timeout_s: float, what: str = "cargo lambda watch"):
        self.watch_url = watch_url.rstrip("/")
        self.timeout_s = timeout_s
        # What serves watch_url, for errors (watch, or the Runtime API emulator).
        self.what = what
        # No proxies: the registry proxy of this machine must never see
        # invocations, and watch is on loopback anyway.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def forward(
        self, function_name: str, payload: bytes, headers: dict[str, str] | None = None
    ) -> tuple[bytes, str | None]:
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
            headers={"Content-Type": "application/json", **(headers or {})},
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
                f"local stack: cannot reach {self.what} at {self.watch_url} for "
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


class Invoker:
    """One way to run an invocation: functions a deployed stack registered
    run in the runtime host (turbulence_local.runtime) under their deployed
    names; any other function (created by hand, named by its binary) goes
    to cargo lambda watch. Raises Throttled (the host's concurrency rules)
    or WatchUnreachable / NotRunnable (the function never ran)."""

    def __init__(self, host: Any, forwarder: LambdaForwarder, log: Any, runtimes: Any = None):
        self.host = host
        self.forwarder = forwarder
        # turbulence_local.invocations.InvocationLog: when each was invoked.
        self.log = log
        # turbulence_local.runtimes.Runtimes: the Runtime API emulator.
        self.runtimes = runtimes

    def forward(self, function_name: str, payload: bytes) -> tuple[bytes, str | None]:
        self.log.started(function_name)
        if self.host.hosts(function_name):
            return self.host.invoke(function_name, payload)
        return self.forwarder.forward(function_name, payload)

    def forward_function(
        self, fn: Any, payload: bytes, headers: Any = None
    ) -> tuple[bytes, str | None]:
        """`forward`, but a managed-runtime function no stack deployed runs
        in the Runtime API emulator."""
        from turbulence_local import runtimes

        if (
            self.runtimes is not None
            and runtimes.is_emulated(fn)
            and not self.host.hosts(fn.function_name)
        ):
            self.log.started(fn.function_name)
            return self.runtimes.forward(fn, payload, headers)
        return self.forward(fn.function_name, payload)


def install_lambda_forwarding(forwarder: Invoker) -> None:
    """Replace the simple backend's echo with a forward to the runtime host
    or watch."""
    from moto.awslambda.exceptions import LambdaClientError
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from turbulence_local.runtime import NotRunnable, Throttled

    class ServiceException(LambdaClientError):
        code = 500

        def __init__(self, message: str):
            super().__init__("ServiceException", message)

    class TooManyRequestsException(LambdaClientError):
        code = 429

        def __init__(self, message: str):
            super().__init__("TooManyRequestsException", message)

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
                args=(forwarder, fn, payload),
                daemon=True,
            ).start()
            return b""
        try:
            result, function_error = forwarder.forward_function(fn, payload, headers)
        except Throttled as err:
            raise TooManyRequestsException(str(err)) from err
        except (WatchUnreachable, NotRunnable) as err:
            raise ServiceException(str(err)) from err
        if function_error:
            response_headers["x-amz-function-error"] = function_error
        response_headers["Content-Length"] = str(len(result))
        return result

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]


def _forward_quietly(forwarder: Invoker, fn: Any, payload: bytes) -> None:
    try:
        forwarder.forward_function(fn, payload)
    except Exception as err:  # noqa: BLE001 - async invoke: nobody to tell
        LOG.warning("async lambda %s failed: %s", fn.function_name, err)


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


# --------------------------------------------------------------------------
# Injected throttling
# --------------------------------------------------------------------------

THROTTLE_PATH = "/_turbulence/throttle"
THROTTLE_MESSAGE = "Rate exceeded (injected by turbulence-local)"
# Names a rule may use for a service besides its SigV4 signing name.
SERVICE_ALIASES = {
    "cloudwatch": "monitoring",
    "stepfunctions": "states",
    "sfn": "states",
    "eventbridge": "events",
}
# X-Amz-Target prefix -> signing name, for requests with no credential scope.
TARGET_SERVICES = {
    "AmazonEC2ContainerServiceV20141113": "ecs",
    "AmazonSSM": "ssm",
    "AWSStepFunctions": "states",
    "AmazonSQS": "sqs",
    "AWSEvents": "events",
    "AnyScaleFrontendService": "application-autoscaling",
    "GraniteServiceVersion20100801": "monitoring",
    "Logs_20140328": "logs",
}
# The throttling error code of a service, where it is not ThrottlingException
# (JSON protocols) or Throttling (query protocol).
THROTTLE_CODES = {"monitoring": "Throttling", "ec2": "RequestLimitExceeded"}
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/\s,]+/\d{8}/[^/\s,]+/([^/\s,]+)/aws4_request")
LAMBDA_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/[^/]+/invocations/?$")


@dataclass
class ThrottleRule:
    service: str
    operation: str | None
    remaining: int
    throttled: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "operation": self.operation,
            "remaining": self.remaining,
            "throttled": self.throttled,
        }


@dataclass
class AwsRequest:
    """What the throttler needs to know of one request."""

    service: str
    operation: str | None
    # "cbor", "json", "query", "ec2" or "rest"
    protocol: str
    content_type: str


def canonical_service(name: str) -> str:
    name = name.strip().lower()
    return SERVICE_ALIASES.get(name, name)


def request_service(environ: dict[str, Any]) -> str | None:
    """The SigV4 signing name of a request (its credential scope), else a
    guess from X-Amz-Target or the rpc-v2-cbor path."""
    found = CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if found:
        return found.group(1).lower()
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    credential = (query.get("X-Amz-Credential") or [""])[0].split("/")
    if len(credential) == 5:
        return credential[3].lower()
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return TARGET_SERVICES.get(target.split(".", 1)[0])
    parts = environ.get("PATH_INFO", "").strip("/").split("/")
    if len(parts) == 4 and parts[0] == "service" and parts[1] in CBOR_SERVICES:
        return TARGET_SERVICES.get(parts[1])
    return None


def identify_request(environ: dict[str, Any], service: str) -> AwsRequest:
    """Operation and protocol. Reads (and puts back) a form body to find the
    query protocol's Action."""
    content_type = environ.get("CONTENT_TYPE", "")
    parts = environ.get("PATH_INFO", "").strip("/").split("/")
    if (
        environ.get("HTTP_SMITHY_PROTOCOL", "") == "rpc-v2-cbor"
        and len(parts) == 4
        and parts[0] == "service"
        and parts[2] == "operation"
    ):
        return AwsRequest(service, parts[3], "cbor", content_type)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return AwsRequest(service, target.rsplit(".", 1)[-1], "json", content_type)
    protocol = "ec2" if service == "ec2" else "query"
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return AwsRequest(service, query["Action"][0], protocol, content_type)
    if content_type.startswith("application/x-www-form-urlencoded"):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"))
        return AwsRequest(service, (form.get("Action") or [None])[0], protocol, content_type)
    operation = None
    if service == "lambda" and LAMBDA_INVOKE_PATH.match(environ.get("PATH_INFO", "")):
        operation = "Invoke"
    return AwsRequest(service, operation, "rest", content_type)


def throttling_answer(request: AwsRequest) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status, headers, body) of the throttling error the AWS SDKs expect
    from this service's protocol."""
    request_id = str(uuid.uuid4())
    default = "Throttling" if request.protocol in ("query", "ec2") else "ThrottlingException"
    code = THROTTLE_CODES.get(request.service, default)
    headers = [("x-amzn-RequestId", request_id)]
    if request.protocol == "cbor":
        body = cbor_encode({"__type": code, "message": THROTTLE_MESSAGE})
        headers += [
            ("Content-Type", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
            # awsQueryCompatible services (CloudWatch) take the code from here.
            ("x-amzn-query-error", f"{code};Sender"),
        ]
        status = "400 Bad Request"
    elif request.protocol == "json":
        body = json.dumps({"__type": code, "message": THROTTLE_MESSAGE}).encode()
        content_type = request.content_type
        if not content_type.startswith("application/x-amz-json-"):
            content_type = "application/x-amz-json-1.1"
        headers += [
            ("Content-Type", content_type),
            ("x-amzn-ErrorType", code),
            ("x-amzn-query-error", f"{code};Sender"),
        ]
        status = "400 Bad Request"
    elif request.protocol == "ec2":
        body = (
            f"<Response><Errors><Error><Code>{code}</Code>"
            f"<Message>{THROTTLE_MESSAGE}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        ).encode()
        headers.append(("Content-Type", "text/xml"))
        status = "503 Service Unavailable"
    elif request.protocol == "query":
        body = (
            '<ErrorResponse xmlns="http://turbulence.local/doc/">'
            f"<Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{THROTTLE_MESSAGE}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers.append(("Content-Type", "text/xml"))
        status = "400 Bad Request"
    else:
        # REST JSON (Lambda): the code travels in X-Amzn-ErrorType.
        code = "TooManyRequestsException"
        body = json.dumps(
            {
                "__type": code,
                "Type": "User",
                "message": THROTTLE_MESSAGE,
                "Reason": "CallerRateLimitExceeded",
            }
        ).encode()
        headers += [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
        status = "429 Too Many Requests"
    headers.append(("Content-Length", str(len(body))))
    return status, headers, body


class Throttler:
    """WSGI middleware: answers the next `count` requests of a service (and
    operation) with a throttling error; `/_turbulence/throttle` arms it."""

    def __init__(self, app: Any):
        self.app = app
        self.lock = threading.Lock()
        # (service, operation in lower case or None) -> rule
        self.rules: dict[tuple[str, str | None], ThrottleRule] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.rstrip("/") == THROTTLE_PATH:
            return self.control(environ, start_response)
        if path.startswith(("/moto-api/", "/_turbulence/")) or not self.armed():
            return self.app(environ, start_response)
        service = request_service(environ)
        if service is None or not self.armed(service):
            return self.app(environ, start_response)
        request = identify_request(environ, service)
        rule = self.take(request)
        if rule is None:
            return self.app(environ, start_response)
        LOG.info(
            "throttled %s %s (rule %s/%s: %d left)",
            request.service,
            request.operation or "?",
            rule.service,
            rule.operation or "*",
            rule.remaining,
        )
        status, headers, body = throttling_answer(request)
        start_response(status, headers)
        return [body]

    def armed(self, service: str | None = None) -> bool:
        return any(
            rule.remaining > 0 and (service is None or rule.service == service)
            for rule in list(self.rules.values())
        )

    def take(self, request: AwsRequest) -> ThrottleRule | None:
        """Counts the request against the most specific armed rule; returns a
        copy of that rule, or None when no rule applies."""
        keys = [(request.service, None)]
        if request.operation:
            keys.insert(0, (request.service, request.operation.lower()))
        with self.lock:
            for key in keys:
                rule = self.rules.get(key)
                if rule is not None and rule.remaining > 0:
                    rule.remaining -= 1
                    rule.throttled += 1
                    return ThrottleRule(**rule.to_json())
        return None

    def control(self, environ: dict[str, Any], start_response: Any) -> Any:
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "GET":
            with self.lock:
                rules = [rule.to_json() for rule in self.rules.values()]
            return json_reply(start_response, "200 OK", {"rules": rules})
        if method == "DELETE":
            with self.lock:
                cleared = len(self.rules)
                self.rules.clear()
            LOG.info("throttle: cleared %d rule(s)", cleared)
            return json_reply(start_response, "200 OK", {"cleared": cleared})
        if method != "POST":
            return json_reply(
                start_response, "405 Method Not Allowed", {"message": "GET, POST or DELETE"}
            )
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) if length > 0 else b"")
            rule = parse_throttle_rule(body)
        except ValueError as err:
            return json_reply(start_response, "400 Bad Request", {"message": str(err)})
        key = (rule.service, rule.operation.lower() if rule.operation else None)
        with self.lock:
            self.rules[key] = rule
        LOG.info(
            "throttle: next %d %s/%s request(s)",
            rule.remaining,
            rule.service,
            rule.operation or "*",
        )
        return json_reply(start_response, "200 OK", rule.to_json())


def parse_throttle_rule(body: Any) -> ThrottleRule:
    """`{"service": "ecs", "operation": "DescribeServices", "count": 4}`;
    raises ValueError on anything else."""
    if not isinstance(body, dict):
        raise ValueError('expected {"service": ..., "operation": ..., "count": ...}')
    unknown = set(body) - {"service", "operation", "count"}
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    service = body.get("service")
    operation = body.get("operation")
    count = body.get("count")
    if not isinstance(service, str) or not service.strip():
        raise ValueError("service: a non-empty string (the SigV4 signing name, e.g. ecs)")
    if operation is not None and (not isinstance(operation, str) or not operation.strip()):
        raise ValueError("operation: a non-empty string or absent (any operation)")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError("count: an integer >= 0")
    return ThrottleRule(
        canonical_service(service), operation.strip() if operation else None, count
    )


def json_reply(start_response: Any, status: str, body: Any) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


class Routes:
    """WSGI: the local stack's own endpoints (a path prefix each) before moto."""

    def __init__(self, app: Any, routes: dict[str, Any]):
        self.app = app
        self.routes = routes

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        for prefix, handler in self.routes.items():
            if path.startswith(prefix):
                return handler(environ, start_response)
        return self.app(environ, start_response)


class MotoServer:
    """moto's ThreadedMotoServer, plus the CBOR translator, the throttler,
    the call recorder and the local stack's endpoints in front."""

    def __init__(self, host: str, port: int, wrap: Any = None):
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        inner: Any = DomainDispatcherApplication(create_backend_app)
        if wrap is not None:
            inner = wrap(inner)
        app = Throttler(CborTranslator(inner))
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


class PollingThread:
    """A daemon thread calling `tick()` every `poll_s` until stopped. A tick
    that fails is logged once per distinct error and the next one runs:
    moto's dicts change under us (requests run in other threads), and the
    next tick sees a consistent view again."""

    def __init__(self, name: str, poll_s: float):
        self.name = name
        self.poll_s = poll_s
        self.stop_event = threading.Event()
        self.last_error = ""
        self.thread = threading.Thread(target=self.run, name=name, daemon=True)

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
            except Exception as err:  # noqa: BLE001 - keep the thread alive
                message = f"{type(err).__name__}: {err}"
                if message != self.last_error:
                    LOG.warning("%s tick failed: %s", self.name, message)
                self.last_error = message

    def tick(self) -> None:
        raise NotImplementedError


class Reconciler(PollingThread):
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
        super().__init__("reconciler", poll_s)
        self.account_id = account_id
        self.region = region
        self.network = network
        self.scale_up_delay_s = scale_up_delay_s
        # service key -> monotonic time desiredCount was first seen below min
        self.below_min_since: dict[str, float] = {}

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
                # As ECS does with propagateTags SERVICE (IAM conditions on
                # aws:ResourceTag read a task's own tags).
                tags=list(service.tags or []) if service.propagate_tags == "SERVICE" else None,
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
# Step Functions status change events -> EventBridge rules -> Lambda
# --------------------------------------------------------------------------

SFN_DETAIL_TYPE = "Step Functions Execution Status Change"
SFN_TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
LAMBDA_FUNCTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:lambda:(?P<region>[^:]+):(?P<account>\d+):function:(?P<name>[^:]+)"
    r"(?::(?P<qualifier>[^:]+))?$"
)


class ExecutionEvents(PollingThread):
    """Emits the "Step Functions Execution Status Change" events moto's Step
    Functions does not, and delivers them to the Lambda targets of matching
    rules on the default bus, which moto's EventBridge does not.

    Polls moto's backends in-process, like the Reconciler. A terminal status
    is delivered one period after it is first seen: moto writes the status
    before the output, error and cause."""

    def __init__(self, forwarder: Invoker, poll_s: float):
        super().__init__("sfn-events", poll_s)
        self.forwarder = forwarder
        self.started_at = datetime.datetime.now(datetime.timezone.utc)
        # execution ARN -> last status handled
        self.seen: dict[str, str] = {}
        # execution ARN -> terminal status seen on the previous tick
        self.settling: dict[str, str] = {}
        self.delivered: set[tuple[str, str]] = set()
        self.warned: set[str] = set()

    def tick(self) -> None:
        for execution in sfn_executions():
            self.observe(execution)

    def observe(self, execution: Any) -> None:
        arn = getattr(execution, "execution_arn", None)
        status = execution_status(execution)
        if not arn or not status:
            return
        if arn not in self.seen:
            if not self.is_new(execution):
                # Started before we looked: its past changes are not ours to
                # announce; its future ones are.
                self.seen[arn] = status
                return
            # Every execution starts RUNNING, even one seen finished already.
            self.seen[arn] = "RUNNING"
            self.emit(execution, "RUNNING")
        if status == self.seen[arn]:
            self.settling.pop(arn, None)
            return
        if status in SFN_TERMINAL and self.settling.get(arn) != status:
            self.settling[arn] = status
            return
        self.settling.pop(arn, None)
        self.seen[arn] = status
        self.emit(execution, status)

    def is_new(self, execution: Any) -> bool:
        started = as_utc(getattr(execution, "start_date", None))
        return started is not None and started >= self.started_at

    def emit(self, execution: Any, status: str) -> None:
        arn = execution.execution_arn
        if (arn, status) in self.delivered:
            return
        self.delivered.add((arn, status))
        event = sfn_status_event(execution, status)
        for rule, target, function in self.lambda_targets(event):
            LOG.info(
                "sfn event %s %s -> rule %s -> lambda %s",
                status,
                arn,
                rule.name,
                function.group("name"),
            )
            threading.Thread(
                target=self.invoke,
                args=(function, self.payload(rule, target, event)),
                name="sfn-event-invoke",
                daemon=True,
            ).start()

    def lambda_targets(self, event: dict[str, Any]) -> list[tuple[Any, dict[str, Any], Any]]:
        """(rule, target, function ARN match) of every Lambda target of every
        enabled rule on the default bus that matches the event."""
        from moto.events.models import events_backends

        # Never create backends: no events backend there means no rules.
        per_account = dict.get(events_backends, event["account"]) or {}
        backend = dict.get(per_account, event["region"])
        bus = backend.event_buses.get("default") if backend is not None else None
        if bus is None:
            return []
        matched = []
        for rule in list(bus.rules.values()):
            try:
                if not rule_matches(rule, event):
                    continue
            except Exception as err:  # noqa: BLE001 - one bad rule must not hide the others
                self.warn_once(f"pattern:{rule.arn}", "rule %s: cannot match: %s", rule.name, err)
                continue
            for target in list(rule.targets):
                function = LAMBDA_FUNCTION_ARN.match(str(target.get("Arn", "")))
                if function is not None:
                    matched.append((rule, target, function))
                else:
                    self.warn_once(
                        f"target:{rule.arn}:{target.get('Id')}",
                        "rule %s: target %s is not a Lambda function; "
                        "Step Functions events are not delivered to it",
                        rule.name,
                        target.get("Arn"),
                    )
        return matched

    def payload(self, rule: Any, target: dict[str, Any], event: dict[str, Any]) -> bytes:
        if target.get("Input") is not None:
            return str(target["Input"]).encode()
        for key in ("InputPath", "InputTransformer"):
            if target.get(key):
                self.warn_once(
                    key,
                    "rule %s target %s: %s is not supported locally; sending the whole event",
                    rule.name,
                    target.get("Id"),
                    key,
                )
        return json.dumps(event).encode()

    def invoke(self, function: re.Match[str], payload: bytes) -> None:
        """An asynchronous (`Event`) invocation of a rule's Lambda target."""
        try:
            from moto.awslambda.utils import get_backend

            fn = get_backend(function.group("account"), function.group("region")).get_function(
                function.group("name"), function.group("qualifier")
            )
        except Exception as err:  # noqa: BLE001 - EventBridge only logs it
            LOG.warning("sfn event: lambda target %s: %s", function.group(0), err)
            return
        _forward_quietly(self.forwarder, fn, payload)

    def warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self.warned:
            self.warned.add(key)
            LOG.warning(message, *args)


def rule_matches(rule: Any, event: dict[str, Any]) -> bool:
    """An ENABLED rule with an event pattern that matches the event (moto
    keeps a parsed EventPattern; a JSON string is parsed here)."""
    from moto.events.models import EventPattern

    if not str(rule.state or "").startswith("ENABLED"):
        return False
    pattern = rule.event_pattern
    if isinstance(pattern, (str, bytes)):
        pattern = EventPattern.load(pattern if isinstance(pattern, str) else pattern.decode())
    if pattern is None or not pattern.get_pattern():
        return False  # a schedule rule: no pattern, matches no event
    return bool(pattern.matches_event(event))


def sfn_executions() -> list[Any]:
    """Every execution in moto's Step Functions backends (the engine's, used
    with execute_state_machine, and the mock's), never creating a backend."""
    from moto.stepfunctions.models import stepfunctions_backends
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    executions: list[Any] = []
    for backends in (stepfunctions_parser_backends, stepfunctions_backends):
        for per_account in list(dict.values(backends)):
            for backend in list(dict.values(per_account)):
                for machine in list(backend.state_machines):
                    executions.extend(list(machine.executions))
                    for version in list(getattr(machine, "versions", {}).values()):
                        executions.extend(list(version.executions))
    return executions


def execution_status(execution: Any) -> str | None:
    if hasattr(execution, "exec_status"):  # the engine's: an enum, None until started
        status = execution.exec_status
        return None if status is None else str(getattr(status, "value", status))
    status = getattr(execution, "status", None)
    return str(status) if status else None


def as_utc(value: Any) -> datetime.datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime.datetime):
        return None
    if value.tzinfo is None:  # moto's utcnow() is naive UTC
        return value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


def epoch_ms(value: Any) -> int | None:
    moment = as_utc(value)
    return None if moment is None else int(moment.timestamp() * 1000)


def sfn_status_event(execution: Any, status: str) -> dict[str, Any]:
    """The event Step Functions puts on the default bus for `status`."""
    machine = getattr(execution, "state_machine", None)
    machine_arn = getattr(machine, "source_arn", None) or execution.state_machine_arn
    if hasattr(execution, "input_data"):  # the engine keeps it parsed
        execution_input = json.dumps(execution.input_data, separators=(",", ":"))
    else:
        execution_input = str(getattr(execution, "execution_input", None) or "{}")
    terminal = status in SFN_TERMINAL
    output = None
    if status == "SUCCEEDED":
        value = getattr(execution, "output", None)
        if hasattr(execution, "exec_status") or not isinstance(value, str):
            output = json.dumps(value, separators=(",", ":"))  # the engine's: parsed
        else:
            output = value
    stop_date = epoch_ms(getattr(execution, "stop_date", None)) if terminal else None
    start_date = epoch_ms(getattr(execution, "start_date", None))
    when = as_utc(getattr(execution, "stop_date", None) if terminal else None)
    when = when or as_utc(getattr(execution, "start_date", None))
    when = when or datetime.datetime.now(datetime.timezone.utc)
    error = getattr(execution, "error", None) if terminal else None
    cause = getattr(execution, "cause", None) if terminal else None
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": SFN_DETAIL_TYPE,
        "source": "aws.states",
        "account": str(execution.account_id),
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": str(execution.region_name),
        "resources": [execution.execution_arn],
        "detail": {
            "executionArn": execution.execution_arn,
            "stateMachineArn": machine_arn,
            "name": execution.name,
            "status": status,
            "startDate": start_date,
            "stopDate": stop_date,
            "input": execution_input,
            "output": output,
            "inputDetails": {"included": True},
            "outputDetails": {"included": True} if output is not None else None,
            "error": error or None,
            "cause": cause or None,
        },
    }


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
        "--emulator-url",
        default="http://127.0.0.1:9150",
        help="the Runtime API emulator, for managed-runtime functions",
    )
    p.add_argument(
        "--emulator-dir",
        default=".local-stack/lambda",
        help="where managed-runtime functions' code and layers are unpacked",
    )
    p.add_argument(
        "--lambda-timeout-s",
        type=float,
        default=960.0,
        help="how long one forwarded invocation may take (a wait chunk is up to 15 min)",
    )
    p.add_argument("--region", default="us-east-1")
    here = os.path.dirname(os.path.abspath(__file__))
    p.add_argument(
        "--template",
        type=Path,
        default=Path(here).parent / "template.yaml",
        help="the SAM template stacks are deployed from (POST /_turbulence/stacks)",
    )
    p.add_argument(
        "--binaries",
        type=Path,
        default=Path(here).parent / "target" / "debug",
        help="where the deployed functions' binaries are built",
    )
    p.add_argument(
        "--function-logs",
        type=Path,
        default=Path(here).parent / ".local-stack" / "functions",
        help="one log file per deployed function",
    )
    p.add_argument(
        "--poll-ms", type=int, default=200, help="reconciler and sfn event watcher period"
    )
    p.add_argument("--scale-up-delay-ms", type=int, default=1000)
    p.add_argument("--verbose", action="store_true", help="log every HTTP request")
    args = p.parse_args(argv)
    if not is_loopback_host(args.host):
        p.error(f"--host must be a loopback address, not {args.host}")
    lambda_host = urllib.parse.urlsplit(args.lambda_url).hostname or ""
    if not is_loopback_host(lambda_host):
        p.error(f"--lambda-url must point at loopback, not {args.lambda_url}")
    emulator_host = urllib.parse.urlsplit(args.emulator_url).hostname or ""
    if not is_loopback_host(emulator_host):
        p.error(f"--emulator-url must point at loopback, not {args.emulator_url}")
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

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from turbulence_local import calls, cfn_gaps, deploy, functions, invocations, runtime
    from turbulence_local import stop_execution

    host_in_url = f"[{args.host}]" if ":" in args.host else args.host
    endpoint = f"http://{host_in_url}:{args.port}"

    cfn_gaps.install_all()
    registry = functions.Registry()
    host = runtime.RuntimeHost(
        registry,
        binaries=args.binaries,
        endpoint=endpoint,
        log_dir=args.function_logs,
        region=args.region,
        extra_env={
            "RUST_LOG": os.environ.get("RUST_LOG", "info"),
            # The demo API the load tests attack is on loopback: the local
            # stack opts out of the loopback guard (never set in AWS).
            "TURBULENCE_LOCAL_ALLOW_LOOPBACK": "true",
        },
    )
    invoked = invocations.InvocationLog()
    from turbulence_local.runtimes import Runtimes

    emulator = Runtimes(
        LambdaForwarder(args.emulator_url, args.lambda_timeout_s, "the Runtime API emulator"),
        args.emulator_dir,
    )
    forwarder = Invoker(
        host, LambdaForwarder(args.lambda_url, args.lambda_timeout_s), invoked, emulator
    )
    install_lambda_forwarding(forwarder)
    stop_execution.install()
    deployer = deploy.Deployer(args.template, local_client(endpoint, args.region), registry.register, args.region)
    # The first translation takes seconds: do it before the first test asks.
    threading.Thread(target=deployer.translated, name="translate", daemon=True).start()

    def stand_ins(app: Any) -> Any:
        routes = Routes(
            app,
            {
                runtime.PREFIX: host.handle,
                runtime.CONCURRENCY_PATH: host.handle,
                deploy.STACKS_PATH: deploy.handler(deployer),
                invocations.PATH: invoked.handle,
            },
        )
        return calls.Recorder(routes, registry, DEFAULT_ACCOUNT_ID)

    try:
        server = MotoServer(args.host, args.port, wrap=stand_ins)
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
    events = None
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
        events = ExecutionEvents(forwarder, poll_s=args.poll_ms / 1000.0)
        events.start()
        LOG.info(
            "moto on %s, lambda -> %s, reconciler and sfn events every %d ms",
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
        if events is not None:
            events.stop()
        if reconciler is not None:
            reconciler.stop()
        host.stop()
        server.stop()
    return 0


def local_client(endpoint: str, region: str) -> Any:
    """boto3 clients of the local stack itself (the deployer's)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    )
    config = Config(retries={"max_attempts": 1}, read_timeout=120)
    lock = threading.Lock()

    def client(service: str) -> Any:
        with lock:  # boto3 sessions are not thread-safe to create clients from
            return session.client(service, endpoint_url=endpoint, config=config)

    return client


if __name__ == "__main__":
    sys.exit(main())
