"""Turn template.yaml into plain CloudFormation, offline, the way `sam deploy` would.

samtranslator expects what `sam package` produces: code and state machine definitions in S3. The
local stack has no package step, so the two local paths are rewritten first: `CodeUri` becomes a
placeholder S3 location (the handlers are imported from this checkout, not from a zip) and
`DefinitionUri` is inlined as `Definition`, which SAM then renders as `DefinitionString` next to
the untouched `DefinitionSubstitutions`. Everything else is exactly what AWS would see.

Knows nothing of moto: the output is a dict any provisioner can walk.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

from pipeline.local.emulator import DUMMY_CREDENTIALS, LOCAL_REGION

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
_PLACEHOLDER_CODE = "s3://lambdaflow-local-code/checkout.zip"


def load_sam_template(path: Path = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """Read a SAM template; CloudFormation's short tags (`!Ref`, `!Sub`…) become long forms."""
    return yaml_parse(path.read_text(encoding="utf-8"))


def _inline_local_paths(template: dict[str, Any], base: Path) -> dict[str, Any]:
    """Rewrite the two local paths samtranslator cannot take (see the module docstring)."""
    template = copy.deepcopy(template)
    function_globals = template.get("Globals", {}).get("Function", {})
    if "CodeUri" in function_globals:
        function_globals["CodeUri"] = _PLACEHOLDER_CODE
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = _PLACEHOLDER_CODE
        uri = props.get("DefinitionUri")
        if resource.get("Type") == "AWS::Serverless::StateMachine" and isinstance(uri, str):
            props["Definition"] = json.loads((base / uri).read_text(encoding="utf-8"))
            del props["DefinitionUri"]
    return template


def translate_template(
    path: Path = DEFAULT_TEMPLATE,
    parameters: Mapping[str, str] | None = None,
    *,
    region: str = LOCAL_REGION,
) -> dict[str, Any]:
    """Translate a SAM template to CloudFormation without any AWS call.

    Managed policy names are not resolved (that needs IAM); policy templates and every
    serverless resource are, exactly as the CloudFormation transform does it.
    """
    sam = _inline_local_paths(load_sam_template(path), path.parent)
    session = boto3.Session(
        region_name=region,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    translator = Translator({}, Parser(), boto_session=session)
    return translator.translate(sam, dict(parameters or {}), get_managed_policy_map=lambda: {})
