"""Non-Rust functions on the local stack.

`cargo lambda watch` runs Rust binaries only; a function with a managed
runtime (python3.*, nodejs*, ...) is run by the Runtime API emulator
(`turbulence-lambda-emulator`, local/lambda-emulator) instead. For each
invocation this module unpacks what moto holds -- the function's code zip,
and its layers' zips merged in order, as Lambda does under /opt -- once per
content digest, and sends the emulator the function's configuration in
the `X-Turbulence-Function` header (base64 JSON): name, ARN, runtime,
handler, code and layer directories, timeout, memory, environment. The
emulator answers as Lambda's Invoke does (`X-Amz-Function-Error`).

Functions whose runtime is `provided.*` keep going to watch.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import shutil
import threading
import zipfile
from typing import Any

LOG = logging.getLogger("turbulence-local")

FUNCTION_HEADER = "X-Turbulence-Function"


def is_emulated(fn: Any) -> bool:
    """Managed runtimes go to the emulator; OS-only ones (Rust) to watch."""
    runtime = str(getattr(fn, "run_time", "") or "")
    return bool(runtime) and not runtime.startswith("provided")


def unpack(archive: bytes, into: str) -> None:
    """Unzip keeping the files' Unix modes (zipfile drops them): the
    layer's wrapper and proxy must stay executable."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        for info in zf.infolist():
            target = os.path.realpath(os.path.join(into, info.filename))
            if not target.startswith(os.path.realpath(into) + os.sep):
                raise ValueError(f"zip entry {info.filename!r} escapes its directory")
            zf.extract(info, into)
            mode = (info.external_attr >> 16) & 0o7777
            if mode and not info.is_dir():
                os.chmod(target, mode)


class Runtimes:
    """Forwards invocations of emulated functions to the emulator."""

    def __init__(self, forwarder: Any, work_dir: str):
        # A LambdaForwarder aimed at the emulator: its error mapping and
        # timeouts are the same as for watch.
        self.forwarder = forwarder
        self.work_dir = work_dir
        self.lock = threading.Lock()

    def _unpacked(self, kind: str, parts: list[tuple[str, bytes]]) -> str:
        """The zips (digest, content) unpacked in order into one directory,
        named by their digests (moto's CodeSha256: nothing is hashed per
        invocation)."""
        digest = hashlib.sha256("/".join(d for d, _ in parts).encode()).hexdigest()
        path = os.path.join(self.work_dir, kind, digest[:32])
        with self.lock:
            if not os.path.isdir(path):
                staging = f"{path}.partial"
                shutil.rmtree(staging, ignore_errors=True)
                os.makedirs(staging)
                for _, part in parts:
                    unpack(part, staging)
                os.rename(staging, path)
        return path

    def config(self, fn: Any) -> dict[str, Any]:
        from moto.awslambda.utils import get_backend

        backend = get_backend(fn.account_id, fn.region)
        layers = []
        for layer in fn.layers or []:
            version = backend.layers_versions_by_arn(layer["Arn"])
            if version is not None and version.code_bytes:
                layers.append((str(version.code_sha_256), version.code_bytes))
        return {
            "name": fn.function_name,
            "arn": fn.function_arn,
            "runtime": fn.run_time,
            "handler": fn.handler or "",
            "code_dir": self._unpacked("code", [(str(fn.code_sha_256), fn.code_bytes or b"")]),
            "opt_dir": self._unpacked("opt", layers) if layers else None,
            "timeout_s": int(fn.timeout or 3),
            "memory_mb": int(fn.memory_size or 128),
            "environment": dict(fn.environment_vars or {}),
        }

    def forward(self, fn: Any, payload: bytes, headers: Any) -> tuple[bytes, str | None]:
        try:
            config = self.config(fn)
        except (zipfile.BadZipFile, ValueError, OSError) as err:
            LOG.warning("lambda %s: cannot unpack its code or layers: %s", fn.function_name, err)
            body = {"errorType": "Runtime.InvalidEntrypoint", "errorMessage": f"local stack: {err}"}
            return json.dumps(body).encode(), "Unhandled"
        extra = {FUNCTION_HEADER: base64.b64encode(json.dumps(config).encode()).decode()}
        context = headers.get("X-Amz-Client-Context") if headers is not None else None
        if context:
            extra["X-Amz-Client-Context"] = context
        return self.forwarder.forward(fn.function_name, payload, headers=extra)
