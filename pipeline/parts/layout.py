"""Where a run's parts live: deterministic keys, and the result row they hold.

Layout in the results bucket (every key is a pure function of run, series and chunk, so a
redelivered chunk overwrites its own part and never adds a second one):

    results/<run>/part-NNNNNNNN.jsonl.gz              chunk N, first delivery (round 0)
    results/<run>/replay-RRRR-NNNNNNNN.jsonl.gz       replay round R (1, 2, …), replay chunk N
    failures/<run>/part-NNNNNNNN.jsonl.gz             item failures of chunk N
    failures/<run>/parse-NNNNNNNN.jsonl.gz            parse failures met while cutting chunk N
    failures/<run>/replay-RRRR-NNNNNNNN.jsonl.gz      failures of replay round R, chunk N
    results/<run>/_SUCCESS.json | _PARTIAL.json       the run summary (pipeline/ledger/summary.py)

    staging/<run>/<stem>/<attempt>/results.jsonl.gz  one delivery's parts before the ledger
    staging/<run>/<stem>/<attempt>/failures.jsonl.gz   counted them (`<stem>`: part-N, replay-R-N)

Only a committed delivery's parts ever reach `results/` or `failures/` (`pipeline/parts/commit.py`):
every delivery writes under its own attempt id in `staging/`, outside both prefixes, so a query
engine reading `results/<run>/*.jsonl.gz` and `failures/<run>/*.jsonl.gz` never sees the work
of a delivery that lost the ledger's conditional write.

A *series* is the parts of one writer: first deliveries, parse failures, or one replay round.
Within a series chunk numbers follow line order, which is what lets the readers merge lazily.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

STAGING_PREFIX = "staging"
"""Top-level prefix of uncommitted parts; never under `results/` or `failures/`."""


class PartKind(StrEnum):
    """The two top-level prefixes of the results bucket."""

    RESULTS = "results"
    FAILURES = "failures"


class Series(StrEnum):
    """Which writer produced a part; a replay round is `REPLAY` plus its round number."""

    PART = "part"
    PARSE = "parse"
    REPLAY = "replay"


@dataclass(frozen=True, slots=True)
class PartName:
    """The parsed identity of one part key; `round` is 0 except for replays."""

    kind: PartKind
    run: str
    series: Series
    chunk: int
    round: int = 0

    @property
    def stem(self) -> str:
        """The file name without its suffix: `part-NNNNNNNN`, `replay-RRRR-NNNNNNNN` …."""
        if self.series is Series.REPLAY:
            return f"replay-{self.round:04d}-{self.chunk:08d}"
        return f"{self.series.value}-{self.chunk:08d}"

    @property
    def key(self) -> str:
        """The S3 key of this part."""
        return f"{self.kind.value}/{self.run}/{self.stem}.jsonl.gz"

    def staging_key(self, attempt: str) -> str:
        """Where delivery `attempt` stages this part until the ledger has counted it."""
        return f"{STAGING_PREFIX}/{self.run}/{self.stem}/{attempt}/{self.kind.value}.jsonl.gz"

    def __post_init__(self) -> None:
        if self.chunk < 0 or self.round < 0 or (self.series is Series.REPLAY) != (self.round > 0):
            raise ValueError(f"invalid part name {self!r}: replay parts need a round >= 1")


_CHUNK = r"(?P<chunk>\d{8}|[1-9]\d{8,})"
_ROUND = r"(?P<round>\d{4}|[1-9]\d{4,})"
"""What `PartName.stem` writes: zero-padded to 8 and 4 digits, wider past them (a run can have
more than 10^8 chunks with small chunks, a line more than 9,999 replays), never a wider
zero-padded form that would name a second key for one part."""
_KEY_RE = re.compile(
    r"^(?P<kind>results|failures)/(?P<run>[^/]+)/"
    rf"(?:(?P<series>part|parse)|replay-{_ROUND})-{_CHUNK}\.jsonl\.gz$"
)


def parse_part_key(key: str) -> PartName | None:
    """The `PartName` of `key`, or None for anything else under the prefix (`_SUCCESS.json`)."""
    match = _KEY_RE.match(key)
    if match is None:
        return None
    replay_round = int(match["round"] or 0)
    return PartName(
        kind=PartKind(match["kind"]),
        run=match["run"],
        series=Series(match["series"] or Series.REPLAY.value),
        chunk=int(match["chunk"]),
        round=replay_round,
    )


_STAGING_RE = re.compile(
    rf"^staging/(?P<run>[^/]+)/(?:part|replay-{_ROUND})-{_CHUNK}/"
    r"(?P<attempt>[0-9A-Za-z_-]+)/(?P<kind>results|failures)\.jsonl\.gz$"
)


@dataclass(frozen=True, slots=True)
class StagedPart:
    """A parsed staging key: which part, and which delivery (`attempt`) wrote it."""

    part: PartName
    attempt: str


def parse_staging_key(key: str) -> StagedPart | None:
    """The `StagedPart` of a key under `staging/`, or None for anything else."""
    match = _STAGING_RE.match(key)
    if match is None:
        return None
    part = chunk_part(
        PartKind(match["kind"]),
        match["run"],
        int(match["chunk"]),
        replay_round=int(match["round"] or 0),
    )
    return StagedPart(part, match["attempt"])


def staging_run_prefix(run: str) -> str:
    """The prefix holding every staged part of `run`."""
    return f"{STAGING_PREFIX}/{run}/"


def chunk_part(kind: PartKind, run: str, chunk: int, *, replay_round: int = 0) -> PartName:
    """The part of a work chunk: round 0 is the first delivery, round R >= 1 a replay."""
    series = Series.REPLAY if replay_round else Series.PART
    return PartName(kind=kind, run=run, series=series, chunk=chunk, round=replay_round)


def parse_failures_part(run: str, chunk: int) -> PartName:
    """The part for parse failures met while Split cut chunk `chunk` (one per chunk with any).

    Keyed by the chunk, not the pass, so a Split retried from its checkpoint rewrites the same
    parts.
    """
    return PartName(kind=PartKind.FAILURES, run=run, series=Series.PARSE, chunk=chunk)


@dataclass(frozen=True, slots=True)
class RowModel:
    """The model a results row names (read back from a part)."""

    name: str
    sha256: str


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One labelled manifest line; labels are top-k, best first."""

    line: int
    bucket: str
    key: str
    labels: tuple[tuple[str, float], ...]
    version_id: str | None = None
    model: Any = None
    """What labelled it: anything with `name` and `sha256` (a `ModelIdentity`), so a run can be
    reproduced. Repeated on every row: gzip stores the repeat in a few bytes (BENCHMARKS.md)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the contract; `version_id` only when the manifest gave one."""
        data: dict[str, Any] = {"line": self.line, "bucket": self.bucket, "key": self.key}
        if self.version_id is not None:
            data["version_id"] = self.version_id
        data["labels"] = [[name, score] for name, score in self.labels]
        if self.model is not None:
            data["model"] = self.model.name
            data["model_sha256"] = self.model.sha256
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultRow:
        """Read a row back from a results part."""
        return cls(
            line=int(data["line"]),
            bucket=data["bucket"],
            key=data["key"],
            labels=tuple((str(name), float(score)) for name, score in data["labels"]),
            version_id=data.get("version_id"),
            model=RowModel(data["model"], data.get("model_sha256", ""))
            if "model" in data
            else None,
        )
