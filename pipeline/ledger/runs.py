"""Run identity and the value a run's state is read as.

A run is one manifest object at one version. Its id is derived, never allocated, so every part of
the flow (the S3 event, Step Functions' execution name, the ledger, the result keys) agrees on it
without talking to each other, and a duplicate event finds the run already there. The DynamoDB
ledger that stores `RunState` lives in `pipeline/ledger/table.py`, the summary in
`pipeline/ledger/summary.py`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

RUN_ID_HEX_CHARS = 20
"""80 bits of SHA-256: collisions are out of reach for any number of manifests a user has."""
_RUN_ID_RE = re.compile(rf"^[0-9a-f]{{{RUN_ID_HEX_CHARS}}}$")


def run_id(bucket: str, key: str, etag_or_version: str) -> str:
    """The run id of one manifest object version: a short, stable, lower-case hex hash.

    Hash of bucket, key and the object's version id (or, unversioned, its ETag; quotes around an
    ETag are ignored, since S3 events omit them and HeadObject includes them). Valid as a Step
    Functions execution name (1-80 of ``[0-9A-Za-z_-]``) and as an S3 key segment.
    """
    if not bucket or not key or not etag_or_version:
        raise ValueError("run_id needs the bucket, the key and an ETag or version id")
    version = etag_or_version.strip().strip('"')
    digest = hashlib.sha256("\0".join((bucket, key, version)).encode()).hexdigest()
    return digest[:RUN_ID_HEX_CHARS]


def is_run_id(text: str) -> bool:
    """True when `text` has the shape of a run id (for CLI argument checks)."""
    return _RUN_ID_RE.fullmatch(text) is not None


class RunStatus(StrEnum):
    """A run's lifecycle: RUNNING until Finalize sets one of the three end states.

    SUCCEEDED: every line has a result or a failure record (item failures are data).
    PARTIAL: some lines are unaccounted for (stall timeout, truncated manifest): see `reason`.
    FAILED: the execution itself failed.
    """

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class RunState:
    """One run as the ledger knows it (a consistent read of its run item).

    `failed` and the two breakdowns include parse failures; `compute_s` is the sum of the
    chunk handlers' own seconds (what Lambda bills), wall time comes from the timestamps.
    """

    run: str
    manifest: str
    status: RunStatus
    started_at: float
    finished_at: float | None = None
    lines_split: int = 0
    chunks_sent: int = 0
    is_split_done: bool = False
    is_split_paused: bool = False
    """The last Split pass stopped early: the WorkQueue was full (`split/backpressure.py`)."""
    chunks_done: int = 0
    replay_chunks_done: int = 0
    ok: int = 0
    failed: int = 0
    failed_by_stage: Mapping[str, int] = field(default_factory=dict)
    failed_by_error: Mapping[str, int] = field(default_factory=dict)
    compute_s: float = 0.0
    images: int = 0
    reason: str | None = None
    split_reason: str | None = None
    """Why the split ended early, kept apart from `reason` (which a stall or a failed execution
    replaces): "" once it read the whole manifest; None while it runs, or on a run item written
    before this was kept (nothing is then known of the split's own end)."""
    settle_version: int = 0
    """How many times the run was settled: a settler writes only over the version it read."""
    markers_checked: str | None = None
    """The counts (`counts_key`) at which a settle last checked the chunk markers."""
    split_parse_failed: int = 0
    """The parse failures Split wrote (in its parse parts); `failed` also holds those a worker
    found in lines Split sent unparsed, counted with their chunk."""
    wait_token: str | None = None
    """The Step Functions task token the execution waits on once Split is done (None before):
    whoever sees the run complete sends it SendTaskSuccess (pipeline/ledger/completion.py)."""

    @property
    def counts_key(self) -> str:
        """What settling decides from, as one value: counted lines and chunks, first and replay."""
        counts = (self.ok, self.failed, self.lines_split, self.chunks_done, self.replay_chunks_done)
        return ",".join(map(str, counts))

    @property
    def lines(self) -> int:
        """Manifest lines seen so far (all of them once the split is done)."""
        return self.lines_split

    @property
    def pending(self) -> int:
        """Lines split but not yet counted as ok or failed."""
        return self.lines_split - self.ok - self.failed

    @property
    def is_complete(self) -> bool:
        """The split is done and every chunk it sent has been counted."""
        return self.is_split_done and self.chunks_done >= self.chunks_sent

    def eta_s(self, now: float) -> float | None:
        """Seconds until every line is counted at the rate so far; None until it is knowable.

        Known only once the split is done (before that the total is unknown) and some lines
        were counted.
        """
        counted = self.ok + self.failed
        elapsed = self.wall_s(now)
        if not self.is_split_done or counted <= 0 or elapsed <= 0:
            return None
        return max(0, self.pending) * elapsed / counted

    def wall_s(self, now: float) -> float:
        """Seconds from start to finish (or to `now` while running)."""
        end = self.finished_at if self.finished_at is not None else now
        return max(0.0, end - self.started_at)
