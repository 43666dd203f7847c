"""Deploys the translated template.yaml as a stack in moto's CloudFormation.

`Deployer.deploy(name, parameters)` is what `POST /_turbulence/stacks`
runs: translate (once per template text), upload what `sam package` would
(an empty zip per function, the state machine definition), CreateStack
from a `TemplateURL` (moto needs `https://<bucket>.s3.amazonaws.com/<key>`),
then register every function of the stack with the runtime host under its
deployed name, with the binary its `Metadata.BuildProperties.Binary` names.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

from . import translate

TEMPLATE_KEY = "templates/{digest}.json"


def empty_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w"):
        pass
    return buf.getvalue()


class DeployError(Exception):
    pass


class Deployer:
    def __init__(
        self,
        template_path: Path,
        client: Callable[[str], Any],
        on_function: Callable[[dict[str, Any]], None],
        region: str,
    ):
        """`client(service)` gives a boto3 client of the local stack;
        `on_function(description)` is called for each deployed function with
        {name, arn, logical_id, binary, role_arn, environment, timeout_s,
        memory_mb, reserved, stack, logging}."""
        self.template_path = template_path
        self.client = client
        self.on_function = on_function
        self.region = region
        self.lock = threading.Lock()
        # template text digest -> (translated JSON text, artifacts)
        self.cache: dict[str, tuple[str, list[translate.Artifact]]] = {}
        self.uploaded: set[str] = set()

    def translated(self) -> tuple[str, dict[str, Any], list[translate.Artifact]]:
        text = self.template_path.read_text()
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        with self.lock:
            if digest not in self.cache:
                body, artifacts = translate.translate_file(self.template_path, self.region)
                self.cache[digest] = (json.dumps(body), artifacts)
            body_text, artifacts = self.cache[digest]
        return digest, json.loads(body_text), artifacts

    def upload(self, digest: str, body: dict[str, Any], artifacts: list[translate.Artifact]) -> str:
        s3 = self.client("s3")
        bucket = translate.ARTIFACT_BUCKET
        with self.lock:
            if bucket not in self.uploaded:
                s3.create_bucket(Bucket=bucket)
                self.uploaded.add(bucket)
        for artifact in artifacts:
            # The definition is read at every deploy (edits need no restart);
            # zips only once.
            if artifact.source is None and artifact.key in self.uploaded:
                continue
            data = (
                empty_zip()
                if artifact.source is None
                else (self.template_path.parent / artifact.source).read_bytes()
            )
            s3.put_object(Bucket=bucket, Key=artifact.key, Body=data)
            self.uploaded.add(artifact.key)
        key = TEMPLATE_KEY.format(digest=digest)
        if key not in self.uploaded:
            s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode())
            self.uploaded.add(key)
        return f"https://{bucket}.s3.amazonaws.com/{key}"

    def deploy(self, name: str, parameters: dict[str, str]) -> dict[str, Any]:
        started = time.monotonic()
        digest, body, artifacts = self.translated()
        known = set(body.get("Parameters", {}))
        unknown = sorted(set(parameters) - known)
        if unknown:
            # A setting the template does not take is refused, never ignored.
            raise DeployError(f"template.yaml has no parameter(s) {', '.join(unknown)}")
        url = self.upload(digest, body, artifacts)
        cfn = self.client("cloudformation")
        if self.exists(cfn, name):
            # A redeploy (the demo's `demo` stack): replace it, as
            # `sam delete` then `sam deploy` would.
            cfn.delete_stack(StackName=name)
        cfn.create_stack(
            StackName=name,
            TemplateURL=url,
            Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise DeployError(f"stack {name}: {stack['StackStatus']} {stack.get('StackStatusReason', '')}")
        resources = {
            r["LogicalResourceId"]: r
            for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
        }
        missing = sorted(set(self.created_resources(body, parameters)) - set(resources))
        if missing:
            raise DeployError(f"stack {name}: moto did not create {', '.join(missing)}")
        self.register_functions(name, body, resources)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        return {
            "stack": name,
            "stack_id": stack["StackId"],
            "outputs": outputs,
            "resources": {k: v["PhysicalResourceId"] for k, v in resources.items()},
            "seconds": round(time.monotonic() - started, 3),
        }

    @staticmethod
    def exists(cfn: Any, name: str) -> bool:
        try:
            stacks = cfn.describe_stacks(StackName=name)["Stacks"]
        except Exception:  # noqa: BLE001 - moto answers ValidationError for an unknown stack
            return False
        return any(s["StackStatus"] != "DELETE_COMPLETE" for s in stacks)

    @staticmethod
    def created_resources(body: dict[str, Any], parameters: dict[str, str]) -> list[str]:
        """Logical ids CloudFormation would create (resources without a
        Condition; conditional ones are checked by the stack's own outcome)."""
        return [k for k, v in body.get("Resources", {}).items() if "Condition" not in v]

    def register_functions(self, stack: str, body: dict[str, Any], resources: dict[str, Any]) -> None:
        lam = self.client("lambda")
        for logical_id, resource in body.get("Resources", {}).items():
            if resource.get("Type") != "AWS::Lambda::Function" or logical_id not in resources:
                continue
            name = resources[logical_id]["PhysicalResourceId"]
            got = lam.get_function(FunctionName=name)
            config = got["Configuration"]
            binary = (resource.get("Metadata", {}).get("BuildProperties", {}) or {}).get("Binary")
            reserved = (got.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
            self.on_function(
                {
                    "name": config["FunctionName"],
                    "arn": config["FunctionArn"],
                    "logical_id": logical_id,
                    "binary": binary,
                    "role_arn": config["Role"],
                    "environment": (config.get("Environment") or {}).get("Variables", {}),
                    "timeout_s": int(config.get("Timeout", 3)),
                    "memory_mb": int(config.get("MemorySize", 128)),
                    "reserved": reserved,
                    "stack": stack,
                    "logging": config.get("LoggingConfig") or {},
                }
            )


STACKS_PATH = "/_turbulence/stacks"


def handler(deployer: Deployer) -> Callable[[dict[str, Any], Any], Any]:
    """WSGI: `POST /_turbulence/stacks {"name": ..., "parameters": {...}}`
    deploys template.yaml as that stack and answers its outputs."""

    def handle(environ: dict[str, Any], start_response: Any) -> Any:
        def reply(status: str, body: Any) -> list[bytes]:
            data = json.dumps(body).encode()
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
            return [data]

        if environ.get("REQUEST_METHOD") != "POST":
            return reply("405 Method Not Allowed", {"message": "POST {name, parameters}"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) if length > 0 else b"")
            name = body["name"]
            parameters = body.get("parameters") or {}
            if not isinstance(name, str) or not isinstance(parameters, dict):
                raise ValueError("name: a string, parameters: an object")
        except (ValueError, KeyError, TypeError) as err:
            return reply("400 Bad Request", {"message": f"{{name, parameters}}: {err}"})
        try:
            return reply("200 OK", deployer.deploy(name, {str(k): str(v) for k, v in parameters.items()}))
        except Exception as err:  # noqa: BLE001 - say why, never hang the caller
            return reply("400 Bad Request", {"message": f"deploy {name}: {type(err).__name__}: {err}"})

    return handle
