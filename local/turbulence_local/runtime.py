"""Runs the deployed functions, as Lambda does, behind the Lambda Runtime API.

moto's no-docker Lambda only echoes payloads. Here every Invoke of a
function a stack registered (`functions.Registry`) runs its binary (or
command) as Lambda would: one process per concurrent invocation, started
on demand and kept warm, with the deployed function's own environment and
credentials (`AWS_ACCESS_KEY_ID` naming the function), its timeout (a
process past it is killed and the call answers `Sandbox.Timedout`) and
Lambda's concurrency rules:

- a function with reserved concurrency N runs at most N invocations at
  once; the next is throttled (`TooManyRequestsException`);
- the others share the unreserved pool of their stack (the local stand-in
  for an account: stacks run side by side in one moto). It is unlimited
  unless `POST /_turbulence/concurrency {"stack": S, "unreserved": N}`
  limits it, as a runaway function exhausting the account would.

The Runtime API is served on the local stack's own port under
`/_turbulence/runtime/<function>/<instance>/2018-06-01/runtime/...`
(`AWS_LAMBDA_RUNTIME_API` carries the base path, which the Rust runtime
client keeps): `invocation/next` (long poll, with Lambda's headers and a
wall-clock deadline), `invocation/<id>/response`, `invocation/<id>/error`
and `init/error`.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .functions import SECRET_KEY, Function, Registry

LOG = logging.getLogger("turbulence-local")

PREFIX = "/_turbulence/runtime/"
CONCURRENCY_PATH = "/_turbulence/concurrency"
RUNTIME_PATH = re.compile(
    r"^/_turbulence/runtime/(?P<function>[^/]+)/(?P<instance>\d+)/2018-06-01/runtime/"
    r"(?:(?P<next>invocation/next)|invocation/(?P<id>[^/]+)/(?P<kind>response|error)|(?P<init>init/error))$"
)
# How long a warm instance waits for work before it is stopped.
IDLE_S = 60.0
# Most instances of one function without reserved concurrency.
MAX_INSTANCES = 8


class Throttled(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class NotRunnable(Exception):
    """The function cannot run here (no binary built, nothing to run)."""


@dataclass
class Invocation:
    id: str
    payload: bytes
    deadline_ms: int
    done: threading.Event = field(default_factory=threading.Event)
    body: bytes = b""
    error: str | None = None
    instance: "Instance | None" = None


@dataclass
class Instance:
    number: int
    function: Function
    process: subprocess.Popen[bytes]
    busy: Invocation | None = None
    last_used: float = field(default_factory=time.monotonic)
    # The binary's mtime at start: a rebuilt binary retires idle instances.
    built: float = 0.0


class Pool:
    """Everything running for one function."""

    def __init__(self, function: Function):
        self.function = function
        self.queue: queue.Queue[Invocation] = queue.Queue()
        self.instances: dict[int, Instance] = {}
        self.idle = 0
        self.in_flight = 0


class RuntimeHost:
    def __init__(
        self,
        registry: Registry,
        binaries: Path,
        endpoint: str,
        log_dir: Path,
        region: str,
        extra_env: dict[str, str] | None = None,
    ):
        self.registry = registry
        self.binaries = binaries
        self.endpoint = endpoint.rstrip("/")
        self.log_dir = log_dir
        self.region = region
        self.extra_env = dict(extra_env or {})
        self.lock = threading.Lock()
        self.pools: dict[str, Pool] = {}
        self.invocations: dict[str, Invocation] = {}
        # stack -> unreserved concurrency limit
        self.limits: dict[str, int] = {}
        self.counter = 0
        self.stopping = threading.Event()
        self.reaper = threading.Thread(target=self.reap, name="runtime-reaper", daemon=True)
        self.reaper.start()

    # ------------------------------------------------------------ invoke

    def hosts(self, name: str) -> bool:
        return self.registry.get(name) is not None

    def invoke(self, name: str, payload: bytes) -> tuple[bytes, str | None]:
        """(payload, function error or None). Raises Throttled or NotRunnable."""
        fn = self.registry.get(name)
        if fn is None:
            raise NotRunnable(f"function {name} is not deployed from a stack")
        self.runnable(fn)
        deadline = time.time() + fn.timeout_s
        inv = Invocation(str(uuid.uuid4()), payload or b"{}", int(deadline * 1000))
        with self.lock:
            pool = self.pools.setdefault(fn.name, Pool(fn))
            pool.function = fn
            self.admit(pool)
            pool.in_flight += 1
            self.invocations[inv.id] = inv
            pool.queue.put(inv)
            if pool.queue.qsize() > pool.idle and len(pool.instances) < self.max_instances(fn):
                self.spawn(pool)
        started = time.monotonic()
        try:
            if not inv.done.wait(fn.timeout_s + 1.0):
                self.time_out(pool, inv)
            LOG.info(
                "lambda %s -> %s (%.1fs)",
                fn.name,
                inv.error or "ok",
                time.monotonic() - started,
            )
            return inv.body, inv.error
        finally:
            with self.lock:
                pool.in_flight -= 1
                self.invocations.pop(inv.id, None)

    def runnable(self, fn: Function) -> None:
        if fn.command:
            return
        if not fn.binary:
            raise NotRunnable(f"function {fn.name} names no binary (Metadata.BuildProperties.Binary)")
        if not (self.binaries / fn.binary).is_file():
            raise NotRunnable(
                f"function {fn.name}: {self.binaries / fn.binary} is not built "
                "(scripts/stack start builds the functions)"
            )

    @staticmethod
    def max_instances(fn: Function) -> int:
        return fn.reserved if fn.reserved is not None else MAX_INSTANCES

    def admit(self, pool: Pool) -> None:
        """Lambda's concurrency rules (called with the lock held)."""
        fn = pool.function
        if fn.reserved is not None:
            if pool.in_flight >= fn.reserved:
                raise Throttled(
                    "ReservedFunctionConcurrentInvocationLimitExceeded",
                    f"Rate Exceeded: {fn.name} is at its reserved concurrency ({fn.reserved})",
                )
            return
        limit = self.limits.get(fn.stack)
        if limit is None:
            return
        used = sum(
            p.in_flight
            for p in self.pools.values()
            if p.function.stack == fn.stack and p.function.reserved is None
        )
        if used >= limit:
            raise Throttled(
                "ConcurrentInvocationLimitExceeded",
                f"Rate Exceeded: the unreserved concurrency of {fn.stack} ({limit}) is in use",
            )

    def time_out(self, pool: Pool, inv: Invocation) -> None:
        with self.lock:
            instance = inv.instance
            if instance is not None:
                pool.instances.pop(instance.number, None)
        if instance is not None:
            stop(instance.process)
        message = f"Task timed out after {pool.function.timeout_s:.2f} seconds"
        LOG.warning("lambda %s: %s", pool.function.name, message)
        inv.body = json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": message}).encode()
        inv.error = "Unhandled"
        inv.done.set()

    def spawn(self, pool: Pool) -> None:
        """A new instance of the pool's function (lock held)."""
        fn = pool.function
        self.counter += 1
        number = self.counter
        base = f"{self.endpoint}{PREFIX}{fn.name}/{number}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            **self.extra_env,
            **{str(k): str(v) for k, v in fn.environment.items()},
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": str(fn.logging.get("LogGroup") or f"/aws/lambda/{fn.name}"),
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{number}",
            "AWS_LAMBDA_RUNTIME_API": base,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint,
            # Its own credentials: the key names the function (calls.py).
            "AWS_ACCESS_KEY_ID": fn.access_key,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_EC2_METADATA_DISABLED": "true",
            "_HANDLER": "bootstrap",
        }
        log_format = fn.logging.get("LogFormat")
        if log_format:
            env["AWS_LAMBDA_LOG_FORMAT"] = str(log_format)
        command = list(fn.command) if fn.command else [str(self.binaries / str(fn.binary))]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{fn.name}.log", "ab") as log:
            process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        pool.instances[number] = Instance(number, fn, process, built=self.built(fn))
        LOG.info("lambda %s: started instance %d (pid %d)", fn.name, number, process.pid)

    def built(self, fn: Function) -> float:
        try:
            return (self.binaries / str(fn.binary)).stat().st_mtime if fn.binary else 0.0
        except OSError:
            return 0.0

    # ------------------------------------------------------- Runtime API

    def handle(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.rstrip("/") == CONCURRENCY_PATH:
            return self.concurrency(environ, start_response)
        m = RUNTIME_PATH.match(path)
        if m is None:
            return reply(start_response, "404 Not Found", {"errorMessage": f"no such runtime path {path}"})
        with self.lock:
            pool = self.pools.get(m.group("function"))
            instance = pool.instances.get(int(m.group("instance"))) if pool else None
        if pool is None or instance is None:
            return reply(start_response, "410 Gone", {"errorMessage": "instance stopped"})
        if m.group("next"):
            return self.next(pool, instance, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        if m.group("init"):
            LOG.warning("lambda %s: init error: %s", pool.function.name, body[:500])
            return reply(start_response, "202 Accepted", {"status": "OK"})
        with self.lock:
            inv = self.invocations.get(m.group("id"))
            instance.busy = None
            instance.last_used = time.monotonic()
        if inv is None:
            return reply(start_response, "400 Bad Request", {"errorMessage": "unknown request id"})
        inv.body = body
        inv.error = "Unhandled" if m.group("kind") == "error" else None
        inv.done.set()
        return reply(start_response, "202 Accepted", {"status": "OK"})

    def next(self, pool: Pool, instance: Instance, start_response: Any) -> Any:
        with self.lock:
            pool.idle += 1
        try:
            while not self.stopping.is_set():
                if instance.number not in pool.instances:
                    return reply(start_response, "410 Gone", {"errorMessage": "instance stopped"})
                try:
                    inv = pool.queue.get(timeout=1.0)
                except queue.Empty:
                    continue
                if inv.done.is_set():  # timed out while queued
                    continue
                with self.lock:
                    instance.busy = inv
                    inv.instance = instance
                fn = pool.function
                headers = [
                    ("Content-Type", "application/json"),
                    ("Lambda-Runtime-Aws-Request-Id", inv.id),
                    ("Lambda-Runtime-Deadline-Ms", str(inv.deadline_ms)),
                    ("Lambda-Runtime-Invoked-Function-Arn", fn.arn),
                    ("Lambda-Runtime-Trace-Id", f"Root=1-{int(time.time()):08x}-{inv.id.replace('-', '')[:24]};Sampled=0"),
                    ("Content-Length", str(len(inv.payload))),
                ]
                start_response("200 OK", headers)
                return [inv.payload]
            return reply(start_response, "410 Gone", {"errorMessage": "stopping"})
        finally:
            with self.lock:
                pool.idle -= 1

    def concurrency(self, environ: dict[str, Any], start_response: Any) -> Any:
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "GET":
            with self.lock:
                return reply(start_response, "200 OK", {"limits": dict(self.limits)})
        if method == "DELETE":
            with self.lock:
                self.limits.clear()
            return reply(start_response, "200 OK", {"limits": {}})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) if length > 0 else b"")
            stack = body["stack"]
            limit = body["unreserved"]
            if not isinstance(stack, str) or not stack:
                raise ValueError("stack: the stack's name")
            if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
                raise ValueError("unreserved: an integer >= 0, or null for no limit")
        except (ValueError, KeyError, TypeError) as err:
            return reply(start_response, "400 Bad Request", {"message": f'{{"stack", "unreserved"}}: {err}'})
        with self.lock:
            if limit is None:
                self.limits.pop(stack, None)
            else:
                self.limits[stack] = limit
        LOG.info("concurrency: stack %s unreserved %s", stack, limit)
        return reply(start_response, "200 OK", {"stack": stack, "unreserved": limit})

    # ---------------------------------------------------------- lifecycle

    def reap(self) -> None:
        """Stops idle instances and fails the invocation of one that died."""
        while not self.stopping.wait(1.0):
            now = time.monotonic()
            dead: list[tuple[Instance, Invocation | None]] = []
            with self.lock:
                for pool in self.pools.values():
                    for number, instance in list(pool.instances.items()):
                        exited = instance.process.poll() is not None
                        idle_too_long = instance.busy is None and (
                            now - instance.last_used > IDLE_S or self.built(instance.function) != instance.built
                        )
                        if exited or idle_too_long:
                            del pool.instances[number]
                            dead.append((instance, instance.busy if exited else None))
            for instance, inv in dead:
                stop(instance.process)
                if inv is not None and not inv.done.is_set():
                    code = instance.process.returncode
                    LOG.warning("lambda %s: instance %d exited (%s)", instance.function.name, instance.number, code)
                    inv.body = json.dumps(
                        {"errorType": "Runtime.ExitError", "errorMessage": f"RequestId: {inv.id} Error: Runtime exited with error: exit status {code}"}
                    ).encode()
                    inv.error = "Unhandled"
                    inv.done.set()

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            instances = [i for p in self.pools.values() for i in p.instances.values()]
            for pool in self.pools.values():
                pool.instances.clear()
        for instance in instances:
            stop(instance.process)
        self.reaper.join(timeout=5)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=3)


def reply(start_response: Any, status: str, body: Any) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
