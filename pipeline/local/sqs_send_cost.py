"""moto's SendMessage costs the same whatever the queue holds, as on AWS.

moto 5.2.5's `SQSBackend.send_message` reads `queue.attributes` to learn one flag
(`ContentBasedDeduplication`), and that property computes every attribute, the three
`ApproximateNumberOfMessages*` counts among them: each a pass over every message in the queue,
with two clock reads a message. So each message sent cost a pass over all those sent before,
and a run whose images fail filled its FailureQueue in quadratic time: 1,000 failing lines took
11 s on the embedded stack, 3,000 took 116 s (3 s now; BENCHMARKS.md, "A run of failing images
on the embedded stack").

While a thread sends, the counts read as 0: nothing in a send uses them, only the flag. Any
other caller (GetQueueAttributes, `lambdaflow status`) on any thread still counts every
message, and the server's threads each keep their own state, so a send on one thread never
changes what another thread's GetQueueAttributes answers.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from pipeline.local.patches import patch_once

_COUNTS = (
    "approximate_number_of_messages",
    "approximate_number_of_messages_delayed",
    "approximate_number_of_messages_not_visible",
)
"""`Queue` properties that walk every message: what `Queue.attributes` costs."""
_sending = threading.local()


def install_cheap_sends() -> None:
    """Hook moto's SQS backend so a send does not count the queue's messages (idempotent)."""
    from moto.sqs.models import Queue, SQSBackend  # noqa: PLC0415  # moto imports slowly

    patch_once(SQSBackend, "send_message", _marked_as_sending, rule=__name__)
    for name in _COUNTS:
        patch_once(Queue, name, _counted_unless_sending, rule=__name__)


def is_sending() -> bool:
    """Whether this thread is inside a moto SendMessage (or a batch's entry)."""
    return getattr(_sending, "depth", 0) > 0


def _marked_as_sending(send: Any) -> Any:
    @functools.wraps(send)
    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        _sending.depth = getattr(_sending, "depth", 0) + 1
        try:
            return send(self, *args, **kwargs)
        finally:
            _sending.depth -= 1

    return send_message


def _counted_unless_sending(count: property) -> property:
    return property(_zero_while_sending(count.fget))


def _zero_while_sending(count: Any) -> Any:
    @functools.wraps(count)
    def counted(self: Any) -> int:
        return 0 if is_sending() else count(self)

    return counted
