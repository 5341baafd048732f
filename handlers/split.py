"""Lambda (Step Functions task): one Split pass over the manifest; returns the next checkpoint."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config

from pipeline.config import Settings
from pipeline.ledger import RunLedger
from pipeline.split import SplitState, split_pass

logger = Logger()
settings = Settings.from_env()
settings.require("results_bucket", "work_queue_url", "runs_table")
_retries = Config(retries={"mode": "standard", "max_attempts": 5})
s3 = boto3.client("s3", config=_retries)
sqs = boto3.client("sqs", config=_retries)
ledger = RunLedger(boto3.client("dynamodb", config=_retries), settings.runs_table)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The state machine's state in, the state with the new checkpoint out."""
    state = SplitState.from_dict(event)
    logger.append_keys(run=state.run)
    return split_pass(state, s3=s3, sqs=sqs, ledger=ledger, settings=settings).to_dict()
