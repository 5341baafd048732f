"""Find one run's traces through the X-Ray API and hand them to `traces` to aggregate.

The client is injected: AWS, or the local emulator behind the stack's daemon stand-in. The
emulator's X-Ray cannot filter (moto 5.2.5: FilterExpression fails, summaries are shallow), so
filtering on the server is optional. Knows nothing of Lambda or of the CLI.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from pipeline.observe.traces import RunTraces, aggregate_run

logger = logging.getLogger(__name__)

BATCH_GET_MAX_IDS = 5
"""BatchGetTraces takes at most five trace ids per call."""
SUMMARY_WINDOW = timedelta(hours=24)
"""GetTraceSummaries' largest time range per call."""
WINDOW_OVERLAP = timedelta(minutes=30)
"""How much consecutive summary windows overlap: more than the longest trace (a Lambda runs at
most 15 minutes), so a trace that straddles a window boundary is still whole inside one window.
The emulator lists a trace only if it starts and ends inside the window, in whole seconds; on AWS
the overlap just costs a few duplicate ids, which are dropped."""


def run_filter_expression(run: str) -> str:
    """The X-Ray filter for traces annotated with `run` (AWS only; the emulator cannot)."""
    return f'annotation.run = "{run}"'


def summary_windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Cut `[start, end]` into GetTraceSummaries windows of at most 24 hours.

    They overlap by `WINDOW_OVERLAP`, so any trace shorter than that lies wholly inside one.
    """
    windows: list[tuple[datetime, datetime]] = []
    step = SUMMARY_WINDOW - WINDOW_OVERLAP
    window_start = start
    while True:
        window_end = min(end, window_start + SUMMARY_WINDOW)
        windows.append((window_start, window_end))
        if window_end >= end:
            return windows
        window_start += step


def iter_trace_ids(
    client: Any, *, start: datetime, end: datetime, filter_expression: str | None
) -> Iterator[str]:
    """Ids of the traces between `start` and `end`, one call per summary window, each once."""
    seen: set[str] = set()
    for window_start, window_end in summary_windows(start, end):
        kwargs: dict[str, Any] = {"StartTime": window_start, "EndTime": window_end}
        if filter_expression:
            kwargs["FilterExpression"] = filter_expression
        for page in client.get_paginator("get_trace_summaries").paginate(**kwargs):
            for summary in page.get("TraceSummaries", ()):
                if summary["Id"] not in seen:
                    seen.add(summary["Id"])
                    yield summary["Id"]


def iter_trace_documents(client: Any, trace_ids: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Every segment document of `trace_ids`, parsed (BatchGetTraces, five ids a call)."""
    ids = list(trace_ids)
    for offset in range(0, len(ids), BATCH_GET_MAX_IDS):
        batch = ids[offset : offset + BATCH_GET_MAX_IDS]
        for page in client.get_paginator("batch_get_traces").paginate(TraceIds=batch):
            for trace in page.get("Traces", ()):
                for segment in trace.get("Segments", ()):
                    yield json.loads(segment["Document"])


def load_run_traces(
    client: Any,
    run: str,
    *,
    start: datetime,
    end: datetime,
    is_server_filtered: bool = True,
) -> RunTraces:
    """Read and aggregate the traces of `run` stored between `start` and `end`.

    `is_server_filtered=False` for the emulator, whose X-Ray rejects filter expressions: every
    trace in the window is read and filtered here (local windows are small).
    """
    expression = run_filter_expression(run) if is_server_filtered else None
    ids = list(iter_trace_ids(client, start=start, end=end, filter_expression=expression))
    logger.info("reading %d traces for run %s", len(ids), run)
    return aggregate_run(run, iter_trace_documents(client, ids))
