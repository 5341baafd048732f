"""What an SQS queue holds, for tests that wait on or assert a queue's depth or contents."""

from __future__ import annotations

import json
from typing import Any

HELD = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")


def messages_held(sqs: Any, url: str) -> int:
    """Messages in the queue, visible or in flight: 0 when every one was handled."""
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(HELD))["Attributes"]
    return sum(int(found[name]) for name in HELD)


def queued_bodies(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every visible message's JSON body, each looked at once (hidden meanwhile), then released."""
    seen: dict[str, dict[str, Any]] = {}
    handles: list[str] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=20, WaitTimeSeconds=1
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen[message["MessageId"]] = json.loads(message["Body"])
            handles.append(message["ReceiptHandle"])
    for handle in handles:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return list(seen.values())
