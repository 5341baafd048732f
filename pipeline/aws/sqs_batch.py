"""The one place SQS batch-send semantics live: what goes in a batch, and sending it, none lost.

`SendMessageBatch` takes at most ten entries and a capped total size, and it can fail *some*
entries while accepting the rest (HTTP 200 with a `Failed` list). So a sender that only checks
the HTTP status loses messages. Here:

- entries failed through no fault of ours are re-sent, alone, with backoff, up to `attempts`
  calls; whatever still fails raises `ThrottledError` (stage ``write``, retryable), so the caller's
  unit of work (a chunk, a Split pass, a replay) fails and is retried rather than dropping it;
- entries refused as the sender's fault (too big, say) raise `ResultWriteError` at once, with the
  queue's hint: re-sending the same bytes cannot help;
- a call SQS refuses altogether becomes `pipeline.aws.errors.write_error_from`'s error.

The FailureQueue sender (`pipeline.aws.failure_queue`) and the WorkQueue's chunk sink
(`pipeline.split.sinks.SqsChunkSink`, which `pipeline.split.work_queue.send_chunks` uses too) are
thin users of it; each says only which queue, how big a batch, and how patiently to re-send.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pipeline.aws.errors import write_error_from
from pipeline.failures import ResultWriteError, Stage, ThrottledError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
else:
    SQSClient = Any

BATCH_ENTRIES = 10
"""SendMessageBatch takes at most ten entries."""


@dataclass(frozen=True, slots=True)
class SqsEntry:
    """One message of a batch: its id (unique within the batch), its body and the body's bytes.

    The size is kept because the batch cap counts UTF-8 bytes, not characters.
    """

    id: str
    body: str
    size_bytes: int

    @classmethod
    def of(cls, entry_id: int | str, body: str | bytes) -> SqsEntry:
        """The entry for the JSON `body` (str, or UTF-8 bytes as orjson writes them).

        U+FFFE and U+FFFF are valid UTF-8, so an S3 key may hold them and JSON writers leave
        them raw, but SQS takes no message holding them (outside `#x20`-`#xFFFD` and the
        planes above): they are written as JSON escapes, which read back to the same key.
        """
        text = body.decode() if isinstance(body, bytes) else body
        if "\ufffe" in text or "\uffff" in text:  # only ever inside a JSON string
            text = text.replace("\ufffe", "\\ufffe").replace("\uffff", "\\uffff")
        elif isinstance(body, bytes):
            return cls(str(entry_id), text, len(body))
        return cls(str(entry_id), text, len(text.encode()))


@dataclass(frozen=True, slots=True)
class SqsQueue:
    """A queue as its errors name it.

    `name` ("WorkQueue") and its messages' `noun` make the messages; `refused_hint` says what to
    do when SQS refuses entries as the sender's fault.
    """

    url: str
    name: str
    noun: str
    refused_hint: str


@dataclass(frozen=True, slots=True)
class ResendPolicy:
    """How patiently entries SQS failed are re-sent.

    `attempts` calls in all; before call `n` (from 1) a pause of `backoff_s(n)` seconds, taken
    through `sleep` (injected by tests).
    """

    attempts: int
    backoff_s: Callable[[int], float]
    sleep: Callable[[float], None] = field(default=time.sleep)


@dataclass(frozen=True, slots=True)
class BatchSent:
    """What sending one batch took: `calls` SendMessageBatch calls, `resent` entries re-sent."""

    calls: int
    resent: int


class BatchBuffer:
    """The one batching rule: at most `max_entries` entries and `max_bytes` bytes a batch.

    A batch closes before an entry that would pass either cap. An entry bigger than `max_bytes`
    goes alone, for SQS to refuse as an error (never dropped here).

    Push-shaped, so a streaming sender (`SqsChunkSink`) can send each batch as it closes;
    `iter_batches` is the same rule over an iterable.
    """

    def __init__(self, *, max_bytes: int, max_entries: int = BATCH_ENTRIES) -> None:
        self._max_bytes = max_bytes
        self._max_entries = max_entries
        self._entries: list[SqsEntry] = []
        self._bytes = 0

    def add(self, entry: SqsEntry) -> list[SqsEntry]:
        """Add `entry`; return the batch it closed (the entries before it), or `[]`."""
        closed: list[SqsEntry] = []
        if self._entries and (
            len(self._entries) == self._max_entries
            or self._bytes + entry.size_bytes > self._max_bytes
        ):
            closed = self.take()
        self._entries.append(entry)
        self._bytes += entry.size_bytes
        return closed

    def take(self) -> list[SqsEntry]:
        """Empty the buffer; return the (possibly empty) batch it held."""
        entries, self._entries, self._bytes = self._entries, [], 0
        return entries


def iter_batches(
    entries: Iterable[SqsEntry], *, max_bytes: int, max_entries: int = BATCH_ENTRIES
) -> Iterator[list[SqsEntry]]:
    """Group `entries`, in order, into the batches `BatchBuffer` closes."""
    buffer = BatchBuffer(max_bytes=max_bytes, max_entries=max_entries)
    for entry in entries:
        if closed := buffer.add(entry):
            yield closed
    if rest := buffer.take():
        yield rest


def send_batch(
    client: SQSClient,
    queue: SqsQueue,
    entries: Sequence[SqsEntry],
    resend: ResendPolicy,
) -> BatchSent:
    """Send one batch until SQS accepted every entry; re-send only the entries it failed.

    Raises:
        ThrottledError: entries still failed after `resend.attempts` calls (retryable).
        ResultWriteError: SQS refused the call, or an entry as the sender's fault.
    """
    pending = list(entries)
    calls = resent = 0
    for attempt in range(resend.attempts):
        if not pending:
            break
        if attempt:
            resend.sleep(resend.backoff_s(attempt))
            resent += len(pending)
        pending = _send_once(client, queue, pending)
        calls += 1
    if pending:
        raise ThrottledError(
            f"{queue.name} kept failing {len(pending)} {queue.noun} after "
            f"{resend.attempts} attempts",
            stage=Stage.WRITE,
            error="SendMessageBatchFailed",
        )
    return BatchSent(calls=calls, resent=resent)


def _send_once(
    client: SQSClient,
    queue: SqsQueue,
    entries: list[SqsEntry],
) -> list[SqsEntry]:
    """One SendMessageBatch; return the entries SQS failed through no fault of ours."""
    request = [{"Id": entry.id, "MessageBody": entry.body} for entry in entries]
    try:
        response = client.send_message_batch(QueueUrl=queue.url, Entries=request)
    except ClientError as exc:
        raise write_error_from(exc, f"sending {queue.noun} to {queue.url}") from exc
    failed = response.get("Failed", [])
    refused = [f.get("Code") or "SenderFault" for f in failed if f.get("SenderFault")]
    if refused:
        codes = sorted(set(refused))
        raise ResultWriteError(
            f"{queue.name} refused {len(refused)} {queue.noun} ({', '.join(codes)}): "
            f"{queue.refused_hint}",
            error=codes[0],
        )
    retry = {f["Id"] for f in failed}
    return [entry for entry in entries if entry.id in retry]
