"""The state machine loops Split: a manifest split one chunk a pass ends exactly like one pass."""

from __future__ import annotations

import gzip
import uuid

import boto3
import pytest

from pipeline.ledger.ingest import ManifestObject
from pipeline.local import quotas
from tests.e2e.budgeted_split import CONTINUED, CONTINUED_PASSES, FULL_QUEUE, ONE_CHUNK_PASSES
from tests.e2e.test_flow import PHOTOS, lines_of, photos, wait_for_summary  # noqa: F401  # fixture
from tests.wait import execution_ended

pytestmark = pytest.mark.e2e


def _drop_gzip(stack, lines: list[str], *, marker: str) -> str:
    s3 = boto3.client("s3")
    bucket, key = stack.outputs["InputBucketName"], f"manifests/{marker}-{uuid.uuid4().hex}.csv.gz"
    body = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
    etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]
    return ManifestObject(bucket=bucket, key=key, etag=etag.strip('"')).run


LOWERED_HISTORY_QUOTA = 40
"""Under the 50 events a run of 4 paused passes needs in one execution at the least (63 when it
waits for its chunks); over an unpaused run's 36 at most and over each execution of the same run
continued after every pass (18, 20, 20, then 25, or 38 when it waits)."""


def _execution_arn(stack, name: str) -> str:
    return stack.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:") + f":{name}"


def _history(stack, name: str) -> list[dict]:
    sfn = boto3.client("stepfunctions")
    pages = sfn.get_paginator("get_execution_history").paginate(
        executionArn=_execution_arn(stack, name)
    )
    return [event for page in pages for event in page["events"]]


def _entered(stack, run: str, state: str, kind: str = "TaskStateEntered") -> int:
    return sum(
        1
        for e in _history(stack, run)
        if e["type"] == kind and e["stateEnteredEventDetails"]["name"] == state
    )


def _ended(stack, name: str) -> dict:
    return execution_ended(
        boto3.client("stepfunctions"), _execution_arn(stack, name), 60, interval_s=0.2
    )


def _split_passes(stack, run: str) -> int:
    return _entered(stack, run, "Split")


def _fourteen_lines(uploaded: tuple[str, str]) -> list[str]:
    """The photos, a malformed line, 5 missing images, the photos again: 4 chunks of 4."""
    bucket, prefix = uploaded
    good = [f"s3://{bucket}/{prefix}/{p.name}" for p in sorted(PHOTOS.glob("*.jpg"))]
    missing = [f"s3://{bucket}/{prefix}/gone-{i}.jpg" for i in range(5)]
    return [*good, "not a reference", *missing, *good]


def _assert_same_run(stack, runs: tuple[str, str], summaries: list[dict]) -> None:
    """Both runs have the same lines, results and failures, each line exactly once."""
    (ok_1, failed_1, by_line_1), (ok_n, failed_n, by_line_n) = (
        lines_of(stack, runs[0]),
        lines_of(stack, runs[1]),
    )
    assert sorted(ok_1) == sorted(ok_n) == [1, 2, 3, 4, 11, 12, 13, 14]
    assert sorted(failed_1) == sorted(failed_n) == list(range(5, 11))
    assert {line: by_line_1[line].key for line in ok_1} == {
        line: by_line_n[line].key for line in ok_n
    }
    for key in ("status", "lines", "ok", "failed", "chunks", "failed_by_error"):
        assert summaries[0][key] == summaries[1][key], key
    assert summaries[1]["status"] == "SUCCEEDED"


def test_one_chunk_passes_give_the_same_run_as_one_pass(local_stack, photos):  # noqa: F811
    # GIVEN a gzip manifest of 14 lines (4 chunks of 4 at the test stack's ChunkItems)
    lines = _fourteen_lines(photos)
    # WHEN it runs once normally and once split one chunk a pass
    one = _drop_gzip(local_stack, lines, marker="normal")
    many = _drop_gzip(local_stack, lines, marker=ONE_CHUNK_PASSES)
    summaries = [wait_for_summary(local_stack, run) for run in (one, many)]
    # THEN the state machine looped Split once per chunk for the second
    assert _split_passes(local_stack, one) == 1
    assert _split_passes(local_stack, many) == summaries[1]["chunks"] == 4
    # AND both runs have the same lines, results and failures, each line exactly once
    _assert_same_run(local_stack, (one, many), summaries)


def test_passes_paused_by_a_full_work_queue_give_the_same_run(local_stack, photos):  # noqa: F811
    # GIVEN the same manifest, run normally and with a WorkQueue that is always full
    lines = _fourteen_lines(photos)
    one = _drop_gzip(local_stack, lines, marker="normal")
    paused = _drop_gzip(local_stack, lines, marker=FULL_QUEUE)
    summaries = [wait_for_summary(local_stack, run) for run in (one, paused)]
    # THEN every pass of the second stopped after its first chunk and the state machine waited
    # before the next one
    assert _split_passes(local_stack, paused) == summaries[1]["chunks"] == 4
    assert _entered(local_stack, paused, "PauseSplit", "WaitStateEntered") == 3
    assert _entered(local_stack, one, "PauseSplit", "WaitStateEntered") == 0
    # AND both runs have the same lines, results and failures, each line exactly once
    _assert_same_run(local_stack, (one, paused), summaries)


@pytest.fixture
def lowered_history_quota(monkeypatch) -> int:
    monkeypatch.setattr(quotas.LIMITS, "max_history_events", LOWERED_HISTORY_QUOTA)
    return LOWERED_HISTORY_QUOTA


def test_a_run_too_long_for_one_history_goes_on_in_new_executions(
    local_stack,
    photos,  # noqa: F811
    lowered_history_quota,
):
    # GIVEN a history quota that one execution of 4 paused one-chunk passes exceeds
    lines = _fourteen_lines(photos)
    one = _drop_gzip(local_stack, lines, marker="normal")
    died = _drop_gzip(local_stack, lines, marker=FULL_QUEUE)
    # WHEN the same run goes on in a new execution after every pass
    continued = _drop_gzip(local_stack, lines, marker=f"{FULL_QUEUE}-{CONTINUED}")
    summaries = [wait_for_summary(local_stack, run) for run in (one, continued)]
    # THEN the run in one execution died at the quota, as AWS fails it (no Catch sees it)
    failed = _ended(local_stack, died)
    assert (failed["status"], failed.get("error")) == ("FAILED", quotas.HISTORY_QUOTA_ERROR)
    # AND the continued run ran its 4 passes in 4 executions, each under the quota, each but the
    # last ended by starting the next (named by the run and the passes before it)
    assert CONTINUED_PASSES == 1
    names = [continued, *(f"{continued}-{passes}" for passes in (1, 2, 3))]
    assert [_ended(local_stack, name)["status"] for name in names] == ["SUCCEEDED"] * 4
    histories = [_history(local_stack, name) for name in names]
    assert all(len(events) < lowered_history_quota for events in histories)
    assert sum(len(events) for events in histories) > lowered_history_quota
    assert [_entered(local_stack, name, "Split") for name in names] == [1, 1, 1, 1]
    assert [_entered(local_stack, name, "ContinueAsNew") for name in names] == [1, 1, 1, 0]
    # AND each new execution began with the pause the last pass of the one before asked for
    pauses = [_entered(local_stack, name, "PauseSplit", "WaitStateEntered") for name in names]
    assert pauses == [0, 1, 1, 1]
    # AND it ends exactly like the run in one unpaused execution, each line exactly once
    _assert_same_run(local_stack, (one, continued), summaries)
