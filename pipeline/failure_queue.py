"""Send item failure records to the FailureQueue, none dropped silently.

`SendMessageBatch` takes at most 10 entries and a capped total size, and it can fail *some*
entries while accepting the rest (HTTP 200 with a `Failed` list). Failed entries that are not the
sender's fault are retried with backoff; whatever still fails — or is refused as the sender's
fault — raises, so the chunk fails and SQS redelivers it rather than losing a record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson
from botocore.exceptions import ClientError

from pipeline.aws_errors import write_error_from
from pipeline.failures import FailureRecord, ResultWriteError, Stage, ThrottledError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
else:
    SQSClient = Any

BATCH_ENTRIES = 10
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
) -> Iterator[list[int]]:
    """Group body indexes into batches of at most `max_entries` entries and `max_bytes` bytes."""
    batch: list[int] = []
    size = 0
    for index, body in enumerate(bodies):
        body_bytes = len(body.encode())
        if body_bytes > max_bytes:
            raise ValueError(f"failure record of {body_bytes} bytes exceeds {max_bytes}")
        if batch and (len(batch) == max_entries or size + body_bytes > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(index)
        size += body_bytes
    if batch:
        yield batch


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
        ThrottledError: SQS kept throttling (stage ``write``, retryable).
        ResultWriteError: SQS refused a call, or refused entries as the sender's fault.
    """
    bodies = [message_body(record) for record in records]
    calls = retried = 0
    for batch in iter_batches(bodies, max_bytes=max_bytes):
        pending = batch
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(backoff_s(attempt))
                retried += len(pending)
            pending = _send_batch(client, queue_url, bodies, pending)
            calls += 1
            if not pending:
                break
        else:
            raise ThrottledError(
                f"FailureQueue kept failing {len(pending)} entries after {ATTEMPTS} attempts",
                stage=Stage.WRITE,
                error="SendMessageBatchFailed",
            )
    return SendReport(sent=len(bodies), calls=calls, retried=retried)


def _send_batch(
    client: SQSClient, queue_url: str, bodies: Sequence[str], indexes: list[int]
) -> list[int]:
    """Send `indexes`; return those SQS failed through no fault of ours (to retry)."""
    entries = [{"Id": str(i), "MessageBody": bodies[i]} for i in indexes]
    try:
        response = client.send_message_batch(QueueUrl=queue_url, Entries=entries)
    except ClientError as exc:
        raise write_error_from(exc, f"sending failure records to {queue_url}") from exc
    failed = response.get("Failed", [])
    refused = [f for f in failed if f.get("SenderFault")]
    if refused:
        codes = sorted({f.get("Code", "") for f in refused})
        raise ResultWriteError(
            f"FailureQueue refused {len(refused)} records ({', '.join(codes)}): fix the queue's "
            "MaximumMessageSize or the record",
            error=codes[0] or "SenderFault",
        )
    return [int(f["Id"]) for f in failed]


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
