"""The tracing wrapper over the real aws-xray-sdk, sending to a UDP listener like the daemon."""

from __future__ import annotations

import socket

import orjson
import pytest
from aws_xray_sdk.core import xray_recorder

from pipeline.observe.tracing import xray_tracer

pytestmark = pytest.mark.integration


@pytest.fixture
def daemon():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


def test_spans_reach_the_daemon_as_subsegments_with_annotations(daemon):
    host, port = daemon.getsockname()
    tracer = xray_tracer(is_enabled=True, patch_sdk=False, daemon_address=f"{host}:{port}")
    xray_recorder.begin_segment("classify")
    try:
        with tracer.span("fetch", annotations={"run": "r1", "chunk": 7}) as span:
            span.metadata("bytes", 1234)
        with pytest.raises(ValueError), tracer.span("decode"):
            raise ValueError("corrupt")
    finally:
        xray_recorder.end_segment()
    header, body = daemon.recv(65_536).split(b"\n", 1)
    assert orjson.loads(header) == {"format": "json", "version": 1}
    segment = orjson.loads(body)
    fetch, decode = segment["subsegments"]
    assert (fetch["name"], fetch["annotations"]) == ("fetch", {"run": "r1", "chunk": 7})
    assert fetch["metadata"]["lambdaflow"] == {"bytes": 1234}
    assert decode["name"] == "decode" and decode["fault"] is True


def test_no_active_segment_is_a_noop(daemon):
    host, port = daemon.getsockname()
    tracer = xray_tracer(is_enabled=True, patch_sdk=False, daemon_address=f"{host}:{port}")
    with tracer.span("fetch", annotations={"run": "r"}) as span:
        span.metadata("bytes", 1)
    daemon.settimeout(0.2)
    with pytest.raises(TimeoutError):
        daemon.recv(65_536)
