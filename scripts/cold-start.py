#!/usr/bin/env python3
"""Cold start of Lambda bootstrap binaries against a stub of the Lambda Runtime API.

Used by scripts/bench-functions; prints its report table. For each function it
starts the host build of the binary with the environment Lambda gives a
provided.al2023 function, its AWS_LAMBDA_RUNTIME_API pointing at a socket on
127.0.0.1, and measures the time from spawning the process to receiving the
complete first `GET /2018-06-01/runtime/invocation/next` request: everything
the function does before it can take an event (tracing set-up, SDK config and
clients, runtime start). The stub never answers; the process is then killed.

Usage: cold-start.py [--runs N] FUNCTION=HOST_BINARY=ARTIFACT ...
  HOST_BINARY  runs here (measured, and its newest GLIBC_ symbol reported)
  ARTIFACT     the Lambda bootstrap as deployed (size and GLIBC_ reported)
"""

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

NEXT = b"GET /2018-06-01/runtime/invocation/next "
SIZE_GOAL = 6 * 1024 * 1024  # bytes
COLD_START_GOAL_MS = 20.0
TIMEOUT_S = 10.0


def lambda_env(function: str, port: int) -> dict:
    """What Lambda sets for a provided.al2023 function (credentials are fake)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]00000000000000000000000000000000",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "INFO",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": "AWS_Lambda_provided.al2023",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_EC2_METADATA_DISABLED": "true",
        "_HANDLER": "bootstrap",
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
    }


def read_request_head(conn: socket.socket, deadline: float) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        conn.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def one_cold_start(binary: str, function: str, log) -> float:
    """Milliseconds from spawn to the first complete /next request."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        env = lambda_env(function, port)
        started = time.perf_counter()
        process = subprocess.Popen([binary], env=env, cwd="/", stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + TIMEOUT_S
            server.settimeout(TIMEOUT_S)
            conn, _ = server.accept()
            with conn:
                head = read_request_head(conn, deadline)
                arrived = time.perf_counter()
                if not head.startswith(NEXT):
                    first = head.split(b"\r\n", 1)[0].decode(errors="replace")
                    raise RuntimeError(f"{function}: first request was {first!r}, not GET .../invocation/next")
        except socket.timeout:
            raise RuntimeError(f"{function}: no request to the Runtime API within {TIMEOUT_S:.0f} s "
                               f"(process {'exited ' + str(process.poll()) if process.poll() is not None else 'running'})")
        finally:
            process.kill()
            process.wait()
    return (arrived - started) * 1000.0


def newest_glibc(path: str) -> str:
    """Newest GLIBC_x.y version the binary requires (from its dynamic symbols)."""
    versions = set()
    try:
        out = subprocess.run(["objdump", "-T", path], capture_output=True, text=True, check=True).stdout
        versions.update(re.findall(r"GLIBC_(\d+(?:\.\d+)+)", out))
    except (OSError, subprocess.CalledProcessError):
        # No (fitting) objdump: the version names sit in the dynamic string table.
        with open(path, "rb") as f:
            versions.update(v.decode() for v in re.findall(rb"GLIBC_(\d+(?:\.\d+)+)", f.read()))
    if not versions:
        return "none (static)"
    return "GLIBC_" + max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))


def mib(size: int) -> str:
    return f"{size / 1024 / 1024:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("functions", nargs="+", metavar="FUNCTION=HOST_BINARY=ARTIFACT")
    args = parser.parse_args()

    rows = []
    failed = False
    with tempfile.NamedTemporaryFile(prefix="cold-start-", suffix=".log", delete=False) as log:
        for spec in args.functions:
            function, host, artifact = (os.path.abspath(p) if i else p for i, p in enumerate(spec.split("=", 2)))
            try:
                one_cold_start(host, function, log)  # warm the page cache; not counted
                times = [one_cold_start(host, function, log) for _ in range(args.runs)]
            except RuntimeError as err:
                print(f"cold-start: {err} (binary output in {log.name})", file=sys.stderr)
                failed = True
                times = []
            rows.append((function, artifact, host, times))

    arch = subprocess.run(["file", "-b", rows[0][1]], capture_output=True, text=True).stdout.split(",")[1].strip() \
        if rows else "?"
    header = ("function", "bootstrap bytes", "MiB", "<=6 MiB", "newest glibc", "host glibc",
              "cold median ms", "p90 ms", "max ms", "median <=20 ms")
    table = []
    for function, artifact, host, times in rows:
        size = os.path.getsize(artifact)
        median = statistics.median(times) if times else float("nan")
        p90 = statistics.quantiles(times, n=10)[-1] if len(times) > 1 else float("nan")
        worst = max(times) if times else float("nan")
        table.append((
            function, f"{size:,}", mib(size), "yes" if size <= SIZE_GOAL else "NO",
            newest_glibc(artifact), newest_glibc(host),
            f"{median:.1f}", f"{p90:.1f}", f"{worst:.1f}",
            "yes" if times and median <= COLD_START_GOAL_MS else ("NO" if times else "n/a"),
        ))
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in table:
        print(line(r))
    print()
    print(f"bootstrap: the Lambda artifact ({arch}); sizes in MiB (1,048,576 bytes); goal <= 6 MiB.")
    print("newest glibc: of the artifact; host glibc: of the x86_64-unknown-linux-gnu release build "
          "that was run (provided.al2023 has glibc 2.34).")
    print(f"cold start: spawn -> complete first GET /2018-06-01/runtime/invocation/next on a stub "
          f"Runtime API at 127.0.0.1, host release build, {args.runs} runs after one warm-up; "
          f"goal: median <= {COLD_START_GOAL_MS:.0f} ms.")
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          "(max and p90 suffer first when other work shares the CPUs).")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
