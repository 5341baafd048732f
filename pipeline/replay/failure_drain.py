"""Drain the FailureQueue of the records a replay supersedes, holding the rest only briefly.

Apart from the sender (`pipeline.aws.failure_queue`) on purpose: only a replay receives and
deletes FailureQueue messages, so the functions that send failures (classify, finalize) import
nothing that could, and their roles grant only `sqs:SendMessage`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from botocore.exceptions import ClientError

from pipeline.aws.errors import error_code
from pipeline.aws.sqs_batch import BATCH_ENTRIES

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
else:
    SQSClient = Any

DRAIN_VISIBILITY_S = 60
"""How long a drain hides the messages it looked at; those it keeps are released at the end."""
RENEW_MARGIN_S = 20
"""Held messages get their visibility renewed this long before it would lapse, so a drain that
takes longer than `DRAIN_VISIBILITY_S` does not see them come back (and stop early)."""
MAX_HELD = 100_000
"""Messages held in flight at most: SQS refuses receives past ~120,000 (`OverLimit`)."""
IDLE_RECEIVES = 3
"""A drain stops after this many receives in a row brought nothing it had not seen."""
STALE_PER_MESSAGE = 2
"""...or after this many fruitless receives per message seen: a bound when released messages
keep coming back (a queue past the in-flight limit), so a drain always ends."""
OVER_LIMIT = "OverLimit"


def acknowledge_failures(
    client: SQSClient,
    queue_url: str,
    replayed: Mapping[tuple[str, int], int],
    *,
    clock: Callable[[], float] = time.monotonic,
    max_held: int = MAX_HELD,
) -> int:
    """Delete the FailureQueue messages a replay supersedes; return how many were deleted.

    `replayed` maps (run, line) to the attempts of the record being replayed: a message for
    that line with at most those attempts is deleted (duplicates included); anything else —
    other runs, other lines, a newer failure — is kept, hidden while the drain looks further,
    and released (visibility 0) at the end, also when the drain fails half-way. Once the
    replay's chunks have run, the queue again holds the latest failure of each line that still
    has no result.

    A long drain renews the visibility of what it holds; past `max_held` messages in flight (or
    when SQS answers `OverLimit`), it releases what it holds and goes on, so the deletions still
    reach every message it receives.
    """
    drain = _Drain(client, queue_url, clock, max_held)
    try:
        return drain.run(replayed)
    finally:
        drain.release_all()


class _Drain:
    """One drain of the FailureQueue: what it has seen and what it holds."""

    def __init__(
        self, client: SQSClient, queue_url: str, clock: Callable[[], float], max_held: int
    ) -> None:
        self.client, self.queue_url, self.clock, self.max_held = client, queue_url, clock, max_held
        self.held: dict[str, str] = {}
        self.seen: set[str] = set()
        self.renewed_at = clock()

    def run(self, replayed: Mapping[tuple[str, int], int]) -> int:
        deleted = idle = stale = 0
        while idle < IDLE_RECEIVES and stale <= STALE_PER_MESSAGE * (len(self.seen) + 1):
            messages = self._receive()
            if messages is None:  # OverLimit: what this drain held was released
                idle, stale = 0, stale + 1
                continue
            if not messages:
                break
            fresh = 0
            for message in messages:  # held first: a failure below still releases them all
                self.held[message["MessageId"]] = message["ReceiptHandle"]
            for message in messages:
                message_id = message["MessageId"]
                if message_id in self.seen:
                    continue
                self.seen.add(message_id)
                fresh += 1
                if _is_superseded(message["Body"], replayed):
                    self.client.delete_message(
                        QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
                    del self.held[message_id]
                    deleted += 1
            idle, stale = (0, stale) if fresh else (idle + 1, stale + 1)
            if self._renew_or_release():
                idle = 0  # released messages come back before unseen ones: keep looking
        return deleted

    def _receive(self) -> list[dict[str, Any]] | None:
        try:
            return self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=BATCH_ENTRIES,
                VisibilityTimeout=DRAIN_VISIBILITY_S,
                WaitTimeSeconds=1,  # long poll: an empty answer means empty, not "unlucky sample"
            ).get("Messages", [])
        except ClientError as exc:
            if error_code(exc) != OVER_LIMIT:
                raise
            self.release_all()
            return None  # SQS holds too many in flight: let ours go, keep receiving

    def _renew_or_release(self) -> bool:
        """Renew held messages' visibility before it lapses; at `max_held`, release them."""
        if len(self.held) >= self.max_held:
            self.release_all()
            return True
        if self.clock() - self.renewed_at >= DRAIN_VISIBILITY_S - RENEW_MARGIN_S:
            _change_visibility(
                self.client, self.queue_url, list(self.held.values()), DRAIN_VISIBILITY_S
            )
            self.renewed_at = self.clock()
        return False

    def release_all(self) -> None:
        handles, self.held = list(self.held.values()), {}
        _change_visibility(self.client, self.queue_url, handles, 0)


def _is_superseded(body: str, replayed: Mapping[tuple[str, int], int]) -> bool:
    try:
        record = orjson.loads(body)
        attempts = replayed.get((str(record["run"]), int(record["line"])))
        return attempts is not None and int(record.get("attempts", 1)) <= attempts
    except (ValueError, KeyError, TypeError):
        return False  # not a failure record: not ours to judge


def _change_visibility(
    client: SQSClient, queue_url: str, handles: list[str], visibility_s: int
) -> None:
    for start in range(0, len(handles), BATCH_ENTRIES):
        entries = [
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": visibility_s}
            for i, handle in enumerate(handles[start : start + BATCH_ENTRIES])
        ]
        client.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
