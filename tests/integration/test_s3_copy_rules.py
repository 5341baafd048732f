"""S3's copy rules on the local stack, as on AWS: the source's ETag condition, 5 GB a CopyObject.

moto copied whatever the source held and any size in one call; `pipeline/local/s3_copy_rules.py`
refuses both as AWS does. The size limit is lowered for the test (a 5 GB object is not written).
"""

from __future__ import annotations

import uuid

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from pipeline.aws.errors import error_code
from pipeline.ledger.submit import submit_manifest
from pipeline.local import s3_copy_rules

pytestmark = pytest.mark.integration

MIB = 1024**2


@pytest.fixture
def buckets(emulator) -> tuple[str, str]:
    s3 = boto3.client("s3")
    names = (f"src-{uuid.uuid4().hex[:10]}", f"in-{uuid.uuid4().hex[:10]}")
    for name in names:
        s3.create_bucket(Bucket=name)
    return names


def test_a_copy_on_an_etag_the_source_no_longer_has_is_refused(buckets):
    source, target = buckets
    s3 = boto3.client("s3")
    old = s3.put_object(Bucket=source, Key="m.csv", Body=b"b,one.jpg\n")["ETag"]
    new = s3.put_object(Bucket=source, Key="m.csv", Body=b"b,two.jpg\n")["ETag"]
    copy = {"Bucket": source, "Key": "m.csv"}
    # a copy on the ETag it has goes through; on the one it had, 412 and nothing copied
    s3.copy_object(Bucket=target, Key="now.csv", CopySource=copy, CopySourceIfMatch=new)
    with pytest.raises(ClientError) as refused:
        s3.copy_object(Bucket=target, Key="then.csv", CopySource=copy, CopySourceIfMatch=old)
    assert error_code(refused.value) == "PreconditionFailed"
    assert s3.list_objects_v2(Bucket=target, Prefix="then.csv")["KeyCount"] == 0
    # the same for a part copied in a multipart copy
    upload = s3.create_multipart_upload(Bucket=target, Key="part.csv")["UploadId"]
    with pytest.raises(ClientError) as part_refused:
        s3.upload_part_copy(
            Bucket=target,
            Key="part.csv",
            UploadId=upload,
            PartNumber=1,
            CopySource=copy,
            CopySourceIfMatch=old,
        )
    assert error_code(part_refused.value) == "PreconditionFailed"


def test_one_copy_object_takes_at_most_the_limit_and_a_manifest_past_it_is_copied_in_parts(
    buckets, monkeypatch
):
    # GIVEN a CopyObject limit of 6 MiB (AWS's is 5 GB) and a 9 MiB manifest in another bucket
    monkeypatch.setattr(s3_copy_rules, "COPY_MAX_BYTES", 6 * MIB)
    source, target = buckets
    s3 = boto3.client("s3")
    body = b"b,k.jpg\n" * (9 * MIB // 8)
    s3.put_object(Bucket=source, Key="big.csv", Body=body)
    copy = {"Bucket": source, "Key": "big.csv"}
    # WHEN it is copied in one CopyObject THEN it is refused, as AWS refuses one over 5 GB
    with pytest.raises(ClientError) as refused:
        s3.copy_object(Bucket=target, Key="one-call.csv", CopySource=copy)
    assert error_code(refused.value) == "InvalidRequest"
    # AND `lambdaflow run`'s submit copies it all the same, in parts
    obj = submit_manifest(s3, target, f"s3://{source}/big.csv")
    assert s3.get_object(Bucket=target, Key=obj.key)["Body"].read() == body
    # (boto3's managed copy goes multipart past 8 MiB by default: the path a 5 GB one takes)
    assert TransferConfig().multipart_threshold == 8 * MIB
