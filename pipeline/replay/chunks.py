"""Replay chunks: failed lines re-sent to the WorkQueue as new chunks of the same run.

A replay chunk is an ordinary chunk message plus `replay` and `prior`
(`pipeline.split.work_message` has the form). `replay` is the round (1, 2, …): the worker writes
the round's parts (`results|failures/<run>/replay-RRRR-NNNNNNNN.jsonl.gz`) and counts the chunk
under the ledger's `REPLAY#R#N` marker. `prior` is what each line's latest failure record said, so
the worker can move the line out of exactly that stage and error in the ledger (never counted
twice) and give a line that fails again `attempts = prior + 1` — without reading anything back.
Replay chunk numbers are dense from 0 in line order within a round, so the same selection always
yields the same chunks and a redelivered replay chunk overwrites its own parts.

Also here: which failure records a replay selects (`ReplayFilter`, `select_failures`).
Pure: no client, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.failures import FailureRecord
from pipeline.manifest.parse import ManifestRecord
from pipeline.split.chunking import Chunk, iter_chunks
from pipeline.split.work_message import PriorFailure, ReplayMark, replay_message

PRIOR_SHARE = 2
"""A replay chunk's items get half of `chunk_max_bytes`: `prior` must fit in the other half."""
MAX_ORIGINS = 64
"""Distinct origin chunks per replay chunk: each is one ConditionCheck in the ledger's
transaction, which DynamoDB caps at 100 items."""

Origin = tuple[int, int]


def is_replayable(record: FailureRecord) -> bool:
    """A record names an object to read again; a parse failure (no key) has nothing to replay."""
    return bool(record.bucket) and bool(record.key)


@dataclass(frozen=True, slots=True)
class ReplayChunk:
    """One replay chunk to send: duck-types `Chunk` for `pipeline.split.work_queue.send_chunks`."""

    chunk: Chunk
    mark: ReplayMark

    @property
    def number(self) -> int:
        """The replay chunk number (dense from 0 within the round)."""
        return self.chunk.number

    def to_message(self) -> dict[str, Any]:
        """The WorkQueue body."""
        return replay_message(self.chunk, self.mark)


def iter_replay_chunks(
    records: Iterable[FailureRecord],
    *,
    replay_round: int,
    chunk_items: int,
    chunk_max_bytes: int,
    origins: Mapping[int, Origin] | None = None,
) -> Iterator[ReplayChunk]:
    """Cut replayable failure records (one run, line order) into the round's replay chunks.

    `origins` maps a line to the (round, chunk) whose failure part it was read from; each
    replay chunk names its distinct origins (at most `MAX_ORIGINS`, so the ledger's
    transaction — the marker, the run item and one check per origin — fits DynamoDB's limit).

    Raises:
        ValueError: records of several runs, out of line order, or without a key.
    """
    prior: dict[int, PriorFailure] = {}
    runs: set[str] = set()
    where = origins or {}

    def manifest_records() -> Iterator[ManifestRecord]:
        previous = 0
        for record in records:
            if not is_replayable(record) or record.line <= previous:
                raise ValueError(f"line {record.line}: not replayable or out of line order")
            previous = record.line
            runs.add(record.run)
            if len(runs) > 1:
                raise ValueError(f"replay chunks are per run, got {sorted(runs)}")
            prior[record.line] = PriorFailure(record.stage.value, record.error, record.attempts)
            yield ManifestRecord(
                record.line, str(record.bucket), str(record.key), record.version_id
            )

    number = 0
    for segment in _segments(manifest_records(), where):
        chunks = iter_chunks(
            segment,
            run=next(iter(runs)),
            chunk_items=chunk_items,
            chunk_max_bytes=max(1, chunk_max_bytes // PRIOR_SHARE),
            first_chunk=number,
        )
        for chunk in chunks:
            lines = [item.line for item in chunk.items]
            mark = ReplayMark(
                replay_round,
                {line: prior.pop(line) for line in lines},
                tuple(sorted({where[line] for line in lines if line in where})),
            )
            number = chunk.number + 1
            yield ReplayChunk(chunk, mark)


def _segments(
    records: Iterator[ManifestRecord], origins: Mapping[int, Origin]
) -> Iterator[list[ManifestRecord]]:
    """Consecutive runs of records with at most `MAX_ORIGINS` distinct origins each."""
    segment: list[ManifestRecord] = []
    seen: set[Origin] = set()
    for record in records:
        origin = origins.get(record.line)
        if origin is not None and origin not in seen and len(seen) >= MAX_ORIGINS:
            yield segment
            segment, seen = [], set()
        segment.append(record)
        if origin is not None:
            seen.add(origin)
    if segment:
        yield segment


@dataclass(frozen=True, slots=True)
class ReplayFilter:
    """Which failure records to replay; None means "any"."""

    stage: str | None = None
    error: str | None = None
    is_retryable_only: bool = False

    def matches(self, record: FailureRecord) -> bool:
        """True when `record` passes every filter."""
        return (
            (self.stage is None or record.stage.value == self.stage)
            and (self.error is None or record.error == self.error)
            and (record.retryable or not self.is_retryable_only)
        )


def select_failures(
    records: Iterable[FailureRecord], flt: ReplayFilter, *, limit: int | None
) -> tuple[list[FailureRecord], int]:
    """The replayable records passing `flt` (at most `limit`), and how many matched unreplayable."""
    matching = (r for r in records if flt.matches(r))
    chosen: list[FailureRecord] = []
    unreplayable = 0
    for record in matching:
        if limit is not None and len(chosen) >= limit:
            break
        if is_replayable(record):
            chosen.append(record)
        else:
            unreplayable += 1
    return chosen, unreplayable
