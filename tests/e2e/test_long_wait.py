"""A run whose execution waits long must not grow its Step Functions history.

AWS fails a Standard execution outright at 25,000 history events. The local stack enforces that
quota (pipeline/local/quotas.py); here it is lowered to 150 events so a wait of tens of seconds at
the local stack's 1 s ProgressPollSeconds meets it: the old Wait → Progress → Choice loop added
~9 events a second (45 s ≈ 400 events) and died; the callback wait adds none while it waits.
"""

from __future__ import annotations

import time
from collections import Counter

import boto3
import pytest

from pipeline.local import quotas
from tests.e2e.test_flow import drop_manifest, photos, wait_for_summary  # noqa: F401  # fixture
from tests.wait import execution_ended

pytestmark = pytest.mark.e2e

LOWERED_HISTORY_QUOTA = 150
CHUNK_ITEMS = 4  # tests/conftest.py's ChunkItems
SLOW_CHUNK_S = 7  # under the test stack's 10 s classify timeout, which the local stack enforces
LONG_CHUNKS = 8  # on 2 workers: ~28 s of waiting, ~250 events for the old loop


def _history(sfn, arn: str) -> list[dict]:
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
    return [event for page in pages for event in page["events"]]


def _run_that_waits(
    stack, photos_at: tuple[str, str], chunks: int, seconds: int
) -> tuple[dict, dict, list]:
    """Drop a manifest of `chunks` chunks that each take `seconds` to classify."""
    s3, sfn = boto3.client("s3"), boto3.client("stepfunctions")
    bucket, prefix = photos_at
    slow = f"{prefix}/slow-{seconds}s.jpg"
    source = {"Bucket": bucket, "Key": f"{prefix}/chelsea.jpg"}
    s3.copy_object(Bucket=bucket, Key=slow, CopySource=source)
    run = drop_manifest(stack, [f"s3://{bucket}/{slow}"] * (chunks * CHUNK_ITEMS))
    started = time.monotonic()
    summary = wait_for_summary(stack, run)
    assert time.monotonic() - started >= seconds * chunks / 2  # 2 workers
    arn = stack.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:") + f":{run}"

    execution = execution_ended(sfn, arn, 30, interval_s=0.2)
    return summary, execution, _history(sfn, arn)


@pytest.fixture
def lowered_history_quota(monkeypatch) -> int:
    monkeypatch.setattr(quotas.LIMITS, "max_history_events", LOWERED_HISTORY_QUOTA)
    return LOWERED_HISTORY_QUOTA


def test_a_long_wait_adds_no_history_events(local_stack, photos, lowered_history_quota):  # noqa: F811
    # GIVEN the history quota lowered so that ~9 events a second of waiting would exceed it
    # WHEN one run waits a few seconds for its last chunk and another waits tens of seconds
    short_summary, short_exec, short_events = _run_that_waits(local_stack, photos, 1, 2)
    long_summary, long_exec, long_events = _run_that_waits(
        local_stack, photos, LONG_CHUNKS, SLOW_CHUNK_S
    )
    # THEN both executions succeed with every line counted
    for summary, execution, chunks in (
        (short_summary, short_exec, 1),
        (long_summary, long_exec, LONG_CHUNKS),
    ):
        assert execution["status"] == "SUCCEEDED", execution
        lines = chunks * CHUNK_ITEMS
        assert (summary["status"], summary["ok"], summary["lines"]) == ("SUCCEEDED", lines, lines)
    # AND the long wait added no history events: the count does not depend on the wait
    print(f"\nhistory events: {len(short_events)} (short wait), {len(long_events)} (long wait)")
    print(Counter(e["type"] for e in long_events))
    assert len(long_events) <= len(short_events) < lowered_history_quota
    assert not [e for e in long_events if e["type"].startswith("Wait")]
    callbacks = [e for e in long_events if e["type"] == "TaskSubmitted"]
    assert len(callbacks) == 1  # one wait, completed by the worker that counted the last chunk
