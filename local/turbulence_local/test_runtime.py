"""Self-test of runtime.py: a deployed function runs as Lambda runs it —
its own environment and credentials, a deadline, reserved and unreserved
concurrency — with a tiny Python function speaking the Runtime API in the
place of a Rust binary. About 5 s.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from turbulence_local import functions, runtime  # noqa: E402

logging.getLogger("werkzeug").setLevel(logging.WARNING)

# A Lambda function over the Runtime API: answers its environment and
# payload; {"sleep": s} sleeps first; {"fail": true} reports an error.
FUNCTION = r'''
import json, os, time, urllib.request
api = os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
while True:
    with opener.open(api + "next", timeout=600) as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        deadline = int(r.headers["Lambda-Runtime-Deadline-Ms"])
        event = json.loads(r.read())
    time.sleep(event.get("sleep", 0))
    kind = "error" if event.get("fail") else "response"
    body = {"errorType": "Boom", "errorMessage": "asked to fail"} if event.get("fail") else {
        "key": os.environ["AWS_ACCESS_KEY_ID"], "name": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        "setting": os.environ.get("SETTING"), "deadline_ms": deadline, "event": event}
    req = urllib.request.Request(api + rid + "/" + kind, data=json.dumps(body).encode(), method="POST")
    opener.open(req, timeout=10).read()
'''


class Host(unittest.TestCase):
    def setUp(self) -> None:
        from werkzeug.serving import make_server

        self.tmp = tempfile.TemporaryDirectory()
        script = Path(self.tmp.name) / "function.py"
        script.write_text(FUNCTION)
        self.registry = functions.Registry()
        self.server = make_server("127.0.0.1", 0, lambda e, s: self.host.handle(e, s), threaded=True)
        endpoint = f"http://127.0.0.1:{self.server.server_port}"
        self.host = runtime.RuntimeHost(
            self.registry, Path(self.tmp.name), endpoint, Path(self.tmp.name) / "logs", "us-east-1"
        )
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.command = [sys.executable, str(script)]

    def tearDown(self) -> None:
        self.host.stop()
        self.server.shutdown()
        self.tmp.cleanup()

    def deploy(self, name: str, reserved: int | None = None, timeout_s: int = 30) -> functions.Function:
        return self.registry.register(
            {
                "name": name,
                "arn": f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
                "logical_id": "F",
                "role_arn": "arn:aws:iam::123456789012:role/r",
                "stack": "s",
                "command": self.command,
                "environment": {"SETTING": f"of {name}"},
                "timeout_s": timeout_s,
                "reserved": reserved,
            }
        )

    def test_a_function_runs_with_its_own_environment_credentials_and_deadline(self) -> None:
        fn = self.deploy("s-a")
        other = self.deploy("s-b")
        started = time.time()
        body, error = self.host.invoke("s-a", b'{"x": 1}')
        self.assertIsNone(error)
        answer = json.loads(body)
        self.assertEqual(answer["event"], {"x": 1})
        self.assertEqual(answer["name"], "s-a")
        self.assertEqual(answer["setting"], "of s-a")
        self.assertEqual(answer["key"], fn.access_key)
        self.assertNotEqual(fn.access_key, other.access_key)
        self.assertAlmostEqual(answer["deadline_ms"] / 1000, started + 30, delta=5)
        self.assertIs(self.registry.by_access_key(fn.access_key), fn)

    def test_a_handler_error_is_a_function_error(self) -> None:
        self.deploy("s-a")
        body, error = self.host.invoke("s-a", b'{"fail": true}')
        self.assertEqual(error, "Unhandled")
        self.assertEqual(json.loads(body)["errorType"], "Boom")

    def test_past_its_timeout_the_instance_is_killed(self) -> None:
        self.deploy("s-a", timeout_s=1)
        body, error = self.host.invoke("s-a", b'{"sleep": 30}')
        self.assertEqual(error, "Unhandled")
        self.assertEqual(json.loads(body)["errorType"], "Sandbox.Timedout")
        # A fresh instance answers the next call.
        body, error = self.host.invoke("s-a", b"{}")
        self.assertIsNone(error, body)

    def concurrent(self, name: str, n: int, sleep: float) -> list[object]:
        results: list[object] = []

        def call() -> None:
            try:
                results.append(self.host.invoke(name, json.dumps({"sleep": sleep}).encode()))
            except runtime.Throttled as err:
                results.append(err)

        threads = [threading.Thread(target=call) for _ in range(n)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        for t in threads:
            t.join(30)
        return results

    def test_reserved_concurrency_throttles_the_next_invocation(self) -> None:
        self.deploy("s-a", reserved=2)
        results = self.concurrent("s-a", 3, 1.5)
        throttled = [r for r in results if isinstance(r, runtime.Throttled)]
        self.assertEqual(len(throttled), 1, results)
        self.assertEqual(throttled[0].reason, "ReservedFunctionConcurrentInvocationLimitExceeded")

    def test_an_exhausted_unreserved_pool_throttles_only_unreserved_functions(self) -> None:
        self.deploy("s-target")
        self.deploy("s-control", reserved=1)
        self.host.limits["s"] = 0
        with self.assertRaises(runtime.Throttled) as caught:
            self.host.invoke("s-target", b"{}")
        self.assertEqual(caught.exception.reason, "ConcurrentInvocationLimitExceeded")
        body, error = self.host.invoke("s-control", b"{}")
        self.assertIsNone(error, body)


if __name__ == "__main__":
    unittest.main()
