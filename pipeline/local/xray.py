"""A local stand-in for the X-Ray daemon: UDP on 127.0.0.1 → `PutTraceSegments` on the emulator.

No registry ships the X-Ray daemon, yet aws-xray-sdk only ever talks UDP to one. This
relay speaks the daemon's wire protocol — each datagram is the header line
`{"format": "json", "version": 1}` followed by one segment (or subsegment) document — and
forwards the documents in batches to the X-Ray API of the emulator, where `lambdaflow traces`
reads them back. The embedded stack starts one and points its functions at it through
`AWS_XRAY_DAEMON_ADDRESS`, the variable Lambda itself sets.

Like the real daemon it never blocks the traced code: a datagram that arrives while the buffer
is full is dropped and counted (`RelayStats.dropped`), and a batch the API rejects is logged and
counted, never retried forever. Binds to 127.0.0.1 only.

Knows nothing of the pipeline: it moves documents.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import orjson

from pipeline.local.emulator import DUMMY_CREDENTIALS, LOCAL_REGION

if TYPE_CHECKING:
    from collections.abc import Callable

DAEMON_ADDRESS_VARIABLE = "AWS_XRAY_DAEMON_ADDRESS"
"""Where Lambda tells the X-Ray SDK its daemon listens (`host:port`)."""

logger = logging.getLogger(__name__)

DEFAULT_PORT = 2000
"""The daemon's well-known port; tests pass 0 for a free one."""
HEADER = {"format": "json", "version": 1}
MAX_DATAGRAM_BYTES = 65_535
"""A UDP datagram's ceiling, hence X-Ray's 64 KB limit on one segment document."""
BATCH_SIZE = 50
"""Documents per `PutTraceSegments` call (what the real daemon sends at most)."""
_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024
"""Kernel buffer for bursts: a chunk ending emits its documents back to back."""
_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class RelayStats:
    """Counters since start; received = forwarded + dropped + malformed + rejected + pending."""

    received: int
    forwarded: int
    dropped: int
    malformed: int
    rejected: int
    pending: int


class _Counters:
    """Mutable counters behind one lock, shared by the two relay threads."""

    __slots__ = ("dropped", "forwarded", "lock", "malformed", "outstanding", "received", "rejected")

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.received = self.forwarded = self.dropped = self.malformed = self.rejected = 0
        self.outstanding = 0
        """Accepted documents not yet sent or given up: buffered or in a call."""

    def add(self, **deltas: int) -> None:
        with self.lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)
            self.lock.notify_all()


def parse_datagram(datagram: bytes) -> str | None:
    """The segment document of one daemon-protocol datagram, or None when it is not one.

    The header is checked by value, not by bytes (the SDKs differ in spacing); the document must
    be a JSON object, as PutTraceSegments requires.
    """
    header, sep, body = datagram.partition(b"\n")
    if not sep:
        return None
    try:
        if orjson.loads(header) != HEADER or not isinstance(orjson.loads(body), dict):
            return None
    except orjson.JSONDecodeError:
        return None
    return body.decode("utf-8")


class XRayRelay:
    """A running relay; `address` is what `AWS_XRAY_DAEMON_ADDRESS` should say."""

    def __init__(
        self,
        client: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_pending: int = 10_000,
        flush_interval_s: float = 0.2,
    ) -> None:
        self._client = client
        self._flush_interval_s = flush_interval_s
        self._pending: queue.Queue[str] = queue.Queue(maxsize=max_pending)
        self._counters = _Counters()
        self._stopping = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER_BYTES)
        self._sock.bind((host, port))
        self._sock.settimeout(_POLL_S)
        self._threads = [
            threading.Thread(target=self._receive, name="xray-relay-recv", daemon=True),
            threading.Thread(target=self._forward, name="xray-relay-send", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def address(self) -> str:
        """`host:port` of the UDP listener."""
        host, port = self._sock.getsockname()
        return f"{host}:{port}"

    @property
    def env(self) -> dict[str, str]:
        """What a traced process needs to send here (the SDK reads it, as on Lambda)."""
        return {DAEMON_ADDRESS_VARIABLE: self.address}

    @property
    def stats(self) -> RelayStats:
        """A consistent snapshot of the counters."""
        c = self._counters
        with c.lock:
            return RelayStats(
                received=c.received,
                forwarded=c.forwarded,
                dropped=c.dropped,
                malformed=c.malformed,
                rejected=c.rejected,
                pending=c.outstanding,
            )

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until every received document is forwarded (or given up); False on timeout.

        `lambdaflow traces` right after a run, and tests, call this instead of sleeping.
        """
        deadline = time.monotonic() + timeout_s
        c = self._counters
        with c.lock:
            while c.outstanding > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                c.lock.wait(min(remaining, _POLL_S))
        return True

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop listening, forward what is buffered, then return (idempotent)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout_s)
        self._sock.close()
        stats = self.stats
        logger.info("xray relay stopped: %s", stats)

    def __enter__(self) -> XRayRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _receive(self) -> None:
        while not self._stopping.is_set():
            try:
                datagram = self._sock.recv(MAX_DATAGRAM_BYTES)
            except TimeoutError:
                continue
            except OSError:  # socket closed under us
                return
            self._accept(datagram)

    def _accept(self, datagram: bytes) -> None:
        document = parse_datagram(datagram)
        if document is None:
            self._counters.add(received=1, malformed=1)
            logger.warning("xray relay: not a daemon-protocol datagram (%d bytes)", len(datagram))
            return
        self._counters.add(received=1, outstanding=1)  # before the sender can see it
        try:
            self._pending.put_nowait(document)
        except queue.Full:
            self._counters.add(dropped=1, outstanding=-1)

    def _forward(self) -> None:
        while True:
            batch = self._next_batch()
            if batch:
                self._send(batch)
            elif self._stopping.is_set() and self._pending.empty():
                return

    def _next_batch(self) -> list[str]:
        """Up to BATCH_SIZE documents, waiting at most one flush interval for the first."""
        try:
            first = self._pending.get(timeout=self._flush_interval_s)
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < BATCH_SIZE:
            try:
                batch.append(self._pending.get_nowait())
            except queue.Empty:
                break
        return batch

    def _send(self, batch: list[str]) -> None:
        rejected = 0
        try:
            response = self._client.put_trace_segments(TraceSegmentDocuments=batch)
            rejected = len(response.get("UnprocessedTraceSegments", []))
            if rejected:
                logger.warning(
                    "xray relay: %d segments rejected: %s",
                    rejected,
                    response["UnprocessedTraceSegments"][:3],
                )
        except Exception:  # the relay outlives a failing endpoint, as the daemon does
            logger.warning("xray relay: PutTraceSegments failed", exc_info=True)
            rejected = len(batch)
        self._counters.add(
            outstanding=-len(batch), forwarded=len(batch) - rejected, rejected=rejected
        )


def xray_client(endpoint_url: str) -> Any:
    """An X-Ray client for the emulator at `endpoint_url` (dummy credentials, local region)."""
    return boto3.client(
        "xray",
        endpoint_url=endpoint_url,
        region_name=LOCAL_REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def start_xray_relay(
    endpoint_url: str,
    *,
    port: int = DEFAULT_PORT,
    max_pending: int = 10_000,
    client_factory: Callable[[str], Any] = xray_client,
) -> XRayRelay:
    """Listen on 127.0.0.1:`port` (0: a free port) and forward to the emulator's X-Ray API.

    Raises:
        OSError: the port is taken (another daemon or relay runs); pass `port=0`.
    """
    relay = XRayRelay(client_factory(endpoint_url), port=port, max_pending=max_pending)
    logger.info("xray relay on udp://%s → %s", relay.address, endpoint_url)
    return relay
