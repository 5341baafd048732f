"""Finish a committed chunk: publish its winning attempt's parts, send its failures, clean up.

The commit protocol, end to end (RELIABILITY.md "Exactly once where users look"):
1. every delivery stages its parts under its own attempt id (`pipeline/parts/commit.py`);
2. the ledger's conditional write counts the chunk and names the attempt (`ChunkCommit`);
3. the winner finishes the commit here: publish (create-if-absent), send its failure records (a
   parse failure names nothing to read again: only its part holds it) to
   the FailureQueue, delete its staging. A loser only deletes its own staging.

Step 3 is idempotent roll-forward: whoever finds a chunk counted with its winner's staging still
there — a later delivery of the chunk, or Finalize — finishes it from the marker, so a crash
between the ledger write and the publish never loses a part. Staging disappears last, so "the
winner's staging exists" means "its follow-up is unfinished". A roll-forward racing a winner
that is still alive can send its failure records twice (the FailureQueue is at least once);
it never publishes twice.

Knows nothing of Lambda: clients and names come in `CommitTargets`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.aws.failure_queue import send_failures
from pipeline.failures import FailureRecord, Stage
from pipeline.ledger.items import CommittedChunk
from pipeline.observe.tracing import span
from pipeline.parts.commit import (
    delete_staged,
    is_staged,
    part_names,
    publish_part,
    read_staged_failures,
)
from pipeline.parts.layout import PartName

logger = logging.getLogger(__name__)

DUPLICATE_WAIT_S = 10.0
"""How long a duplicate delivery lets a live winner finish its own follow-up before doing it."""
POLL_S = 0.25
CLOCK_SKEW_S = 1.0
"""Allowance between two hosts' clocks when one reads the deadline the other wrote."""


@dataclass(frozen=True, slots=True)
class CommitTargets:
    """Where committed parts and failure records go."""

    s3: Any
    sqs: Any
    bucket: str
    failure_queue_url: str


def staged_parts(run: str, marker: CommittedChunk) -> list[PartName]:
    """The parts the committed attempt staged (an empty part is never staged)."""
    results, failures = part_names(run, marker.chunk, marker.replay_round)
    return [
        p for p, rows in ((results, marker.result_rows), (failures, marker.failure_rows)) if rows
    ]


def finish_commit(
    targets: CommitTargets,
    run: str,
    marker: CommittedChunk,
    *,
    failures: Sequence[FailureRecord] | None = None,
) -> bool:
    """Publish the committed attempt's parts, send its failures, delete its staging.

    The winner passes its own `failures`; a roll-forward reads them from the staged part.
    Returns False when there was nothing left to do (the follow-up had finished).

    Raises:
        ResultWriteError | ThrottledError: S3 or SQS refused (the caller's chunk is redone).
    """
    if not marker.attempt:
        return False  # a marker from before attempts were recorded: its parts were written
    parts = staged_parts(run, marker)
    _, failures_part = part_names(run, marker.chunk, marker.replay_round)
    if failures is None:
        failures = (
            read_staged_failures(targets.s3, targets.bucket, failures_part, marker.attempt)
            if marker.failure_rows
            else []
        )
    with span("publish", metadata={"parts": len(parts)}):
        published = [publish_part(targets.s3, targets.bucket, p, marker.attempt) for p in parts]
    if parts and not any(published):
        return False  # nothing staged any more: an earlier follow-up finished
    # A line that is no record names nothing to read again: its part holds it, as Split's do
    failures = [f for f in failures if f.stage is not Stage.PARSE]
    if failures:
        with span("send_failures", metadata={"records": len(failures)}):
            send_failures(targets.sqs, targets.failure_queue_url, failures)
    delete_staged(targets.s3, targets.bucket, parts, marker.attempt)
    return True


def roll_forward(
    targets: CommitTargets,
    run: str,
    marker: CommittedChunk,
    *,
    wait_s: float = DUPLICATE_WAIT_S,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> bool:
    """Finish `marker`'s commit on behalf of a winner that may have died; True if it had to.

    Gives a live winner `wait_s` to finish first (its staging disappears when it does), so a
    duplicate delivered at the same moment rarely sends the failure records a second time. A
    winner past the deadline it wrote into the marker has ended: nobody else will finish its
    commit, so it is not waited for (a redelivery after a crash would otherwise spend
    `wait_s` of its own invocation, all of it where the function's timeout is that short).
    """
    parts = staged_parts(run, marker)
    if not marker.attempt or not parts:
        return False
    if marker.live_until is not None:
        wait_s = min(wait_s, max(0.0, marker.live_until + CLOCK_SKEW_S - clock()))
    waited = 0.0
    while _is_unfinished(targets, parts, marker.attempt):
        if waited >= wait_s:
            done = finish_commit(targets, run, marker)
            if done:
                logger.warning(
                    "rolled %s forward (its delivery did not finish)",
                    marker.label,
                    extra={"run": run},
                )
            return done
        sleep(POLL_S)
        waited += POLL_S
    return False


def _is_unfinished(targets: CommitTargets, parts: Sequence[PartName], attempt: str) -> bool:
    return any(is_staged(targets.s3, targets.bucket, p, attempt) for p in parts)
