"""Where a Split pass puts what it cuts: chunk messages (a `ChunkSink`) and parse failures.

These are the seams of `pipeline/splitter.py`: on AWS the chunks go to the WorkQueue through
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

from botocore.exceptions import ClientError

from pipeline.aws_errors import write_error_from
from pipeline.config import SQS_MAX_MESSAGE_BYTES
from pipeline.failures import FailureRecord, ResultWriteError, Stage, ThrottledError
from pipeline.parts import parse_failures_part
from pipeline.results import write_failure_part

BATCH_ENTRIES = 10
"""SendMessageBatch takes at most ten entries..."""
BATCH_BYTES = SQS_MAX_MESSAGE_BYTES
"""...and at most 1 MiB in total, the same cap as one message."""
SEND_ATTEMPTS = 6


@dataclass(frozen=True, slots=True)
class ChunkMessage:
    """One chunk as sent: its number, its exact JSON message, how many items, its last line."""

    number: int
    body: bytes
    count: int
    last_line: int


class ChunkSink(Protocol):
    """Takes chunk messages in order; `flush` returns once every one handed over is sent."""

    def send(self, message: ChunkMessage) -> None:
        """Hand over one chunk message (it may be buffered until `flush`)."""
        ...

    def flush(self) -> None:
        """Send whatever is buffered; raise if any of it cannot be sent."""
        ...


class ParseFailureWriter(Protocol):
    """Stores the parse failures met while chunk `chunk` was cut, under that chunk's number."""

    def write(self, run: str, chunk: int, records: Sequence[FailureRecord]) -> None:
        """Write `records` (non-empty, in line order) as the parse part of `chunk`."""
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
    failed through no fault of ours are re-sent with backoff until `SEND_ATTEMPTS`, then the
    pass fails (and Step Functions retries it from its checkpoint, re-sending the same chunk
    numbers). A sender-fault entry (too big, say) fails the pass at once: retrying cannot help.
    """

    def __init__(
        self, client: Any, queue_url: str, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._client = client
        self._queue_url = queue_url
        self._sleep = sleep
        self._batch: list[tuple[str, str]] = []
        self._batch_bytes = 0
        self.sent = 0

    def send(self, message: ChunkMessage) -> None:
        """Buffer the message; send the batch once it is full."""
        body = message.body.decode()
        if self._batch and (
            len(self._batch) == BATCH_ENTRIES or self._batch_bytes + len(body) > BATCH_BYTES
        ):
            self.flush()
        self._batch.append((str(message.number), body))
        self._batch_bytes += len(body)

    def flush(self) -> None:
        """Send the buffered batch, re-sending failed entries.

        Raises:
            ThrottledError: entries kept failing on SQS's side (retryable).
            ResultWriteError: SQS refused the call, or an entry as the sender's fault.
        """
        pending, self._batch, self._batch_bytes = self._batch, [], 0
        count = len(pending)
        for attempt in range(SEND_ATTEMPTS):
            if not pending:
                break
            if attempt:
                self._sleep(min(5.0, 0.1 * 2**attempt))
            pending = self._send(pending)
        if pending:
            raise ThrottledError(
                f"WorkQueue kept failing {len(pending)} chunk messages after {SEND_ATTEMPTS} "
                "attempts; the Split pass is retried from its checkpoint",
                stage=Stage.WRITE,
                error="SendMessageBatchFailed",
            )
        self.sent += count

    def _send(self, batch: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """One SendMessageBatch; return the entries to send again."""
        entries = [{"Id": number, "MessageBody": body} for number, body in batch]
        try:
            response = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
        except ClientError as exc:
            raise write_error_from(exc, f"sending chunks to {self._queue_url}") from exc
        failed = response.get("Failed", [])
        refused = sorted({f.get("Code", "SenderFault") for f in failed if f.get("SenderFault")})
        if refused:
            raise ResultWriteError(
                f"WorkQueue refused chunk messages ({', '.join(refused)}): lower "
                "LAMBDAFLOW_CHUNK_MAX_BYTES or raise the queue's MaximumMessageSize",
                error=refused[0],
            )
        retry = {f["Id"] for f in failed}
        return [entry for entry in batch if entry[0] in retry]


class S3ParseFailureWriter:
    """Parse parts in the results bucket, at `failures/<run>/parse-NNNNNNNN.jsonl.gz`."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def write(self, run: str, chunk: int, records: Sequence[FailureRecord]) -> None:
        """Write (or, on a retried pass, overwrite) the parse part of `chunk`."""
        write_failure_part(self._client, self._bucket, parse_failures_part(run, chunk), records)


class MemoryParseFailureWriter:
    """Parse parts kept in a dict (chunk → records): for tests and benchmarks."""

    def __init__(self) -> None:
        self.parts: dict[int, list[FailureRecord]] = {}

    def write(self, run: str, chunk: int, records: Sequence[FailureRecord]) -> None:
        """Keep the records; a retried pass replaces the same chunk's part, as S3 would."""
        self.parts[chunk] = list(records)
