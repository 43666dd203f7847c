"""When each Lambda function was last invoked through the local stack, and
how often: `GET /_turbulence/invocations` answers
`{"functions": {name: {"count": n, "last_started_unix_ms": t}}}`.

Tests read it to see when repeated invocations really stopped (a stopped
run's `invoke_function_repeatedly` must start none later than one poll
interval after the stop); nothing else on the local stack depends on it.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

PATH = "/_turbulence/invocations"


class InvocationLog:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.functions: dict[str, dict[str, int]] = {}

    def started(self, function_name: str) -> None:
        now = int(time.time() * 1000)
        with self.lock:
            entry = self.functions.setdefault(
                function_name, {"count": 0, "last_started_unix_ms": 0}
            )
            entry["count"] += 1
            entry["last_started_unix_ms"] = max(entry["last_started_unix_ms"], now)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"functions": {k: dict(v) for k, v in self.functions.items()}}

    def handle(self, environ: dict[str, Any], start_response: Any) -> Any:
        """WSGI, for `PATH`."""
        if environ.get("REQUEST_METHOD", "GET") != "GET":
            body = json.dumps({"message": "GET only"}).encode()
            start_response("405 Method Not Allowed", [("Content-Type", "application/json")])
            return [body]
        body = json.dumps(self.snapshot()).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]
