"""moto's ReceiveMessage costs what AWS's does, whatever else the queue holds.

moto 5.2.5 checks every message it hands out against the queue's retention period by calling
`get_queue_attributes(queue, ["MessageRetentionPeriod"])`, which builds every queue attribute
three times over (`name in queue.attributes`, then two `.get`s), and each build counts the queue's
messages three ways: nine passes over the whole queue, two clock reads a message, for each
message received. A run's WorkQueue holds a message per chunk, so a run of N chunks received
them in O(N²): the part of a long run's time on the embedded stack that grew with its length
(profiled on 60,000 failing lines, 600 chunks: ~8 % of the whole process's samples in those
counts under `receive_message`; BENCHMARKS.md, "A run of failing images on the embedded stack").

The check now reads the one attribute it needs, the same value (the queue keeps it as an int),
against moto's own clock: what is received, and when a message is too old, are unchanged.
"""

from __future__ import annotations

from typing import Any

from pipeline.local.patches import patch_once


def install_cheap_receives() -> None:
    """Hook moto's SQS backend so a receive reads one attribute per message (idempotent)."""
    from moto.sqs.models import SQSBackend  # noqa: PLC0415  # moto imports slowly

    patch_once(SQSBackend, "is_message_valid_based_on_retention_period", _replaced, rule=__name__)


def _replaced(_moto_check: Any) -> Any:
    return _is_retained


def _is_retained(backend: Any, queue_name: str, message: Any) -> bool:
    """The retention test moto makes (kept while sent + period is after now), one attribute read."""
    from moto.core.utils import unix_time  # noqa: PLC0415  # moto imports slowly

    period = backend.get_queue(queue_name).message_retention_period
    return period + message.sent_timestamp / 1000 > unix_time()
