"""Drain the FailureQueue of the records a replay supersedes, holding the rest only briefly.

Apart from the sender (`pipeline.aws.failure_queue`) on purpose: only a replay receives and
deletes FailureQueue messages, so the functions that send failures (classify, finalize) import
nothing that could, and their roles grant only `sqs:SendMessage`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

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
QUOTA_ANSWERS = 3
"""A drain stops after this many `OverLimit` answers in a row, what it held released each time:
the quota is then held by someone else, and the stale bound above (which grows with what the
drain has seen) could keep it asking for hours."""
LONG_POLL_S = 1
"""A receive waits this long for a message: an empty answer then means empty, not "unlucky"."""
LEASE_WAIT_S = 600.0
"""How long a drain waits for another replay's drain to end (see `DrainLease`)."""

AT_QUOTA = "the FailureQueue was at SQS's in-flight quota (~120,000 received, not deleted)"
KEPT_COMING_BACK = "the FailureQueue kept handing back messages the drain had seen"
LEASE_BUSY = "another replay's drain held the FailureQueue"


class Lease(Protocol):
    """Turns at draining (`pipeline.replay.drain_lease.DrainLease`); kept apart from SQS here."""

    def acquire(self, *, wait_s: float) -> bool:
        """Take the turn, waiting up to `wait_s` for it; False when it did not come."""
        ...

    def renew(self) -> bool:
        """Keep the turn while the drain goes on."""
        ...

    def release(self) -> None:
        """Give the turn to the next drain."""
        ...


@dataclass(frozen=True, slots=True)
class DrainReport:
    """What a drain deleted, and why superseded messages may remain (None: they may not)."""

    deleted: int
    left_reason: str | None = None


def acknowledge_failures(
    client: SQSClient,
    queue_url: str,
    replayed: Mapping[tuple[str, int], int],
    *,
    clock: Callable[[], float] = time.monotonic,
    max_held: int = MAX_HELD,
    lease: Lease | None = None,
    lease_wait_s: float = LEASE_WAIT_S,
) -> DrainReport:
    """Delete the FailureQueue messages a replay supersedes; report how many, and what is left.

    `replayed` maps (run, line) to the attempts of the record being replayed: a message for
    that line with at most those attempts is deleted (duplicates included); anything else —
    other runs, other lines, a newer failure — is kept, hidden while the drain looks further,
    and released (visibility 0) at the end, also when the drain fails half-way. Once the
    replay's chunks have run, the queue again holds the latest failure of each line that still
    has no result.

    A long drain renews the visibility of what it holds; past `max_held` messages in flight (or
    when SQS answers `OverLimit`), it releases what it holds and goes on, so the deletions still
    reach every message it receives.

    With a `lease`, the drain first waits up to `lease_wait_s` for its turn: two drains at once
    would hide each other's messages. Without the turn, nothing is deleted and the report says
    why; so it does when the drain stopped before it had seen every visible message. Messages a
    consumer of your own holds are never seen by any drain.
    """
    if lease is not None and not lease.acquire(wait_s=lease_wait_s):
        return DrainReport(0, LEASE_BUSY)
    drain = _Drain(client, queue_url, clock, max_held, lease)
    try:
        return drain.run(replayed)
    finally:
        drain.release_all()
        if lease is not None:
            lease.release()


class _Drain:
    """One drain of the FailureQueue: what it has seen and what it holds."""

    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        clock: Callable[[], float],
        max_held: int,
        lease: Lease | None,
    ) -> None:
        self.client, self.queue_url, self.clock, self.max_held = client, queue_url, clock, max_held
        self.lease = lease
        self.held: dict[str, str] = {}
        self.seen: set[str] = set()
        self.renewed_at = clock()

    def run(self, replayed: Mapping[tuple[str, int], int]) -> DrainReport:
        deleted = idle = stale = quota_answers = 0
        while idle < IDLE_RECEIVES:
            if stale > STALE_PER_MESSAGE * (len(self.seen) + 1):
                return DrainReport(deleted, KEPT_COMING_BACK)
            messages = self._next()
            if messages == []:
                break
            if messages is None:  # OverLimit: what this drain held was released
                quota_answers += 1
                if quota_answers >= QUOTA_ANSWERS:
                    return DrainReport(deleted, AT_QUOTA)
                idle, stale = 0, stale + 1
                continue
            quota_answers = 0
            fresh, gone = self._look_at(messages, replayed)
            deleted += gone
            idle, stale = (0, stale) if fresh else (idle + 1, stale + 1)
            if self._renew_or_release():
                idle = 0  # released messages come back before unseen ones: keep looking
        return DrainReport(deleted)

    def _next(self) -> list[dict[str, Any]] | None:
        """The next messages: [] only when the queue is empty, None at the in-flight quota.

        At the quota SQS answers a long poll with nothing, as if the queue were empty, and only a
        short poll with `OverLimit`: an empty long poll is asked again, short.
        """
        messages = self._receive(LONG_POLL_S)
        return self._receive(0) if messages == [] else messages

    def _look_at(
        self, messages: list[dict[str, Any]], replayed: Mapping[tuple[str, int], int]
    ) -> tuple[int, int]:
        """Hold what came, delete what is superseded; return (not seen before, deleted)."""
        fresh = deleted = 0
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
        return fresh, deleted

    def _receive(self, wait_s: int) -> list[dict[str, Any]] | None:
        try:
            return self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=BATCH_ENTRIES,
                VisibilityTimeout=DRAIN_VISIBILITY_S,
                WaitTimeSeconds=wait_s,
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
            if self.lease is not None:
                self.lease.renew()  # lapsed and taken meanwhile: the other drain goes on too
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
