"""Replay poison chunks: move WorkDLQ messages back to the WorkQueue, none lost.

A chunk lands in the WorkDLQ when its handler crashed or timed out `maxReceiveCount` times (SQS
redrive). Once the cause is fixed, its message goes back to the WorkQueue unchanged: chunk
numbers and part keys are deterministic and the ledger's markers are conditional, so a moved
chunk is written and counted exactly once, whether it is a first delivery or a replay chunk.

Two ways to move:
- `move_messages`: receive → send → delete, filtered by run. The message is deleted from the
  DLQ only after SendMessage succeeded, so a crash in between leaves a duplicate (harmless, see
  above), never a loss. This is the local path (moto 5.2.5 has no `StartMessageMoveTask`)
  and the only one that can pick one run's chunks.
- `start_move_task`: SQS's own `StartMessageMoveTask` (AWS, all messages, ≤ 500 msg/s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from botocore.exceptions import ClientError

from pipeline.aws.errors import write_error_from
from pipeline.split.chunking import Chunk

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
else:
    SQSClient = Any

RECEIVE_MAX = 10
MOVE_VISIBILITY_S = 60
"""How long the mover hides a message it holds; messages it keeps are released at once."""


@dataclass(frozen=True, slots=True)
class ParkedChunk:
    """One WorkDLQ message as the mover saw it; `run` is "" when the body is unreadable."""

    run: str
    chunk: int
    replay_round: int
    items: int


def parked_chunk(body: str) -> ParkedChunk:
    """Describe a WorkDLQ body (a chunk message) without judging it."""
    try:
        data = orjson.loads(body)
        return ParkedChunk(
            run=str(data.get("run", "")),
            chunk=int(data.get("chunk", -1)),
            replay_round=int(data.get("replay") or 0),
            items=_item_count(data),
        )
    except (ValueError, TypeError, AttributeError):
        return ParkedChunk(run="", chunk=-1, replay_round=0, items=0)


def _item_count(data: dict[str, Any]) -> int:
    """How many lines the chunk carries (v1 items or v2 pieces); 0 when they are unreadable."""
    try:
        return Chunk.from_message(data).lines
    except (ValueError, KeyError, TypeError):
        return 0


def move_messages(
    sqs: SQSClient,
    dlq_url: str,
    work_url: str,
    *,
    run: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
) -> list[ParkedChunk]:
    """Move the DLQ's chunks (of `run`, at most `limit`) to the WorkQueue; return them.

    With `dry_run` nothing moves: the chunks that would are returned and left in place.

    Raises:
        ResultWriteError | ThrottledError: SQS refused a send (the message stays in the DLQ).
    """
    moved: list[ParkedChunk] = []
    kept: list[str] = []
    seen: set[str] = set()
    try:
        while limit is None or len(moved) < limit:
            fresh = [m for m in _receive(sqs, dlq_url) if m["MessageId"] not in seen]
            if not fresh:
                break
            for message in fresh:
                seen.add(message["MessageId"])
                parked = parked_chunk(message["Body"])
                wanted = (run is None or parked.run == run) and (
                    limit is None or len(moved) < limit
                )
                if not wanted or dry_run:
                    kept.append(message["ReceiptHandle"])
                    moved.extend([parked] if wanted else [])
                    continue
                _send(sqs, work_url, message["Body"])  # raises: the message stays in the DLQ
                sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
                moved.append(parked)
    finally:
        _release(sqs, dlq_url, kept)
    return moved


def start_move_task(sqs: SQSClient, dlq_arn: str, work_arn: str) -> str:
    """Start SQS's own move of every DLQ message back to the WorkQueue; return its handle.

    Raises:
        ResultWriteError | ThrottledError: SQS refused (one move task per queue at a time).
    """
    try:
        response = sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=work_arn)
    except ClientError as exc:
        raise write_error_from(exc, f"starting a message move task from {dlq_arn}") from exc
    return str(response["TaskHandle"])


def queue_arn(sqs: SQSClient, queue_url: str) -> str:
    """The ARN of a queue (what `StartMessageMoveTask` takes)."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def _receive(sqs: SQSClient, queue_url: str) -> list[dict[str, Any]]:
    return sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=RECEIVE_MAX,
        VisibilityTimeout=MOVE_VISIBILITY_S,
        WaitTimeSeconds=1,
    ).get("Messages", [])


def _send(sqs: SQSClient, queue_url: str, body: str) -> None:
    try:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    except ClientError as exc:
        raise write_error_from(exc, f"moving a chunk back to {queue_url}") from exc


def _release(sqs: SQSClient, queue_url: str, handles: list[str]) -> None:
    for start in range(0, len(handles), RECEIVE_MAX):
        entries = [
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for i, handle in enumerate(handles[start : start + RECEIVE_MAX])
        ]
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
