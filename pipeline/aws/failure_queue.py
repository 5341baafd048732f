"""Send item failure records to the FailureQueue, none dropped silently.

`SendMessageBatch` can fail *some* entries while accepting the rest; `pipeline.aws.sqs_batch`
re-sends those with backoff and raises for whatever still fails, or is refused as the sender's
fault, so the chunk fails and SQS redelivers it rather than losing a record. This module says only
what a FailureQueue message is and how big its batches may be.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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


DRAIN_VISIBILITY_S = 60
"""How long a drain hides the messages it looked at; those it keeps are released at once."""


def acknowledge_failures(
    client: SQSClient, queue_url: str, replayed: Mapping[tuple[str, int], int]
) -> int:
    """Delete the FailureQueue messages a replay supersedes; return how many were deleted.

    `replayed` maps (run, line) to the attempts of the record being replayed: a message for
    that line with at most those attempts is deleted (duplicates included); anything else —
    other runs, other lines, a newer failure — is released (visibility 0) untouched. Once the
    replay's chunks have run, the queue again holds exactly the latest failure of each line
    that still has no result.
    """
    deleted = 0
    kept: dict[str, str] = {}
    seen: set[str] = set()
    while True:
        messages = client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=BATCH_ENTRIES,
            VisibilityTimeout=DRAIN_VISIBILITY_S,
            WaitTimeSeconds=1,  # long poll: an empty answer means empty, not "unlucky sample"
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen.add(message["MessageId"])
            if _is_superseded(message["Body"], replayed):
                client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                deleted += 1
            else:
                kept[message["MessageId"]] = message["ReceiptHandle"]
    _release(client, queue_url, list(kept.values()))
    return deleted


def _is_superseded(body: str, replayed: Mapping[tuple[str, int], int]) -> bool:
    try:
        record = orjson.loads(body)
        attempts = replayed.get((str(record["run"]), int(record["line"])))
        return attempts is not None and int(record.get("attempts", 1)) <= attempts
    except (ValueError, KeyError, TypeError):
        return False  # not a failure record: not ours to judge


def _release(client: SQSClient, queue_url: str, handles: list[str]) -> None:
    for start in range(0, len(handles), BATCH_ENTRIES):
        entries = [
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for i, handle in enumerate(handles[start : start + BATCH_ENTRIES])
        ]
        client.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
