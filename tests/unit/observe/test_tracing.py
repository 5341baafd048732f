import pytest

from pipeline.observe import tracing
from pipeline.observe.tracing import NOOP_SPAN, MemoryRecorder, Tracer, xray_tracer


def test_spans_nest_with_annotations_and_metadata():
    recorder = MemoryRecorder()
    tracer = Tracer(recorder)
    with tracer.span("chunk", annotations={"run": "r1", "chunk": 3}) as outer:
        with tracer.span("fetch", metadata={"bytes": 10}) as inner:
            inner.metadata("images", 4)
        outer.annotate("failed", 1)
    chunk, fetch = recorder.spans
    assert (chunk.name, chunk.parent, chunk.annotations) == (
        "chunk",
        None,
        {"run": "r1", "chunk": 3, "failed": 1},
    )
    assert (fetch.name, fetch.parent, fetch.metadata) == (
        "fetch",
        "chunk",
        {"bytes": 10, "images": 4},
    )
    assert chunk.is_closed and fetch.is_closed


def test_a_span_records_the_exception_and_still_closes():
    recorder = MemoryRecorder()
    with pytest.raises(KeyError), Tracer(recorder).span("decode"):
        raise KeyError("x")
    (span,) = recorder.spans
    assert isinstance(span.error, KeyError) and span.is_closed


def test_disabled_tracer_returns_the_shared_noop_span():
    tracer = xray_tracer(is_enabled=False)
    assert not tracer.is_enabled
    span = tracer.span("fetch", annotations={"run": "r"})
    assert span is NOOP_SPAN
    with span as s:
        s.annotate("k", 1)
        s.metadata("k", 2)


class _NoSegmentRecorder:
    """Like the SDK outside Lambda with no segment: begin returns None or raises."""

    def __init__(self, *, raises: bool) -> None:
        self.raises = raises
        self.ended = 0

    def begin_subsegment(self, name, namespace="local"):
        if self.raises:
            raise RuntimeError("SegmentNotFoundException")

    def end_subsegment(self):
        self.ended += 1


@pytest.mark.parametrize("raises", [True, False])
def test_no_active_segment_is_a_noop(raises):
    recorder = _NoSegmentRecorder(raises=raises)
    with Tracer(recorder).span("fetch", annotations={"run": "r"}) as span:
        span.metadata("bytes", 1)
    assert recorder.ended == 0


def test_module_level_span_uses_the_configured_tracer():
    recorder = MemoryRecorder()
    tracing.configure(Tracer(recorder))
    try:
        with tracing.span("write", annotations={"run": "r"}):
            pass
    finally:
        tracing.configure(Tracer(None))
    assert [s.name for s in recorder.spans] == ["write"]
    assert tracing.span("write") is NOOP_SPAN
