"""Lambda (Step Functions tasks): check a run's progress, or arm the wait for its last chunk.

Two tasks call it. `Progress` (no `token`): are all chunks counted, has the run stalled?
`AwaitChunks` (`.waitForTaskToken`, the event carries `token`): store the token in the ledger
and complete it at once if the run is already complete (pipeline/ledger/completion.py);
otherwise a chunk worker completes it later, and the task's result is that callback, not this
return value.
"""

from __future__ import annotations

import time
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from handlers._cold_start import cold_start
from pipeline.ledger.completion import CompletionSignal
from pipeline.ledger.progress import check_progress
from pipeline.ledger.table import RunLedger

logger = Logger()
settings = cold_start("runs_table")
ledger = RunLedger(boto3.client("dynamodb"), settings.runs_table)
signal = CompletionSignal(
    ledger, boto3.client("stepfunctions"), stall_timeout_s=settings.stall_timeout_s
)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The state in; the state with `complete`, `stalled`, `heartbeat_s` and `progress` out."""
    if "token" in event:
        return {"run": event["run"], "completed": signal.arm(event["run"], event["token"])}
    return check_progress(
        event,
        ledger.get_run(event["run"]),
        now=time.time(),
        stall_timeout_s=settings.stall_timeout_s,
        poll_s=settings.progress_poll_s,
    )
