"""The values around a Split pass: its options, its running totals and what it returns.

Totals since the manifest's start travel in the checkpoint's `extra` (so the ledger's split
progress is absolute and a retried pass writes the same numbers); `SplitOutcome` is what a
pass hands back to the handler and the benchmark. Pure values: no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.failures import FailureRecord
from pipeline.gzip.checkpoint import Checkpoint
from pipeline.split.source import ReaderKnobs

if TYPE_CHECKING:
    from pipeline.config import Settings


@dataclass(frozen=True, slots=True)
class SplitOptions:
    """How a pass cuts and how long it may run (`budget_s` None: to the end of the manifest)."""

    chunk_items: int = 500
    chunk_max_bytes: int = 900 * 1024
    max_line_bytes: int = 64 * 1024
    budget_s: float | None = None
    knobs: ReaderKnobs = field(default_factory=ReaderKnobs)

    @classmethod
    def from_settings(cls, settings: Settings, *, budget_s: float | None) -> SplitOptions:
        """The chunk and line limits from `Settings`, with the pass's budget."""
        return cls(
            chunk_items=settings.chunk_items,
            chunk_max_bytes=settings.chunk_max_bytes,
            max_line_bytes=settings.max_line_bytes,
            budget_s=budget_s,
        )


@dataclass(slots=True)
class SplitTotals:
    """Counts since the manifest's start, up to the last chunk sent (kept in the checkpoint)."""

    lines: int = 0
    records: int = 0
    parse_failures: Counter[str] = field(default_factory=Counter)
    passes: int = 0

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> SplitTotals:
        """Read the totals back from a checkpoint's `extra` (all zero on the first pass)."""
        return cls(
            lines=int(extra.get("lines", 0)),
            records=int(extra.get("records", 0)),
            parse_failures=Counter(extra.get("parse_failures", {})),
            passes=int(extra.get("passes", 0)),
        )

    def add(self, records: int, failures: list[FailureRecord]) -> None:
        """Count one sent chunk: its records and the parse failures written with it."""
        self.records += records
        self.lines += records + len(failures)
        for record in failures:
            self.parse_failures[record.error] += 1

    def to_extra(self) -> dict[str, Any]:
        """The JSON form kept in the checkpoint's `extra`."""
        return {
            "lines": self.lines,
            "records": self.records,
            "parse_failures": dict(sorted(self.parse_failures.items())),
            "passes": self.passes,
        }


@dataclass(frozen=True, slots=True)
class SplitOutcome:
    """What one pass did; totals (`lines`, `records`, …) count from the manifest's start.

    `lines` is records plus parse failures: what the ledger's ok + failed will add up to.
    `records` counts the lines sent in chunks; a line sent unparsed (`raw_lines`) that is no
    record is its worker's parse failure, and `parse_failures` counts only Split's own.
    `reason` is set when the manifest broke and the split ended early (the run is partial).
    """

    checkpoint: Checkpoint
    is_done: bool
    lines: int
    records: int
    parse_failures: dict[str, int]
    chunks_sent: int
    passes: int
    pass_lines: int
    pass_chunks: int
    bytes_fetched: int
    seconds: float
    reason: str | None = None
    pass_bytes_decoded: int = 0
    lines_read: int = 0
    """Physical lines read up to where this pass stopped (blank and header lines included)."""
    is_paused: bool = False
    """The pass stopped early because the WorkQueue was full: wait before the next one."""


@dataclass(frozen=True, slots=True)
class PassStats:
    """What this pass alone did (the outcome's `pass_*` fields)."""

    lines: int
    chunks: int
    bytes_fetched: int
    seconds: float
    bytes_decoded: int = 0
    lines_read: int = 0


def outcome_of(
    checkpoint: Checkpoint, totals: SplitTotals, stats: PassStats, *, is_paused: bool = False
) -> SplitOutcome:
    """The outcome of a pass that ends at `checkpoint` (done when its `extra` says so)."""
    extra = checkpoint.extra
    return SplitOutcome(
        checkpoint=checkpoint,
        is_done=bool(extra.get("done")),
        lines=totals.lines,
        records=totals.records,
        parse_failures=dict(sorted(totals.parse_failures.items())),
        chunks_sent=checkpoint.next_chunk,
        passes=totals.passes,
        pass_lines=stats.lines,
        pass_chunks=stats.chunks,
        bytes_fetched=stats.bytes_fetched,
        seconds=stats.seconds,
        reason=extra.get("reason"),
        pass_bytes_decoded=stats.bytes_decoded,
        lines_read=stats.lines_read,
        is_paused=is_paused,
    )
