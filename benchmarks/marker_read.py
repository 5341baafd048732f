"""What reading a run's chunk markers costs settling, per marker: every attribute vs the projection.

Finalize (and a worker whose count completes a run) reads every chunk marker of the run to check
its counters against them: 4 million markers for a 2-billion-line manifest. This measures the CPU
of one marker from a DynamoDB Query page — botocore's parsing of the JSON answer,
`committed_from_item`, `marker_problems` — with the marker as written (its per-stage and
per-error counts included) against the attributes `pipeline/ledger/markers.py` projects, in
the same run. No network: the pages are built here, as DynamoDB would answer them.

    .venv/bin/python benchmarks/marker_read.py [--markers 5000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import botocore.session
from botocore.parsers import create_parser

from pipeline.ledger.invariants import marker_problems
from pipeline.ledger.items import (
    ChunkCommit,
    ChunkCounts,
    chunk_marker,
    committed_from_item,
    run_key,
)
from pipeline.ledger.markers import MARKER_ATTRIBUTES
from pipeline.ledger.runs import RunState, RunStatus

LINES = 500


def _page(markers: int, *, projected: bool) -> bytes:
    """A Query answer holding `markers` chunk markers of a 500-line chunk, 5 failures each."""
    counts = ChunkCounts(
        ok=LINES - 5,
        failed=5,
        failed_by_stage={"fetch": 3, "decode": 2},
        failed_by_error={"NoSuchKey": 3, "DecodeError": 2},
        seconds=12.5,
        images=LINES - 5,
    )
    commit = ChunkCommit("0123456789abcdef", LINES, LINES - 5, 5, live_until=1.7e9)
    items = []
    for chunk in range(markers):
        item = {
            **run_key("r" * 20),
            "sk": {"S": chunk_marker(chunk)},
            **counts.to_item(1.7e9),
            **commit.to_item(),
        }
        if projected:
            item = {name: value for name, value in item.items() if name in MARKER_ATTRIBUTES}
        items.append(item)
    return json.dumps({"Items": items, "Count": markers}).encode()


def _seconds(body: bytes, markers: int) -> float:
    operation = botocore.session.get_session().get_service_model("dynamodb")
    shape = operation.operation_model("Query").output_shape
    started = time.process_time()
    parsed = create_parser("json").parse({"body": body, "headers": {}, "status_code": 200}, shape)
    state = RunState(
        run="r",
        manifest="m",
        status=RunStatus.RUNNING,
        started_at=0,
        lines_split=markers * LINES,
        chunks_sent=markers,
        is_split_done=True,
        chunks_done=markers,
        ok=markers * (LINES - 5),
        failed=markers * 5,
    )
    problems = marker_problems(state, (committed_from_item(i) for i in parsed["Items"]))
    assert not problems, problems
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--markers", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    bodies = {
        kind: _page(args.markers, projected=kind == "projected") for kind in ("all", "projected")
    }
    runs: dict[str, list[float]] = {kind: [] for kind in bodies}
    for _ in range(args.repeat):  # interleaved, so both see the same machine
        for kind, body in bodies.items():
            runs[kind].append(_seconds(body, args.markers))
    per = {kind: statistics.median(times) / args.markers * 1e6 for kind, times in runs.items()}
    for kind, body in bodies.items():
        size = len(body) / args.markers
        print(f"{kind:>9}: {size:5.0f} B a marker, {per[kind]:5.1f} us CPU a marker")
    print(f"projected / all: {per['projected'] / per['all']:.2f}x the CPU")
    print(
        f"4 million markers, projected: {per['projected'] * 4:.0f} s of CPU at this machine's speed"
    )


if __name__ == "__main__":
    main()
