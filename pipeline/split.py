"""One Split pass: stream a manifest, send its chunks to the WorkQueue, return a checkpoint.

The pass's output is the state machine's state (`SplitState.to_dict`): the run, its manifest and
how far splitting got. `done` tells the state machine to stop looping Split. Today a pass reads
the manifest to its end, so it is always done after one pass; the checkpoint fields (`lines`,
`chunks`, `passes`, `resume`) are the shape the resumable multi-pass split (issue 9) fills in, so
it slots in without touching the state machine or the handler.

Malformed lines become failure records in `failures/<run>/parse-NNNNNNNN.jsonl.gz`, keyed by the
chunk being cut when they were met, so a retried pass rewrites the same parts. A manifest that
breaks mid-stream (truncated gzip) ends the split with what came before and a `reason`: the
run is finalized as partial, never silently short.

Knows nothing of Lambda: clients, the ledger and the time budget are passed in.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pipeline.chunking import Chunk, iter_chunks
from pipeline.config import Settings
from pipeline.failures import (
    SCHEMA_VERSION,
    FailureRecord,
    ManifestLineError,
    ManifestReadError,
)
from pipeline.ledger import RunLedger
from pipeline.manifest import ManifestRecord, iter_manifest
from pipeline.parts import parse_failures_part
from pipeline.results import write_failure_part
from pipeline.work_queue import send_chunks

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SplitState:
    """The state machine's state around Split: the run, the manifest, the checkpoint."""

    run: str
    manifest: dict[str, Any]
    done: bool = False
    lines: int = 0
    chunks: int = 0
    passes: int = 0
    parse_failures: dict[str, int] = field(default_factory=dict)
    reason: str | None = None
    resume: dict[str, Any] | None = None
    """Where the next pass starts (issue 9's seek point); None means "from the start"."""

    @property
    def manifest_uri(self) -> str:
        """`s3://bucket/key` of the manifest."""
        return f"s3://{self.manifest['bucket']}/{self.manifest['key']}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitState:
        """Read the state machine's state (the execution input on the first pass)."""
        split = data.get("split", {})
        return cls(
            run=data["run"],
            manifest=data["manifest"],
            done=bool(data.get("done", False)),
            lines=int(split.get("lines", 0)),
            chunks=int(split.get("chunks", 0)),
            passes=int(split.get("passes", 0)),
            parse_failures=dict(split.get("parse_failures", {})),
            reason=split.get("reason"),
            resume=split.get("resume"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The state Split returns to the state machine."""
        return {
            "v": SCHEMA_VERSION,
            "run": self.run,
            "manifest": self.manifest,
            "done": self.done,
            "split": {
                "lines": self.lines,
                "chunks": self.chunks,
                "passes": self.passes,
                "parse_failures": self.parse_failures,
                "reason": self.reason,
                "resume": self.resume,
            },
        }


class _ParseFailureSink:
    """Collects the malformed lines met between chunks and writes them under a chunk's number."""

    def __init__(self, s3: Any, bucket: str, run: str) -> None:
        self._s3, self._bucket, self._run = s3, bucket, run
        self.pending: list[FailureRecord] = []
        self.by_error: Counter[str] = Counter()

    def add(self, error: ManifestLineError) -> None:
        record = FailureRecord.from_exception(error, run=self._run, line=error.line or 0)
        self.pending.append(record)
        self.by_error[record.error] += 1

    def flush(self, chunk: int) -> None:
        if self.pending:
            part = parse_failures_part(self._run, chunk)
            write_failure_part(self._s3, self._bucket, part, self.pending)
            self.pending = []


@dataclass(slots=True)
class _Counts:
    lines: int = 0
    reason: str | None = None


def _records(
    items: Iterable[ManifestRecord | ManifestLineError],
    sink: _ParseFailureSink,
    counts: _Counts,
) -> Iterator[ManifestRecord]:
    """Records only; line errors go to `sink`, a broken stream becomes `counts.reason`."""
    try:
        for item in items:
            counts.lines += 1
            if isinstance(item, ManifestLineError):
                sink.add(item)
            else:
                yield item
    except ManifestReadError as exc:
        counts.reason = f"{exc.error}: {exc.message}"
        logger.warning("manifest broke after %d lines: %s", counts.lines, exc)


def split_pass(
    state: SplitState, *, s3: Any, sqs: Any, ledger: RunLedger, settings: Settings
) -> SplitState:
    """Split the whole manifest from the start; return the finished checkpoint.

    Every chunk is sent before the ledger learns how many there are, and the ledger's split
    progress is written last, so Progress never sees "done" before the chunks exist.
    """
    ledger.start_run(state.run, manifest=state.manifest_uri)
    sink = _ParseFailureSink(s3, settings.results_bucket, state.run)
    counts = _Counts()
    items = iter_manifest(state.manifest_uri, client=s3, max_line_bytes=settings.max_line_bytes)
    chunks = iter_chunks(
        _records(items, sink, counts),
        run=state.run,
        chunk_items=settings.chunk_items,
        chunk_max_bytes=settings.chunk_max_bytes,
    )
    sent = send_chunks(sqs, settings.work_queue_url, _flushing(chunks, sink))
    sink.flush(sent)  # malformed lines after the last chunk (or a manifest with no good line)
    parse_failures = dict(sink.by_error)
    ledger.record_split_progress(
        state.run,
        lines_split=counts.lines,
        chunks_sent=sent,
        is_done=True,
        parse_failures_by_error=parse_failures,
        reason=counts.reason,
    )
    logger.info("split %d lines into %d chunks", counts.lines, sent, extra={"run": state.run})
    return SplitState(
        run=state.run,
        manifest=state.manifest,
        done=True,
        lines=counts.lines,
        chunks=sent,
        passes=state.passes + 1,
        parse_failures=parse_failures,
        reason=counts.reason,
    )


def _flushing(chunks: Iterable[Chunk], sink: _ParseFailureSink) -> Iterator[Chunk]:
    """Pass chunks on, writing the parse failures met while each was cut under its number."""
    for chunk in chunks:
        sink.flush(chunk.number)
        yield chunk
