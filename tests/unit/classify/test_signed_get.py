"""The lean GET's request is botocore's own, byte for byte: URL, scope and signature.

No network: a `before-send` hook captures the request boto3 built (the real endpoint rules for
real AWS regions, virtual-host and path style) and stops the call; the lean path's request for
the same key, at the same instant, must carry the same URL and the same Authorization header.
The GETs themselves against the S3 emulator are in tests/integration/test_signed_get_s3.py.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import zlib
from unittest import mock

import boto3
import pytest
from botocore.config import Config

from pipeline.classify.signed_get import (
    _CHECKSUMS,
    Route,
    _checksum_ok,
    learn_route,
    signed_request,
)

NOW = datetime.datetime(2026, 12, 3, 11, 0, 0)


class _Sent(Exception):
    pass


def botocore_request(client, **params):
    """(url, headers) of the GetObject botocore would send, captured before the wire."""
    seen = {}

    def capture(request, **_):
        seen["url"], seen["headers"] = request.url, request.headers
        raise _Sent

    client.meta.events.register("before-send.s3.GetObject", capture)
    try:
        with (
            mock.patch("botocore.auth.get_current_datetime", return_value=NOW),
            pytest.raises(_Sent),
        ):
            client.get_object(**params)
    finally:
        client.meta.events.unregister("before-send.s3.GetObject", capture)
    return seen["url"], seen["headers"]


def text(value):
    """A prepared request's header value as str (botocore keeps some as bytes)."""
    return value.decode() if isinstance(value, bytes) else value


def client(region, *, token=None, endpoint=None, **config):
    return boto3.client(
        "s3",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        aws_session_token=token,
        config=Config(**config),
    )


CASES = [
    ("eu-west-1", None, None, "photos", "a/b c+d/é.jpg", None),  # virtual host, regional
    ("us-east-1", "session-token", None, "photos", "k.jpg", "v1/2+3"),  # token, version id
    ("us-west-2", None, None, "dots.in.name", "x~y/z.jpg", None),  # dots: path style on https
    ("us-east-1", None, "http://127.0.0.1:5000", "local", "a b/c.JPEG", None),  # custom endpoint
    ("ap-south-1", None, None, "photos", "deep/er/key", "null"),
]


@pytest.mark.parametrize("case", CASES)
def test_lean_request_is_the_one_botocore_signs(case):
    region, token, endpoint, bucket, key, version = case
    s3 = client(region, token=token, endpoint=endpoint)
    params = {"Bucket": bucket, "Key": key} | ({"VersionId": version} if version else {})
    first_url, first_headers = botocore_request(s3, Bucket=bucket, Key="seed.jpg")
    route = learn_route(first_url, first_headers, "seed.jpg")
    assert route is not None
    assert route.region == region
    url, headers = botocore_request(s3, **params)
    credentials = s3._request_signer._credentials.get_frozen_credentials()
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        lean_url, lean_headers = signed_request(route, credentials, key, version)
    assert lean_url == url
    assert lean_headers["Authorization"] == text(headers["Authorization"])
    for name in ("X-Amz-Date", "X-Amz-Content-SHA256", "x-amz-checksum-mode"):
        assert lean_headers.get(name) == text(headers.get(name))
    assert lean_headers.get("X-Amz-Security-Token") == token


def test_requests_signing_more_than_the_lean_path_reproduces_are_not_learned():
    s3 = client("eu-west-1")
    sse_c = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "k" * 32}
    url, headers = botocore_request(s3, Bucket="photos", Key="k.jpg", **sse_c)
    assert learn_route(url, headers, "k.jpg") is None
    url, headers = botocore_request(s3, Bucket="photos", Key="k.jpg", RequestPayer="requester")
    assert learn_route(url, headers, "k.jpg") is None


def test_unsigned_and_foreign_requests_are_not_learned():
    assert learn_route("https://b.s3.amazonaws.com/k", {}, "k") is None
    sigv4a = {"Authorization": "AWS4-ECDSA-P256-SHA256 Credential=A/20261203/s3/aws4_request, "}
    assert learn_route("https://b.s3.amazonaws.com/k", sigv4a, "k") is None
    url, headers = botocore_request(client("eu-west-1"), Bucket="photos", Key="k.jpg")
    assert learn_route(url, headers, "another-key.jpg") is None  # not the request of that key


def test_route_keeps_botocores_prefix_and_scope():
    url, headers = botocore_request(client("eu-west-1"), Bucket="photos", Key="a b.jpg")
    assert learn_route(url, headers, "a b.jpg") == Route(
        "https://photos.s3.eu-west-1.amazonaws.com/", "eu-west-1", "s3", "ENABLED"
    )


DATA = b"the object's bytes"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({}, True),  # nothing to check: botocore checks nothing either
        ({"x-amz-checksum-crc32": b64(zlib.crc32(DATA).to_bytes(4, "big"))}, True),
        ({"x-amz-checksum-crc32": b64(zlib.crc32(b"other").to_bytes(4, "big"))}, False),
        ({"x-amz-checksum-sha256": b64(hashlib.sha256(DATA).digest())}, True),
        ({"x-amz-checksum-sha1": b64(hashlib.sha1(b"x").digest())}, False),
        ({"x-amz-checksum-crc32": "AAAAAA==-3"}, True),  # multipart composite: skipped
        ({"x-amz-checksum-sha512": b64(hashlib.sha512(DATA).digest())}, True),
        # S3's default for new objects: botocore without awscrt checks nothing, nor does this
        ({"x-amz-checksum-crc64nvme": "AAAAAAAAAAA="}, True),
        ({"x-amz-checksum-crc32c": "AAAAAA=="}, True),
        (
            {  # past what botocore cannot compute, the first it can: crc32 here, wrong
                "x-amz-checksum-crc64nvme": "AAAAAAAAAAA=",
                "x-amz-checksum-crc32": b64(zlib.crc32(b"other").to_bytes(4, "big")),
            },
            False,
        ),
    ],
)
def test_checksums_are_checked_as_botocore_would_or_left_to_it(headers, ok):
    assert _checksum_ok(headers, DATA) is ok


def test_the_checksums_checked_are_those_botocore_validates_in_its_order():
    # without awscrt (not locked): crc32, sha1, sha256, sha512, in botocore's priority order
    assert _CHECKSUMS == ("crc32", "sha1", "sha256", "sha512")
