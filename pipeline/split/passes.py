"""One resumable Split pass: from a checkpoint, cut chunks for a time budget, checkpoint again.

A 20 GB gzip manifest is ~1 billion lines and a Lambda lives 15 minutes, so Split works in
passes. Each pass resumes decompression at its checkpoint's seek point (never re-reading the
compressed bytes before it, `pipeline/gzip/checkpoint.py`), restarts the record reader at the
checkpoint's line, cuts chunks numbered on from `next_chunk`, and hands them to a `ChunkSink`.
When the budget is spent, or `pause` says the WorkQueue is full (`backpressure.py`), it stops at
a chunk boundary, flushes the sink, and checkpoints exactly at the end of the last item of the
last chunk sent.

Why that makes retries safe: a chunk's content depends only on where it starts and on the
blocks the pass reads from there (the greedy cut of `iter_chunk_spans`), and a pass stops only
where a chunk ended. So a pass that dies after sending some chunks is retried from the previous
checkpoint, reads the same blocks, and re-sends the same chunk numbers with the same lines:
result parts are overwritten, ledger counts add once. The blocks matter because Split sends
some of them unparsed (`manifest/raw_lines.py`): a malformed line is one line of its chunk when
its block goes unparsed, and only a line of the parse part when Split parses it. A retried pass
reads the same blocks from the same checkpoint (the same code reads the same sizes), but a
one-pass and a many-pass split of a manifest with malformed lines can cut different chunks:
each holds every line exactly once. So the retry must not stop before the dead attempt's last
chunk, whatever its own budget or queue says, or the next pass would cut those numbers again
from a later checkpoint: every chunk number is reserved before it is sent
(`pipeline/split/reservations.py`), and a pass stops only past what earlier attempts reserved.

Parse failures met while a chunk is cut are written as that chunk's parse part before the chunk
is sent (keyed by line, so the split between chunks never depends on the pass). A manifest that
breaks (truncated or corrupt gzip) ends the split after everything before the break, with the
reason in the outcome. Totals since the manifest's start travel in the checkpoint, so the
ledger's split progress is absolute and idempotent. Knows nothing of Lambda.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from pipeline.allocator import HeapTrim
from pipeline.failures import FailureRecord, ManifestReadError
from pipeline.gzip.checkpoint import Checkpoint, StreamKind, take_checkpoint
from pipeline.ledger.markers import pin_chunk_plan
from pipeline.manifest.batch import RecordBatch
from pipeline.manifest.guard import refusing_non_manifests
from pipeline.manifest.parse import layout_to_dict
from pipeline.manifest.stream import Position
from pipeline.split.chunk_encoding import encode_span
from pipeline.split.chunking import ChunkSpan, iter_chunk_spans
from pipeline.split.failure_backlog import FailureBacklog
from pipeline.split.reservations import ChunkReservations, PassReservation
from pipeline.split.sinks import ChunkMessage, ChunkSink, ParseFailureWriter
from pipeline.split.source import TRANSIENT_READ_ERRORS, ManifestCursor, OpenReader
from pipeline.split.values import (
    PassStats,
    SplitOptions,
    SplitOutcome,
    SplitTotals,
    outcome_of,
)

if TYPE_CHECKING:
    from pipeline.gzip.index_store import IndexStore
    from pipeline.ledger.table import RunLedger

__all__ = ["TRANSIENT_READ_ERRORS", "SplitOptions", "SplitOutcome", "split_pass"]

logger = logging.getLogger(__name__)


class _Pass:
    """The state of one pass: the batch feed, the parse failures met, where it may stop.

    A parse failure belongs to the chunk of the next good line after it, or, after the last
    good line, to a part of its own after the last chunk: it waits in `backlog` (bounded
    memory, spilled to disk) until that chunk is cut, then streams into the chunk's part.
    """

    def __init__(
        self,
        run: str,
        cursor: ManifestCursor,
        totals: SplitTotals,
        failures: ParseFailureWriter,
        backlog: FailureBacklog,
    ) -> None:
        self.run, self.cursor, self.totals, self.failures = run, cursor, totals, failures
        self.backlog = backlog
        self.current: RecordBatch | None = None
        self.is_exhausted = False
        self.reason: str | None = None
        self.stop: Position | None = None
        self.is_paused = False

    def batches(self) -> Iterator[RecordBatch]:
        """Record batches in line order; failures go to `backlog`, a broken manifest to `reason`."""
        backlog, run = self.backlog, self.run
        # Only until a line names an image, which can only be in a first pass: a later one may
        # well start in a long run of malformed lines after a chunk.
        source = refusing_non_manifests(self.cursor) if not self.totals.records else self.cursor
        try:
            for batch in source:
                for error in batch.failures:
                    backlog.add(FailureRecord.from_exception(error, run=run, line=error.line))  # type: ignore[arg-type]
                self.current = batch
                yield batch
        except ManifestReadError as exc:
            if exc.error in TRANSIENT_READ_ERRORS:
                raise
            self.reason = f"{exc.error}: {exc.message}"
            logger.warning("manifest broke: %s", self.reason, extra={"run": run})
        self.is_exhausted = True

    def emit(self, message: ChunkMessage, sink: ChunkSink) -> None:
        """Write the chunk's parse part, then hand the chunk's message to the sink."""
        self.write_failures(message.number, message.last_line)
        sink.send(message)
        self.totals.add(message.count, [])

    def write_failures(self, chunk: int, last_line: float) -> None:
        """Stream the waiting failures up to `last_line` into the parse part of `chunk`."""
        groups = self.backlog.pop_through(last_line) if self.backlog else ()
        for group in groups:
            self.failures.append(self.run, chunk, group)
            self.totals.add(0, group)
        self.failures.close(self.run, chunk)

    def stop_position(self, span: ChunkSpan, resume: tuple[int, int, int]) -> Position | None:
        """Where the next pass starts if this pass stops after `span`; None at the very end.

        A span is yielded while its last batch is the one being read, so that batch's part
        is the cursor's current part, whose stream the checkpoint is taken from.
        """
        if self.is_exhausted or span.pieces[-1][0] is not self.current:
            return None
        line, offset, part = resume
        return Position(line, offset, part, self.cursor.position.layout)


def split_pass(
    source: str,
    checkpoint: Checkpoint | None,
    *,
    run: str,
    options: SplitOptions,
    open_reader: OpenReader,
    sink: ChunkSink,
    failures: ParseFailureWriter,
    index_store: IndexStore,
    ledger: RunLedger | None = None,
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[], bool] | None = None,
    reservations: ChunkReservations | None = None,
) -> SplitOutcome:
    """Split `source` from `checkpoint` (None: the start) until done or `options.budget_s` is spent.

    Always sends at least one chunk (or reaches the end), so every pass makes progress. `pause`,
    asked after each chunk, stops the pass early when true: the outcome is then `is_paused`.
    Neither stops it short of the chunks an earlier attempt reserved in `reservations` (by
    default the ledger; none for a dry run).

    Raises:
        ManifestReadError: a transient read error (the pass is retried from `checkpoint`).
        ResultWriteError | ThrottledError: the sink, the failure parts or the ledger failed.
    """
    started = clock()
    options = pinned_options(options, checkpoint, ledger, run)
    totals = SplitTotals.from_extra(checkpoint.extra if checkpoint else {})
    first_chunk = checkpoint.next_chunk if checkpoint else 0
    if checkpoint is not None and checkpoint.extra.get("done"):
        return outcome_of(checkpoint, totals, PassStats(0, 0, 0, clock() - started))
    if ledger is not None and checkpoint is None:
        ledger.start_run(run, manifest=source)
    budget = math.inf if options.budget_s is None else options.budget_s
    # A sink that sends chunks (not `scan`'s, which counts) lets workers parse raw lines
    wants_body = getattr(sink, "wants_body", True)
    cursor = ManifestCursor(
        source,
        checkpoint,
        open_reader=open_reader,
        index_store=index_store,
        knobs=options.knobs,
        max_line_bytes=options.max_line_bytes,
        raw_lines=wants_body,
    )
    totals.passes += 1
    lines_before = totals.lines
    backlog = FailureBacklog()
    work = _Pass(run, cursor, totals, failures, backlog)
    store = reservations if reservations is not None else ledger
    reserved = PassReservation(store, run, first_chunk)
    try:
        next_chunk = _cut(
            work,
            sink,
            options,
            reserved,
            deadline=started + budget,
            clock=clock,
            pause=pause,
        )
        if work.is_exhausted:  # malformed lines after the last chunk, if any
            work.write_failures(next_chunk, math.inf)
        sink.flush()
        new = _next_checkpoint(work, next_chunk, plan_of(options))
    finally:
        failures.abort()  # a part still open here was not finished: never store half of one
        backlog.close()
        fetched, decoded, lines_read = (
            cursor.bytes_fetched,
            cursor.uncompressed_bytes,
            cursor.lines_read,
        )
        cursor.close()
    is_paused = work.is_paused and not work.is_exhausted
    if ledger is not None:
        ledger.record_split_progress(
            run,
            lines_split=totals.lines,
            chunks_sent=next_chunk,
            is_done=work.is_exhausted,
            parse_failures_by_error=dict(totals.parse_failures),
            reason=work.reason,
            is_paused=is_paused,
        )
    stats = PassStats(
        totals.lines - lines_before,
        next_chunk - first_chunk,
        fetched,
        clock() - started,
        decoded,
        lines_read,
    )
    outcome = outcome_of(new, totals, stats, is_paused=is_paused)
    logger.info(
        "split pass %d: %d chunks, %d lines in total, done=%s",
        totals.passes,
        outcome.pass_chunks,
        totals.lines,
        outcome.is_done,
        extra={"run": run},
    )
    return outcome


def _cut(
    work: _Pass,
    sink: ChunkSink,
    options: SplitOptions,
    reserved: PassReservation,
    *,
    deadline: float,
    clock: Callable[[], float],
    pause: Callable[[], bool] | None,
) -> int:
    """Send chunks until the manifest ends, or the deadline passes or `pause` says so at a stop.

    Never stops before the chunks `reserved` says an earlier attempt may have sent.
    """
    first_chunk = next_chunk = reserved.first_chunk
    heap = HeapTrim()  # a long pass's kept heap fragments: RSS would grow with the manifest
    spans = iter_chunk_spans(
        work.batches(),
        run=work.run,
        chunk_items=options.chunk_items,
        chunk_max_bytes=options.chunk_max_bytes,
        first_chunk=first_chunk,
    )
    for span in spans:
        resume = span.resume_after()
        # A counting sink (`scan`) skips encoding, a fifth of its time: the size is exact anyway
        wants_body = getattr(sink, "wants_body", True)
        body = encode_span(span, max_bytes=options.chunk_max_bytes) if wants_body else b""
        size = None if body else span.message_bytes  # no body: the v1 size, without encoding
        message = ChunkMessage(span.number, body, span.count, resume[0] - 1, size)
        reserved.before_sending(span.number)
        work.emit(message, sink)
        next_chunk = span.number + 1
        heap.after(work.cursor.uncompressed_bytes)
        # The stop matters only where the pass stops: a pass that runs to the end takes none
        if pause is not None and not work.is_paused:  # asked until it says yes, never after
            work.is_paused = pause()
        if (clock() >= deadline or work.is_paused) and reserved.may_stop_before(next_chunk):
            position = work.stop_position(span, resume)
            if position is not None:
                work.stop = position
                break
    return next_chunk


def plan_of(options: SplitOptions) -> dict[str, int]:
    """The chunk plan: what decides where chunks are cut, so what must never change mid-run."""
    return {
        "chunk_items": options.chunk_items,
        "chunk_max_bytes": options.chunk_max_bytes,
        "max_line_bytes": options.max_line_bytes,
    }


def pinned_options(
    options: SplitOptions, checkpoint: Checkpoint | None, ledger: RunLedger | None, run: str
) -> SplitOptions:
    """`options` with the run's pinned chunk plan, so every pass cuts chunks the same way.

    A later pass takes the plan from its checkpoint; a first pass (a retried one too) from
    the run item, where the first pass to get there stored its own (`pin_chunk_plan`). A
    redeploy with another `ChunkItems` mid-run then cannot renumber chunks already sent.
    """
    plan = dict(checkpoint.extra.get("plan") or {}) if checkpoint is not None else {}
    if not plan and ledger is not None and checkpoint is None:
        plan = pin_chunk_plan(ledger, run, plan_of(options))
    return dataclasses.replace(options, **plan) if plan else options


def _next_checkpoint(work: _Pass, next_chunk: int, plan: dict[str, int]) -> Checkpoint:
    """At the last stop (mid-manifest), or a final one carrying only the totals."""
    cursor, totals = work.cursor, work.totals
    fmt = cursor.format.value if cursor.format is not None else None  # None: never opened
    if work.is_exhausted or work.stop is None or cursor.stream is None:
        extra = {"format": fmt, "plan": plan, **totals.to_extra(), "done": True}
        if work.reason:
            extra["reason"] = work.reason
        return Checkpoint(
            next_line=cursor.position.line,
            uncompressed_offset=0,
            next_chunk=next_chunk,
            kind=StreamKind.PLAIN,
            compressed_offset=0,
            extra=extra,
        )
    stop = work.stop
    extra = {
        "format": fmt,
        "plan": plan,
        "layout": layout_to_dict(stop.layout),
        "part": stop.part,
        **totals.to_extra(),
    }
    return take_checkpoint(
        cursor.stream,
        next_line=stop.line,
        uncompressed_offset=stop.offset,
        next_chunk=next_chunk,
        extra=extra,
    )
