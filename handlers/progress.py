"""Lambda (Step Functions task): are all of the run's chunks counted, or has it stalled?"""

from __future__ import annotations

import time
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from handlers._cold_start import cold_start
from pipeline.ledger.progress import check_progress
from pipeline.ledger.table import RunLedger

logger = Logger()
settings = cold_start("runs_table")
ledger = RunLedger(boto3.client("dynamodb"), settings.runs_table)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The state in; the state with `complete`, `stalled`, `poll_s` and `progress` out."""
    return check_progress(
        event,
        ledger.get_run(event["run"]),
        now=time.time(),
        stall_timeout_s=settings.stall_timeout_s,
        poll_s=settings.progress_poll_s,
    )
