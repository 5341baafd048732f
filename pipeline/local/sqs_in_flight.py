"""SQS's in-flight quota, which moto 5 does not enforce.

A standard queue holds at most ~120,000 messages in flight (received, not deleted, their
visibility not lapsed; a FIFO queue 20,000). Past it, AWS answers a short-polling receive with
`OverLimit`, and a long-polling one with no messages and no error, as if the queue were empty.
moto hands out every message, so a consumer that holds what it receives (the FailureQueue
drain of a replay) could not meet either answer locally, and a reader that takes an empty long
poll for an empty queue would stop early only on AWS. This module hooks
`SQSBackend.receive_message`: a receive gets at most the room left, and none past the quota, in
the way AWS answers it. `LIMITS` is mutable so tests can lower the quota for a while.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

from pipeline.local.patches import patch_once

MAX_IN_FLIGHT_STANDARD = 120_000
MAX_IN_FLIGHT_FIFO = 20_000
OVER_LIMIT = "OverLimit"


@dataclass(slots=True)
class InFlightLimits:
    """The quotas the hooked backend enforces (tests lower them for a while)."""

    standard: int = MAX_IN_FLIGHT_STANDARD
    fifo: int = MAX_IN_FLIGHT_FIFO


LIMITS = InFlightLimits()


def install_sqs_in_flight_limit() -> None:
    """Hook moto's SQS receive (idempotent)."""
    from moto.sqs.models import SQSBackend  # noqa: PLC0415  # moto imports slowly

    patch_once(SQSBackend, "receive_message", _capped, rule=__name__)


def in_flight(queue: Any) -> int:
    """Messages of a moto queue received and not deleted, whose visibility has not lapsed."""
    return sum(1 for message in list(queue.pending_messages) if not message.visible)


def _capped(original: Any) -> Any:
    from moto.sqs.exceptions import SQSException  # noqa: PLC0415

    @functools.wraps(original)
    def receive(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        queue = self.get_queue(queue_name)
        limit = LIMITS.fifo if queue.fifo_queue else LIMITS.standard
        room = limit - in_flight(queue)
        if room <= 0:
            if wait_seconds_timeout:  # long polling: nothing, and no error, after the wait
                time.sleep(wait_seconds_timeout)
                return []
            raise SQSException(
                OVER_LIMIT,
                f"Too many messages in flight: the queue's limit is {limit} messages "
                "received and not deleted",
            )
        return original(self, queue_name, min(count, room), wait_seconds_timeout, *args, **kwargs)

    return receive
