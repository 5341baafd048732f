"""Classify one chunk: fetch, decode and label its images; write its parts; count it once.

Per item, anything that goes wrong — a bucket off the allowlist, a missing key, a corrupt image —
becomes a `FailureRecord` and the chunk still succeeds (item failures are data). Only a failure
to *write* (results, failures, the FailureQueue, the ledger) raises, so the chunk's message
comes back and the whole chunk is redone. Each delivery stages its parts under its own attempt
id; the ledger's conditional chunk marker counts the chunk once and names the attempt whose parts
are then published (`pipeline/ledger/commit.py`), so two deliveries that saw different worlds
can never both show, and a crash after the count never loses a part.

How it keeps the interpreter busy (BENCHMARKS.md "Classify worker"): each image is one task on
the bounded thread pool — GET, decode, invoke — because all three release the GIL (S3 waits on
the network; Pillow decodes and LiteRT invokes in C with the GIL released, measured). The pool's
threads keep GETs in flight while others decode or wait for one of the classifier's interpreters
(one per vCPU), so no interpreter waits for the network and a multi-vCPU Lambda uses every core.
Invokes are per image: batching measured slower with XNNPACK on one core.

Results stream into the gzip part as they finish, in line order, without buffering the chunk:
the items are put in line order first (Split already sends them so), tasks are submitted in
that order, and the head of a window of futures is written as soon as it is done. A slow GET
holds back only the rows behind it within the window (labels, a few hundred bytes each); memory
is bounded by the window and the pool, not the chunk. Failure records are kept (the report
returns them) and written sorted at the end.

Traced (with tracing on) as one `chunk` span annotated with the run and chunk number, holding
`write_results`, `send_failures` and `ledger` spans. The per-image steps run on pool threads,
where the SDK's thread-local context does not follow and a subsegment per image would overflow
X-Ray's 64 KB document: each task adds its fetch/decode/classify time to a `StageClock`, and the
chunk span carries the sums (`pipeline.observe.tracing`). With tracing off no clock exists at all.

Knows nothing of Lambda or SQS events: it takes a `Chunk` and injected clients. Past the
~300-line guide on purpose: the delivery's steps (stage, count, publish or discard) read in one
place, in the order they run; the commit's S3 and ledger halves live in `parts/commit.py` and
`ledger/commit.py`.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import numpy as np
from botocore.config import Config

from pipeline.aws.retries import data_path_config
from pipeline.classify.fetch import CHUNK_ERRORS
from pipeline.classify.images import ImageDecoder
from pipeline.classify.model import Classifier
from pipeline.classify.signed_get import ImageGetter, SignedGetter
from pipeline.config import Settings
from pipeline.failures import FailureRecord, ImageFetchError, OutOfTimeError
from pipeline.ledger.commit import DUPLICATE_WAIT_S, CommitTargets, finish_commit, roll_forward
from pipeline.ledger.finalize import resettle_if_finished
from pipeline.ledger.items import ChunkCommit, CommittedChunk
from pipeline.ledger.markers import committed_chunk
from pipeline.ledger.table import RunLedger
from pipeline.manifest.reader import ManifestRecord
from pipeline.observe.tracing import NOOP_SPAN, StageClock, span
from pipeline.parts.commit import delete_staged, part_names, prune_origins
from pipeline.parts.layout import ResultRow
from pipeline.parts.store import PartWriter, write_records
from pipeline.split.chunking import Chunk
from pipeline.split.work_message import ReplayMark

logger = logging.getLogger(__name__)

WINDOW_PER_THREAD = 4
"""Futures ahead of the head of line, per pool thread: room for a slow GET's neighbours to
finish (a done future holds only its labels) while the window still bounds a chunk's memory."""
NOT_ALLOWED = "BucketNotAllowed"
FINISH_MARGIN_S = 2.0
"""Time a delivery keeps, of what its deadline leaves, to finish another's commit itself."""
LABEL_MARGIN_S = 20.0
"""Time a delivery keeps, of its deadline, for what follows the labelling (its parts, the
ledger, publishing, the failures): a line not labelled by then is an `OutOfTimeError` record.
At most a quarter of the time the delivery starts with (a function of a short timeout)."""

Labels = tuple[tuple[str, float], ...]


def fetch_client_config(settings: Settings) -> Config:
    """The S3 client config for image GETs.

    Adaptive retries absorb SlowDown (`pipeline/aws/retries.py`); the connection pool is as wide
    as the fetch thread pool, so no thread waits for a socket. Parameter validation is off: the
    worker builds every request itself, and botocore's validation is CPU spent per GET on a
    1-vCPU function.
    """
    return data_path_config(
        max_pool_connections=settings.fetch_concurrency + 4, parameter_validation=False
    )


@dataclass(frozen=True, slots=True)
class ChunkReport:
    """What one delivery of a chunk produced.

    `is_counted` is False when the ledger had already counted the chunk: found counted before any
    work (a duplicate delivery: nothing done, `ok` 0 and no failures), or counted by a duplicate
    running at the same time (the work was done, only its counts were refused).
    """

    run: str
    chunk: int
    ok: int
    failures: tuple[FailureRecord, ...]
    seconds: float
    is_counted: bool

    @property
    def failed_by_stage(self) -> dict[str, int]:
        """Failures per stage (parse|fetch|decode|classify|write)."""
        return dict(Counter(f.stage.value for f in self.failures))

    @property
    def failed_by_error(self) -> dict[str, int]:
        """Failures per error code."""
        return dict(Counter(f.error for f in self.failures))


@dataclass(frozen=True, slots=True)
class ChunkWorker:
    """Everything a chunk needs, built once per process (the model loads once)."""

    s3: Any
    sqs: Any
    ledger: RunLedger
    classifier: Classifier
    settings: Settings
    pool: ThreadPoolExecutor
    duplicate_wait_s: float = DUPLICATE_WAIT_S
    """How long a duplicate delivery gives a live winner to finish its commit (then does it)."""
    getter: ImageGetter | None = None
    """How image GETs are made; None: a `SignedGetter` on `s3` (lean signed GETs once a bucket's
    route is learned, boto3 for everything else)."""

    def __post_init__(self) -> None:
        if self.getter is None:  # frozen: set once, here
            pool_size = self.settings.fetch_concurrency + 4
            object.__setattr__(self, "getter", SignedGetter(self.s3, pool_size=pool_size))

    @property
    def decoder(self) -> ImageDecoder:
        """The model's decoder (input size, crop, filter) within the configured limits."""
        return self.classifier.decoder(self.settings)

    def load(self, item: ManifestRecord, decoder: ImageDecoder) -> np.ndarray:
        """Fetch and decode one image; never reads a bucket off the allowlist."""
        self._check_allowed(item)
        return decoder.decode(self._fetch(item))

    def label(
        self, item: ManifestRecord, decoder: ImageDecoder, clock: StageClock | None = None
    ) -> Labels:
        """Fetch, decode and classify one image: one pool task, every step GIL-free at its core.

        With a `clock` (tracing on) each step's time is added to it, from this pool thread.
        """
        if clock is not None:
            return self._timed_label(item, decoder, clock)
        image = self.load(item, decoder)
        (labels,) = self.classifier.classify([image], top_k=self.settings.top_k)
        return _as_pairs(labels)

    def _timed_label(
        self, item: ManifestRecord, decoder: ImageDecoder, clock: StageClock
    ) -> Labels:
        """`label`, each step measured into `clock` (a step that raises still counts).

        `classify` includes waiting for a free interpreter: with more pool threads than
        replicas, busy classify time far above decode's says the interpreters are the limit.
        """
        self._check_allowed(item)
        with clock.measure("fetch"):
            data = self._fetch(item)
        with clock.measure("decode"):
            image = decoder.decode(data)
        with clock.measure("classify"):
            (labels,) = self.classifier.classify([image], top_k=self.settings.top_k)
        return _as_pairs(labels)

    def _check_allowed(self, item: ManifestRecord) -> None:
        if item.bucket not in self.settings.source_buckets:
            raise ImageFetchError(
                f"bucket {item.bucket!r} is not on the allowlist (LAMBDAFLOW_SOURCE_BUCKETS): "
                "the image was not read",
                error=NOT_ALLOWED,
                line=item.line,
            )

    def _fetch(self, item: ManifestRecord) -> bytes:
        assert self.getter is not None  # set by __post_init__
        return self.getter.get(
            item.bucket,
            item.key,
            max_bytes=self.settings.max_image_bytes,
            version_id=item.version_id,
        )

    def process(
        self, chunk: Chunk, replay: ReplayMark | None = None, *, deadline: float | None = None
    ) -> ChunkReport:
        """Label every item of `chunk`, write both parts, send failures, count it once.

        `deadline` (epoch seconds) is when this delivery is cut off (its invocation's timeout),
        if it has one: the commit records it, so a later delivery knows when this one has
        certainly ended, and this one waits for another's commit only while it has time left.

        A replay chunk (`replay` given) writes its round's parts, gives a line that fails again
        `attempts = previous + 1`, and moves its lines out of their previous failures in the
        ledger (`pipeline/replay/chunks.py`). All of it is one `chunk` span annotated with the
        run and chunk number.
        """
        with span("chunk", annotations={"run": chunk.run, "chunk": chunk.number}) as chunk_span:
            clock = None if chunk_span is NOOP_SPAN else StageClock()  # off: nothing to time
            report = self._process(chunk, replay, clock, deadline)
            chunk_span.metadata("items", len(chunk.items))
            chunk_span.metadata("ok", report.ok)
            chunk_span.metadata("failed", len(report.failures))
            if clock is not None:
                chunk_span.metadata("stages", clock.snapshot())  # a few bytes, any chunk size
            return report

    def _process(
        self,
        chunk: Chunk,
        replay: ReplayMark | None,
        clock: StageClock | None,
        deadline: float | None,
    ) -> ChunkReport:
        """`process` inside its span: `clock` is None with tracing off.

        The commit protocol (`pipeline/ledger/commit.py`): parts are staged under this
        delivery's own attempt id, the ledger's conditional write counts the chunk and names the
        attempt, and only then are the parts published and the failures sent. A delivery that
        finds the chunk counted — before or after its work — writes nothing where users look;
        it only finishes the winner's commit if the winner died half-way.
        """
        started = time.monotonic()
        replay_round = replay.replay_round if replay else 0
        with span("ledger_check"):
            marker = committed_chunk(
                self.ledger, chunk.run, chunk.number, replay_round=replay_round
            )
        if marker is not None:  # a duplicate delivery: its parts and counts stand as they are
            logger.info("chunk %d was already counted", chunk.number, extra={"run": chunk.run})
            roll_forward(self.targets, chunk.run, marker, wait_s=self._wait_s(deadline))
            self._follow_up(chunk, replay)  # the winner may have died before its own
            return ChunkReport(chunk.run, chunk.number, 0, (), time.monotonic() - started, False)
        attempt = self.new_attempt()
        failures = [  # raw lines that are no record: this chunk's to record, as Split would
            FailureRecord.from_exception(error, run=chunk.run, line=error.line)  # type: ignore[arg-type]
            for error in chunk.parse_failures
        ]
        ok = self._stage(chunk, replay, clock, attempt, failures, cutoff=_cutoff(deadline))
        seconds = time.monotonic() - started
        report = ChunkReport(chunk.run, chunk.number, ok, tuple(failures), seconds, False)
        commit = ChunkCommit(attempt, chunk.lines, ok, len(failures), live_until=deadline)
        with span("ledger"):
            is_counted = self._count(report, replay, commit)
            winner = None if is_counted else self._winner(chunk, replay_round)
            # A refusal by a marker naming this very attempt: see `_winner`.
            is_counted = is_counted or (winner is not None and winner.attempt == attempt)
        if is_counted:
            self._publish(chunk, replay_round, commit, failures)
        else:  # a duplicate delivered at the same time counted it first
            logger.info("chunk %d was counted meanwhile", chunk.number, extra={"run": chunk.run})
            self._discard(chunk, replay_round, attempt, deadline, winner)
        self._follow_up(chunk, replay)
        return ChunkReport(chunk.run, chunk.number, report.ok, report.failures, seconds, is_counted)

    def new_attempt(self) -> str:
        """A fresh attempt id for one delivery (random: two deliveries never share one)."""
        return uuid.uuid4().hex[:16]

    @property
    def targets(self) -> CommitTargets:
        """Where committed parts and failure records go."""
        return CommitTargets(
            self.s3, self.sqs, self.settings.results_bucket, self.settings.failure_queue_url
        )

    def _stage(
        self,
        chunk: Chunk,
        replay: ReplayMark | None,
        clock: StageClock | None,
        attempt: str,
        failures: list[FailureRecord],
        *,
        cutoff: float | None,
    ) -> int:
        """Label the chunk into this attempt's staged parts; return the result rows."""
        replay_round = replay.replay_round if replay else 0
        results_part, failures_part = part_names(chunk.run, chunk.number, replay_round)
        bucket = self.settings.results_bucket
        part = PartWriter(self.s3, bucket, results_part.staging_key(attempt))
        with contextlib.ExitStack() as on_error:
            on_error.push(part)  # labelling raised: the part is discarded, never uploaded
            ok = self._stream_rows(chunk, replay, clock, part, failures, cutoff=cutoff)
            if chunk.parse_failures:
                failures.sort(key=attrgetter("line"))  # the part in line order, as results
            upload = on_error.pop_all()  # labelled: closing the part is its upload, timed below
        with span("write_results", metadata={"rows": ok, "failures": len(failures)}):
            if ok:
                upload.close()  # gzip trailer + PUT of the staged results part
            else:
                part.discard()  # no rows: no part
            write_records(self.s3, bucket, failures_part.staging_key(attempt), failures)
        return ok

    def _publish(
        self,
        chunk: Chunk,
        replay_round: int,
        commit: ChunkCommit,
        failures: list[FailureRecord],
    ) -> None:
        """The winner's follow-up: publish, send the failures, drop the staging."""
        marker = CommittedChunk(
            chunk=chunk.number,
            replay_round=replay_round,
            ok=commit.result_rows,
            failed=commit.failure_rows,
            replaced=0,
            attempt=commit.attempt,
            items=commit.items,
            result_rows=commit.result_rows,
            failure_rows=commit.failure_rows,
        )
        finish_commit(self.targets, chunk.run, marker, failures=failures)

    def _follow_up(self, chunk: Chunk, replay: ReplayMark | None) -> None:
        """Once the chunk's parts are published: prune a replay's lines, re-settle the run.

        Every delivery does this, the winner and any later one, since the winner may have died
        after its publish and before this. A replay chunk's lines leave the older failure parts
        at once: a raw reader of `failures/<run>/` sees each line once within moments, whether
        or not the rest of the round is ever counted or the replayer waits for it (its
        round-wide prune, `pipeline/replay/prune.py`, stays: it also covers a commit rolled
        forward for a dead delivery). A finished run is settled again (a chunk counted after
        Finalize, a replay), so its status and summary follow the count.
        """
        if replay is not None and replay.origins:
            lines = [item.line for item in chunk.items]
            with span("prune_origins", metadata={"origins": len(replay.origins)}):
                prune_origins(
                    self.s3, self.settings.results_bucket, chunk.run, replay.origins, lines
                )
        resettle_if_finished(
            self.ledger,
            self.s3,
            self.settings.results_bucket,
            chunk.run,
            is_replay=replay is not None,
        )

    def _discard(
        self,
        chunk: Chunk,
        replay_round: int,
        attempt: str,
        deadline: float | None,
        winner: CommittedChunk | None,
    ) -> None:
        """A loser's clean-up, then finish the `winner`'s commit if it died half-way."""
        parts = part_names(chunk.run, chunk.number, replay_round)
        delete_staged(self.s3, self.settings.results_bucket, parts, attempt)
        if winner is not None:
            roll_forward(self.targets, chunk.run, winner, wait_s=self._wait_s(deadline))

    def _winner(self, chunk: Chunk, replay_round: int) -> CommittedChunk | None:
        """The marker that refused this delivery's count (read once, consistently).

        A refusal normally means another delivery won. If the marker names this attempt, an
        earlier try of this same write was applied and its answer lost, and the retry was not
        matched to it (DynamoDB matches botocore's retries by their token for 10 minutes, but
        not a request sent anew): this delivery won, and must publish, or its counted parts
        would never be readable.
        """
        return committed_chunk(self.ledger, chunk.run, chunk.number, replay_round=replay_round)

    def _wait_s(self, deadline: float | None) -> float:
        """How long this delivery may wait for another's commit: what its deadline leaves."""
        if deadline is None:
            return self.duplicate_wait_s
        left_s = deadline - time.time() - FINISH_MARGIN_S
        return max(0.0, min(self.duplicate_wait_s, left_s))

    def _stream_rows(
        self,
        chunk: Chunk,
        replay: ReplayMark | None,
        clock: StageClock | None,
        part: PartWriter,
        failures: list[FailureRecord],
        *,
        cutoff: float | None = None,
    ) -> int:
        """Write each labelled item's row to `part` in line order; collect the failures.

        Past `cutoff` (epoch seconds) no line is started, and none is waited for: each left
        is an `OutOfTimeError` record, so the chunk is counted in time with what was done.
        A delivery that got no line done at all raises instead, and the chunk comes back
        whole: its lines may have waited only behind an earlier delivery's stalled threads
        (a warm function's pool), or S3 stalls for every line, which another delivery, later,
        gets past; records a line would need a replay for nothing.

        Raises:
            OutOfTimeError: the cutoff came before any line of the chunk was done.
        """
        ok = late = 0
        for item, outcome in self._labelled(chunk, clock, cutoff):
            late += isinstance(outcome, OutOfTimeError)
            if isinstance(outcome, BaseException):
                attempts = replay.attempts_for(item.line) if replay else 1
                failures.append(_failure(chunk.run, item, outcome, attempts))
                continue
            row = ResultRow(
                item.line, item.bucket, item.key, outcome, item.version_id, self.classifier.identity
            )
            part.write(row.to_dict())
            ok += 1
        if late and late == len(chunk.items):
            raise OutOfTimeError(
                f"chunk {chunk.number}: no line done before the delivery's time ran out; "
                "it comes back whole"
            )
        return ok

    def _count(self, report: ChunkReport, replay: ReplayMark | None, commit: ChunkCommit) -> bool:
        """Count the chunk in the ledger once (a replay chunk under its round's marker)."""
        if replay is not None:
            counts = replay.counts(
                failures=report.failures, ok=report.ok, seconds=report.seconds, images=report.ok
            )
            return self.ledger.record_replay_chunk(
                report.run,
                replay.replay_round,
                report.chunk,
                counts,
                commit=commit,
                origins=replay.origins,
            )
        return self.ledger.record_chunk(
            report.run,
            report.chunk,
            ok=report.ok,
            failed=len(report.failures),
            failed_by_stage=report.failed_by_stage,
            failed_by_error=report.failed_by_error,
            seconds=report.seconds,
            images=report.ok,
            commit=commit,
        )

    def _labelled(
        self, chunk: Chunk, clock: StageClock | None, cutoff: float | None
    ) -> Iterator[tuple[ManifestRecord, Labels | BaseException]]:
        """(item, labels or the exception) in line order, as soon as the head of line is done."""
        decoder = self.decoder
        window = WINDOW_PER_THREAD * max(1, self.settings.fetch_concurrency)
        in_flight: deque[tuple[ManifestRecord, Future[Labels] | None]] = deque()
        try:
            for item in sorted(chunk.items, key=attrgetter("line")):
                is_late = cutoff is not None and time.time() >= cutoff
                future = None if is_late else self.pool.submit(self.label, item, decoder, clock)
                in_flight.append((item, future))
                if len(in_flight) >= window:
                    yield _settled(*in_flight.popleft(), cutoff=cutoff)
            while in_flight:
                yield _settled(*in_flight.popleft(), cutoff=cutoff)
        finally:  # a write failed mid-chunk: the chunk will be redone, drop the queued work
            for _, future in in_flight:
                if future is not None:
                    future.cancel()


def _cutoff(deadline: float | None) -> float | None:
    """When labelling stops, for a delivery cut off at `deadline` (None: never)."""
    if deadline is None:
        return None
    left_s = deadline - time.time()
    return deadline - min(LABEL_MARGIN_S, max(0.0, left_s) / 4)


def _settled(
    item: ManifestRecord, future: Future[Labels] | None, *, cutoff: float | None
) -> tuple[ManifestRecord, Labels | BaseException]:
    """The item's labels or its exception; `OutOfTimeError` if not done by `cutoff`.

    A line still running then is left to finish unseen (a thread cannot be stopped); its
    result is never read.
    """
    if cutoff is not None and future is not None:
        done, _ = wait([future], timeout=max(0.0, cutoff - time.time()))
        if not done:
            future.cancel()
            future = None
    if future is None:
        return item, OutOfTimeError(
            f"s3://{item.bucket}/{item.key}: not labelled before the delivery's time ran out; "
            "replay it",
        )
    try:
        return item, future.result()
    except CHUNK_ERRORS:
        raise  # S3 cannot be reached at all: the chunk comes back, not a record a line
    except Exception as exc:
        return item, exc


def _as_pairs(labels: tuple[Any, ...]) -> Labels:
    return tuple((label.name, round(float(label.score), 5)) for label in labels)


def _failure(run: str, item: ManifestRecord, exc: BaseException, attempts: int) -> FailureRecord:
    return FailureRecord.from_exception(
        exc,
        run=run,
        line=item.line,
        bucket=item.bucket,
        key=item.key,
        attempts=attempts,
        version_id=item.version_id,
    )
