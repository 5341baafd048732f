"""template.yaml is deployable as it stands: the hardening checklist.

Asserted on the template as SAM translates it (what CloudFormation deploys), with the optional
parts switched on (an images bucket, an allowlist, an alarm topic). test_template.py covers the
event-source and ASL halves of §10; this file covers encryption, access, IAM scope, aliases,
alarms, logging and Outputs. cfn-lint, `sam validate --lint` and checkov run in `make lint`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline.aws.stack_outputs import REQUIRED_OUTPUTS
from pipeline.local.template import load_sam_template, translate_template

PARAMETERS = {
    "CreateImagesBucket": "true",
    "SourceBuckets": "photos-a,photos-b",
    "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:ops",
}
ONE_MIB = 1024 * 1024
WRITE_ACTIONS = {"s3:PutObject", "s3:DeleteObject", "s3:*", "s3:AbortMultipartUpload"}
UNSCOPED_ALLOWED = {
    # Step Functions log delivery: these actions accept no resource ARN (AWS documentation).
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    # Task tokens of service integrations (AwaitChunks' .waitForTaskToken) cannot be scoped by
    # IAM to a state machine: Step Functions' callback APIs take no resource for them.
    "states:SendTaskSuccess",
    "states:SendTaskHeartbeat",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return translate_template(parameters=PARAMETERS)


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _default(template: dict[str, Any], value: Any) -> Any:
    """A literal, or the default (or local override) of the parameter it refs."""
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        return PARAMETERS.get(name, template["Parameters"][name].get("Default"))
    return value


def _statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every statement of the role's inline policies; both branches of a conditional one."""
    for policy in role["Properties"].get("Policies", []):
        branches = policy["Fn::If"][1:] if "Fn::If" in policy else [policy]
        for branch in branches:
            if isinstance(branch, dict) and "PolicyDocument" in branch:
                yield from branch["PolicyDocument"]["Statement"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_buckets_are_encrypted_private_and_tls_only(template):
    buckets = _of_type(template, "AWS::S3::Bucket")
    assert set(buckets) == {"InputBucket", "ResultsBucket", "ImagesBucket"}
    policies = {
        p["Properties"]["Bucket"]["Ref"]: p["Properties"]["PolicyDocument"]
        for p in _of_type(template, "AWS::S3::BucketPolicy").values()
    }
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], name
        block = props["PublicAccessBlockConfiguration"]
        assert all(
            block[k] is True
            for k in (
                "BlockPublicAcls",
                "BlockPublicPolicy",
                "IgnorePublicAcls",
                "RestrictPublicBuckets",
            )
        ), name
        (deny,) = [s for s in policies[name]["Statement"] if s.get("Effect") == "Deny"]
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, name
        assert deny["Principal"] == "*" and deny["Action"] == "s3:*"
        assert len(deny["Resource"]) == 2  # the bucket and its objects


def test_results_are_versioned_and_outlive_the_stack(template):
    results = template["Resources"]["ResultsBucket"]
    assert results["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    table = template["Resources"]["RunsTable"]
    for resource in (results, table):
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"


def test_queues_are_encrypted_and_chunk_queues_take_one_mib(template):
    queues = _of_type(template, "AWS::SQS::Queue")
    for name, queue in queues.items():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or props.get("KmsMasterKeyId"), name
    for name in ("WorkQueue", "WorkDLQ", "FailureQueue"):
        assert queues[name]["Properties"]["MaximumMessageSize"] == ONE_MIB, name


def test_every_dead_letter_queue_and_the_work_backlog_have_alarms(template):
    queues = _of_type(template, "AWS::SQS::Queue")
    dlqs = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    }
    assert dlqs == {"IngestDLQ", "WorkDLQ"}
    watched = {
        (a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0], a["Properties"]["MetricName"])
        for a in _of_type(template, "AWS::CloudWatch::Alarm").values()
    }
    for dlq in (*dlqs, "FailureQueue"):  # the FailureQueue is the dead-letter queue of items
        assert (dlq, "ApproximateNumberOfMessagesVisible") in watched
    assert ("WorkQueue", "ApproximateAgeOfOldestMessage") in watched


def test_the_ledger_is_on_demand_encrypted_and_recoverable(template):
    props = template["Resources"]["RunsTable"]["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}


def test_functions_are_arm64_traced_and_json_logged(template):
    functions = _of_type(template, "AWS::Lambda::Function")
    assert len(functions) == 5
    for name, function in functions.items():
        props = function["Properties"]
        assert props["Architectures"] == ["arm64"], name
        assert props["Runtime"] in {"python3.12", "python3.13"}, name
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert props["LoggingConfig"]["LogFormat"] == "JSON", name


def test_every_function_is_published_behind_the_live_alias_and_called_through_it(template):
    functions = _of_type(template, "AWS::Lambda::Function")
    aliases = _of_type(template, "AWS::Lambda::Alias")
    aliased = {a["Properties"]["FunctionName"]["Ref"]: k for k, a in aliases.items()}
    assert set(aliased) == set(functions)
    assert {a["Properties"]["Name"] for a in aliases.values()} == {"live"}
    for mapping in _of_type(template, "AWS::Lambda::EventSourceMapping").values():
        assert mapping["Properties"]["FunctionName"]["Ref"] in aliases  # never $LATEST
    substitutions = template["Resources"]["PipelineStateMachine"]["Properties"][
        "DefinitionSubstitutions"
    ]
    assert {v["Ref"] for v in substitutions.values()} <= set(aliases)


def test_classify_scaling_knobs_are_parameters(template):
    (mapping,) = [
        m["Properties"]
        for m in _of_type(template, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0] == "WorkQueue"
    ]
    assert mapping["BatchSize"] == {"Ref": "ClassifyBatchSize"}
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "ClassifyMaxConcurrency"}}
    concurrency = template["Parameters"]["ClassifyMaxConcurrency"]
    assert concurrency["MinValue"] >= 2 and concurrency["MaxValue"] <= 1000  # Lambda's range


def test_the_state_machine_logs_and_traces(template):
    props = template["Resources"]["PipelineStateMachine"]["Properties"]
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] in {"ERROR", "ALL"}
    (destination,) = logging["Destinations"]
    group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert template["Resources"][group]["Properties"]["RetentionInDays"]


def test_no_role_has_full_access_wildcards_or_unscoped_resources(template):
    for name, role in _of_type(template, "AWS::IAM::Role").items():
        managed = json.dumps(role["Properties"].get("ManagedPolicyArns", []))
        assert "FullAccess" not in managed, name
        for statement in _statements(role):
            if statement["Effect"] != "Allow":
                continue
            actions = set(_as_list(statement["Action"]))
            assert not any(a == "*" or a.endswith(":*") for a in actions), (name, actions)
            if statement["Resource"] == "*" or "*" in _as_list(statement["Resource"]):
                assert actions <= UNSCOPED_ALLOWED, (name, actions)


def test_classify_writes_only_the_results_prefixes_and_reads_only_the_allowlist(template):
    role = template["Resources"]["ClassifyFunctionRole"]
    writes, reads = [], []
    for statement in _statements(role):
        actions = set(_as_list(statement["Action"]))
        resources = json.dumps(statement["Resource"])
        if actions & WRITE_ACTIONS:
            writes.append(resources)
        if "s3:GetObject" in actions:
            reads.append(resources)
    assert writes, "classify must write its parts"
    for resources in writes:  # only results/… and failures/… of the results bucket
        assert "ResultsBucket" in resources and "/results/*" in resources, resources
        assert "/failures/*" in resources and "ImagesBucket" not in resources
    readable = " ".join(reads)
    assert "SourceBuckets" in readable  # the allowlist parameter, built into object ARNs
    assert "ImagesBucket" in readable  # the stack's own demo bucket, when created
    assert "InputBucket" not in readable  # classify never reads manifests


def test_every_checkov_waiver_says_why():
    for name, resource in load_sam_template()["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip["id"].startswith("CKV"), name
            assert len(skip.get("comment", "")) > 40, (name, skip["id"])  # a reason, not a shrug


def test_outputs_name_everything_the_cli_needs(template):
    outputs = set(template["Outputs"])
    assert set(REQUIRED_OUTPUTS) <= outputs
    assert {"WorkQueueUrl", "WorkDLQUrl", "FailureQueueUrl", "IngestDLQUrl"} <= outputs
    assert {f"{f}FunctionName" for f in ("Split", "Classify", "Finalize")} <= outputs
