"""template.yaml -> plain CloudFormation, offline, as CloudFormation's
`AWS::Serverless-2016-10-31` transform does it after `sam package`.

aws-sam-translator is pinned to the version aws-sam-cli pins
(tools/requirements.txt). `CodeUri`, `ContentUri` and `DefinitionUri` are
pointed at S3 objects, as `sam package` leaves them: `artifacts(template)`
names what must be uploaded there (an empty zip per function and layer, the
state machine definition).
"""

from __future__ import annotations

import copy
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The bucket `sam package` would upload to; the local stack creates it.
ARTIFACT_BUCKET = "turbulence-local-artifacts"


@dataclass
class Artifact:
    """An object the translated template references in ARTIFACT_BUCKET."""

    key: str
    # None: an empty zip (moto stores function code without running it);
    # else the file (relative to the template's folder) to upload.
    source: str | None


def load_template(path: Path) -> dict[str, Any]:
    """template.yaml with CloudFormation's short tags, as sam reads it."""
    from samcli.yamlhelper import yaml_parse

    return yaml_parse(path.read_text())


def package(template: dict[str, Any]) -> tuple[dict[str, Any], list[Artifact]]:
    """A copy of the SAM template with local paths replaced by S3 locations."""
    packaged = copy.deepcopy(template)
    artifacts: dict[str, Artifact] = {}
    globals_code = (packaged.get("Globals", {}).get("Function", {}) or {}).get("CodeUri")
    for logical_id, resource in packaged.get("Resources", {}).items():
        props = resource.setdefault("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function":
            binary = (resource.get("Metadata", {}).get("BuildProperties", {}) or {}).get("Binary")
            key = f"functions/{binary or logical_id}.zip"
            artifacts[key] = Artifact(key, None)
            if isinstance(props.get("CodeUri", globals_code), str):
                props["CodeUri"] = f"s3://{ARTIFACT_BUCKET}/{key}"
        elif resource.get("Type") == "AWS::Serverless::LayerVersion":
            if isinstance(props.get("ContentUri"), str):
                key = f"layers/{logical_id}.zip"
                artifacts[key] = Artifact(key, None)
                props["ContentUri"] = f"s3://{ARTIFACT_BUCKET}/{key}"
        elif resource.get("Type") == "AWS::Serverless::StateMachine":
            uri = props.get("DefinitionUri")
            if isinstance(uri, str):
                key = f"statemachines/{Path(uri).name}"
                artifacts[key] = Artifact(key, uri)
                props["DefinitionUri"] = f"s3://{ARTIFACT_BUCKET}/{key}"
    if isinstance(globals_code, str):
        # Every function has its own S3 CodeUri now.
        del packaged["Globals"]["Function"]["CodeUri"]
    return packaged, list(artifacts.values())


class _NoManagedPolicies:
    """SAM's managed policy loader asks IAM for the ARNs of AWS managed
    policies named in `Policies:`; the template names none (every role is
    written out), so none is looked up."""

    def load(self) -> dict[str, str]:
        return {}


def translate(template: dict[str, Any], region: str = "us-east-1") -> dict[str, Any]:
    """The packaged SAM template as plain CloudFormation."""
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    import boto3
    from samtranslator.translator.transform import transform

    # samtranslator derives partition and region from boto3's default session.
    boto3.setup_default_session(region_name=region)
    return transform(template, {}, _NoManagedPolicies())


def translate_file(path: Path, region: str = "us-east-1") -> tuple[dict[str, Any], list[Artifact]]:
    packaged, artifacts = package(load_template(path))
    return translate(packaged, region), artifacts


def main(argv: list[str]) -> int:
    """`translate.py TEMPLATE`: the translated template as JSON on stdout
    (the template test reads it)."""
    if len(argv) != 2:
        print("usage: translate.py TEMPLATE", file=sys.stderr)
        return 2
    translated, _ = translate_file(Path(argv[1]))
    json.dump(translated, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
