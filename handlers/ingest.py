"""Lambda: IngestQueue (S3 notifications) → one Step Functions execution per manifest object."""

from __future__ import annotations

import json
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from handlers._cold_start import cold_start
from pipeline.ledger.ingest import iter_created_objects, start_run

logger = Logger()
settings = cold_start("state_machine_arn")
sfn = boto3.client("stepfunctions")
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    """Start a run for every object the notification names (none for s3:TestEvent)."""
    for obj in iter_created_objects(json.loads(record.body)):
        started = start_run(sfn, settings.state_machine_arn, obj)
        logger.info("run started", extra={"run": started.run, "manifest": obj.uri})


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Partial batch response: a notification that fails is retried alone."""
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
