"""Lambda's SQS event source mapping, for the local stack: receive, invoke, settle.

moto's own mapping fires only inside SendMessage and never retries (moto 5.2.5), so the local stack
polls each mapped queue itself with the semantics a handler sees on AWS:

- a batch is up to `BatchSize` messages, gathered for at most `MaximumBatchingWindowInSeconds`;
- messages are received with the queue's own visibility timeout, so a crash makes them visible
  again only when it expires (`redelivery_delay_s` shortens that for tests, explicitly);
- a handler that raises fails the whole batch: nothing is deleted;
- with `ReportBatchItemFailures`, only the records not named in `batchItemFailures` are deleted;
  an unknown or empty identifier fails the whole batch, as on Lambda;
- the queue's RedrivePolicy (emulated by moto on receive) parks a message in its DLQ once its
  receive count passes `maxReceiveCount`.

Knows nothing of processes: `pipeline.local.workers` decides where a poller runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.local.emulator import LOCAL_REGION
from pipeline.local.functions import EventSourceMapping

logger = logging.getLogger(__name__)

_SQS_RECEIVE_MAX = 10


@dataclass(frozen=True, slots=True)
class PollerOptions:
    """How a poller waits; defaults are Lambda's behaviour."""

    wait_time_s: int = 1
    """Long-poll wait per receive; short so that stopping is prompt."""
    redelivery_delay_s: float | None = None
    """None: a failed message waits out the queue's visibility timeout, as on AWS."""


def to_lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One SQS message in the shape of a Lambda SQS event record."""
    attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
        for name, value in message.get("MessageAttributes", {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": LOCAL_REGION,
    }


def failed_message_ids(
    message_ids: Sequence[str], outcome: Any, *, reports_item_failures: bool
) -> set[str]:
    """Which messages of a batch Lambda would leave on the queue, given the handler's outcome.

    `outcome` is the handler's return value, or the exception it raised.
    """
    everything = set(message_ids)
    if isinstance(outcome, BaseException):
        return everything
    if not reports_item_failures or not isinstance(outcome, dict):
        return set()
    failures = outcome.get("batchItemFailures") or []
    named = {f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures}
    if not named <= everything:  # None, "" or a foreign id: Lambda fails the whole batch
        return everything
    return named


class SqsPoller:
    """Polls one queue for one function; `invoke(event)` runs the handler."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        *,
        sqs: Any,
        invoke: Callable[[dict[str, Any]], Any],
        options: PollerOptions | None = None,
    ) -> None:
        self.mapping = mapping
        self._sqs = sqs
        self._invoke = invoke
        self._options = options or PollerOptions()

    def run(self, stop: threading.Event | Any) -> None:
        """Poll until `stop` is set; an error of the poller itself is logged, never fatal."""
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:
                logger.exception("poller %s failed; polling on", self.mapping.logical_id)
                stop.wait(1.0)

    def poll_once(self) -> int:
        """Receive one batch, invoke the handler once, settle the batch; return its size."""
        messages = self._receive_batch()
        if not messages:
            return 0
        event = {"Records": [to_lambda_record(m, self.mapping.queue_arn) for m in messages]}
        try:
            outcome: Any = self._invoke(event)
        except Exception as exc:
            logger.warning(
                "%s raised on a batch of %d: %s", self.mapping.function.name, len(messages), exc
            )
            outcome = exc
        failed = failed_message_ids(
            [m["MessageId"] for m in messages],
            outcome,
            reports_item_failures=self.mapping.reports_item_failures,
        )
        if failed:
            self._warn_left(len(failed), len(messages))
        self._settle(messages, failed)
        return len(messages)

    def _warn_left(self, failed: int, received: int) -> None:
        """Say that messages stay on the queue, and when they come back.

        Lambda logs nothing here; locally a run that pauses for a whole visibility timeout
        would otherwise look hung.
        """
        delay_s = self._options.redelivery_delay_s
        if delay_s is None:
            when = f"the queue's visibility timeout ({self._visibility_timeout()})"
        else:
            when = f"{delay_s:g} s"
        logger.warning(
            "%s: %d of %d messages failed; they come back after %s",
            self.mapping.function.name,
            failed,
            received,
            when,
        )

    def _visibility_timeout(self) -> str:
        """The queue's visibility timeout, in words (read when a batch fails: rarely)."""
        try:
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=self.mapping.queue_url, AttributeNames=["VisibilityTimeout"]
            )["Attributes"]
        except Exception:  # only words for a log line: never fail the batch for them
            return "unknown"
        return f"{attributes['VisibilityTimeout']} s"

    def _receive_batch(self) -> list[dict[str, Any]]:
        wanted = self.mapping.batch_size
        deadline = time.monotonic() + self.mapping.batching_window_s
        messages = self._receive(min(wanted, _SQS_RECEIVE_MAX), self._options.wait_time_s)
        while messages and len(messages) < wanted and time.monotonic() < deadline:
            remaining_s = deadline - time.monotonic()
            more = self._receive(min(wanted - len(messages), _SQS_RECEIVE_MAX), int(remaining_s))
            if not more and remaining_s < 1:
                break
            messages.extend(more)
        return messages

    def _receive(self, count: int, wait_s: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.mapping.queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=max(0, wait_s),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return response.get("Messages", [])

    def _settle(self, messages: list[dict[str, Any]], failed: set[str]) -> None:
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), _SQS_RECEIVE_MAX):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(done[start : start + _SQS_RECEIVE_MAX])
            ]
            self._sqs.delete_message_batch(QueueUrl=self.mapping.queue_url, Entries=entries)
        delay_s = self._options.redelivery_delay_s
        if delay_s is None:
            return
        for message in messages:
            if message["MessageId"] in failed:
                self._sqs.change_message_visibility(
                    QueueUrl=self.mapping.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=int(delay_s),
                )
