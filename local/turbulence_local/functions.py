"""The one place that says how each deployed Lambda function runs locally.

A stack deployed from template.yaml registers every function it created
(`register`): its deployed name, its role, its environment, timeout and
reserved concurrency, and what runs it — the Rust binary its
`Metadata.BuildProperties.Binary` names, or a `command` (any runtime that
speaks the Lambda Runtime API, e.g. a Python handler under awslambdaric).

Each function gets credentials of its own: an access key id that names
only it, so the call recorder (`calls.py`) knows which function, and so
which role, made every AWS call.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

# The prefix of every function's access key id on the local stack.
ACCESS_KEY_PREFIX = "LOCALFN"
SECRET_KEY = "turbulence-local-function-secret"


@dataclass
class Function:
    name: str
    arn: str
    logical_id: str
    role_arn: str
    stack: str
    # The Rust binary (target/debug/<binary>), or else `command`.
    binary: str | None = None
    command: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    timeout_s: int = 3
    memory_mb: int = 128
    # ReservedConcurrentExecutions; None: shares the unreserved pool.
    reserved: int | None = None
    logging: dict[str, Any] = field(default_factory=dict)

    @property
    def access_key(self) -> str:
        return access_key_for(self.arn)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arn": self.arn,
            "logical_id": self.logical_id,
            "role_arn": self.role_arn,
            "stack": self.stack,
            "binary": self.binary,
            "reserved": self.reserved,
            "access_key": self.access_key,
        }


def access_key_for(function_arn: str) -> str:
    digest = hashlib.sha256(function_arn.encode()).hexdigest()[:13].upper()
    return f"{ACCESS_KEY_PREFIX}{digest}"


class Registry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_name: dict[str, Function] = {}
        self.by_key: dict[str, Function] = {}

    def register(self, description: dict[str, Any]) -> Function:
        fields = {k: v for k, v in description.items() if k in Function.__dataclass_fields__}
        fn = Function(**fields)
        with self.lock:
            self.by_name[fn.name] = fn
            self.by_key[fn.access_key] = fn
        return fn

    def get(self, name: str) -> Function | None:
        with self.lock:
            return self.by_name.get(name)

    def by_access_key(self, key: str) -> Function | None:
        with self.lock:
            return self.by_key.get(key)

    def all(self) -> list[Function]:
        with self.lock:
            return list(self.by_name.values())
