"""Send a list of chunks (a replay's) to the WorkQueue, none lost.

Chunks have one path to the WorkQueue, `pipeline.split.sinks.SqsChunkSink` (batches of ten
under 1 MiB; entries SQS failed are re-sent with backoff, see `pipeline.aws.sqs_batch`); this is it
for a caller that has its chunks in hand rather than streaming them. Anything still failing
raises, so the caller fails and is retried — re-sending the same chunk numbers, which overwrite
the same result parts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import orjson

from pipeline.split.sinks import SqsChunkSink

ATTEMPTS = 5


class ChunkToSend(Protocol):
    """What `send_chunks` needs of a chunk: `pipeline.split.chunking.Chunk`, or a replay's chunk."""

    @property
    def number(self) -> int:
        """The chunk number, unique in the run (the message's SQS batch id)."""
        ...

    def to_message(self) -> dict[str, Any]:
        """The WorkQueue body."""
        ...


def send_chunks(
    sqs: Any,
    queue_url: str,
    chunks: Iterable[ChunkToSend],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send every chunk; return how many were sent.

    Entries SQS failed are re-sent up to `ATTEMPTS` calls in all, pausing at most 2 s (not the
    Split pass's longer policy, the sink's defaults); `sleep` is injected by tests.

    Raises:
        ThrottledError: SQS kept failing entries after `ATTEMPTS` tries (retryable).
        ResultWriteError: SQS refused a call, or an entry as the sender's fault.
    """
    sink = SqsChunkSink(
        sqs,
        queue_url,
        sleep=sleep,
        attempts=ATTEMPTS,
        backoff_s=lambda attempt: min(2.0, 0.1 * 2**attempt),
    )
    for chunk in chunks:
        sink.send_body(chunk.number, orjson.dumps(chunk.to_message()))
    sink.flush()
    return sink.sent
