"""`lambdaflow replay`: give failed lines and poison chunks another go, counting nothing twice.

Source of truth. What to replay is read from the run's failures parts (`iter_failure_records`):
they are durable, hold every failure of every line (parse failures included), and their reader
already returns each line once, as its latest record, and drops lines a replay has since
labelled. The FailureQueue is the user-visible dead-letter *feed* of item failures (at least
once, for alarms and consumers); it is kept consistent with the parts, not read for decisions:
a replay deletes the queue's messages for the lines it replays (`acknowledge_failures`), and
a line that fails again sends its new record (attempts + 1). So after a replay has run, the
queue holds the latest failure of each line still without a result, like the parts say.

Item failures. The selected records (filters: stage, error code, retryable only; parse
failures have no object to read and are never replayed) become replay chunks of the same run in
a new round (`pipeline/replay/chunks.py`), claimed in the ledger first so two rounds of one
run never overlap (`pipeline/replay/ledger.py`), and kept in S3 so that a send that broke is
finished by the next replay (`round_store.py`). The classify workers write the round's parts
and move each line failed → ok (or to its new failure) in the ledger.

Poison chunks. WorkDLQ messages go back to the WorkQueue (`pipeline/replay/work_dlq.py`), unchanged.

Afterwards each touched run is re-settled and its summary file rewritten, so `_SUCCESS.json` /
`_PARTIAL.json` stays true (a run still RUNNING is left to its own Finalize). Past the ~300-line
guide: the round's whole life (select, claim, send, wait, prune, settle) stays readable in one
place; pruning itself is `pipeline/replay/prune.py`.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from pipeline.failures import FailureRecord
from pipeline.ledger.commit import CommitTargets
from pipeline.ledger.finalize import settle_run, sweep_staging
from pipeline.ledger.markers import counted_replay_chunks
from pipeline.ledger.runs import RunStatus
from pipeline.ledger.table import RunLedger
from pipeline.parts.store import iter_failure_entries
from pipeline.replay.chunks import (
    Origin,
    ReplayChunk,
    ReplayFilter,
    iter_replay_chunks,
    select_failures,
)
from pipeline.replay.failure_drain import LEASE_WAIT_S, DrainReport, acknowledge_failures
from pipeline.replay.ledger import ReplayLedger, still_running, unkept_round
from pipeline.replay.prune import prune_round
from pipeline.replay.round_store import delete_rounds, read_round, write_round
from pipeline.replay.work_dlq import ParkedChunk, move_messages, queue_arn, start_move_task
from pipeline.split.work_queue import send_chunks


class ReplayTimeoutError(TimeoutError):
    """Replayed chunks were not all counted in time; they go on: re-run replay to see."""


@dataclass(frozen=True, slots=True)
class ReplayTargets:
    """Where the stack keeps things, and how big a replay chunk may be."""

    results_bucket: str
    work_queue_url: str
    work_dlq_url: str
    failure_queue_url: str
    chunk_items: int = 500
    chunk_max_bytes: int = 900 * 1024
    use_move_task: bool = False
    """On AWS: move the whole WorkDLQ with SQS's StartMessageMoveTask (moto lacks it)."""


@dataclass(frozen=True, slots=True)
class RunReplay:
    """What a replay did (or, dry, would do) for one run."""

    run: str
    replay_round: int = 0
    lines: tuple[int, ...] = ()
    chunks: int = 0
    by_error: dict[str, int] = field(default_factory=dict)
    unreplayable: int = 0
    """Selected records with no object to read again (parse failures): reported, not sent."""
    dlq_chunks: tuple[ParkedChunk, ...] = ()
    acknowledged: int = 0
    failure_queue_left: str | None = None
    """Why superseded FailureQueue messages of the replayed lines may remain (None: none do)."""
    summary: dict[str, Any] | None = None
    origin_keys: frozenset[str] | None = frozenset()
    """The failure parts the replayed records were read from (pruned once the round counts);
    None: not known (a round sent again), every earlier failure part is checked."""
    resent: bool = False
    """An unfinished round sent again (`Replayer._resend`), not a new one."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape `lambdaflow replay --json` prints, one per run."""
        return {
            "run": self.run,
            "replay_round": self.replay_round,
            "lines": len(self.lines),
            "chunks": self.chunks,
            "by_error": self.by_error,
            "unreplayable": self.unreplayable,
            "dlq_chunks": len(self.dlq_chunks),
            "failure_queue_acknowledged": self.acknowledged,
            "failure_queue_left": self.failure_queue_left,
            "resent": self.resent,
            "summary": self.summary,
        }


@dataclass(frozen=True, slots=True)
class Replayer:
    """The replay operations over injected clients (S3, SQS) and the ledger's table."""

    s3: Any
    sqs: Any
    ledger: RunLedger
    replays: ReplayLedger
    targets: ReplayTargets

    def replay_items(
        self,
        run: str,
        flt: ReplayFilter,
        *,
        limit: int | None = None,
        dry_run: bool = False,
        drain_wait_s: float = LEASE_WAIT_S,
    ) -> RunReplay:
        """Send the run's matching failed lines as a new replay round (or count them, dry).

        A previous round that was counted but not pruned (its replayer crashed) is pruned
        first, so the failure view this round selects from is the current one; one whose
        chunks are not all counted yet (its send broke) is sent again instead of a new round
        (`_resend`). The FailureQueue drain waits up to `drain_wait_s` for another replay's
        drain to end.
        """
        if not dry_run:
            self.finish_pruning(run)
            progress = self.replays.progress(run)
            if not progress.is_settled:
                kept = read_round(self.s3, self.targets.results_bucket, run, progress.claim)
                if kept is None:
                    raise unkept_round(run, progress)  # before a selection is made and kept
                return self._resend(run, progress.replay_round, kept, drain_wait_s)
        origins: dict[int, Origin] = {}
        keys: dict[int, str] = {}

        def failures() -> Iterator[FailureRecord]:
            for record, part in iter_failure_entries(self.s3, self.targets.results_bucket, run):
                origins[record.line], keys[record.line] = (part.round, part.chunk), part.key
                yield record

        chosen, unreplayable = select_failures(failures(), flt, limit=limit)
        by_error = dict(Counter(r.error for r in chosen))
        lines = tuple(r.line for r in chosen)
        # Cut once, where the origins split it too (`MAX_ORIGINS` a chunk): the round claims
        # exactly the chunks it sends, or it would read as settled before they are all counted
        cut = self._chunks(chosen, replay_round=0, origins=origins) if chosen else []
        if not chosen or dry_run:
            return RunReplay(run, 0, lines, len(cut), by_error, unreplayable)
        claim = uuid.uuid4().hex  # names the kept chunks first: a claimed round can be re-sent
        write_round(self.s3, self.targets.results_bucket, run, claim, cut)
        replay_round = self.replays.claim_round(run, chunks=len(cut), claim=claim)
        chunks = _in_round(cut, replay_round)
        self._send(chunks)
        drained = self._drain(run, chunks, drain_wait_s)
        return RunReplay(
            run,
            replay_round,
            lines,
            len(chunks),
            by_error,
            unreplayable,
            acknowledged=drained.deleted,
            failure_queue_left=drained.left_reason,
            origin_keys=frozenset(keys[line] for line in lines),
        )

    def _resend(
        self, run: str, replay_round: int, kept: list[ReplayChunk], drain_wait_s: float
    ) -> RunReplay:
        """Send again the chunks of the unfinished round `replay_round` not counted yet.

        Its send broke part way (or its replayer was stopped): whether SQS took a chunk whose
        call broke is unknown, so every chunk not counted goes again; one sent twice is
        counted once. The round's lines come from its kept chunks, so no new selection is
        made: the next replay of the run takes what is left once this round is pruned.
        """
        chunks = _in_round(kept, replay_round)
        counted = counted_replay_chunks(self.ledger, run, replay_round)
        self._send([c for c in chunks if c.number not in counted])
        drained = self._drain(run, chunks, drain_wait_s)
        priors = [c.mark.prior[item.line] for c in chunks for item in c.chunk.items]
        return RunReplay(
            run,
            replay_round,
            tuple(item.line for c in chunks for item in c.chunk.items),
            len(chunks),
            dict(Counter(prior.error for prior in priors)),
            acknowledged=drained.deleted,
            failure_queue_left=drained.left_reason,
            origin_keys=None,  # not kept: the prune checks every earlier failure part
            resent=True,
        )

    def _send(self, chunks: list[ReplayChunk]) -> None:
        """Send chunks to the WorkQueue.

        Nothing is given back when a call breaks: the round's chunks are kept
        (`round_store.py`), and the next replay of the run sends again what is not counted.
        """
        send_chunks(self.sqs, self.targets.work_queue_url, chunks)

    def _drain(self, run: str, chunks: list[ReplayChunk], drain_wait_s: float) -> DrainReport:
        """Delete the FailureQueue's messages the round's lines supersede (`failure_drain`)."""
        return acknowledge_failures(
            self.sqs,
            self.targets.failure_queue_url,
            {
                (run, item.line): c.mark.prior[item.line].attempts
                for c in chunks
                for item in c.chunk.items
            },
            lease=self.replays.drain_lease(),  # another replay's drain would hide our messages
            lease_wait_s=drain_wait_s,
        )

    def replay_dlq(
        self, run: str | None, *, limit: int | None = None, dry_run: bool = False
    ) -> list[ParkedChunk]:
        """Move the WorkDLQ's chunks (of `run`, or all) back to the WorkQueue.

        On AWS, for the whole queue, SQS's own move task does the moving: the parked chunks are
        listed first (received and released), then `StartMessageMoveTask` moves every message.
        """
        if self.targets.use_move_task and run is None and limit is None and not dry_run:
            parked = self.replay_dlq(None, dry_run=True)
            if parked:
                start_move_task(
                    self.sqs,
                    queue_arn(self.sqs, self.targets.work_dlq_url),
                    queue_arn(self.sqs, self.targets.work_queue_url),
                )
            return parked
        return move_messages(
            self.sqs,
            self.targets.work_dlq_url,
            self.targets.work_queue_url,
            run=run,
            limit=limit,
            dry_run=dry_run,
        )

    def is_settled(self, run: str) -> bool:
        """Every chunk of the run, first deliveries and replays, has been counted."""
        state = self.ledger.get_run(run)
        first_done = not state.is_split_done or state.chunks_done >= state.chunks_sent
        return first_done and self.replays.progress(run).is_settled

    def wait_settled(self, runs: Iterable[str], *, timeout_s: float, poll_s: float = 0.5) -> None:
        """Block until every run is settled.

        Raises:
            ReplayTimeoutError: some run was not settled within `timeout_s`.
        """
        pending = set(runs)
        deadline = time.monotonic() + timeout_s
        while pending:
            pending = {run for run in pending if not self.is_settled(run)}
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise ReplayTimeoutError(
                    f"replayed chunks of {', '.join(sorted(pending))} not all counted after "
                    f"{timeout_s:.0f}s; they go on — `lambdaflow replay` again waits for "
                    "them, sending again what is still not counted"
                )
            time.sleep(poll_s)

    def finish_pruning(
        self, run: str, *, replayed: RunReplay | None = None, now: float | None = None
    ) -> int:
        """Prune the run's last round out of the earlier failure parts, once it is counted.

        `replayed`, this process's own replay of the run, narrows the rewrite to the parts its
        records came from, while its round is still the last: a later replay's round (one that
        ran while this one waited) is pruned over every earlier failure part.

        Counted is not yet published: a delivery counts its chunk, then publishes its parts
        (or dies, and its redelivery rolls them forward). The prune reads the round's lines
        from its published parts, so the round's commits are finished first, as Finalize
        finishes a run's (`sweep_staging`, waiting for a live delivery, rolling forward a
        dead one's); else a line published after the prune would stay in an older failure
        part for good, beside its result.

        Returns the rows removed (0 when there is nothing to prune or the round is unfinished).
        """
        progress = self.replays.progress(run)
        if progress.is_pruned or not progress.is_settled:
            return 0
        targets = CommitTargets(
            self.s3, self.sqs, self.targets.results_bucket, self.targets.failure_queue_url
        )
        sweep_staging(targets, self.ledger, run, now=time.time() if now is None else now)
        keys = None
        if replayed is not None and replayed.replay_round == progress.replay_round:
            keys = replayed.origin_keys
        removed = prune_round(
            self.s3, self.targets.results_bucket, run, progress.replay_round, keys=keys
        )
        self.replays.mark_pruned(run, progress.replay_round)
        delete_rounds(self.s3, self.targets.results_bucket, run, progress.claim)
        return removed

    def refresh_summary(
        self, run: str, *, now: float, replayed: RunReplay | None = None
    ) -> dict[str, Any] | None:
        """Prune the counted round, re-settle the run, rewrite its summary; None if RUNNING.

        `replayed`: this process's replay of the run, if it made one (see `finish_pruning`).
        """
        if self.is_running(run):
            return None
        self.finish_pruning(run, replayed=replayed, now=now)
        return settle_run(self.ledger, self.s3, self.targets.results_bucket, run, now=now)

    def is_running(self, run: str) -> bool:
        """The run has not finished: its failure parts are not final yet."""
        return self.ledger.get_run(run).status is RunStatus.RUNNING

    def wait_finished(self, runs: Iterable[str], *, timeout_s: float, poll_s: float = 1.0) -> None:
        """Block until no run of `runs` is RUNNING (`--wait`).

        Raises:
            ReplayTimeoutError: a run was still running after `timeout_s` (nothing replayed).
        """
        pending = set(runs)
        deadline = time.monotonic() + timeout_s
        while pending := {run for run in pending if self.is_running(run)}:
            if time.monotonic() >= deadline:
                raise ReplayTimeoutError(
                    f"run {', '.join(sorted(pending))} still running after {timeout_s:.0f}s: "
                    "nothing of it was replayed; try again once it has finished"
                )
            time.sleep(poll_s)

    def _chunks(
        self,
        records: list[FailureRecord],
        *,
        replay_round: int,
        origins: dict[int, Origin] | None = None,
    ) -> list[ReplayChunk]:
        return list(
            iter_replay_chunks(
                records,
                replay_round=max(1, replay_round),
                chunk_items=self.targets.chunk_items,
                chunk_max_bytes=self.targets.chunk_max_bytes,
                origins=origins,
            )
        )


def _in_round(chunks: list[ReplayChunk], replay_round: int) -> list[ReplayChunk]:
    """`chunks` marked as round `replay_round`'s (they are cut and kept before it is known)."""
    return [replace(c, mark=replace(c.mark, replay_round=replay_round)) for c in chunks]


class ReplaySource(StrEnum):
    """What `lambdaflow replay` replays: item failures, WorkDLQ chunks, or both."""

    ALL = "all"
    ITEMS = "items"
    DLQ = "dlq"


def replay_runs(
    replayer: Replayer,
    runs: Iterable[str],
    flt: ReplayFilter,
    *,
    source: ReplaySource = ReplaySource.ALL,
    limit: int | None = None,
    dry_run: bool = False,
    timeout_s: float = 600.0,
    wait: bool = False,
) -> list[RunReplay]:
    """Replay `runs`: WorkDLQ chunks first (their lines have no records yet), then items.

    Failed lines are replayed only from finished runs: a running run's failure parts are not
    final (chunks still being counted). A running run is refused at once (`RunStillRunningError`)
    unless `wait`, which first waits up to `timeout_s` for it to finish (a drain of the
    FailureQueue waits as long for another replay's). WorkDLQ chunks move at
    any time (another delivery of a chunk is always safe). Each phase waits until what it sent
    is counted; then every touched run's last round is pruned from its earlier failure parts
    and its summary rewritten. `limit` caps the lines replayed over all runs (WorkDLQ chunks:
    the chunks).

    Raises:
        RunStillRunningError: a run whose items would be replayed has not finished.
        ReplayTimeoutError: a wait (for a running run, or for sent chunks) passed `timeout_s`.
        ReplayInProgressError: a run's previous replay round is unfinished.
    """
    runs = list(runs)
    with_items = source is not ReplaySource.DLQ
    running = [run for run in runs if replayer.is_running(run)] if with_items else []
    if running and not wait:
        raise still_running(", ".join(running))
    dlq: dict[str, list[ParkedChunk]] = {}
    if source is not ReplaySource.ITEMS:
        only = runs[0] if len(runs) == 1 else None
        for parked in replayer.replay_dlq(only, limit=limit, dry_run=dry_run):
            if parked.run in runs:  # moved either way; a run the ledger lacks is not followed
                dlq.setdefault(parked.run, []).append(parked)
        if not dry_run:
            replayer.wait_settled(list(dlq), timeout_s=timeout_s)
    if running:
        replayer.wait_finished(running, timeout_s=timeout_s)
    reports = _replay_items(
        replayer, runs if with_items else [], flt, limit, dry_run, timeout_s=timeout_s
    )
    if not dry_run:
        replayer.wait_settled([r for r, rep in reports.items() if rep.chunks], timeout_s=timeout_s)
    done: list[RunReplay] = []
    for run in sorted(set(reports) | set(dlq)):
        report = reports.get(run, RunReplay(run))
        summary = None
        if not dry_run:
            replayed = report if report.replay_round else None
            summary = replayer.refresh_summary(run, now=time.time(), replayed=replayed)
        done.append(replace(report, dlq_chunks=tuple(dlq.get(run, ())), summary=summary))
    return done


def _replay_items(
    replayer: Replayer,
    runs: list[str],
    flt: ReplayFilter,
    limit: int | None,
    dry_run: bool,
    *,
    timeout_s: float,
) -> dict[str, RunReplay]:
    """The item phase: each run's matching failures, sharing `limit` (and `timeout_s` a drain)."""
    reports: dict[str, RunReplay] = {}
    used = 0
    for run in runs:
        left = None if limit is None else max(0, limit - used)
        if left == 0:
            break
        report = replayer.replay_items(
            run, flt, limit=left, dry_run=dry_run, drain_wait_s=timeout_s
        )
        used += len(report.lines)
        if report.lines or report.unreplayable:
            reports[run] = report
    return reports
