"""Finish a run: roll its commits forward, check its counts, settle its status, write its summary.

A run that stalled, or whose execution failed past its retries (the state carries `error`), is
PARTIAL with the reason until the split is done and every chunk it sent is counted; a manifest
the split found broken stays PARTIAL for good (`standing_reason`). A run whose counts are
impossible — negative, `ok > lines`, `ok + failed != lines` once every chunk is counted, or
counters that disagree with the chunk markers (the committed parts' row counts) — is FAILED with
a reason naming the chunk; otherwise the ledger decides (`pipeline.ledger.summary.final_status`).
Before that, every committed chunk whose delivery died between the ledger write and the publish
is published from its marker, and the staged parts of losing deliveries are deleted.

The same settling runs again whenever a finished run's counts move: a chunk counted after a stall
timeout (`resettle_if_finished`, from the worker) or a replay round (`pipeline/replay`).

Knows nothing of Lambda: the ledger, the clients and the clock are passed in.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from enum import Enum
from typing import Any

from pipeline.ledger.commit import CommitTargets, roll_forward
from pipeline.ledger.invariants import marker_problems
from pipeline.ledger.markers import committed_chunk, iter_committed_chunks
from pipeline.ledger.runs import RunState, RunStatus
from pipeline.ledger.summary import build_summary, final_status, invariant_problems, write_summary
from pipeline.ledger.table import RunLedger, UnknownRunError
from pipeline.parts.commit import iter_staged
from pipeline.parts.layout import PartName

logger = logging.getLogger(__name__)

STALL_REASON_PREFIX = "stalled"
INVARIANT_REASON_PREFIX = "impossible counts"
EXECUTION_FAILED_PREFIX = "the run's execution failed"
ABANDONED_AFTER_S = 60.0
"""Finalize rolls forward a committed attempt's staging only once it is this old; younger, its
delivery is most likely still publishing it, and Finalize waits for that (at most this long)."""
SUMMARY_REWRITES = 10
"""Decide-and-write rounds at most while counts keep moving (each late count's worker settles
again after its own count anyway)."""


class MarkerRead(Enum):
    """When settling reads the run's chunk markers to check its counters against them.

    Every marker is read: ~33 us of CPU each, minutes for a run of millions of chunks. A run
    with chunks still to count is PARTIAL whatever they say, so they are read only once every
    chunk is counted (nothing is lost but an early FAILED, and Finalize reads them with the
    counts at rest, not while late chunks move them under every scan), and not again at counts
    they were already checked at.
    """

    ONCE_COMPLETE = "once complete"  # Finalize, the replayer, a worker after a chunk
    NEVER = "never"  # a worker after a replay chunk


def _partial_reason(state: dict[str, Any]) -> str | None:
    """Why the state machine says the run is partial, if it does."""
    if state.get("error"):
        error = state["error"]
        cause = str(error.get("Cause", "")) if isinstance(error, dict) else ""
        name = error.get("Error", "error") if isinstance(error, dict) else str(error)
        return f"{EXECUTION_FAILED_PREFIX}: {name}: {_cause_message(cause)[:300]}"
    if state.get("stalled"):
        return "stalled: no chunk was counted within the stall timeout (see the WorkDLQ)"
    return None


def _cause_message(cause: str) -> str:
    try:
        return str(json.loads(cause).get("errorMessage", cause))
    except (ValueError, AttributeError):
        return cause


def finalize_run(
    state: dict[str, Any],
    *,
    ledger: RunLedger,
    s3: Any,
    results_bucket: str,
    now: float,
    targets: CommitTargets | None = None,
) -> dict[str, Any]:
    """Roll commits forward, settle the run, write `_SUCCESS.json` or `_PARTIAL.json`.

    Returns the summary object. `targets` (the S3 and SQS clients, the FailureQueue) enables the
    roll-forward of abandoned commits; without it only the counts are settled.
    """
    run = state["run"]
    try:
        ledger.get_run(run)
    except UnknownRunError:  # Split failed before it could start the run
        ledger.start_run(run, manifest=state["manifest"]["uri"])
    if targets is not None:
        sweep_staging(targets, ledger, run, now=now)
    summary = settle_run(ledger, s3, results_bucket, run, now=now, reason=_partial_reason(state))
    logger.info("run finished %s", summary["status"], extra={"run": run})
    return summary


def settle_run(
    ledger: RunLedger,
    s3: Any,
    results_bucket: str,
    run: str,
    *,
    now: float,
    reason: str | None = None,
    markers: MarkerRead = MarkerRead.ONCE_COMPLETE,
) -> dict[str, Any]:
    """Decide the run's end status from the ledger and its markers; write its summary.

    `reason` (the execution failed, it stalled) makes the run PARTIAL while it holds; `markers`
    says when the chunk markers are read (when they are not, impossible counts they showed
    before stand).

    Decided from one view: the counters are read again after the markers, and if a chunk was
    counted in between, the markers (which then hold more than the counters read first) count
    as unread this round — not a false "impossible counts", nor a standing one dropped.
    Written only over the settle this decision was made from (`settle_version`): a settler that
    read an older view decides again from the newer one instead of overwriting it. Then read
    back: if the counts moved, or another settler has since written a different decision, it
    is decided and written again, so the last summary written follows the last count and the
    last decision, whoever writes them (two settlers that agree both stop).
    """
    summary = None
    for _ in range(SUMMARY_REWRITES):
        state = ledger.get_run(run)
        problems = checked = None
        if (
            markers is MarkerRead.ONCE_COMPLETE
            and state.is_complete
            and state.markers_checked != state.counts_key  # at these counts, a settle did
        ):
            problems = marker_problems(state, iter_committed_chunks(ledger, run))
            if ledger.get_run(run).counts_key != state.counts_key:
                problems = None  # counted while they were read: as if unread, next round reads
            else:
                checked = state.counts_key
        status, why = settled_status(state, problems, reason)
        mine = state.settle_version + 1
        if not ledger.mark_finished(
            run,
            status,
            reason=why,
            clear_reason=why is None,
            settled_as=state.settle_version,
            markers_checked=checked,
        ):
            continue  # another settler wrote since this view was read: decide from its
        summary = build_summary(ledger.get_run(run), now=now)
        write_summary(s3, results_bucket, run, summary)
        after = ledger.get_run(run)
        if after.counts_key == state.counts_key and (
            after.settle_version == mine or (after.status, after.reason) == (status, why)
        ):
            return summary.to_dict()  # the last decision is this one, from these counts
    logger.warning(
        "run settled %d times while its counts or settlers kept moving; the next count's "
        "worker settles it again",
        SUMMARY_REWRITES,
        extra={"run": run},
    )
    if summary is None:  # every round's write lost to another settler's, which writes its own
        return build_summary(ledger.get_run(run), now=now).to_dict()
    return summary.to_dict()


def settled_status(
    state: RunState, problems: list[str] | None, reason: str | None = None
) -> tuple[RunStatus, str | None]:
    """The end status and reason of a finished run, from its counts and marker problems.

    `problems` None: the markers were not read, so impossible counts they showed before stand.
    """
    found = invariant_problems(state) + (problems or [])
    if found:
        return RunStatus.FAILED, f"{INVARIANT_REASON_PREFIX}: " + "; ".join(found[:5])
    if problems is None and state.reason and state.reason.startswith(INVARIANT_REASON_PREFIX):
        return RunStatus.FAILED, state.reason
    kept = standing_reason(state, reason)
    if kept:
        return RunStatus.PARTIAL, kept
    running = dataclasses.replace(state, status=RunStatus.RUNNING, reason=None)
    return final_status(running), None


def standing_reason(state: RunState, reason: str | None = None) -> str | None:
    """The reason that still makes a finished run PARTIAL, if one does.

    Impossible counts are decided again from the counts as they are now. A stall, or an
    execution that failed, stops holding once the split is done and every chunk it sent is
    counted; what the split itself found (a truncated manifest) never does, and as the run's
    `reason` is overwritten by a stall or a failed execution, it comes back from
    `split_reason`. On a run item written before `split_reason` was kept nothing is known of
    the split's end, so an execution-failed reason then stays (a stall goes, as it always did).
    """
    split = state.split_reason or None
    kept = reason or state.reason
    if not kept or kept.startswith(INVARIANT_REASON_PREFIX):
        return split
    counted_past = state.is_complete and state.pending == 0
    if counted_past and kept.startswith(STALL_REASON_PREFIX):
        return split
    if counted_past and kept.startswith(EXECUTION_FAILED_PREFIX) and state.split_reason is not None:
        return split
    return kept


def resettle_if_finished(
    ledger: RunLedger,
    s3: Any,
    results_bucket: str,
    run: str,
    *,
    is_replay: bool = False,
) -> bool:
    """After a chunk's delivery: if its run is already finished, settle it again.

    A chunk can be counted after Finalize (a stall timeout gave up on it; it came back from the
    WorkDLQ), or a replay chunk after the replayer stopped waiting: the run's status and summary
    must follow, or the summary would lie. A delivery that counted nothing (a duplicate) settles
    too, since the one that counted may have died before it did, or while writing the summary.
    The markers are read once every chunk is counted, and only if no settle checked them at the
    counts as they are (`markers_checked`), never for a replay chunk (the replayer reads them
    once its round is counted): a worker must not read millions of them for each late,
    duplicate or replayed chunk.
    """
    try:
        state = ledger.get_run(run)
    except UnknownRunError:
        return False  # counted for a run the ledger never started: nothing to settle
    if state.finished_at is None and state.status is RunStatus.RUNNING:
        return False
    markers = MarkerRead.NEVER if is_replay else MarkerRead.ONCE_COMPLETE
    settle_run(ledger, s3, results_bucket, run, now=time.time(), markers=markers)
    return True


def sweep_staging(targets: CommitTargets, ledger: RunLedger, run: str, *, now: float) -> int:
    """Finish abandoned commits and delete losers' staged parts; return objects handled.

    For each staged object: its chunk counted with this attempt → wait until its delivery has
    published it, or roll the commit forward once it is `ABANDONED_AFTER_S` old (the summary is
    written after this: a run is settled only when every counted chunk's parts are readable, even
    when the last chunk's count ended the wait a moment before its parts were published);
    counted with another attempt → a loser's, delete it; not
    counted → leave it (its delivery may still win; the bucket's lifecycle rule ends the rest).
    """
    handled = 0
    markers: dict[tuple[int, int], Any] = {}
    for obj in iter_staged(targets.s3, targets.bucket, run):
        part: PartName = obj.staged.part
        where = (part.round, part.chunk)
        if where not in markers:
            markers[where] = committed_chunk(ledger, run, part.chunk, replay_round=part.round)
        marker = markers[where]
        if marker is None:
            continue
        if marker.attempt != obj.staged.attempt:
            targets.s3.delete_object(
                Bucket=targets.bucket, Key=part.staging_key(obj.staged.attempt)
            )
            handled += 1
        elif roll_forward(
            targets,
            run,
            marker,
            wait_s=max(0.0, ABANDONED_AFTER_S - (now - obj.last_modified_s)),
        ):
            logger.warning("rolled %s forward at Finalize", marker.label, extra={"run": run})
            handled += 1
    return handled
