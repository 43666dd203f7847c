"""IAM proved by the calls made: every AWS call a deployed function made on
the local stack (recorded by `calls.py`) is evaluated against that
function's role policies, as deployed from the translated template (read
back from moto's IAM), with an offline evaluator that honours resources
and conditions (`aws:ResourceTag/...`, `ecs:cluster`): principalmapper's
`policy_has_matching_statement`.

Fails on
- a call the role would deny (no Allow matches, or a Deny does), or whose
  resources the recorder cannot name;
- a statement of a function's role that no recorded call of that function
  used (`--calls-only` skips this, for a partial test run), unless
  NOT_EXERCISED names it with the reason the local stack cannot use it.

moto's own IAM enforcement cannot do this: it checks most services against
"*" and never evaluates conditions.

    .tools/venv/bin/python local/turbulence_local/iam_check.py [--endpoint URL] [--calls-only]

(scripts/test runs it after the end-to-end tests.)
"""

from __future__ import annotations

import argparse
import collections
import collections.abc
import json
import os
import sys
import urllib.request
from typing import Any

# principalmapper 1.1.5 imports collections.Mapping, gone since Python 3.10.
for _name in ("Mapping", "MutableMapping"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

from principalmapper.querying.local_policy_simulation import policy_has_matching_statement  # noqa: E402
from principalmapper.util.case_insensitive_dict import CaseInsensitiveDict  # noqa: E402

# (function logical id or "*", statement Sid) -> why no call on the local
# stack uses it.
NOT_EXERCISED = {
    ("*", "Logs"): "the Lambda service writes the function's logs with its role, not the function's code",
    ("*", "Tracing"): "the Lambda service sends the X-Ray segments of active tracing, not the function's code",
    # Open: no end-to-end test names an {"type": "ssm"} secret yet (the
    # engine's unit tests read them through a fake).
    ("ActionFunction", "ReadSecrets"): "no end-to-end test reads an SSM secret yet",
    ("ProbeFunction", "ReadSecrets"): "no end-to-end test reads an SSM secret yet",
}


def get_json(url: str) -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=60) as resp:
        return json.load(resp)


def role_statements(iam: Any, role_arn: str) -> list[tuple[str, dict[str, Any]]]:
    """(policy name, statement) of every inline policy of the role."""
    name = role_arn.rsplit("/", 1)[-1]
    out = []
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        if isinstance(document, str):
            document = json.loads(document)
        statements = document["Statement"]
        for statement in statements if isinstance(statements, list) else [statements]:
            out.append((policy, statement))
    return out


def context(resource: dict[str, Any], keys: dict[str, str]) -> CaseInsensitiveDict:
    values = {f"aws:ResourceTag/{k}": v for k, v in (resource.get("tags") or {}).items()}
    values.update(keys or {})
    return CaseInsensitiveDict(values)


def check(calls: list[dict[str, Any]], functions: list[dict[str, Any]], iam: Any, calls_only: bool) -> list[str]:
    problems: list[str] = []
    statements: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for fn in functions:
        statements[fn["role_arn"]] = role_statements(iam, fn["role_arn"])
    # (logical id, policy, sid) -> calls it allowed
    used: collections.Counter[tuple[str, str, str]] = collections.Counter()
    denied_seen: set[tuple[str, str, str]] = set()
    for call in calls:
        role = call["role_arn"]
        if role not in statements:
            statements[role] = role_statements(iam, role)
        who = f"{call['logical_id']} ({call['function']})"
        if call.get("resources") is None:
            problems.append(
                f"{who} called {call['action']}: calls.py cannot name its resources "
                f"({call.get('error') or 'no rule in calls.RESOURCES'})"
            )
            continue
        for resource in call["resources"]:
            ctx = context(resource, call.get("condition_keys") or {})
            allowing = [
                (policy, st)
                for policy, st in statements[role]
                if policy_has_matching_statement({"Statement": [st]}, "Allow", call["action"], resource["arn"], ctx)
            ]
            denying = [
                st
                for _, st in statements[role]
                if policy_has_matching_statement({"Statement": [st]}, "Deny", call["action"], resource["arn"], ctx)
            ]
            if not allowing or denying:
                key = (call["logical_id"], call["action"], resource["arn"])
                if key not in denied_seen:
                    denied_seen.add(key)
                    problems.append(
                        f"{who}: {call['action']} on {resource['arn']} (tags {resource.get('tags') or {}}, "
                        f"keys {call.get('condition_keys') or {}}) would be denied by its role {role}"
                    )
            for policy, st in allowing:
                used[(call["logical_id"], policy, str(st.get("Sid", "")))] += 1
    if not calls_only:
        granted: dict[tuple[str, str, str], dict[str, Any]] = {}
        for fn in functions:
            for policy, st in statements[fn["role_arn"]]:
                granted[(fn["logical_id"], policy, str(st.get("Sid", "")))] = st
        sids = {sid for (_, _, sid) in granted}
        for (logical_id, sid), reason in NOT_EXERCISED.items():
            if sid not in sids:
                problems.append(f"NOT_EXERCISED names statement {sid}, which no role has: drop it")
        for (logical_id, policy, sid), st in sorted(granted.items()):
            if used[(logical_id, policy, sid)]:
                continue
            if (logical_id, sid) in NOT_EXERCISED or ("*", sid) in NOT_EXERCISED:
                continue
            problems.append(
                f"{logical_id}: statement {sid or '(no Sid)'} of {policy} ({st.get('Action')}) "
                "is granted but no recorded call of the function used it"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoint", default=os.environ.get("TURBULENCE_ENDPOINT", "http://127.0.0.1:5000"))
    p.add_argument("--calls-only", action="store_true", help="only check the calls (a partial test run)")
    args = p.parse_args(argv)
    import boto3

    recorded = get_json(f"{args.endpoint.rstrip('/')}/_turbulence/calls")
    iam = boto3.client(
        "iam",
        endpoint_url=args.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    calls = recorded["calls"]
    # One deployed function per logical id (every stack deploys the same
    # template): the one with the most calls, so a function no test ever
    # invoked still has its grants checked.
    per_call = collections.Counter(c["function"] for c in calls)
    chosen: dict[str, dict[str, Any]] = {}
    for f in recorded["functions"]:
        best = chosen.get(f["logical_id"])
        if best is None or per_call[f["name"]] > per_call[best["name"]]:
            chosen[f["logical_id"]] = f
    functions = list(chosen.values())
    problems = check(calls, functions, iam, args.calls_only)
    actions = collections.Counter(c["action"] for c in calls)
    print(
        f"iam: {len(calls)} recorded calls ({len(actions)} actions) of {len(per_call)} deployed functions "
        f"checked against their roles ({len(functions)} functions of the template)"
    )
    for problem in problems:
        print(f"iam: FAIL {problem}")
    print(f"iam: {0 if problems else 1} passed, {1 if problems else 0} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
