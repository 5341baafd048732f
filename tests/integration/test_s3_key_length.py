"""S3's 1,024-byte key limit on the local stack, as on AWS (`pipeline/local/s3_key_length.py`)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from pipeline.aws.errors import error_code

pytestmark = pytest.mark.integration

LONGEST = "k/" + "é" * 511  # 2 + 1,022 bytes: characters are not bytes


def _refused(call, **params) -> str:
    with pytest.raises(ClientError) as raised:
        call(**params)
    return error_code(raised.value)


def test_a_key_over_1024_bytes_is_refused_by_every_call_that_creates_an_object(bucket):
    s3 = boto3.client("s3")
    assert len(LONGEST.encode()) == 1024
    s3.put_object(Bucket=bucket, Key=LONGEST, Body=b"x")  # at the limit: taken
    long = LONGEST + "e"
    assert _refused(s3.put_object, Bucket=bucket, Key=long, Body=b"x") == "KeyTooLongError"
    source = {"Bucket": bucket, "Key": LONGEST}
    copy = s3.copy_object
    assert _refused(copy, Bucket=bucket, Key=long, CopySource=source) == "KeyTooLongError"
    start = s3.create_multipart_upload
    assert _refused(start, Bucket=bucket, Key=long) == "KeyTooLongError"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == [LONGEST]  # nothing was stored under the long key
