"""Trace aggregation, the daemon protocol and the stage clock: pure logic, no sockets."""

from __future__ import annotations

import io
import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from pipeline.cli.traces import is_aws_endpoint, render
from pipeline.local.xray import parse_datagram
from pipeline.observe import tracing
from pipeline.observe.trace_search import (
    SUMMARY_WINDOW,
    WINDOW_OVERLAP,
    iter_trace_ids,
    run_filter_expression,
    summary_windows,
)
from pipeline.observe.traces import aggregate_run, flatten_documents
from pipeline.observe.tracing import NOOP_SPAN, MemoryRecorder, StageClock, Tracer


def _seg(id_, name, start, end, *, subs=(), annotations=None, metadata=None, **extra):
    doc = {"id": id_, "name": name, "start_time": start, "end_time": end, "trace_id": "T1"}
    if subs:
        doc["subsegments"] = list(subs)
    if annotations:
        doc["annotations"] = annotations
    if metadata:
        doc["metadata"] = {"lambdaflow": metadata}
    doc.update(extra)
    return doc


def _chunk_trace(run, chunk, trace_id="T1", *, streamed=False):
    """A classify invocation: chunk span > classify x2 + write_results > s3."""
    classify = [_seg(f"c{chunk}{i}", "classify", 1.0 + i, 1.5 + i) for i in range(2)]
    write = _seg(f"w{chunk}", "write_results", 3.0, 3.25, subs=[_seg(f"s{chunk}", "s3", 3, 3.2)])
    chunk_span = _seg(
        f"k{chunk}",
        "chunk",
        0.5,
        3.5,
        subs=[] if streamed else [*classify, write],
        annotations={"run": run, "chunk": chunk},
        metadata={"items": 10, "stages": {"fetch": {"s": 4.0, "n": 10}}},
    )
    root = _seg(f"r{chunk}", "lambdaflow-classify", 0, 4, subs=[chunk_span], trace_id=trace_id)
    docs = [root]
    if streamed:  # the SDK sent the children as documents of their own
        for sub in [*classify, write]:
            docs.append({**sub, "type": "subsegment", "parent_id": f"k{chunk}"})
    return docs


@pytest.mark.parametrize("streamed", [False, True])
def test_aggregate_sums_stages_per_chunk_whether_nested_or_streamed(streamed):
    docs = _chunk_trace("r1", 0, streamed=streamed) + _chunk_trace("r1", 1, "T2")
    result = aggregate_run("r1", docs)
    assert sorted(result.chunks) == [0, 1]
    chunk0 = result.chunks[0]
    assert chunk0.seconds == pytest.approx(3.0)
    assert chunk0.stages[("chunk", "classify")].spans == 2
    assert chunk0.stages[("chunk", "classify")].seconds == pytest.approx(1.0)
    assert chunk0.stages[("chunk", "write_results", "s3")].seconds == pytest.approx(0.2)
    assert chunk0.stages[("chunk",)].metadata == {"items": 10}
    assert chunk0.busy == {"fetch": {"s": 4.0, "n": 10}}
    overall = result.overall()
    assert overall.busy["fetch"] == {"s": 8.0, "n": 20}
    assert overall.stages[("chunk", "classify")].spans == 4
    assert result.trace_ids == {"T1", "T2"}


def test_other_runs_and_unannotated_spans_are_ignored():
    docs = [*_chunk_trace("other", 0), _seg("x", "lambdaflow-progress", 0, 1)]
    result = aggregate_run("r1", docs)
    assert result.chunks == {} and not result.trace_ids and not result.run_level.stages


def test_a_span_annotated_inside_an_annotated_span_counts_once():
    inner = _seg("i", "send_failures", 1, 2, annotations={"run": "r1", "chunk": 3})
    outer = _seg("o", "chunk", 0, 3, subs=[inner], annotations={"run": "r1", "chunk": 3})
    result = aggregate_run("r1", [outer])
    assert result.chunks[3].spans == 1
    assert result.chunks[3].stages[("chunk", "send_failures")].spans == 1


def test_run_level_spans_and_faults_and_in_progress_spans():
    split = _seg(
        "p",
        "split",
        0,
        2,
        annotations={"run": "r1"},
        subs=[_seg("q", "send_chunks", 0.5, 1.0, fault=True)],
    )
    open_span = {"id": "z", "name": "chunk", "start_time": 0, "in_progress": True}
    open_span["annotations"] = {"run": "r1", "chunk": 9}
    result = aggregate_run("r1", [split, open_span])
    assert result.run_level.stages[("split", "send_chunks")].faults == 1
    assert result.chunks[9].seconds == 0.0  # counted, but no duration yet


def test_a_span_seen_nested_and_streamed_is_counted_once():
    docs = _chunk_trace("r1", 0)
    classify = docs[0]["subsegments"][0]["subsegments"][0]
    docs.append({**classify, "type": "subsegment", "parent_id": "k0"})
    assert len(flatten_documents(docs)) == 6
    assert aggregate_run("r1", docs).chunks[0].stages[("chunk", "classify")].spans == 2


def test_json_shape_and_table_rendering():
    result = aggregate_run("r1", _chunk_trace("r1", 0))
    data = result.to_dict()
    assert data["traces"] == 1 and data["chunks"][0]["chunk"] == 0
    assert {tuple(s["path"]) for s in data["overall"]["stages"]} >= {("chunk", "classify")}
    out = io.StringIO()
    render(result, None, Console(file=out, width=160))
    render(result, 0, Console(file=out, width=160))
    text = out.getvalue()
    assert "write_results" in text and "fetch" in text and "400.00" in text  # 4 s / 10 items


def test_filter_expression_and_endpoint_kind():
    assert run_filter_expression("abc") == 'annotation.run = "abc"'
    assert is_aws_endpoint("https://xray.eu-west-1.amazonaws.com")
    assert not is_aws_endpoint("http://127.0.0.1:5000")


@pytest.mark.parametrize(
    ("datagram", "expected"),
    [
        (b'{"format": "json", "version": 1}\n{"id": "a"}', '{"id": "a"}'),
        (b'{"format":"json","version":1}\n{"id":"a"}', '{"id":"a"}'),
        (b'{"format": "json", "version": 2}\n{"id": "a"}', None),
        (b'{"format": "json", "version": 1}\n[1]', None),
        (b'{"format": "json", "version": 1}\nnot json', None),
        (b'{"id": "a"}', None),
        (b"", None),
    ],
)
def test_parse_datagram(datagram, expected):
    assert parse_datagram(datagram) == expected


def test_stage_clock_sums_across_threads():
    clock = StageClock()

    def work(i):
        with clock.measure("decode"):
            sum(range(1000))
        clock.add("bytes", 0.0, i)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(100)))
    snapshot = clock.snapshot()
    assert snapshot["decode"]["n"] == 100 and snapshot["decode"]["s"] > 0
    assert snapshot["bytes"] == {"s": 0.0, "n": sum(range(100))}


def test_stage_clock_counts_a_step_that_raises():
    clock = StageClock()
    with pytest.raises(OSError), clock.measure("fetch"):
        raise OSError("reset")
    assert clock.snapshot()["fetch"]["n"] == 1


def test_invocation_is_a_noop_without_a_segment_capable_recorder():
    tracing.configure(Tracer(None))
    assert tracing.invocation("f") is NOOP_SPAN
    tracing.configure(Tracer(MemoryRecorder()))
    try:
        assert tracing.invocation("f") is NOOP_SPAN
    finally:
        tracing.configure(Tracer(None))


@pytest.mark.parametrize(
    "span",
    [
        timedelta(minutes=5),
        SUMMARY_WINDOW,
        SUMMARY_WINDOW + timedelta(minutes=5),
        timedelta(days=7),
    ],
)
def test_summary_windows_cover_the_range_within_the_limit_and_overlap(span):
    start = datetime(2026, 11, 26, 12, 0, 0, 500_000, tzinfo=UTC)
    windows = summary_windows(start, start + span)
    assert windows[0][0] == start and windows[-1][1] == start + span
    assert all(a < b <= a + SUMMARY_WINDOW for a, b in windows)
    assert all(
        later_start <= earlier_end - WINDOW_OVERLAP
        for (_, earlier_end), (later_start, _) in itertools.pairwise(windows)
    )


class _ContainmentXRay:
    """GetTraceSummaries as the emulator answers it: a trace is listed only if it starts after
    and ends before the window, both truncated to whole seconds."""

    def __init__(self, traces):
        self.traces = traces
        self.calls = []

    def get_paginator(self, name):
        assert name == "get_trace_summaries"
        return self

    def paginate(self, *, StartTime, EndTime):
        self.calls.append((StartTime, EndTime))
        lo, hi = int(StartTime.timestamp()), int(EndTime.timestamp())
        ids = [t for t, (a, b) in self.traces.items() if lo < a.timestamp() and b.timestamp() < hi]
        yield {"TraceSummaries": [{"Id": t} for t in ids]}


def test_a_trace_straddling_a_window_boundary_is_found_once():
    """The CI flake: a 24 h look-back plus clock skew is two windows; a trace that started before
    the first window's end and ended after it was in neither."""
    now = datetime(2026, 11, 26, 12, 0, 0, 400_000, tzinfo=UTC)
    start, end = now - SUMMARY_WINDOW, now + timedelta(minutes=5)
    straddling = (now - timedelta(seconds=2), now + timedelta(milliseconds=300))
    old = (start + timedelta(minutes=1), start + timedelta(minutes=2))
    client = _ContainmentXRay({"straddling": straddling, "old": old})
    ids = list(iter_trace_ids(client, start=start, end=end, filter_expression=None))
    assert sorted(ids) == ["old", "straddling"]
    assert len(client.calls) == 2
