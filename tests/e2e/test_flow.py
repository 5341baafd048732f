"""The whole flow on the embedded stack, across the real HTTP emulator and the real model.

manifest PUT → S3 notification → IngestQueue → ingest → Step Functions → Split → WorkQueue →
classify worker processes → results/failures parts + FailureQueue + ledger → Progress → Finalize.
"""

from __future__ import annotations

import gzip
import json
import os
import uuid
from pathlib import Path

import boto3
import pytest

from pipeline.ledger.ingest import ManifestObject
from pipeline.ledger.summary import read_summary
from pipeline.parts.layout import PartKind, chunk_part
from pipeline.parts.store import iter_failure_records, iter_result_rows
from pipeline.split.chunking import Chunk
from tests.e2e.faulty_classify import CRASH_ONCE, POISON
from tests.raw_parts import assert_exactly_once_raw
from tests.wait import wait_until

pytestmark = pytest.mark.e2e

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "images"
RUN_TIMEOUT_S = 120


@pytest.fixture
def photos(local_stack) -> tuple[str, str]:
    """The fixture photos under a fresh prefix of the stack's allowlisted images bucket."""
    s3 = boto3.client("s3")
    bucket, prefix = local_stack.outputs["ImagesBucketName"], f"e2e-{uuid.uuid4().hex[:8]}"
    for path in sorted(PHOTOS.glob("*.jpg")):
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{path.name}", Body=path.read_bytes())
    s3.put_object(Bucket=bucket, Key=f"{prefix}/corrupt.jpg", Body=b"\xff\xd8\xff not a jpeg")
    return bucket, prefix


def drop_manifest(stack, lines: list[str]) -> str:
    """PUT a CSV manifest into the input bucket; return its run id."""
    s3 = boto3.client("s3")
    bucket, key = stack.outputs["InputBucketName"], f"manifests/{uuid.uuid4().hex}.csv"
    body = ("\n".join(lines) + "\n").encode()
    etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]
    return ManifestObject(bucket=bucket, key=key, etag=etag.strip('"')).run


def wait_for_summary(stack, run: str) -> dict:
    s3 = boto3.client("s3")
    bucket = stack.outputs["ResultsBucketName"]
    return wait_until(lambda: read_summary(s3, bucket, run), RUN_TIMEOUT_S, interval_s=0.3)


def lines_of(stack, run: str) -> tuple[list[int], list[int], dict[int, object]]:
    s3 = boto3.client("s3")
    bucket = stack.outputs["ResultsBucketName"]
    results = list(iter_result_rows(s3, bucket, run))
    failures = list(iter_failure_records(s3, bucket, run))
    by_line = {r.line: r for r in results} | {f.line: f for f in failures}
    return [r.line for r in results], [f.line for f in failures], by_line


def test_every_line_yields_exactly_one_result_or_failure(local_stack, photos):
    # GIVEN a manifest of good, missing, corrupt, malformed and foreign-bucket lines
    bucket, prefix = photos
    good = [f"s3://{bucket}/{prefix}/{p.name}" for p in sorted(PHOTOS.glob("*.jpg"))]
    lines = [
        *good,  # lines 1-4
        f"s3://{bucket}/{prefix}/missing-1.jpg",  # 5
        f"s3://{bucket}/{prefix}/corrupt.jpg",  # 6
        "this line is not an image reference",  # 7
        "s3://some-other-bucket/cat.jpg",  # 8: never read (allowlist)
        *good,  # 9-12
        f"s3://{bucket}/{prefix}/missing-2.jpg",  # 13
    ]
    # WHEN it is dropped into the input bucket
    run = drop_manifest(local_stack, lines)
    summary = wait_for_summary(local_stack, run)
    # THEN every line is exactly once in results or failures, never both
    ok_lines, failed_lines, by_line = lines_of(local_stack, run)
    assert sorted(ok_lines) == [1, 2, 3, 4, 9, 10, 11, 12]
    assert sorted(failed_lines) == [5, 6, 7, 8, 13]
    assert len(ok_lines) + len(failed_lines) == len(set(ok_lines) | set(failed_lines))
    errors = {line: (by_line[line].stage.value, by_line[line].error) for line in failed_lines}
    assert errors[5] == errors[13] == ("fetch", "NoSuchKey")
    assert errors[6][0] == "decode"
    assert errors[7][0] == "parse"
    assert errors[8] == ("fetch", "BucketNotAllowed")
    # AND the labels are the model's, for real photos
    chelsea = next(line for line in ok_lines if by_line[line].key.endswith("chelsea.jpg"))
    assert "cat" in by_line[chelsea].labels[0][0]
    # AND the summary adds up
    assert summary["status"] == "SUCCEEDED"
    assert (summary["lines"], summary["ok"], summary["failed"]) == (13, 8, 5)
    assert summary["failed_by_stage"] == {"fetch": 3, "decode": 1, "parse": 1}
    # AND each item failure went to the FailureQueue once (parse failures are in parts only)
    queued = _failure_queue_lines(local_stack, run, expected=4)
    assert sorted(queued) == [5, 6, 8, 13]


def test_lines_split_sends_unparsed_are_read_by_their_worker_exactly_once(local_stack, photos):
    # GIVEN JSON Lines with other fields (no frame proof takes them: Split sends them unparsed),
    # with lines that are no record among good, missing and corrupt ones
    bucket, prefix = photos
    good = [
        json.dumps({"bucket": bucket, "key": f"{prefix}/{p.name}", "size": n})
        for n, p in enumerate(sorted(PHOTOS.glob("*.jpg")))
    ]
    lines = [
        *good,  # lines 1-4
        json.dumps({"key": f"{prefix}/missing.jpg", "label": "x", "bucket": bucket}),  # 5
        "this line is not JSON",  # 6
        json.dumps({"bucket": bucket}),  # 7: no key
        json.dumps({"uri": f"s3://{bucket}/{prefix}/corrupt.jpg", "size": 3}),  # 8
        *good,  # 9-12
    ]
    # WHEN it is dropped into the input bucket
    run = drop_manifest(local_stack, lines)
    summary = wait_for_summary(local_stack, run)
    # THEN read raw, as a query engine reads the parts, every line is there exactly once
    s3 = boto3.client("s3")
    raw = assert_exactly_once_raw(
        s3, local_stack.outputs["ResultsBucketName"], run, len(lines), summary
    )
    stages = {row["line"]: (row["stage"], row["error"]) for row in raw.failures}
    assert stages[5] == ("fetch", "NoSuchKey")
    assert (stages[6], stages[7]) == (("parse", "BadJson"), ("parse", "MissingField"))
    assert stages[8][0] == "decode"
    # AND the parse failures are their chunk's (no parse part: Split did not parse them)
    keys = s3.list_objects_v2(Bucket=local_stack.outputs["ResultsBucketName"], Prefix="failures/")
    assert not [o["Key"] for o in keys.get("Contents", []) if f"/{run}/parse-" in o["Key"]]
    # AND the summary adds up, and only the item failures went to the FailureQueue
    assert summary["status"] == "SUCCEEDED"
    assert (summary["lines"], summary["ok"], summary["failed"]) == (12, 8, 4)
    assert summary["failed_by_stage"] == {"fetch": 1, "decode": 1, "parse": 2}
    assert sorted(_failure_queue_lines(local_stack, run, expected=2)) == [5, 8]


def _failure_queue_lines(stack, run: str, expected: int) -> list[int]:
    sqs = boto3.client("sqs")
    url = stack.outputs["FailureQueueUrl"]
    seen: list[int] = []

    def drained() -> bool:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            record = json.loads(message["Body"])
            if record["run"] == run:
                seen.append(record["line"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return len(seen) >= expected

    wait_until(drained, 30)
    return seen


def test_the_same_object_dropped_twice_is_one_run(local_stack, photos):
    bucket, prefix = photos
    lines = [f"s3://{bucket}/{prefix}/chelsea.jpg", f"s3://{bucket}/{prefix}/coffee.jpg"]
    run = drop_manifest(local_stack, lines)
    again = drop_manifest_same(local_stack, run)
    assert again == run
    summary = wait_for_summary(local_stack, run)
    sfn = boto3.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=local_stack.outputs["StateMachineArn"])
    assert [e["name"] for e in executions["executions"]].count(run) == 1
    ok_lines, failed_lines, _ = lines_of(local_stack, run)
    assert (sorted(ok_lines), failed_lines) == ([1, 2], [])
    assert (summary["lines"], summary["ok"], summary["chunks"]) == (2, 2, 1)


def drop_manifest_same(stack, run: str) -> str:
    """Drop the manifest of `run` again, byte for byte (same key, same ETag)."""
    s3 = boto3.client("s3")
    bucket = stack.outputs["InputBucketName"]
    sfn = boto3.client("stepfunctions")
    arn = stack.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:") + f":{run}"
    started = wait_until(lambda: _describe(sfn, arn), 30)
    manifest = json.loads(started["input"])["manifest"]
    body = s3.get_object(Bucket=bucket, Key=manifest["key"])["Body"].read()
    etag = s3.put_object(Bucket=bucket, Key=manifest["key"], Body=body)["ETag"]
    return ManifestObject(bucket=bucket, key=manifest["key"], etag=etag.strip('"')).run


def _describe(sfn, arn: str) -> dict | None:
    try:
        return sfn.describe_execution(executionArn=arn)
    except sfn.exceptions.ExecutionDoesNotExist:
        return None


def test_a_chunk_that_crashes_once_is_redelivered_and_written_once(local_stack, photos):
    # GIVEN a chunk whose handler crashes on its first delivery
    s3 = boto3.client("s3")
    bucket, prefix = photos
    s3.copy_object(
        Bucket=bucket,
        Key=f"{prefix}/{CRASH_ONCE}.jpg",
        CopySource={"Bucket": bucket, "Key": f"{prefix}/chelsea.jpg"},
    )
    lines = [f"s3://{bucket}/{prefix}/{name}.jpg" for name in ("coffee", "rocket", CRASH_ONCE)]
    # WHEN the run goes through
    run = drop_manifest(local_stack, lines)
    summary = wait_for_summary(local_stack, run)
    # THEN the crash happened, the chunk came back, and its part was written exactly once
    results_bucket = local_stack.outputs["ResultsBucketName"]
    faults = s3.list_objects_v2(Bucket=results_bucket, Prefix=f"test-faults/{run}/")
    assert [o["Key"].rsplit("/", 1)[1] for o in faults.get("Contents", [])] == ["chunk-0-receive-1"]
    part = chunk_part(PartKind.RESULTS, run, 0).key
    versions = s3.list_object_versions(Bucket=results_bucket, Prefix=part).get("Versions", [])
    assert len(versions) == 1
    ok_lines, failed_lines, _ = lines_of(local_stack, run)
    assert (sorted(ok_lines), failed_lines) == ([1, 2, 3], [])
    assert (summary["status"], summary["ok"], summary["chunks"]) == ("SUCCEEDED", 3, 1)


def test_a_poison_chunk_ends_in_the_work_dlq(local_stack, photos):
    # GIVEN a chunk whose handler crashes on every delivery
    bucket, prefix = photos
    lines = [f"s3://{bucket}/{prefix}/{POISON}-{n}.jpg" for n in range(2)]
    run = drop_manifest(local_stack, lines)
    # WHEN it has been delivered maxReceiveCount times THEN SQS parks it in the WorkDLQ
    sqs = boto3.client("sqs")
    dlq = local_stack.outputs["WorkDLQUrl"]

    def parked() -> dict | None:
        messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=1)
        bodies = [json.loads(m["Body"]) for m in messages.get("Messages", [])]
        return next((b for b in bodies if b["run"] == run), None)

    chunk = wait_until(parked, 60, interval_s=0.5)
    assert [record.line for record in Chunk.from_message(chunk).items] == [1, 2]
    results_bucket = local_stack.outputs["ResultsBucketName"]
    faults = boto3.client("s3").list_objects_v2(Bucket=results_bucket, Prefix=f"test-faults/{run}/")
    receives = sorted(o["Key"].rsplit("-", 1)[1] for o in faults.get("Contents", []))
    assert receives == ["1", "2", "3", "4", "5"]  # maxReceiveCount deliveries, then the DLQ
    # AND nothing was written or counted for it
    assert lines_of(local_stack, run)[:2] == ([], [])
    _stop_execution(local_stack, run)


def _stop_execution(stack, run: str) -> None:
    """The run would wait for its stall timeout; end it so it does not poll for the session."""
    sfn = boto3.client("stepfunctions")
    arn = stack.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:") + f":{run}"
    sfn.stop_execution(executionArn=arn, error="TestDone", cause="poison chunk test finished")


def test_a_truncated_gzip_manifest_finishes_partial_with_the_lines_before_the_break(
    local_stack, photos
):
    # GIVEN a gzip manifest cut short in the middle of its compressed stream
    bucket, prefix = photos
    # Long random keys (missing objects: quick failures) make the stream incompressible, so
    # the cut falls well past the reader's first block and some lines come through.
    text = "".join(f"s3://{bucket}/{prefix}/{os.urandom(450).hex()}.jpg\n" for _ in range(150))
    whole = gzip.compress(text.encode(), compresslevel=1)
    s3 = boto3.client("s3")
    key = f"manifests/{uuid.uuid4().hex}.csv.gz"
    etag = s3.put_object(
        Bucket=local_stack.outputs["InputBucketName"], Key=key, Body=whole[: len(whole) * 2 // 3]
    )["ETag"]
    run = ManifestObject(local_stack.outputs["InputBucketName"], key, etag.strip('"')).run
    # WHEN it runs THEN the lines before the break are accounted for and the run is partial
    summary = wait_for_summary(local_stack, run)
    assert summary["status"] == "PARTIAL"
    assert "CorruptManifest" in summary["reason"] or "Truncated" in summary["reason"]
    ok_lines, failed_lines, _ = lines_of(local_stack, run)
    counted = sorted(ok_lines + failed_lines)
    assert 0 < len(counted) < 150
    assert counted == list(range(1, len(counted) + 1))  # a prefix of the manifest, no gaps
    assert summary["lines"] == summary["ok"] + summary["failed"] == len(counted)
