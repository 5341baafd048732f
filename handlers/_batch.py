"""The SQS batch processor both queue-fed handlers use."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType


def sqs_batch_processor(logger: Logger) -> BatchProcessor:
    """A partial-batch processor that logs each record that raised, with its traceback.

    Without a logger Powertools keeps a record's exception to itself: the record is reported in
    `batchItemFailures`, comes back after the queue's visibility timeout and, after
    `maxReceiveCount` deliveries, lands in the dead-letter queue, and nothing in the function's
    log says why. With it, each failure is one WARNING line with the traceback.
    """
    return BatchProcessor(event_type=EventType.SQS, logger=logger)
