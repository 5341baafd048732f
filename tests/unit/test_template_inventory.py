"""template.yaml's S3 Inventory option and the input bucket's notification.

`AcceptInventoryReports=true` adds the bucket policy statement S3 Inventory needs to deliver
into the input bucket, and nothing else changes; the ingest function may read the input bucket
(manifest.json and manifest.checksum are checked before a run starts).
"""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.local.intrinsics import PhysicalResource, Resolver
from pipeline.local.template import translate_template

ACCOUNT = "123456789012"


def _input_bucket_statements(accepts: str) -> list[dict[str, Any]]:
    template = translate_template(parameters={"AcceptInventoryReports": accepts})
    parameters = {name: spec.get("Default") for name, spec in template["Parameters"].items()} | {
        "AcceptInventoryReports": accepts,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": "aws",
    }
    resolver = Resolver(parameters=parameters, conditions=template.get("Conditions", {}))
    resolver.resources["InputBucket"] = PhysicalResource(
        ref="in-bucket", attributes={"Arn": "arn:aws:s3:::in-bucket"}
    )
    policy = template["Resources"]["InputBucketPolicy"]["Properties"]["PolicyDocument"]
    return resolver.resolve(policy["Statement"])


def test_inventory_delivery_is_off_by_default():
    template = translate_template(parameters={})
    assert template["Parameters"]["AcceptInventoryReports"]["Default"] == "false"
    sids = [s.get("Sid") for s in _input_bucket_statements("false")]
    assert sids == ["DenyInsecureTransport"]


def test_accepting_inventory_lets_only_this_accounts_s3_put_reports():
    statements = {s["Sid"]: s for s in _input_bucket_statements("true")}
    delivery = statements["InventoryDelivery"]
    assert delivery["Effect"] == "Allow"
    assert delivery["Principal"] == {"Service": "s3.amazonaws.com"}
    assert delivery["Action"] == "s3:PutObject"
    assert delivery["Resource"] == "arn:aws:s3:::in-bucket/*"
    assert delivery["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert "DenyInsecureTransport" in statements  # TLS-only still holds


@pytest.mark.parametrize("accepts", ["true", "false"])
def test_ingest_reads_the_input_bucket_for_the_checksum(accepts):
    template = translate_template(parameters={"AcceptInventoryReports": accepts})
    role = template["Resources"]["IngestFunctionRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    reads = [s for s in statements if "s3:GetObject" in s["Action"]]
    assert reads, "ingest cannot read manifest.json / manifest.checksum"
    assert "InputBucket" in str(reads[0]["Resource"])
