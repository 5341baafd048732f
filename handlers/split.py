"""Lambda (Step Functions task): one resumable Split pass; returns the state with its checkpoint.

A pass works for the invocation's remaining time minus a margin (`LAMBDAFLOW_SPLIT_BUDGET_S`
overrides it, so tests force many passes), then returns `done: false` and the checkpoint in
`split.resume`; the state machine loops Split until `done` (pipeline/split/passes.py). A pass that
found the WorkQueue full returns `paused: true` and the state machine waits `pause_s` first
(pipeline/split/backpressure.py). After `split_passes_per_execution` passes, `continue: true`
sends the run on in a new execution, before its history meets AWS's quota
(pipeline/split/state.py).
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger

from handlers._cold_start import cold_start
from pipeline.allocator import keep_freed_buffers
from pipeline.aws.retries import data_path_config
from pipeline.gzip.checkpoint import Checkpoint
from pipeline.ledger.table import RunLedger
from pipeline.split.aws_pass import AwsSplit, ManifestRef
from pipeline.split.state import SplitState

BUDGET_MARGIN_S = 60.0
"""Left after the budget for the last chunk, the flush, the checkpoint and the ledger write."""

logger = Logger()
settings = cold_start("results_bucket", "work_queue_url", "runs_table")
keep_freed_buffers()  # a pass frees megabyte buffers every block: keep them for the next
_retries = data_path_config()
_dynamodb = boto3.client("dynamodb", config=_retries)
split = AwsSplit(
    s3=boto3.client("s3", config=_retries),
    sqs=boto3.client("sqs", config=_retries),
    ledger=RunLedger(_dynamodb, settings.runs_table),
    settings=settings,
)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The state machine's state in, the state with the next checkpoint out."""
    return handle(event, context, split)


def handle(event: dict[str, Any], context: Any, split: AwsSplit) -> dict[str, Any]:
    """`handler` with the Split it runs given (tests give one with other settings)."""
    state = SplitState.from_dict(event)
    logger.append_keys(run=state.run)
    remaining_s = context.get_remaining_time_in_millis() / 1000
    budget_s = split.settings.split_budget_s or max(0.0, remaining_s - BUDGET_MARGIN_S)
    checkpoint = Checkpoint.from_dict(state.resume) if state.resume else None
    outcome = split.run_pass(
        state.run, ManifestRef.from_state(state.manifest), checkpoint, budget_s=budget_s
    )
    settings = split.settings
    new = state.after(
        outcome,
        pause_s=settings.split_pause_s,
        passes_per_execution=settings.split_passes_per_execution,
    )
    if new.paused:
        logger.info("the WorkQueue is full: split pauses %d s", new.pause_s)
    if new.continues:
        logger.info("split continues in a new execution after %d passes", new.execution_passes)
    return new.to_dict()
