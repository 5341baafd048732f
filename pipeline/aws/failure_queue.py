"""Send item failure records to the FailureQueue, none dropped silently.

`SendMessageBatch` can fail *some* entries while accepting the rest; `pipeline.aws.sqs_batch`
re-sends those with backoff and raises for whatever still fails, or is refused as the sender's
fault, so the chunk fails and SQS redelivers it rather than losing a record. This module says only
what a FailureQueue message is and how big its batches may be.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson

from pipeline.aws.sqs_batch import BATCH_ENTRIES, ResendPolicy, SqsEntry, SqsQueue, send_batch
from pipeline.aws.sqs_batch import iter_batches as iter_entry_batches
from pipeline.failures import FailureRecord

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
else:
    SQSClient = Any

BATCH_BYTES = 256 * 1024
"""The batch cap: SQS's default queue limit (a queue raised to 1 MiB accepts more)."""
MESSAGE_CHARS = 4096
"""A record's `message` is cut to this many characters so one record never fills a batch."""
ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class SendReport:
    """What one `send_failures` call did: `sent` messages in `calls` SendMessageBatch calls."""

    sent: int
    calls: int
    retried: int


def message_body(record: FailureRecord) -> str:
    """The FailureQueue body: the failure record contract, with `message` capped."""
    if len(record.message) > MESSAGE_CHARS:
        record = replace(record, message=record.message[: MESSAGE_CHARS - 1] + "…")
    return orjson.dumps(record.to_dict()).decode()


def iter_batches(
    bodies: Sequence[str], *, max_entries: int = BATCH_ENTRIES, max_bytes: int = BATCH_BYTES
) -> Iterator[list[SqsEntry]]:
    """Batch the bodies (ids are their indexes) by `pipeline.aws.sqs_batch`'s one rule.

    Raises:
        ValueError: a body over `max_bytes`: `message_body` caps records, so it is a bug, and
            it is raised rather than sent to be refused or left out.
    """

    def entries() -> Iterator[SqsEntry]:
        for index, body in enumerate(bodies):
            entry = SqsEntry.of(index, body)
            if entry.size_bytes > max_bytes:
                raise ValueError(f"failure record of {entry.size_bytes} bytes exceeds {max_bytes}")
            yield entry

    return iter_entry_batches(entries(), max_bytes=max_bytes, max_entries=max_entries)


def send_failures(
    client: SQSClient,
    queue_url: str,
    records: Iterable[FailureRecord],
    *,
    max_bytes: int = BATCH_BYTES,
    backoff_s: Callable[[int], float] = lambda attempt: min(2.0, 0.05 * 2**attempt),
) -> SendReport:
    """Send every record, in batches, retrying failed entries until each was accepted.

    Raises:
        ThrottledError: SQS kept failing entries (stage ``write``, retryable).
        ResultWriteError: SQS refused a call, or refused entries as the sender's fault.
    """
    queue = SqsQueue(
        queue_url,
        name="FailureQueue",
        noun="failure records",
        refused_hint="fix the queue's MaximumMessageSize or the record",
    )
    resend = ResendPolicy(ATTEMPTS, backoff_s, time.sleep)
    bodies = [message_body(record) for record in records]
    calls = retried = 0
    for batch in iter_batches(bodies, max_bytes=max_bytes):
        sent = send_batch(client, queue, batch, resend)
        calls += sent.calls
        retried += sent.resent
    return SendReport(sent=len(bodies), calls=calls, retried=retried)
