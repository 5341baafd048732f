"""One FailureQueue drain at a time: a lease on the ledger's table.

A drain sees past the front of the FailureQueue only by holding (hiding) what it has looked at
until it ends: SQS has no other way to browse a queue. Two replays draining at once, of two
runs, would each hide the other's messages, and a superseded failure held by the other drain
is never seen by its own: it would stay in the queue after its line was replayed. So drains take
turns. The lease is one item, taken by a conditional write; it lapses on its own after
`LEASE_S` unless renewed, so a replay that dies while draining holds up the next one for at
most that long.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.aws.errors import is_applied
from pipeline.ledger.items import n

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

logger = logging.getLogger(__name__)

LEASE_KEY = {"pk": {"S": "FAILURE_QUEUE"}, "sk": {"S": "DRAIN_LEASE"}}
"""Not a run's item: it has no `kind`, so the runs index never lists it."""
LEASE_S = 300.0
"""How long a lease lasts unrenewed; a drain renews it each time it renews its messages."""
RETRY_S = 1.0
"""How often a drain waiting for its turn tries again."""


@dataclass(slots=True)
class DrainLease:
    """The right to drain the FailureQueue, taken by one replay at a time (see the module)."""

    client: DynamoDBClient
    table: str
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    holder: str = field(default_factory=lambda: uuid.uuid4().hex)

    def acquire(self, *, wait_s: float) -> bool:
        """Take the lease, waiting up to `wait_s` for another drain's to end or lapse."""
        deadline = self.clock() + wait_s
        if self.renew():
            return True
        logger.warning(  # what a replay is doing while it seems to do nothing
            "another replay is draining the FailureQueue: waiting up to %.0f s for its turn",
            wait_s,
        )
        while self.clock() < deadline:
            self.sleep(RETRY_S)
            if self.renew():
                return True
        return False

    def renew(self) -> bool:
        """Take or extend the lease; False when another holder has it and it has not lapsed.

        Idempotent: a write whose answer was lost and is sent again finds itself the holder.
        """
        now = self.clock()
        take = functools.partial(
            self.client.put_item,
            TableName=self.table,
            Item={**LEASE_KEY, "holder": {"S": self.holder}, "expires_at": n(now + LEASE_S)},
            ConditionExpression="attribute_not_exists(pk) OR holder = :me OR expires_at < :now",
            ExpressionAttributeValues={":me": {"S": self.holder}, ":now": n(now)},
        )
        return is_applied(take, "taking the FailureQueue drain lease")

    def release(self) -> None:
        """Give the lease back, if this drain still holds it (the next drain need not wait)."""
        give_back = functools.partial(
            self.client.delete_item,
            TableName=self.table,
            Key=LEASE_KEY,
            ConditionExpression="holder = :me",
            ExpressionAttributeValues={":me": {"S": self.holder}},
        )
        is_applied(give_back, "releasing the FailureQueue drain lease")  # refused: lapsed, taken
