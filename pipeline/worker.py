"""Classify one chunk: fetch, decode and label its images; write its parts; count it once.

Per item, anything that goes wrong — a bucket off the allowlist, a missing key, a corrupt image —
becomes a `FailureRecord` and the chunk still succeeds (item failures are data). Only a failure
to *write* (results, failures, the FailureQueue, the ledger) raises, so the chunk's message
comes back and the whole chunk is redone: its part keys are deterministic and the ledger's chunk
marker is conditional, so a redelivery overwrites the same parts and counts nothing twice.

Fetch + decode run on a bounded thread pool (S3 GETs wait on the network; Pillow releases the
GIL); at most `window` images are in flight or decoded-but-unclassified, so memory is bounded by
the window, not the chunk. The interpreter gets mini-batches in line order.

Knows nothing of Lambda or SQS events: it takes a `Chunk` and injected clients.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from botocore.config import Config

from pipeline.chunking import Chunk
from pipeline.config import Settings
from pipeline.failure_queue import send_failures
from pipeline.failures import FailureRecord, ImageFetchError
from pipeline.fetch import fetch_image
from pipeline.images import ImageDecoder
from pipeline.ledger import RunLedger
from pipeline.manifest import ManifestRecord
from pipeline.model import Classifier
from pipeline.parts import PartKind, ResultRow, chunk_part
from pipeline.replay_chunks import ReplayMark
from pipeline.results import write_failure_part, write_result_part
from pipeline.retries import data_path_config

logger = logging.getLogger(__name__)

CLASSIFY_BATCH = 16
"""Images per interpreter call: big enough to amortise the call, small enough to stay flat."""
NOT_ALLOWED = "BucketNotAllowed"


def fetch_client_config(settings: Settings) -> Config:
    """The S3 client config for image GETs.

    Adaptive retries absorb SlowDown (`pipeline/retries.py`); the connection pool is as wide
    as the fetch thread pool, so no thread waits for a socket.
    """
    return data_path_config(max_pool_connections=settings.fetch_concurrency + 4)


@dataclass(frozen=True, slots=True)
class ChunkReport:
    """What one chunk produced; `is_counted` is False when the ledger had already counted it."""

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

    @property
    def decoder(self) -> ImageDecoder:
        """Decoder within the configured byte and pixel limits."""
        return ImageDecoder(
            max_pixels=self.settings.max_image_pixels, max_bytes=self.settings.max_image_bytes
        )

    def load(self, item: ManifestRecord, decoder: ImageDecoder) -> np.ndarray:
        """Fetch and decode one image; never reads a bucket off the allowlist."""
        if item.bucket not in self.settings.source_buckets:
            raise ImageFetchError(
                f"bucket {item.bucket!r} is not on the allowlist (LAMBDAFLOW_SOURCE_BUCKETS): "
                "the image was not read",
                error=NOT_ALLOWED,
                line=item.line,
            )
        data = fetch_image(
            self.s3,
            item.bucket,
            item.key,
            max_bytes=self.settings.max_image_bytes,
            version_id=item.version_id,
        )
        return decoder.decode(data)

    def process(self, chunk: Chunk, replay: ReplayMark | None = None) -> ChunkReport:
        """Label every item of `chunk`, write both parts, send failures, count it once.

        A replay chunk (`replay` given) writes its round's parts, gives a line that fails again
        `attempts = previous + 1`, and moves its lines out of their previous failures in the
        ledger (`pipeline/replay_chunks.py`).
        """
        started = time.monotonic()
        replay_round = replay.replay_round if replay else 0
        rows: list[ResultRow] = []
        failures: list[FailureRecord] = []
        for item, outcome in self._labelled(chunk):
            if isinstance(outcome, BaseException):
                attempts = replay.attempts_for(item.line) if replay else 1
                failures.append(_failure(chunk.run, item, outcome, attempts))
            else:
                rows.append(ResultRow(item.line, item.bucket, item.key, outcome, item.version_id))
        bucket = self.settings.results_bucket
        write_result_part(self.s3, bucket, chunk.run, chunk.number, rows, replay_round=replay_round)
        failures_part = chunk_part(
            PartKind.FAILURES, chunk.run, chunk.number, replay_round=replay_round
        )
        write_failure_part(self.s3, bucket, failures_part, failures)
        if failures:
            send_failures(self.sqs, self.settings.failure_queue_url, failures)
        seconds = time.monotonic() - started
        report = ChunkReport(chunk.run, chunk.number, len(rows), tuple(failures), seconds, False)
        is_counted = self._count(report, replay)
        if not is_counted:
            logger.info("chunk %d was already counted", chunk.number, extra={"run": chunk.run})
        return ChunkReport(chunk.run, chunk.number, report.ok, report.failures, seconds, is_counted)

    def _count(self, report: ChunkReport, replay: ReplayMark | None) -> bool:
        """Count the chunk in the ledger once (a replay chunk under its round's marker)."""
        if replay is not None:
            counts = replay.counts(
                failures=report.failures, ok=report.ok, seconds=report.seconds, images=report.ok
            )
            return self.ledger.record_replay_chunk(
                report.run, replay.replay_round, report.chunk, counts
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
        )

    def _labelled(
        self, chunk: Chunk
    ) -> Iterator[tuple[ManifestRecord, tuple[tuple[str, float], ...] | BaseException]]:
        """(item, labels or the exception) in line order, classifying in mini-batches."""
        batch: list[tuple[ManifestRecord, np.ndarray]] = []
        for item, loaded in self._loaded(chunk):
            if isinstance(loaded, BaseException):
                yield item, loaded
                continue
            batch.append((item, loaded))
            if len(batch) == CLASSIFY_BATCH:
                yield from self._classify(batch)
                batch = []
        yield from self._classify(batch)

    def _loaded(self, chunk: Chunk) -> Iterator[tuple[ManifestRecord, np.ndarray | BaseException]]:
        decoder = self.decoder
        window = max(CLASSIFY_BATCH, 2 * self.settings.fetch_concurrency)
        in_flight: deque[tuple[ManifestRecord, Future[np.ndarray]]] = deque()
        for item in chunk.items:
            in_flight.append((item, self.pool.submit(self.load, item, decoder)))
            if len(in_flight) >= window:
                yield _settled(*in_flight.popleft())
        while in_flight:
            yield _settled(*in_flight.popleft())

    def _classify(
        self, batch: list[tuple[ManifestRecord, np.ndarray]]
    ) -> Iterator[tuple[ManifestRecord, tuple[tuple[str, float], ...] | BaseException]]:
        if not batch:
            return
        top_k = self.settings.top_k
        try:
            labels = self.classifier.classify([image for _, image in batch], top_k=top_k)
        except Exception:  # isolate the image the interpreter chokes on: one at a time
            for item, image in batch:
                try:
                    (one,) = self.classifier.classify([image], top_k=top_k)
                except Exception as exc:
                    yield item, exc
                else:
                    yield item, _as_pairs(one)
            return
        for (item, _), found in zip(batch, labels, strict=True):
            yield item, _as_pairs(found)


def _settled(
    item: ManifestRecord, future: Future[np.ndarray]
) -> tuple[ManifestRecord, np.ndarray | BaseException]:
    try:
        return item, future.result()
    except Exception as exc:
        return item, exc


def _as_pairs(labels: tuple[Any, ...]) -> tuple[tuple[str, float], ...]:
    return tuple((label.name, round(float(label.score), 5)) for label in labels)


def _failure(run: str, item: ManifestRecord, exc: BaseException, attempts: int) -> FailureRecord:
    return FailureRecord.from_exception(
        exc, run=run, line=item.line, bucket=item.bucket, key=item.key, attempts=attempts
    )
