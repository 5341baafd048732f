"""Where a Split pass puts what it cuts: chunk messages (a `ChunkSink`) and parse failures.

These are the seams of `pipeline/split/passes.py`: on AWS the chunks go to the WorkQueue through
`SqsChunkSink` and the parse failures to `failures/<run>/parse-NNNNNNNN.jsonl.gz`; a benchmark
swaps in `CountingSink` (classifying a billion images is not what it measures). A sink may
buffer, so the splitter calls `flush` before it checkpoints: only what a sink confirmed sent
lies behind a checkpoint. Knows nothing of manifests or Lambda.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.aws.sqs_batch import BatchBuffer, ResendPolicy, SqsEntry, SqsQueue, send_batch
from pipeline.config import SQS_MAX_MESSAGE_BYTES
from pipeline.failures import FailureRecord
from pipeline.parts.layout import parse_failures_part
from pipeline.parts.store import PartWriter

BATCH_BYTES = SQS_MAX_MESSAGE_BYTES
"""SendMessageBatch takes at most 1 MiB in total, the same cap as one message."""
SEND_ATTEMPTS = 6


@dataclass(frozen=True, slots=True)
class ChunkMessage:
    """One chunk as sent: its number, its exact JSON message, how many items, its last line.

    `last_line` is the last physical line the chunk covers: past its last record's number when
    that record is a CSV row spanning lines (parse failures up to it belong to this chunk).
    `size` is None when `body` is the message; a sink that only counts (`wants_body` False:
    `scan`'s) gets an empty `body` and the size of the chunk's v1 message, computed without
    encoding (`ChunkSpan.message_bytes`): the message Split sends stays within the same limit
    but may pass that size by a few bytes a row (`objects` keep their field names, CSV rows
    their other columns), so such a sink's sizes are a floor.
    """

    number: int
    body: bytes
    count: int
    last_line: int
    size: int | None = None

    @property
    def body_bytes(self) -> int:
        """The message's size in bytes, encoded or not."""
        return len(self.body) if self.size is None else self.size


class ChunkSink(Protocol):
    """Takes chunk messages in order; `flush` returns once every one handed over is sent."""

    def send(self, message: ChunkMessage) -> None:
        """Hand over one chunk message (it may be buffered until `flush`)."""
        ...

    def flush(self) -> None:
        """Send whatever is buffered; raise if any of it cannot be sent."""
        ...


class ParseFailureWriter(Protocol):
    """Streams the parse failures met while chunk `chunk` was cut into that chunk's parse part.

    A chunk's failures may come in several `append`s, so a long run of malformed lines is never
    held whole in memory; `close` stores the part (nothing when none came); `abort` drops every
    part not closed yet, so a failed pass never leaves half a part behind.
    """

    def append(self, run: str, chunk: int, records: Sequence[FailureRecord]) -> None:
        """Add `records` (in line order, after any appended before) to the part of `chunk`."""
        ...

    def close(self, run: str, chunk: int) -> None:
        """Store (or, on a retried pass, overwrite) the part of `chunk`, if anything came."""
        ...

    def abort(self) -> None:
        """Drop the parts not closed yet."""
        ...


class CountingSink:
    """A null sink: counts the messages Split built (their bytes are encoded, never sent).

    Benchmarks use it so Split's rate includes building the exact message bytes, not the wire.
    """

    def __init__(self) -> None:
        self.chunks = 0
        self.items = 0
        self.message_bytes = 0

    def send(self, message: ChunkMessage) -> None:
        """Count one message."""
        self.message_bytes += len(message.body)
        self.chunks += 1
        self.items += message.count

    def flush(self) -> None:
        """Nothing is buffered."""


class SqsChunkSink:
    """Chunk messages to the WorkQueue, ten per `SendMessageBatch`, none dropped.

    SQS may accept some entries of a batch and fail others (HTTP 200 with `Failed`); entries
    failed through no fault of ours are re-sent with backoff until `attempts`, then the pass
    fails (and Step Functions retries it from its checkpoint, re-sending the same chunk
    numbers). A sender-fault entry (too big, say) fails the pass at once: retrying cannot help.
    Both are `pipeline.aws.sqs_batch`'s semantics; this sink only streams chunks into its batches.
    """

    def __init__(
        self,
        client: Any,
        queue_url: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = SEND_ATTEMPTS,
        backoff_s: Callable[[int], float] = lambda attempt: min(5.0, 0.1 * 2**attempt),
    ) -> None:
        self._client = client
        self._queue = SqsQueue(
            queue_url,
            name="WorkQueue",
            noun="chunk messages",
            refused_hint="lower LAMBDAFLOW_CHUNK_MAX_BYTES or raise the queue's MaximumMessageSize",
        )
        self._resend = ResendPolicy(attempts, backoff_s, sleep)
        self._buffer = BatchBuffer(max_bytes=BATCH_BYTES)
        self.sent = 0

    def send(self, message: ChunkMessage) -> None:
        """Buffer the message; send the batch once it is full."""
        self.send_body(message.number, message.body)

    def send_body(self, number: int, body: bytes) -> None:
        """`send` for a chunk's bare message (number and JSON body), as a replay cuts them."""
        if closed := self._buffer.add(SqsEntry.of(number, body)):
            self._send(closed)

    def flush(self) -> None:
        """Send the buffered batch, re-sending failed entries.

        Raises:
            ThrottledError: entries kept failing on SQS's side (retryable).
            ResultWriteError: SQS refused the call, or an entry as the sender's fault.
        """
        self._send(self._buffer.take())

    def _send(self, batch: list[SqsEntry]) -> None:
        send_batch(self._client, self._queue, batch, self._resend)
        self.sent += len(batch)


class S3ParseFailureWriter:
    """Parse parts in the results bucket, at `failures/<run>/parse-NNNNNNNN.jsonl.gz`.

    Records stream into the part's gzip spool as they come; the PUT happens at `close`.
    """

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket
        self._open: dict[int, PartWriter] = {}

    def append(self, run: str, chunk: int, records: Sequence[FailureRecord]) -> None:
        """Write `records` into the part of `chunk`, opening it on the first."""
        if not records:
            return
        writer = self._open.get(chunk)
        if writer is None:
            key = parse_failures_part(run, chunk).key
            writer = self._open[chunk] = PartWriter(self._client, self._bucket, key)
        for record in records:
            writer.write(record.to_dict())

    def close(self, run: str, chunk: int) -> None:
        """Upload the part of `chunk` (gzip trailer + PUT), if it was opened."""
        writer = self._open.pop(chunk, None)
        if writer is not None:
            with writer:  # a clean exit is the upload
                pass

    def abort(self) -> None:
        """Discard every open part unsent."""
        while self._open:
            self._open.popitem()[1].discard()


class MemoryParseFailureWriter:
    """Parse parts kept in a dict (chunk → records): for tests and benchmarks."""

    def __init__(self) -> None:
        self.parts: dict[int, list[FailureRecord]] = {}
        self._open: dict[int, list[FailureRecord]] = {}
        self.largest_append = 0
        """The most records one `append` carried: how much a pass held at once."""

    def append(self, run: str, chunk: int, records: Sequence[FailureRecord]) -> None:
        """Keep the records in the open part of `chunk`."""
        if not records:
            return
        self._open.setdefault(chunk, []).extend(records)
        self.largest_append = max(self.largest_append, len(records))

    def close(self, run: str, chunk: int) -> None:
        """A retried pass replaces the same chunk's part, as S3 would."""
        if chunk in self._open:
            self.parts[chunk] = self._open.pop(chunk)

    def abort(self) -> None:
        """Forget the open parts."""
        self._open.clear()
