"""How many messages an SQS queue holds, for tests that wait on or assert a queue's depth."""

from __future__ import annotations

from typing import Any

HELD = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")


def messages_held(sqs: Any, url: str) -> int:
    """Messages in the queue, visible or in flight: 0 when every one was handled."""
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(HELD))["Attributes"]
    return sum(int(found[name]) for name in HELD)
