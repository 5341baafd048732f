"""Spans for X-Ray, behind one tiny seam so an OpenTelemetry exporter can replace aws-xray-sdk.

aws-xray-sdk is in maintenance mode (end of support 2027-02-25): nothing outside this module
imports it. Callers write ``with span("fetch", annotations={"run": run, "chunk": n}) as s:`` and
may add ``s.metadata("bytes", total)`` once they know it. With tracing off, or with no segment
active (outside Lambda, no local daemon), `span` returns one shared do-nothing object: no import,
no allocation, no SDK call. `MemoryRecorder` is the fake for unit tests.

Past the ~300-line guide on purpose: the seam is only worth having if every X-Ray detail (the
recorder, the emitter's daemon address, the Lambda invocation segment) lives behind it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

AnnotationValue = str | int | float | bool


class SubsegmentLike(Protocol):
    """What the SDK's `Subsegment` offers that we use."""

    def put_annotation(self, key: str, value: AnnotationValue) -> None: ...  # noqa: D102
    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...  # noqa: D102
    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None: ...  # noqa: D102


class Recorder(Protocol):
    """The part of the X-Ray recorder a span needs (`xray_recorder` satisfies it)."""

    def begin_subsegment(self, name: str, namespace: str = "local") -> SubsegmentLike | None: ...  # noqa: D102
    def end_subsegment(self) -> None: ...  # noqa: D102


class _Subsegment:
    """A subsegment begun on entry and ended on exit, the exception recorded on it.

    Never raises for tracing's sake: with no segment to hang it on (the SDK raises
    SegmentNotFoundException) the block runs untraced.
    """

    __slots__ = ("_name", "_recorder", "_subsegment")

    def __init__(self, recorder: Recorder, name: str) -> None:
        self._recorder = recorder
        self._name = name
        self._subsegment: Any = None

    def _begin(self, namespace: str) -> None:
        try:
            self._subsegment = self._recorder.begin_subsegment(self._name, namespace)
        except Exception:  # SDK raises SegmentNotFoundException with no segment
            self._subsegment = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._subsegment is None:
            return
        if exc is not None:
            self._subsegment.add_exception(exc, [], False)  # SDK's positional API
        self._recorder.end_subsegment()


class Span(_Subsegment):
    """An open subsegment; annotations are indexed and searchable, metadata is not."""

    __slots__ = ("_annotations", "_metadata")

    def __init__(
        self,
        recorder: Recorder,
        name: str,
        annotations: dict[str, AnnotationValue] | None,
        metadata: dict[str, Any] | None,
    ) -> None:
        super().__init__(recorder, name)
        self._annotations = annotations
        self._metadata = metadata

    def annotate(self, key: str, value: AnnotationValue) -> None:
        """Add an indexed annotation (`run`, `chunk` …); key: letters, digits, underscores."""
        if self._subsegment is not None:
            self._subsegment.put_annotation(key, value)

    def metadata(self, key: str, value: Any) -> None:
        """Add non-indexed detail (counts, bytes)."""
        if self._subsegment is not None:
            self._subsegment.put_metadata(key, value, "lambdaflow")

    def __enter__(self) -> Span:
        self._begin("local")
        for key, value in (self._annotations or {}).items():
            self.annotate(key, value)
        for key, value in (self._metadata or {}).items():
            self.metadata(key, value)
        return self


class AwsCall(_Subsegment):
    """An open ``aws`` subsegment around one AWS call made without botocore (see `aws_call`)."""

    __slots__ = ("_aws",)

    def __init__(self, recorder: Any, name: str, aws: dict[str, str]) -> None:
        super().__init__(recorder, name)
        self._aws = aws

    def trace_headers(self) -> dict[str, str]:
        """The ``X-Amzn-Trace-Id`` header naming this subsegment, as the SDK's patch injects."""
        sub = self._subsegment
        if sub is None or not hasattr(sub, "trace_id"):
            return {}
        sampled = 1 if getattr(sub, "sampled", True) else 0
        return {"X-Amzn-Trace-Id": f"Root={sub.trace_id};Parent={sub.id};Sampled={sampled}"}

    def status(self, code: int) -> None:
        """Record the HTTP status (a 4xx marks the subsegment an error, a 5xx a fault)."""
        if self._subsegment is not None:
            self._subsegment.put_http_meta("status", code)
            self._subsegment.apply_status_code(code)

    def __enter__(self) -> AwsCall:
        self._begin("aws")
        if self._subsegment is not None:
            self._subsegment.set_aws(self._aws)
        return self


class _NoopSpan:
    """The shared span when tracing is off: every method does nothing."""

    __slots__ = ()

    def annotate(self, key: str, value: AnnotationValue) -> None:
        """Do nothing."""

    def metadata(self, key: str, value: Any) -> None:
        """Do nothing."""

    def trace_headers(self) -> dict[str, str]:
        """No trace header to inject."""
        return {}

    def status(self, code: int) -> None:
        """Do nothing."""

    def __enter__(self) -> _NoopSpan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


NOOP_SPAN = _NoopSpan()


class Tracer:
    """Makes spans on `recorder`, or the shared no-op span when `recorder` is None."""

    __slots__ = ("_recorder",)

    def __init__(self, recorder: Recorder | None = None) -> None:
        self._recorder = recorder

    @property
    def is_enabled(self) -> bool:
        """True when spans reach a recorder."""
        return self._recorder is not None

    def span(
        self,
        name: str,
        *,
        annotations: dict[str, AnnotationValue] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Span | _NoopSpan:
        """A context manager for one subsegment named `name`."""
        if self._recorder is None:
            return NOOP_SPAN
        return Span(self._recorder, name, annotations, metadata)


def _is_not_missing_segment_noise(record: logging.LogRecord) -> bool:
    """Drop the SDK's per-call warning for a call made outside any segment.

    With boto3 patched, every AWS call on a thread without a segment (the fetch pool's S3 GETs,
    timed by `StageClock` instead) makes the SDK log this at WARNING even with
    ``context_missing="IGNORE_ERROR"``: a thousand lines per chunk that say nothing.
    """
    return not str(record.msg).startswith("No segment found, cannot begin subsegment")


def xray_tracer(
    *, is_enabled: bool, patch_sdk: bool = True, daemon_address: str | None = None
) -> Tracer:
    """The tracer for `Settings.is_tracing_enabled`: X-Ray's recorder, boto3 calls patched.

    Imports aws-xray-sdk only when enabled, so a run without tracing never loads it. A span
    with no active segment (outside Lambda, no daemon) is silently a no-op. `daemon_address`
    ("127.0.0.1:2000") points the SDK's UDP emitter at the local stack's stand-in daemon.
    """
    if not is_enabled:
        return Tracer(None)
    from aws_xray_sdk.core import patch, xray_recorder  # noqa: PLC0415  # lazy: only when on

    # sampling=False: segments we open are always recorded. On Lambda the service decides (the
    # facade segment) and this setting is not consulted; locally it keeps the SDK's sampler
    # from polling the daemon's TCP sampling endpoint, which the UDP stand-in does not serve.
    xray_recorder.configure(context_missing="IGNORE_ERROR", sampling=False)
    if daemon_address:
        _point_emitter(xray_recorder, daemon_address)
    sdk_logger = logging.getLogger("aws_xray_sdk.core.recorder")
    if _is_not_missing_segment_noise not in sdk_logger.filters:
        sdk_logger.addFilter(_is_not_missing_segment_noise)
    if patch_sdk:
        patch(("botocore",))
    return Tracer(xray_recorder)


def _point_emitter(recorder: Any, daemon_address: str) -> None:
    """Send the SDK's segments to `daemon_address` ("host:port") from now on.

    The SDK's setters let AWS_XRAY_DAEMON_ADDRESS win over any address given in code (it is
    Lambda's contract); an explicit address here must win, so it is set directly.
    """
    host, _, port = daemon_address.rpartition(":")
    emitter = recorder.emitter
    emitter._ip, emitter._port = host, int(port)  # see above


_active = Tracer(None)


def configure(tracer: Tracer) -> None:
    """Install the process-wide tracer (a handler does this once, at cold start)."""
    global _active  # noqa: PLW0603  # one recorder per process, like the SDK's own
    _active = tracer


def span(
    name: str,
    *,
    annotations: dict[str, AnnotationValue] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Span | _NoopSpan:
    """A span on the process-wide tracer (a no-op until `configure` installs one)."""
    return _active.span(name, annotations=annotations, metadata=metadata)


def aws_call(
    service: str, operation: str, *, region: str, bucket: str, key: str
) -> AwsCall | _NoopSpan:
    """The subsegment the SDK's botocore patch records, for an S3 call made without botocore.

    Used by `pipeline.classify.signed_get`: namespace ``aws``, named by the service, with the
    operation, region, bucket and key, the HTTP status, and the trace header to send.
    """
    recorder = _active._recorder  # same module
    if recorder is None:
        return NOOP_SPAN
    aws = {"operation": operation, "region": region, "bucket_name": bucket, "key": key}
    return AwsCall(recorder, service, aws)


@dataclass(slots=True)
class RecordedSpan:
    """One span as `MemoryRecorder` saw it (mutable: it fills in while open)."""

    name: str
    parent: str | None
    annotations: dict[str, AnnotationValue] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    is_closed: bool = False
    namespace: str = "local"
    aws: dict[str, str] = field(default_factory=dict)
    http: dict[str, int] = field(default_factory=dict)

    def put_annotation(self, key: str, value: AnnotationValue) -> None:
        """Record an annotation."""
        self.annotations[key] = value

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        """Record metadata (namespace ignored)."""
        self.metadata[key] = value

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        """Record the exception that closed the span."""
        self.error = exception

    def set_aws(self, aws: dict[str, str]) -> None:
        """Record an AWS call's details (operation, region, resource)."""
        self.aws = dict(aws)

    def put_http_meta(self, key: str, value: int) -> None:
        """Record an HTTP detail (the status)."""
        self.http[key] = value

    def apply_status_code(self, status: int) -> None:
        """Nothing to flag in memory: the status is in `http`."""


@dataclass(slots=True)
class MemoryRecorder:
    """An in-memory recorder for unit tests: `spans` in start order, nesting by `parent`."""

    spans: list[RecordedSpan] = field(default_factory=list)
    _open: list[RecordedSpan] = field(default_factory=list)

    def begin_subsegment(self, name: str, namespace: str = "local") -> RecordedSpan:
        """Open a span under the innermost open one."""
        parent = self._open[-1].name if self._open else None
        recorded = RecordedSpan(name=name, parent=parent, namespace=namespace)
        self.spans.append(recorded)
        self._open.append(recorded)
        return recorded

    def end_subsegment(self) -> None:
        """Close the innermost open span."""
        self._open.pop().is_closed = True


class _Invocation:
    """A root segment around one local invocation; see `invocation`."""

    __slots__ = ("_daemon_address", "_name", "_recorder")

    def __init__(self, recorder: Any, name: str, daemon_address: str | None) -> None:
        self._recorder = recorder
        self._name = name
        self._daemon_address = daemon_address

    def __enter__(self) -> None:
        if self._daemon_address:
            _point_emitter(self._recorder, self._daemon_address)
        # sampling=1: every local invocation is traced (the SDK's default rule keeps only one
        # trace a second, and a local run wants them all; on AWS the service decides).
        self._recorder.begin_segment(self._name, sampling=1)

    def __exit__(self, *exc_info: object) -> None:
        self._recorder.end_segment()


def invocation(name: str, *, daemon_address: str | None = None) -> _Invocation | _NoopSpan:
    """A root segment named `name` around one invocation, for the local stack only.

    On Lambda the service opens the function's segment and the SDK adds subsegments to it; the
    local runtime has no such service, so it wraps each handler call in this. With tracing off
    (or a recorder that cannot open segments, like `MemoryRecorder`) it does nothing.

    `daemon_address` is the function's AWS_XRAY_DAEMON_ADDRESS. On Lambda each function has a
    process (and an SDK) of its own; locally the functions share the host process's one SDK,
    which read the variable once, when first imported (perhaps before the stack set it), and
    which anything else in the process may point elsewhere. So each invocation points the SDK
    at its function's daemon again.
    """
    recorder = _active._recorder  # same module
    if recorder is None or not hasattr(recorder, "begin_segment"):
        return NOOP_SPAN
    return _Invocation(recorder, name, daemon_address)


class StageClock:
    """Per-stage busy time and counts, summed across threads, for one span's metadata.

    A chunk fetches and decodes its images on a thread pool: a subsegment per image would put
    thousands of entries in one trace (X-Ray caps a segment document at 64 KB) and the SDK's
    thread-local context does not follow pool threads anyway. Workers time each step here
    instead, and the chunk span carries the sums: ``span.metadata("stages", clock.snapshot())``,
    which `pipeline.observe.traces` reads back as busy seconds per stage.
    """

    __slots__ = ("_counts", "_lock", "_seconds")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def add(self, stage: str, seconds: float, count: int = 1) -> None:
        """Account `seconds` of work (and `count` items) to `stage`; thread-safe."""
        with self._lock:
            self._seconds[stage] = self._seconds.get(stage, 0.0) + seconds
            self._counts[stage] = self._counts.get(stage, 0) + count

    @contextlib.contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        """Time the body as one item of `stage` (counted even when it raises)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - started)

    def snapshot(self) -> dict[str, dict[str, float | int]]:
        """``{stage: {"s": busy_seconds, "n": items}}`` — a few bytes per stage, any chunk size."""
        with self._lock:
            return {
                stage: {"s": round(seconds, 6), "n": self._counts[stage]}
                for stage, seconds in self._seconds.items()
            }
