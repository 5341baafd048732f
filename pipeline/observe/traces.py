"""Where a run's time went, read back from its stored X-Ray traces.

The workers mark the span of each unit of work with the annotations `run` (and `chunk` for a
chunk); `pipeline.observe.tracing` makes those spans. `trace_search` finds the traces of one
run through the X-Ray API; this module rebuilds each span tree from the documents — nested
subsegments, and the subsegments the SDK streams as documents of their own — and sums, per chunk
and overall:

- the wall time of each subsegment below the annotated span, by its path of names
  (`chunk > classify`, `chunk > write_results > S3`);
- the busy time per stage that pool threads reported as `StageClock` metadata (`stages`:
  fetch and decode run concurrently, so their busy seconds can exceed the chunk's wall time);
- the numeric `lambdaflow` metadata (items, bytes), summed.

The annotations are always checked here, since the emulator's X-Ray cannot filter on the server.
Pure: no client, no clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

METADATA_NAMESPACE = "lambdaflow"
"""The namespace `pipeline.observe.tracing.Span.metadata` writes to."""
STAGES_KEY = "stages"
"""Metadata key of a `StageClock.snapshot()`."""


@dataclass(frozen=True, slots=True)
class SpanNode:
    """One segment or subsegment of a stored trace, flattened out of its document."""

    id: str
    parent_id: str | None
    trace_id: str
    name: str
    seconds: float | None
    """None while the span is still in progress (no end time yet)."""
    annotations: Mapping[str, Any]
    metadata: Mapping[str, Any]
    is_fault: bool


def _nodes_of(
    document: Mapping[str, Any], parent_id: str | None, trace_id: str
) -> Iterator[SpanNode]:
    end = document.get("end_time")
    start = document.get("start_time")
    yield SpanNode(
        id=document["id"],
        parent_id=parent_id,
        trace_id=trace_id,
        name=document.get("name", "?"),
        seconds=None if end is None or start is None else max(0.0, end - start),
        annotations=document.get("annotations") or {},
        metadata=(document.get("metadata") or {}).get(METADATA_NAMESPACE) or {},
        is_fault=bool(document.get("fault") or document.get("error")),
    )
    for child in document.get("subsegments") or ():
        yield from _nodes_of(child, document["id"], trace_id)


def flatten_documents(documents: Iterable[Mapping[str, Any]]) -> dict[str, SpanNode]:
    """Every span of `documents` by id (a span seen twice — streamed and nested — counts once)."""
    nodes: dict[str, SpanNode] = {}
    for document in documents:
        trace_id = document.get("trace_id", "")
        for node in _nodes_of(document, document.get("parent_id"), trace_id):
            nodes.setdefault(node.id, node)
    return nodes


@dataclass(slots=True)
class StageTotals:
    """Sums for one path of span names (mutable while aggregating)."""

    path: tuple[str, ...]
    spans: int = 0
    seconds: float = 0.0
    faults: int = 0
    metadata: dict[str, float] = field(default_factory=dict)

    def add(self, node: SpanNode) -> None:
        """Count one span of this path."""
        self.spans += 1
        self.seconds += node.seconds or 0.0
        self.faults += node.is_fault
        for key, value in node.metadata.items():
            if key != STAGES_KEY and isinstance(value, int | float) and not isinstance(value, bool):
                self.metadata[key] = self.metadata.get(key, 0) + value


@dataclass(slots=True)
class Breakdown:
    """The time of one chunk (or of the run-level work, `chunk=None`, or of the whole run)."""

    chunk: int | None
    seconds: float = 0.0
    """Wall time of the annotated spans themselves."""
    spans: int = 0
    stages: dict[tuple[str, ...], StageTotals] = field(default_factory=dict)
    busy: dict[str, dict[str, float]] = field(default_factory=dict)
    """Stage → {"s": busy seconds, "n": items}, from `StageClock` metadata."""

    def stage(self, path: tuple[str, ...]) -> StageTotals:
        """The totals of `path`, created empty on first use."""
        return self.stages.setdefault(path, StageTotals(path))

    def add_busy(self, stages: Mapping[str, Mapping[str, float]]) -> None:
        """Sum one `StageClock.snapshot()`."""
        for name, values in stages.items():
            into = self.busy.setdefault(name, {"s": 0.0, "n": 0})
            into["s"] += float(values.get("s", 0.0))
            into["n"] += int(values.get("n", 0))

    def merge(self, other: Breakdown) -> None:
        """Add `other` into this one (chunks into the overall view)."""
        self.seconds += other.seconds
        self.spans += other.spans
        for path, totals in other.stages.items():
            into = self.stage(path)
            into.spans += totals.spans
            into.seconds += totals.seconds
            into.faults += totals.faults
            for key, value in totals.metadata.items():
                into.metadata[key] = into.metadata.get(key, 0) + value
        self.add_busy(other.busy)

    def to_dict(self) -> dict[str, Any]:
        """JSON shape of `lambdaflow traces --json`."""
        return {
            "chunk": self.chunk,
            "seconds": round(self.seconds, 6),
            "spans": self.spans,
            "stages": [
                {
                    "path": list(t.path),
                    "spans": t.spans,
                    "seconds": round(t.seconds, 6),
                    "faults": t.faults,
                    "metadata": t.metadata,
                }
                for t in sorted(self.stages.values(), key=lambda t: t.path)
            ],
            "busy": {k: {"s": round(v["s"], 6), "n": int(v["n"])} for k, v in self.busy.items()},
        }


@dataclass(slots=True)
class RunTraces:
    """Every breakdown of one run: `chunks` by number, `run_level` for work outside chunks."""

    run: str
    chunks: dict[int, Breakdown]
    run_level: Breakdown
    trace_ids: set[str] = field(default_factory=set)

    def overall(self) -> Breakdown:
        """All chunks summed (run-level work kept apart: it is not per-chunk time)."""
        total = Breakdown(chunk=None)
        for breakdown in self.chunks.values():
            total.merge(breakdown)
        return total

    def to_dict(self) -> dict[str, Any]:
        """JSON shape of `lambdaflow traces --json`."""
        return {
            "run": self.run,
            "traces": len(self.trace_ids),
            "overall": self.overall().to_dict(),
            "run_level": self.run_level.to_dict(),
            "chunks": [self.chunks[n].to_dict() for n in sorted(self.chunks)],
        }


def _children_index(nodes: Mapping[str, SpanNode]) -> dict[str, list[SpanNode]]:
    children: dict[str, list[SpanNode]] = defaultdict(list)
    for node in nodes.values():
        if node.parent_id is not None:
            children[node.parent_id].append(node)
    return children


def _walk(
    node: SpanNode,
    path: tuple[str, ...],
    children: Mapping[str, list[SpanNode]],
    into: Breakdown,
) -> None:
    for child in children.get(node.id, ()):
        child_path = (*path, child.name)
        into.stage(child_path).add(child)
        if isinstance(child.metadata.get(STAGES_KEY), Mapping):
            into.add_busy(child.metadata[STAGES_KEY])
        _walk(child, child_path, children, into)


def aggregate_run(run: str, documents: Iterable[Mapping[str, Any]]) -> RunTraces:
    """Sum the spans annotated `run=<run>` and everything below them, per chunk.

    A span annotated with the run but no chunk (a split pass, finalize) is run-level work. An
    annotated span below another annotated span is counted once, under the outer one.
    """
    nodes = flatten_documents(documents)
    children = _children_index(nodes)
    result = RunTraces(run=run, chunks={}, run_level=Breakdown(chunk=None))
    for node in nodes.values():
        if node.annotations.get("run") != run or _has_annotated_ancestor(node, nodes, run):
            continue
        result.trace_ids.add(node.trace_id)
        chunk = node.annotations.get("chunk")
        if isinstance(chunk, int | float) and not isinstance(chunk, bool):
            into = result.chunks.setdefault(int(chunk), Breakdown(chunk=int(chunk)))
        else:
            into = result.run_level
        into.seconds += node.seconds or 0.0
        into.spans += 1
        into.stage((node.name,)).add(node)
        if isinstance(node.metadata.get(STAGES_KEY), Mapping):
            into.add_busy(node.metadata[STAGES_KEY])
        _walk(node, (node.name,), children, into)
    return result


def _has_annotated_ancestor(node: SpanNode, nodes: Mapping[str, SpanNode], run: str) -> bool:
    seen: set[str] = set()
    parent_id = node.parent_id
    while parent_id is not None and parent_id in nodes and parent_id not in seen:
        seen.add(parent_id)
        parent = nodes[parent_id]
        if parent.annotations.get("run") == run:
            return True
        parent_id = parent.parent_id
    return False
