"""Records every AWS call a deployed function makes: which function (by
its own access key, `functions.py`), the IAM action, the resource ARNs the
request names, those resources' tags, and the request's condition keys
(`ecs:cluster`). `iam_check.py` evaluates the record against each
function's role.

WSGI middleware in front of moto (behind the CBOR translator, so every
request it sees is JSON, query or REST). `GET /_turbulence/calls` returns
the record (`?since=N` from the Nth call on), `DELETE` clears it.

A call whose resources this module cannot name is recorded with
`"resources": null`: the IAM check fails on it, so a new call gets its rule
here before it can pass.
"""

from __future__ import annotations

import io
import json
import re
import threading
import urllib.parse
from typing import Any, Callable

from .functions import Registry

CALLS_PATH = "/_turbulence/calls"
CREDENTIAL = re.compile(r"Credential=([^/\s,]+)/\d{8}/([^/\s,]+)/([^/\s,]+)/aws4_request")
# SigV4 signing name -> IAM service prefix, where they differ.
IAM_PREFIX = {"monitoring": "cloudwatch"}

LAMBDA_REST = [
    (re.compile(r"^/2015-03-31/functions/(?P<fn>[^/]+)/invocations/?$"), "POST", "InvokeFunction"),
    (re.compile(r"^/2015-03-31/functions/(?P<fn>[^/]+)/configuration/?$"), "GET", "GetFunctionConfiguration"),
    (re.compile(r"^/2015-03-31/functions/(?P<fn>[^/]+)/?$"), "GET", "GetFunction"),
    (re.compile(r"^/2019-09-30/functions/(?P<fn>[^/]+)/concurrency/?$"), "GET", "GetFunctionConcurrency"),
    (re.compile(r"^/2017-10-31/functions/(?P<fn>[^/]+)/concurrency/?$"), "PUT", "PutFunctionConcurrency"),
    (re.compile(r"^/2017-10-31/functions/(?P<fn>[^/]+)/concurrency/?$"), "DELETE", "DeleteFunctionConcurrency"),
    (re.compile(r"^/2015-03-31/functions/(?P<fn>[^/]+)/configuration/?$"), "PUT", "UpdateFunctionConfiguration"),
    (re.compile(r"^/2015-03-31/event-source-mappings/(?P<uuid>[^/]+)/?$"), "GET", "GetEventSourceMapping"),
    (re.compile(r"^/2015-03-31/event-source-mappings/(?P<uuid>[^/]+)/?$"), "PUT", "UpdateEventSourceMapping"),
    (re.compile(r"^/2015-03-31/event-source-mappings/?$"), "GET", "ListEventSourceMappings"),
]


class Context:
    def __init__(self, account: str, region: str):
        self.account = account
        self.region = region

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"


def _ssm_parameter(ctx: Context, name: str) -> str:
    if name.startswith("arn:"):
        return name
    return ctx.arn("ssm", "parameter" + (name if name.startswith("/") else "/" + name))


def _ecs_cluster(ctx: Context, cluster: str | None) -> str:
    cluster = cluster or "default"
    return cluster if cluster.startswith("arn:") else ctx.arn("ecs", f"cluster/{cluster}")


def _cluster_name(cluster: str | None) -> str:
    cluster = cluster or "default"
    return cluster.rsplit("/", 1)[-1] if cluster.startswith("arn:") else cluster


def _ecs_child(ctx: Context, kind: str, cluster: str | None, name: str) -> str:
    if name.startswith("arn:"):
        return name
    return ctx.arn("ecs", f"{kind}/{_cluster_name(cluster)}/{name}")


def _alarms(ctx: Context, p: dict[str, Any]) -> list[str]:
    names = p.get("AlarmNames") or []
    if names:
        return [ctx.arn("cloudwatch", f"alarm:{n}") for n in names]
    return ["*"]


def _queue(ctx: Context, url: str) -> str:
    return ctx.arn("sqs", url.rstrip("/").rsplit("/", 1)[-1])


def _event_source_mapping(ctx: Context, uuid: str) -> str:
    return ctx.arn("lambda", f"event-source-mapping:{uuid}")


def _mapping_function(ctx: Context, p: dict[str, Any]) -> dict[str, str]:
    """`lambda:FunctionArn`: the function the mapping feeds, as moto holds it."""
    try:
        from moto.awslambda.utils import get_backend

        mapping = get_backend(ctx.account, ctx.region).get_event_source_mapping(p["uuid"])
        return {"lambda:FunctionArn": mapping.function_arn} if mapping else {}
    except Exception:  # noqa: BLE001 - a mapping that is gone names no function
        return {}


def _container_instances(ctx: Context, p: dict[str, Any]) -> list[str]:
    return [_ecs_child(ctx, "container-instance", p.get("cluster"), i) for i in p["containerInstances"]]


def _lambda_fn(ctx: Context, name: str) -> str:
    name = urllib.parse.unquote(name)
    if name.startswith("arn:"):
        return ":".join(name.split(":")[:7])
    return ctx.arn("lambda", f"function:{name.split(':')[0]}")


# (IAM action) -> resources named by the request parameters.
RESOURCES: dict[str, Callable[[Context, dict[str, Any]], list[str]]] = {
    "ssm:GetParameter": lambda c, p: [_ssm_parameter(c, p["Name"])],
    "ssm:PutParameter": lambda c, p: [_ssm_parameter(c, p["Name"])],
    "ssm:DeleteParameter": lambda c, p: [_ssm_parameter(c, p["Name"])],
    "ssm:GetParameters": lambda c, p: [_ssm_parameter(c, n) for n in p["Names"]],
    "ssm:GetParametersByPath": lambda c, p: [_ssm_parameter(c, p["Path"])],
    "ecs:DescribeServices": lambda c, p: [_ecs_child(c, "service", p.get("cluster"), s) for s in p["services"]],
    "ecs:DescribeClusters": lambda c, p: [_ecs_cluster(c, n) for n in p.get("clusters") or ["default"]],
    "ecs:DescribeTasks": lambda c, p: [_ecs_child(c, "task", p.get("cluster"), t) for t in p["tasks"]],
    "ecs:StopTask": lambda c, p: [_ecs_child(c, "task", p.get("cluster"), p["task"])],
    "ecs:UpdateService": lambda c, p: [_ecs_child(c, "service", p.get("cluster"), p["service"])],
    # Its resource is a container instance, which Fargate tasks lack: "*",
    # narrowed by the ecs:cluster condition key.
    "ecs:ListTasks": lambda c, p: ["*"],
    "cloudwatch:DescribeAlarms": _alarms,
    # No resource-level permissions.
    "cloudwatch:GetMetricStatistics": lambda c, p: ["*"],
    "cloudwatch:GetMetricData": lambda c, p: ["*"],
    "sqs:SendMessage": lambda c, p: [_queue(c, p["QueueUrl"])],
    "states:StartExecution": lambda c, p: [p["stateMachineArn"]],
    "states:DescribeExecution": lambda c, p: [p["executionArn"]],
    "states:StopExecution": lambda c, p: [p["executionArn"]],
    "states:GetExecutionHistory": lambda c, p: [p["executionArn"]],
    "lambda:InvokeFunction": lambda c, p: [_lambda_fn(c, p["fn"])],
    "lambda:GetFunction": lambda c, p: [_lambda_fn(c, p["fn"])],
    "lambda:GetFunctionConfiguration": lambda c, p: [_lambda_fn(c, p["fn"])],
    "lambda:GetFunctionConcurrency": lambda c, p: [_lambda_fn(c, p["fn"])],
    "lambda:PutFunctionConcurrency": lambda c, p: [_lambda_fn(c, p["fn"])],
    "lambda:DeleteFunctionConcurrency": lambda c, p: [_lambda_fn(c, p["fn"])],
    "lambda:UpdateFunctionConfiguration": lambda c, p: [_lambda_fn(c, p["fn"])],
    "lambda:GetEventSourceMapping": lambda c, p: [_event_source_mapping(c, p["uuid"])],
    "lambda:UpdateEventSourceMapping": lambda c, p: [_event_source_mapping(c, p["uuid"])],
    # No resource-level permissions.
    "lambda:ListEventSourceMappings": lambda c, p: ["*"],
    "ecs:ListTagsForResource": lambda c, p: [p["resourceArn"]],
    "ecs:TagResource": lambda c, p: [p["resourceArn"]],
    "ecs:UntagResource": lambda c, p: [p["resourceArn"]],
    "ecs:ListContainerInstances": lambda c, p: [_ecs_cluster(c, p.get("cluster"))],
    "ecs:DescribeContainerInstances": _container_instances,
    "ecs:UpdateContainerInstancesState": _container_instances,
    # Elastic Load Balancing's Describe calls have no resource-level permissions.
    "elasticloadbalancing:DescribeTargetGroups": lambda c, p: ["*"],
    "elasticloadbalancing:DescribeTargetHealth": lambda c, p: ["*"],
    "elasticloadbalancing:DescribeLoadBalancers": lambda c, p: ["*"],
    "elasticloadbalancing:DescribeLoadBalancerAttributes": lambda c, p: ["*"],
    "elasticloadbalancing:DescribeTags": lambda c, p: ["*"],
    "elasticloadbalancing:DeregisterTargets": lambda c, p: [p["TargetGroupArn"]],
    "elasticloadbalancing:RegisterTargets": lambda c, p: [p["TargetGroupArn"]],
    "elasticloadbalancing:SetSecurityGroups": lambda c, p: [p["LoadBalancerArn"]],
    "elasticloadbalancing:SetSubnets": lambda c, p: [p["LoadBalancerArn"]],
    "elasticloadbalancing:ModifyLoadBalancerAttributes": lambda c, p: [p["LoadBalancerArn"]],
}

# Condition keys a request carries, beside aws:ResourceTag.
CONDITION_KEYS: dict[str, Callable[[Context, dict[str, Any]], dict[str, str]]] = {
    "ecs:ListTasks": lambda c, p: {"ecs:cluster": _ecs_cluster(c, p.get("cluster"))},
    "ecs:DescribeTasks": lambda c, p: {"ecs:cluster": _ecs_cluster(c, p.get("cluster"))},
    "ecs:StopTask": lambda c, p: {"ecs:cluster": _ecs_cluster(c, p.get("cluster"))},
    "ecs:UpdateContainerInstancesState": lambda c, p: {"ecs:cluster": _ecs_cluster(c, p.get("cluster"))},
    "lambda:UpdateEventSourceMapping": _mapping_function,
}


def resource_tags(account: str, region: str, arn: str) -> dict[str, str]:
    """The tags moto holds for an ECS service or task, a Lambda function, or a
    load balancer or target group."""
    try:
        if ":ecs:" in arn and (":service/" in arn or ":task/" in arn):
            from moto.ecs.models import ecs_backends

            backend = ecs_backends[account][region]
            if ":task/" in arn:
                cluster, task_id = arn.split(":task/", 1)[1].split("/", 1)
                for task in backend.tasks.get(cluster, {}).values():
                    if task.task_arn == arn or task.task_arn.endswith("/" + task_id):
                        return {t["key"]: t["value"] for t in (task.tags or [])}
                return {}
            return {t["key"]: t["value"] for t in backend.list_tags_for_resource(arn) or []}
        if ":lambda:" in arn and ":function:" in arn:
            from moto.awslambda.utils import get_backend

            return dict(get_backend(account, region).list_tags(arn) or {})
        if ":elasticloadbalancing:" in arn:
            from moto.elbv2.models import elbv2_backends

            return dict(elbv2_backends[account][region].tagging_service.get_tag_dict_for_resource(arn))
    except Exception:  # noqa: BLE001 - a resource that is gone has no tags
        return {}
    return {}


class Recorder:
    def __init__(self, app: Any, registry: Registry, account: str):
        self.app = app
        self.registry = registry
        self.account = account
        self.lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.rstrip("/") == CALLS_PATH:
            return self.control(environ, start_response)
        found = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        fn = self.registry.by_access_key(found.group(1)) if found else None
        if fn is None or found is None:
            return self.app(environ, start_response)
        region, service = found.group(2), found.group(3)
        try:
            call = self.describe(environ, service, region)
        except Exception as err:  # noqa: BLE001 - record what could not be read
            call = {"action": f"{service}:?", "resources": None, "error": f"{type(err).__name__}: {err}"}
        call.update(
            {
                "function": fn.name,
                "logical_id": fn.logical_id,
                "stack": fn.stack,
                "role_arn": fn.role_arn,
            }
        )
        status: list[str] = []

        def recording_start_response(s: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(s)
            return start_response(s, headers, exc_info) if exc_info else start_response(s, headers)

        result = self.app(environ, recording_start_response)
        call["status"] = int(status[0].split()[0]) if status else 0
        with self.lock:
            self.calls.append(call)
        return result

    def describe(self, environ: dict[str, Any], service: str, region: str) -> dict[str, Any]:
        operation, params = self.operation(environ, service)
        action = f"{IAM_PREFIX.get(service, service)}:{operation}"
        ctx = Context(self.account, region)
        rule = RESOURCES.get(action)
        resources = None
        if rule is not None:
            resources = [{"arn": arn, "tags": resource_tags(self.account, region, arn)} for arn in rule(ctx, params)]
        keys = CONDITION_KEYS.get(action, lambda c, p: {})(ctx, params)
        return {"action": action, "resources": resources, "condition_keys": keys}

    @staticmethod
    def operation(environ: dict[str, Any], service: str) -> tuple[str, dict[str, Any]]:
        """(operation, parameters) of a JSON, query or Lambda REST request;
        the body is read and put back."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target:
            return target.rsplit(".", 1)[-1], json.loads(raw or b"{}")
        if service == "lambda":
            path = environ.get("PATH_INFO", "")
            method = environ.get("REQUEST_METHOD", "GET")
            for pattern, verb, operation in LAMBDA_REST:
                m = pattern.match(path)
                if m and method == verb:
                    return operation, m.groupdict()
            return f"{method} {path}", {}
        form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"))
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        merged = {k: v[0] for k, v in {**query, **form}.items()}
        return merged.pop("Action", "?"), merged

    def control(self, environ: dict[str, Any], start_response: Any) -> Any:
        method = environ.get("REQUEST_METHOD", "GET")
        with self.lock:
            if method == "DELETE":
                cleared = len(self.calls)
                self.calls.clear()
                body: Any = {"cleared": cleared}
            else:
                query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
                since = int((query.get("since") or ["0"])[0])
                body = {
                    "calls": self.calls[since:],
                    "total": len(self.calls),
                    "functions": [f.to_json() for f in self.registry.all()],
                }
        data = json.dumps(body).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]
