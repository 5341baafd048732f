"""Lambda (Step Functions task): write the run summary (_SUCCESS.json or _PARTIAL.json)."""

from __future__ import annotations

import time
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from handlers._cold_start import cold_start
from pipeline.ledger.commit import CommitTargets
from pipeline.ledger.finalize import finalize_run
from pipeline.ledger.table import RunLedger

logger = Logger()
settings = cold_start("results_bucket", "runs_table", "failure_queue_url")
s3 = boto3.client("s3")
ledger = RunLedger(boto3.client("dynamodb"), settings.runs_table)
targets = CommitTargets(
    s3, boto3.client("sqs"), settings.results_bucket, settings.failure_queue_url
)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The state in; the run summary out (also the execution's output)."""
    logger.append_keys(run=event["run"])
    return finalize_run(
        event,
        ledger=ledger,
        s3=s3,
        results_bucket=settings.results_bucket,
        now=time.time(),
        targets=targets,
    )
