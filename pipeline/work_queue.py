"""Send chunk messages to the WorkQueue in batches of ten, none lost.

`SendMessageBatch` takes at most 10 entries and 1 MiB in total, and may accept some entries
while failing others (HTTP 200 with a `Failed` list). Entries failed through no fault of ours
are retried with backoff; anything still failing raises, so Split fails and Step Functions
retries it — re-sending the same chunk numbers, which overwrite the same result parts.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from botocore.exceptions import ClientError

from pipeline.aws_errors import write_error_from
from pipeline.chunking import Chunk
from pipeline.config import SQS_MAX_MESSAGE_BYTES
from pipeline.failures import ResultWriteError, Stage, ThrottledError

BATCH_ENTRIES = 10
BATCH_BYTES = SQS_MAX_MESSAGE_BYTES
"""SQS caps a whole batch at the same 1 MiB as one message."""
ATTEMPTS = 5


def _batches(chunks: Iterable[Chunk]) -> Iterator[list[tuple[int, bytes]]]:
    batch: list[tuple[int, bytes]] = []
    size = 0
    for chunk in chunks:
        body = orjson.dumps(chunk.to_message())
        if batch and (len(batch) == BATCH_ENTRIES or size + len(body) > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append((chunk.number, body))
        size += len(body)
    if batch:
        yield batch


def send_chunks(sqs: Any, queue_url: str, chunks: Iterable[Chunk]) -> int:
    """Send every chunk; return how many were sent.

    Raises:
        ThrottledError: SQS kept failing entries after `ATTEMPTS` tries (retryable).
        ResultWriteError: SQS refused a call, or an entry as the sender's fault.
    """
    sent = 0
    for batch in _batches(chunks):
        pending = batch
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(min(2.0, 0.1 * 2**attempt))
            pending = _send(sqs, queue_url, pending)
            if not pending:
                break
        else:
            raise ThrottledError(
                f"WorkQueue kept failing {len(pending)} chunk messages after {ATTEMPTS} attempts",
                stage=Stage.WRITE,
                error="SendMessageBatchFailed",
            )
        sent += len(batch)
    return sent


def _send(sqs: Any, queue_url: str, batch: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """Send one batch; return the entries to retry."""
    entries = [{"Id": str(number), "MessageBody": body.decode()} for number, body in batch]
    try:
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    except ClientError as exc:
        raise write_error_from(exc, f"sending chunks to {queue_url}") from exc
    failed = response.get("Failed", [])
    refused = [f for f in failed if f.get("SenderFault")]
    if refused:
        codes = sorted({f.get("Code", "") for f in refused})
        raise ResultWriteError(
            f"WorkQueue refused {len(refused)} chunk messages ({', '.join(codes)}): lower "
            "LAMBDAFLOW_CHUNK_MAX_BYTES or raise the queue's MaximumMessageSize",
            error=codes[0] or "SenderFault",
        )
    retry_ids = {f["Id"] for f in failed}
    return [entry for entry in batch if str(entry[0]) in retry_ids]
