"""The state machine loops Split: a manifest split one chunk a pass ends exactly like one pass."""

from __future__ import annotations

import gzip
import uuid

import boto3
import pytest

from pipeline.ledger.ingest import ManifestObject
from tests.e2e.budgeted_split import FULL_QUEUE, ONE_CHUNK_PASSES
from tests.e2e.test_flow import PHOTOS, lines_of, photos, wait_for_summary  # noqa: F401  # fixture

pytestmark = pytest.mark.e2e


def _drop_gzip(stack, lines: list[str], *, marker: str) -> str:
    s3 = boto3.client("s3")
    bucket, key = stack.outputs["InputBucketName"], f"manifests/{marker}-{uuid.uuid4().hex}.csv.gz"
    body = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
    etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]
    return ManifestObject(bucket=bucket, key=key, etag=etag.strip('"')).run


def _entered(stack, run: str, state: str, kind: str = "TaskStateEntered") -> int:
    sfn = boto3.client("stepfunctions")
    arn = stack.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:") + f":{run}"
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return sum(
        1 for e in events if e["type"] == kind and e["stateEnteredEventDetails"]["name"] == state
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
