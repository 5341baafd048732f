"""The local X-Ray daemon stand-in: real SDK → UDP on 127.0.0.1 → PutTraceSegments on moto."""

from __future__ import annotations

import socket
import threading

import boto3
import orjson
import pytest
from botocore.config import Config

from pipeline.local.xray import XRayRelay, start_xray_relay, xray_client
from pipeline.observe import tracing
from pipeline.observe.tracing import xray_tracer
from tests.wait import wait_until

pytestmark = pytest.mark.integration

HEADER = b'{"format": "json", "version": 1}\n'


@pytest.fixture
def relay(emulator):
    with start_xray_relay(emulator.endpoint_url, port=0) as running:
        yield running


@pytest.fixture
def traced(relay):
    """The process-wide tracer pointed at the relay, restored to off afterwards."""
    previous = tracing._active  # in-process handlers of the session's stack installed theirs
    tracer = xray_tracer(is_enabled=True, patch_sdk=False, daemon_address=relay.address)
    tracing.configure(tracer)
    yield tracer
    tracing.configure(previous)


def _send(address: str, payload: bytes) -> None:
    host, port = address.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(payload, (host, int(port)))


def _stored_documents(client, trace_id: str) -> list[dict]:
    traces = client.batch_get_traces(TraceIds=[trace_id])["Traces"]
    return [orjson.loads(s["Document"]) for t in traces for s in t["Segments"]]


def test_sdk_segments_reach_the_emulator_with_their_subsegments(emulator, relay, traced):
    # GIVEN the SDK sending to the relay
    # WHEN one invocation with two spans ends
    with tracing.invocation("lambdaflow-classify"):
        with tracing.span("chunk", annotations={"run": "r-relay", "chunk": 4}) as chunk:
            chunk.metadata("items", 3)
        trace_id = traced._recorder.current_segment().trace_id
    # THEN the emulator's X-Ray API returns the segment, subsegment and annotations intact
    client = xray_client(emulator.endpoint_url)
    (segment,) = wait_until(lambda: _stored_documents(client, trace_id), 10, what="the segment")
    assert segment["name"] == "lambdaflow-classify"
    (sub,) = segment["subsegments"]
    assert sub["annotations"] == {"run": "r-relay", "chunk": 4}
    assert sub["metadata"]["lambdaflow"] == {"items": 3}
    assert relay.stats.malformed == relay.stats.dropped == relay.stats.rejected == 0


def test_datagrams_that_are_not_the_daemon_protocol_are_counted_and_not_forwarded(relay):
    for payload in (b"no header at all", b'{"format": "xml"}\n{}', HEADER + b"[1, 2]", HEADER):
        _send(relay.address, payload)
    _send(relay.address, HEADER + orjson.dumps({"id": "1", "name": "x"}))  # valid shape
    wait_until(lambda: relay.stats.received == 5, 5, what="five datagrams")
    assert relay.wait_idle(5)
    stats = relay.stats
    assert stats.malformed == 4
    # the emulator rejects the incomplete segment (no trace_id): counted, relay still running
    assert stats.forwarded + stats.rejected == 1 and stats.pending == 0


class _BlockedClient:
    """An X-Ray client whose first call blocks until released (a stuck endpoint)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.batches: list[list[str]] = []

    def put_trace_segments(self, TraceSegmentDocuments):  # boto3 names it so
        self.entered.set()
        self.release.wait(10)
        self.batches.append(TraceSegmentDocuments)
        return {"UnprocessedTraceSegments": []}


def test_a_full_buffer_drops_and_counts_instead_of_blocking_the_sender():
    # GIVEN a relay whose endpoint is stuck and whose buffer holds 3 documents
    client = _BlockedClient()
    relay = XRayRelay(client, port=0, max_pending=3)
    try:
        document = HEADER + orjson.dumps({"id": "a", "name": "n", "trace_id": "t"})
        # WHEN one document is stuck in the call and 9 more arrive
        _send(relay.address, document)
        assert client.entered.wait(5)
        for _ in range(9):
            _send(relay.address, document)
        wait_until(lambda: relay.stats.received == 10, 5, what="ten datagrams")
        # THEN 3 are buffered, 6 dropped: the receiver never waited for the stuck sender
        stats = relay.stats
        assert (stats.pending, stats.dropped) == (1 + 3, 6)
    finally:
        client.release.set()
        relay.stop()
    # AND stop() forwarded everything it had kept
    assert sum(len(b) for b in client.batches) == 10 - relay.stats.dropped
    assert relay.stats.pending == 0


def test_an_unreachable_endpoint_is_counted_and_the_relay_keeps_running():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"

    def no_retries(url):
        return boto3.client(
            "xray",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=1),
        )

    with start_xray_relay(dead, port=0, client_factory=no_retries) as relay:
        _send(relay.address, HEADER + orjson.dumps({"id": "a", "name": "n", "trace_id": "t"}))
        wait_until(lambda: relay.stats.rejected == 1, 30, what="the failed call")
        assert relay._threads[1].is_alive()


def test_stop_releases_the_port(emulator):
    relay = start_xray_relay(emulator.endpoint_url, port=0)
    address = relay.address
    relay.stop()
    relay.stop()  # idempotent
    host, port = address.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, int(port)))  # would raise if the relay still held it
