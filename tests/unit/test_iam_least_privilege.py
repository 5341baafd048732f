"""Every AWS call a function can make is allowed by its role in template.yaml.

For each function of the template: the modules its handler imports (the project's own, followed
transitively) are read with `ast`; the boto3 clients they create give the services, and every
attribute call or string naming an operation of one of those services (botocore's service
models list them) is a call the function may make. Each call maps to its IAM action (the
table below holds AWS's exceptions to "service:Operation"), and an Allow statement of the
function's role, as SAM translates it with every optional part switched on, must grant it.

It over-approximates on purpose: a module imported for one function brings all of its calls
(Progress may do whatever `RunLedger` can), which is what a reviewer can check by reading. A new
call that its role does not allow fails here instead of as `AccessDenied` in production — the
SSE-KMS `kms:Decrypt` of classify was such a gap.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from pipeline.local.template import translate_template

ROOT = Path(__file__).resolve().parents[2]
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-aaaa-bbbb-cccc-444455556666"
PARAMETERS = {
    "CreateImagesBucket": "true",
    "SourceBuckets": "photos-a,photos-b",
    "SourceKmsKeyArns": KMS_KEY,
    "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:ops",
}
IAM_PREFIX = {"stepfunctions": "states"}
ACTIONS = {
    # AWS's documented exceptions to service:Operation (Service Authorization Reference).
    ("s3", "HeadObject"): {"s3:GetObject"},
    ("s3", "ListObjectsV2"): {"s3:ListBucket"},
    ("s3", "ListObjects"): {"s3:ListBucket"},
    ("s3", "HeadBucket"): {"s3:ListBucket"},
    ("s3", "ListObjectVersions"): {"s3:ListBucketVersions"},
    ("s3", "DeleteObjects"): {"s3:DeleteObject"},
    ("s3", "CreateMultipartUpload"): {"s3:PutObject"},
    ("s3", "UploadPart"): {"s3:PutObject"},
    ("s3", "CompleteMultipartUpload"): {"s3:PutObject"},
    ("dynamodb", "TransactWriteItems"): {"dynamodb:PutItem", "dynamodb:UpdateItem"},
    ("dynamodb", "TransactGetItems"): {"dynamodb:GetItem"},
    ("sqs", "SendMessageBatch"): {"sqs:SendMessage"},
    ("sqs", "DeleteMessageBatch"): {"sqs:DeleteMessage"},
    ("sqs", "ChangeMessageVisibilityBatch"): {"sqs:ChangeMessageVisibility"},
}
THIRD_PARTY = {
    # Calls made inside libraries on our clients, which the scan of our modules cannot see.
    "pipeline.manifest.source": {("s3", "GetObject")},  # smart_open streams the manifest
}
KMS_DECRYPT = "kms:Decrypt"
"""S3 calls kms:Decrypt with the caller's role to read an SSE-KMS object. The stack's own buckets
are SSE-S3 (AES256: no key policy involved); the source buckets images come from may be
SSE-KMS, so the function that reads them needs it (for the keys named in SourceKmsKeyArns)."""
READS_SOURCE_BUCKETS = {"ClassifyFunction"}
MANAGED = {
    # What the AWS managed policies SAM attaches grant (their documented policy versions).
    "AWSLambdaBasicExecutionRole": {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    },
    "AWSLambdaSQSQueueExecutionRole": {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    },
    "AWSXrayWriteOnlyAccess": {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "xray:GetSamplingStatisticSummaries",
    },
}


@functools.cache
def _operations(service: str) -> dict[str, str]:
    """snake_case method name → Operation name, for one boto3 service."""
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(name): name for name in model.operation_names}


def _module_path(name: str) -> Path | None:
    """The project's source file of module `name`, or None (stdlib, third party, a class)."""
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _closure(module: str) -> dict[str, ast.Module]:
    """The project's modules `module` imports, transitively, parsed."""
    seen: dict[str, ast.Module] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        path = _module_path(name)
        if name in seen or path is None:
            continue
        seen[name] = tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                todo.append(node.module)
                todo.extend(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                todo.extend(alias.name for alias in node.names)
    return seen


def _services(trees: dict[str, ast.Module]) -> set[str]:
    """Services of every `boto3.client("…")` / `….client("…")` in the modules."""
    found = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "client"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(node.args[0].value)
    return found


def _reachable(trees: dict[str, ast.Module], entry: str) -> list[ast.AST]:
    """Code that can run: module-level statements, then every function or method whose name
    is referenced by code already reached (a fixed point; dunder methods always)."""
    defs: dict[str, list[ast.AST]] = {}
    reached: list[ast.AST] = []
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                defs.setdefault(node.name, []).append(node)
        reached.extend(_top_level(tree))
    reached.extend(d for name, nodes in defs.items() if name.startswith("__") for d in nodes)
    reached.extend(defs.get(entry, []))  # what Lambda calls
    names: set[str] = set()
    todo = list(reached)
    while todo:
        for name in set(_referenced(todo.pop())) - names:
            names.add(name)
            new = defs.get(name, [])
            reached.extend(new)
            todo.extend(new)
    return reached


def _top_level(tree: ast.Module) -> Iterator[ast.AST]:
    """Statements run at import: not function bodies, not `__all__` (names, not calls)."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            continue
        if isinstance(node, ast.ClassDef):
            yield from (
                n for n in node.body if not isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            )
            yield from node.decorator_list
            continue
        yield node


def _referenced(node: ast.AST) -> Iterator[str]:
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            yield child.id
        elif isinstance(child, ast.Attribute):
            yield child.attr
        elif isinstance(child, ast.Constant) and isinstance(child.value, str):
            yield child.value  # get_paginator("query"), getattr(client, "send_task_success")


def calls_of(handler: str) -> set[tuple[str, str]]:
    """(service, Operation) pairs the function whose `Handler:` is `handler` may call."""
    module, _, entry = handler.rpartition(".")
    trees = _closure(module)
    services = _services(trees)
    calls = {call for module, extra in THIRD_PARTY.items() if module in trees for call in extra}
    for node in _reachable(trees, entry):
        for child in ast.walk(node):
            if isinstance(child, ast.Attribute):
                name = child.attr
            elif isinstance(child, ast.Constant) and isinstance(child.value, str):
                name = child.value
            else:
                continue
            calls.update(
                (service, _operations(service)[name])
                for service in services
                if name in _operations(service)
            )
    return calls


def iam_actions(service: str, operation: str) -> set[str]:
    """The IAM actions one API call needs."""
    return ACTIONS.get((service, operation), {f"{IAM_PREFIX.get(service, service)}:{operation}"})


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return translate_template(parameters=PARAMETERS)


def _allowed(template: dict[str, Any], role: str) -> set[str]:
    """Action patterns of every Allow statement of the role (conditional ones switched on)."""
    patterns: set[str] = set()
    for arn in template["Resources"][role]["Properties"].get("ManagedPolicyArns", []):
        patterns |= MANAGED[str(arn).rsplit("/", 1)[-1]]
    for policy in template["Resources"][role]["Properties"].get("Policies", []):
        # every HasX condition is true with PARAMETERS
        document = (policy["Fn::If"][1] if "Fn::If" in policy else policy)["PolicyDocument"]
        for statement in document["Statement"]:
            if statement["Effect"] == "Allow":
                action = statement["Action"]
                patterns.update(action if isinstance(action, list) else [action])
    return patterns


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }


def test_every_function_is_checked(template):
    assert set(_functions(template)) == {
        "IngestFunction",
        "SplitFunction",
        "ClassifyFunction",
        "ProgressFunction",
        "FinalizeFunction",
    }


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("IngestFunction", {("stepfunctions", "StartExecution")}),
        ("ClassifyFunction", {("stepfunctions", "SendTaskHeartbeat"), ("s3", "GetObject")}),
        ("ProgressFunction", {("stepfunctions", "SendTaskSuccess"), ("dynamodb", "BatchGetItem")}),
        ("SplitFunction", {("sqs", "SendMessageBatch"), ("s3", "GetObject")}),
        ("FinalizeFunction", {("s3", "PutObject"), ("dynamodb", "UpdateItem")}),
    ],
)
def test_the_scan_finds_the_calls_we_know_of(template, function, expected):
    """The scan itself works: calls each function is known to make are among those found."""
    handler = _functions(template)[function]["Properties"]["Handler"]
    assert expected <= calls_of(handler)


@pytest.mark.parametrize(
    "function",
    ["IngestFunction", "SplitFunction", "ClassifyFunction", "ProgressFunction", "FinalizeFunction"],
)
def test_every_call_a_function_makes_is_allowed_by_its_role(template, function):
    properties = _functions(template)[function]["Properties"]
    role = properties["Role"]["Fn::GetAtt"][0]
    allowed = _allowed(template, role)
    needed = {
        action
        for service, operation in calls_of(properties["Handler"])
        for action in iam_actions(service, operation)
    }
    if function in READS_SOURCE_BUCKETS:
        needed.add(KMS_DECRYPT)
    missing = {a for a in needed if not any(fnmatch.fnmatchcase(a, p) for p in allowed)}
    assert not missing, f"{function}'s role ({role}) does not allow {sorted(missing)}"


def test_the_stack_buckets_need_no_kms_key(template):
    for name in ("InputBucket", "ResultsBucket", "ImagesBucket"):
        encryption = template["Resources"][name]["Properties"]["BucketEncryption"]
        (rule,) = encryption["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256", name


def test_classify_may_decrypt_only_the_named_source_keys(template):
    plain = translate_template(parameters={**PARAMETERS, "SourceKmsKeyArns": ""})
    assert "kms:Decrypt" in _allowed(template, "ClassifyFunctionRole")
    policies = plain["Resources"]["ClassifyFunctionRole"]["Properties"]["Policies"]
    (kms,) = [p for p in policies if "Fn::If" in p and p["Fn::If"][0] == "HasSourceKmsKeys"]
    statement = kms["Fn::If"][1]["PolicyDocument"]["Statement"][0]
    assert statement["Action"] == "kms:Decrypt"
    assert statement["Resource"] == {"Fn::Split": [",", {"Ref": "SourceKmsKeyArns"}]}
    assert kms["Fn::If"][2] == {"Ref": "AWS::NoValue"}  # no keys named: no kms:Decrypt at all
