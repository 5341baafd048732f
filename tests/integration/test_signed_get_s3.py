"""The lean signed GET against the S3 emulator over HTTP: same bytes, same errors as boto3.

A bucket's first GET goes through boto3 and teaches the route; later GETs skip botocore
(counted with a `before-parameter-build` hook). Every way the lean path can go wrong ends in the
boto3 GET and its failure record. A small HTTP server on 127.0.0.1 stands in for an S3 that
answers 503, or to see the headers sent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer

import boto3
import orjson
import pytest
from aws_xray_sdk.core import xray_recorder

from pipeline.classify.fetch import fetch_image
from pipeline.classify.signed_get import SignedGetter
from pipeline.failures import FailureRecord, ImageFetchError
from pipeline.observe import tracing
from tests import photos

pytestmark = pytest.mark.integration

MAX_BYTES = 1024 * 1024


@pytest.fixture
def sdk_calls(s3) -> list[str]:
    """The GetObject calls made through botocore (the lean path makes none)."""
    calls: list[str] = []

    def count(params, **_):
        calls.append(params["Key"])

    s3.meta.events.register("before-parameter-build.s3.GetObject", count)
    yield calls
    s3.meta.events.unregister("before-parameter-build.s3.GetObject", count)


def get(getter, bucket, key, version_id=None, max_bytes=MAX_BYTES) -> bytes:
    return getter.get(bucket, key, max_bytes=max_bytes, version_id=version_id)


def test_first_get_teaches_the_route_then_gets_skip_botocore(s3, bucket, sdk_calls):
    keys = ["seed.jpg", "a b/c+d.jpg", "ünï/cödé~1.jpg", "x%20y.jpg"]
    for n, key in enumerate(keys):
        s3.put_object(Bucket=bucket, Key=key, Body=photos.photo_bytes("coffee") + bytes([n]))
    getter = SignedGetter(s3, pool_size=4)
    got = [get(getter, bucket, key) for key in keys]
    assert got == [photos.photo_bytes("coffee") + bytes([n]) for n in range(len(keys))]
    assert sdk_calls == ["seed.jpg"]
    assert getter.route(bucket).prefix.endswith(f"/{bucket}/")


def test_versions_are_read_on_the_lean_path(s3, bucket, sdk_calls):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket=bucket, Key="k.jpg", Body=b"old")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k.jpg", Body=b"new")
    getter = SignedGetter(s3, pool_size=4)
    assert get(getter, bucket, "k.jpg") == b"new"
    assert get(getter, bucket, "k.jpg", version_id=old) == b"old"
    assert get(getter, bucket, "k.jpg") == b"new"
    assert sdk_calls == ["k.jpg"]


@pytest.mark.parametrize(
    "case",
    [("missing.jpg", None, "NoSuchKey"), ("k.jpg", "nonexistentversion", "NoSuchVersion")],
)
def test_errors_on_a_learned_route_are_the_sdks_records(s3, bucket, sdk_calls, case):
    key, version_id, error = case
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="k.jpg", Body=b"x")
    getter = SignedGetter(s3, pool_size=4)
    get(getter, bucket, "k.jpg")  # learns the route
    with pytest.raises(ImageFetchError) as lean:
        get(getter, bucket, key, version_id)
    with pytest.raises(ImageFetchError) as sdk:
        fetch_image(s3, bucket, key, max_bytes=MAX_BYTES, version_id=version_id)
    records = [
        FailureRecord.from_exception(caught.value, run="r", line=1, bucket=bucket, key=key)
        for caught in (lean, sdk)
    ]
    assert records[0] == records[1]
    assert records[0].error == error
    assert sdk_calls == ["k.jpg", key, key]  # the lean try failed over to boto3


def test_over_the_limit_is_refused_on_the_lean_path(s3, bucket, sdk_calls):
    s3.put_object(Bucket=bucket, Key="seed.jpg", Body=b"x")
    s3.put_object(Bucket=bucket, Key="big.jpg", Body=photos.photo_bytes("coffee"))
    getter = SignedGetter(s3, pool_size=4)
    get(getter, bucket, "seed.jpg")
    with pytest.raises(ImageFetchError) as caught:
        get(getter, bucket, "big.jpg", max_bytes=10_000)
    assert caught.value.error == "ObjectTooLarge"
    assert str(len(photos.photo_bytes("coffee"))) in caught.value.message
    assert sdk_calls == ["seed.jpg"]


class _Recorder(BaseHTTPRequestHandler):
    status = 200
    seen: list

    def do_GET(self) -> None:
        self.seen.append(dict(self.headers.items()))
        body = b"from the stand-in"
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def stand_in() -> Iterator[type[_Recorder]]:
    """An HTTP server on 127.0.0.1 answering every GET with `status`, recording its headers."""
    handler = type("Handler", (_Recorder,), {"seen": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_port}/"
    yield handler
    server.shutdown()
    server.server_close()


def point_at(getter: SignedGetter, bucket: str, prefix: str) -> None:
    getter._routes[bucket] = replace(getter.route(bucket), prefix=prefix)


def test_throttling_fails_over_to_boto3_and_keeps_it_for_the_cool_off(s3, bucket, stand_in):
    s3.put_object(Bucket=bucket, Key="k.jpg", Body=b"real")
    getter = SignedGetter(s3, pool_size=4, cool_off_s=60)
    get(getter, bucket, "k.jpg")
    point_at(getter, bucket, stand_in.url)
    stand_in.status = 503
    assert get(getter, bucket, "k.jpg") == b"real"  # the 503 went to boto3, which read it
    assert get(getter, bucket, "k.jpg") == b"real"  # cooling off: boto3 only
    assert len(stand_in.seen) == 1


def test_an_unreachable_route_fails_over_to_boto3(s3, bucket, sdk_calls):
    s3.put_object(Bucket=bucket, Key="k.jpg", Body=b"real")
    getter = SignedGetter(s3, pool_size=4)
    get(getter, bucket, "k.jpg")
    point_at(getter, bucket, "http://127.0.0.1:9/")  # discard port: connection refused
    assert get(getter, bucket, "k.jpg") == b"real"
    assert get(getter, bucket, "k.jpg") == b"real"  # cooling off: not tried again per GET
    assert sdk_calls == ["k.jpg", "k.jpg", "k.jpg"]


def test_a_client_behind_a_proxy_never_takes_the_lean_path(emulator, bucket, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # boto3 itself still reaches the emulator
    s3 = boto3.client("s3", endpoint_url=emulator.endpoint_url)
    s3.put_object(Bucket=bucket, Key="k.jpg", Body=b"real")
    getter = SignedGetter(s3, pool_size=4)
    assert [get(getter, bucket, "k.jpg") for _ in range(2)] == [b"real", b"real"]
    assert getter.route(bucket) is None


def test_a_traced_lean_get_is_the_sdks_aws_subsegment_and_sends_its_header(
    s3, bucket, stand_in, monkeypatch
):
    """The lean GET's subsegment matches the one the botocore patch records for the same GET."""
    s3.put_object(Bucket=bucket, Key="k.jpg", Body=b"real")
    getter = SignedGetter(s3, pool_size=4)
    get(getter, bucket, "k.jpg")
    point_at(getter, bucket, stand_in.url)
    monkeypatch.setattr(tracing, "_active", tracing.xray_tracer(is_enabled=True))
    emitted = []
    monkeypatch.setattr(xray_recorder.emitter, "send_entity", emitted.append)
    xray_recorder.begin_segment("classify", sampling=1)
    try:
        assert get(getter, bucket, "k.jpg") == b"from the stand-in"
        fetch_image(s3, bucket, "k.jpg", max_bytes=MAX_BYTES)  # traced by the SDK's patch
    finally:
        xray_recorder.end_segment()
    (segment,) = (orjson.loads(e.serialize()) for e in emitted)
    lean, sdk = segment["subsegments"]
    for key in ("name", "namespace"):
        assert lean[key] == sdk[key]
    assert (lean["name"], lean["namespace"]) == ("s3", "aws")
    assert lean["aws"]["operation"] == sdk["aws"]["operation"] == "GetObject"
    assert lean["http"]["response"]["status"] == sdk["http"]["response"]["status"] == 200
    sent = stand_in.seen[-1]["X-Amzn-Trace-Id"]
    assert sent == f"Root={segment['trace_id']};Parent={lean['id']};Sampled=1"
