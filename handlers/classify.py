"""Lambda (WorkQueue): classify each chunk message; report only crashed chunks as failures."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import orjson
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from handlers._batch import sqs_batch_processor
from handlers._cold_start import cold_start
from handlers._metrics import metrics, published, record_chunk
from pipeline.aws.retries import data_path_config
from pipeline.classify.model import get_classifier
from pipeline.classify.worker import ChunkWorker, fetch_client_config
from pipeline.ledger.completion import CompletionSignal
from pipeline.ledger.table import RunLedger
from pipeline.split.work_message import parse_work_message

logger = Logger()
settings = cold_start("results_bucket", "failure_queue_url", "runs_table")
_retries = data_path_config()
ledger = RunLedger(boto3.client("dynamodb", config=_retries), settings.runs_table)
worker = ChunkWorker(
    s3=boto3.client("s3", config=fetch_client_config(settings)),
    sqs=boto3.client("sqs", config=_retries),
    ledger=ledger,
    classifier=get_classifier(settings),  # once per execution environment, at cold start
    settings=settings,
    pool=ThreadPoolExecutor(max_workers=settings.fetch_concurrency),
)
completion = CompletionSignal(
    ledger, boto3.client("stepfunctions"), stall_timeout_s=settings.stall_timeout_s
)
processor = sqs_batch_processor(logger)


def record_handler(record: SQSRecord, lambda_context: Any = None) -> None:
    """One chunk (or replay chunk); raising fails just this record (then the WorkDLQ).

    Powertools passes `lambda_context` when the handler had one: its deadline goes into the
    chunk's commit (`ChunkWorker.process`).
    """
    deadline = (
        None
        if lambda_context is None
        else time.time() + lambda_context.get_remaining_time_in_millis() / 1000
    )
    chunk, replay = parse_work_message(orjson.loads(record.body))
    # Lambda always sets it; a log line must never fail a chunk where something else does not
    deliveries = int(record.attributes.get("ApproximateReceiveCount") or 1)
    if deliveries > 1:  # an earlier delivery crashed, ran out of time or memory, or was lost
        logger.warning(
            "chunk delivered again",
            extra={"run": chunk.run, "chunk": chunk.number, "deliveries": deliveries},
        )
    report = worker.process(chunk, replay, deadline=deadline)
    record_chunk(
        metrics, ok=report.ok, failed_by_stage=report.failed_by_stage, seconds=report.seconds
    )
    logger.info("chunk done", extra={"run": report.run, "chunk": report.chunk, "ok": report.ok})
    # Also for a chunk counted earlier: its first worker may have died before signalling.
    completion.after_chunk(report.run)


@published  # one EMF line per invocation (CloudWatch metrics from the log), when metrics are on
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Partial batch response (Powertools): only crashed chunks are retried."""
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
