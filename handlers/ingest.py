"""Lambda: IngestQueue (S3 notifications) → one Step Functions execution per manifest object.

Which objects start a run (an S3 Inventory report's parts, checksum and symlink do not) is
`pipeline/ledger/delivery.py`; every decision is logged with its reason.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from handlers._batch import sqs_batch_processor
from handlers._cold_start import cold_start
from pipeline.ledger.delivery import Action, ChecksumPolicy, ingest_notification

logger = Logger()
settings = cold_start("state_machine_arn")
sfn = boto3.client("stepfunctions")
s3 = boto3.client("s3")
processor = sqs_batch_processor(logger)
TIMEOUT_MARGIN_S = 5.0
"""Time kept free of checksum waits, so a batch never runs into the function's timeout."""


def _policy(lambda_context: Any) -> ChecksumPolicy:
    """Wait for a late manifest.checksum at most the setting, and never past the timeout."""
    wait_s = settings.inventory_checksum_wait_s
    if lambda_context is not None:
        remaining_s = lambda_context.get_remaining_time_in_millis() / 1000 - TIMEOUT_MARGIN_S
        wait_s = max(0.0, min(wait_s, remaining_s))
    return ChecksumPolicy(wait_s=wait_s)


def record_handler(record: SQSRecord, lambda_context: Any = None) -> None:
    """Start a run for every manifest the notification names; log every object skipped."""
    notification = json.loads(record.body)
    policy = _policy(lambda_context)
    for done in ingest_notification(s3, sfn, settings.state_machine_arn, notification, policy):
        decision = done.decision
        extra = {"manifest": decision.obj.uri, "reason": decision.reason}
        if done.started is not None:
            logger.info("run started", extra={**extra, "run": done.started.run})
        elif decision.action is Action.REFUSE:
            logger.error("run refused", extra={**extra, "run": decision.obj.run})
        else:
            logger.info("not a manifest: skipped", extra=extra)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Partial batch response: a notification that fails is retried alone."""
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
