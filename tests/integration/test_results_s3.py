"""Result and failure parts against S3 and SQS on the moto server."""

from __future__ import annotations

import gzip

import boto3
import orjson
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from pipeline.aws.failure_queue import message_body, send_failures
from pipeline.failures import FailureRecord, ResultWriteError, Stage, ThrottledError
from pipeline.ledger.runs import RunStatus
from pipeline.ledger.summary import RunSummary, read_summary, write_summary
from pipeline.parts.store import (
    PartKind,
    PartOrderError,
    PartWriter,
    ResultRow,
    chunk_part,
    iter_failure_records,
    iter_result_rows,
    parse_failures_part,
    write_failure_part,
    write_result_part,
)

pytestmark = pytest.mark.integration

RUN = "0123456789abcdef0123"


def _row(line: int, label: str = "tabby") -> ResultRow:
    return ResultRow(line=line, bucket="img", key=f"k/{line}.jpg", labels=((label, 0.81),))


def _failure(line: int, *, error: str = "NoSuchKey", attempts: int = 1) -> FailureRecord:
    return FailureRecord(
        run=RUN,
        line=line,
        bucket="img",
        key=f"k/{line}.jpg",
        stage=Stage.FETCH,
        error=error,
        message="gone",
        retryable=False,
        attempts=attempts,
    )


def _keys(s3, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_result_part_is_sorted_gzip_jsonl_at_its_chunk_key(s3, bucket):
    rows = [_row(3), _row(1), ResultRow(2, "img", "k/2.jpg", (("cat", 0.5),), version_id="v9")]
    name = write_result_part(s3, bucket, RUN, 7, rows)
    assert name.key == f"results/{RUN}/part-00000007.jsonl.gz"
    raw = s3.get_object(Bucket=bucket, Key=name.key)["Body"].read()
    lines = [orjson.loads(x) for x in gzip.decompress(raw).splitlines()]
    assert [x["line"] for x in lines] == [1, 2, 3]
    assert lines[1] == {
        "line": 2,
        "bucket": "img",
        "key": "k/2.jpg",
        "version_id": "v9",
        "labels": [["cat", 0.5]],
    }
    assert "version_id" not in lines[0]


def test_redelivered_chunk_overwrites_its_part(s3, bucket):
    write_result_part(s3, bucket, RUN, 0, [_row(1, "dog"), _row(2)])
    write_result_part(s3, bucket, RUN, 0, [_row(1, "tabby"), _row(2)])
    assert _keys(s3, bucket) == [f"results/{RUN}/part-00000000.jsonl.gz"]
    assert [r.labels[0][0] for r in iter_result_rows(s3, bucket, RUN)] == ["tabby", "tabby"]


def test_part_is_not_visible_when_writing_fails_midway(s3, bucket):
    def rows():
        yield {"line": 1}
        raise RuntimeError("crash mid-write")

    with (
        pytest.raises(RuntimeError),
        PartWriter(s3, bucket, "results/r/part-00000000.jsonl.gz") as w,
    ):
        for row in rows():
            w.write(row)
    assert _keys(s3, bucket) == []


def test_write_to_missing_bucket_is_a_result_write_error(s3):
    with pytest.raises(ResultWriteError) as info:
        write_result_part(s3, "no-such-bucket-lambdaflow", RUN, 0, [_row(1)])
    assert info.value.error == "NoSuchBucket"
    assert info.value.stage is Stage.WRITE


def test_empty_failures_part_deletes_the_stale_one(s3, bucket):
    name = chunk_part(PartKind.FAILURES, RUN, 4)
    write_failure_part(s3, bucket, name, [_failure(9)])
    write_failure_part(s3, bucket, name, [])  # redelivery: every line succeeded this time
    assert _keys(s3, bucket) == []


def test_clean_chunk_sends_no_blind_delete(s3, bucket):
    # S3 (unlike moto) leaves a delete marker for a blind DeleteObject in a versioned bucket,
    # so a clean first delivery must not call DeleteObject at all.
    deletes = []

    def count(**_):
        deletes.append(1)

    s3.meta.events.register("before-send.s3.DeleteObject", count)
    try:
        write_failure_part(s3, bucket, chunk_part(PartKind.FAILURES, RUN, 5), [])
    finally:
        s3.meta.events.unregister("before-send.s3.DeleteObject", count)
    assert deletes == []


def test_readers_return_each_line_once_in_line_order_across_replays(s3, bucket):
    # GIVEN two chunks (lines 1-4, 5-8) with failures, parse failures, and two replay rounds
    write_result_part(s3, bucket, RUN, 0, [_row(1), _row(3)])
    write_failure_part(s3, bucket, chunk_part(PartKind.FAILURES, RUN, 0), [_failure(4)])
    write_failure_part(s3, bucket, parse_failures_part(RUN, 0), [_failure(2, error="BadCsv")])
    write_result_part(s3, bucket, RUN, 1, [_row(5), _row(8)])
    write_failure_part(
        s3, bucket, chunk_part(PartKind.FAILURES, RUN, 1), [_failure(6), _failure(7)]
    )
    # round 1: line 4 recovers, 6 fails again; round 2: 6 recovers, 7 fails for the 2nd time
    write_result_part(s3, bucket, RUN, 0, [_row(4, "replayed")], replay_round=1)
    write_failure_part(
        s3, bucket, chunk_part(PartKind.FAILURES, RUN, 0, replay_round=1), [_failure(6, attempts=2)]
    )
    write_result_part(s3, bucket, RUN, 0, [_row(6, "replayed")], replay_round=2)
    write_failure_part(
        s3,
        bucket,
        chunk_part(PartKind.FAILURES, RUN, 0, replay_round=2),
        [_failure(7, error="SlowDown", attempts=2)],
    )
    s3.put_object(Bucket=bucket, Key=f"results/{RUN}/_SUCCESS.json", Body=b"{}")

    # WHEN reading back
    results = list(iter_result_rows(s3, bucket, RUN))
    failures = list(iter_failure_records(s3, bucket, RUN))

    # THEN every line is exactly once, results win over failures, later failures win
    assert [r.line for r in results] == [1, 3, 4, 5, 6, 8]
    assert [f.line for f in failures] == [2, 7]
    assert (failures[1].error, failures[1].attempts) == ("SlowDown", 2)
    assert {r.line for r in results} | {f.line for f in failures} == set(range(1, 9))
    assert {r.line for r in results}.isdisjoint({f.line for f in failures})
    assert next(r for r in results if r.line == 4).labels[0][0] == "replayed"


def test_summary_markers_are_exclusive(s3, bucket):
    def summary(status: RunStatus) -> RunSummary:
        return RunSummary(RUN, "s3://in/m", status, 2, 1, 1, {"fetch": 1}, {"X": 1}, 1, 1.0, 2.0)

    write_summary(s3, bucket, RUN, summary(RunStatus.PARTIAL))
    assert _keys(s3, bucket) == [f"results/{RUN}/_PARTIAL.json"]
    write_summary(s3, bucket, RUN, summary(RunStatus.SUCCEEDED))  # after a replay
    assert _keys(s3, bucket) == [f"results/{RUN}/_SUCCESS.json"]
    assert read_summary(s3, bucket, RUN)["status"] == "SUCCEEDED"


@pytest.fixture
def queue_url(sqs, bucket) -> str:
    return sqs.create_queue(QueueName=f"failures-{bucket}")["QueueUrl"]


def _drain(sqs, queue_url: str) -> list[dict]:
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages")
        if not messages:
            return bodies
        for message in messages:
            bodies.append(orjson.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_send_failures_batches_by_ten_and_by_size(sqs, queue_url):
    records = [_failure(line) for line in range(10, 33)]  # 23 records of equal size
    body_bytes = len(message_body(records[0]).encode())
    report = send_failures(sqs, queue_url, records, max_bytes=3 * body_bytes + 1)
    assert (report.sent, report.calls) == (23, 8)  # the size cap makes batches of three
    assert sorted(b["line"] for b in _drain(sqs, queue_url)) == list(range(10, 33))


def test_send_failures_retries_entries_sqs_failed(sqs, queue_url):
    # GIVEN SQS fails entry "3" of the first call (it never reaches the queue)
    state = {"dropped": None}

    def drop_one(params, **_):
        if state["dropped"] is None:
            state["dropped"] = params["Entries"].pop(3)["Id"]

    def report_failed(parsed, **_):
        if state["dropped"] is not None and state["dropped"] != "done":
            parsed.setdefault("Failed", []).append(
                {"Id": state["dropped"], "SenderFault": False, "Code": "InternalError"}
            )
            state["dropped"] = "done"

    events = sqs.meta.events
    events.register("provide-client-params.sqs.SendMessageBatch", drop_one)
    events.register("after-call.sqs.SendMessageBatch", report_failed)
    try:
        report = send_failures(
            sqs, queue_url, [_failure(n) for n in range(1, 11)], backoff_s=lambda _: 0
        )
    finally:
        events.unregister("provide-client-params.sqs.SendMessageBatch", drop_one)
        events.unregister("after-call.sqs.SendMessageBatch", report_failed)
    # THEN the failed entry was sent again: every record exactly once
    assert (report.calls, report.retried) == (2, 1)
    assert sorted(b["line"] for b in _drain(sqs, queue_url)) == list(range(1, 11))


class _RawBody:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_):
        yield self._data


def test_slowdown_on_write_is_a_retryable_throttled_error(emulator, bucket):
    # GIVEN S3 answers every PutObject with 503 SlowDown (and the SDK gives up at once)
    s3 = boto3.client(
        "s3", endpoint_url=emulator.endpoint_url, config=Config(retries={"max_attempts": 1})
    )
    body = (
        b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    )

    def slow_down(request, **_):
        return AWSResponse(request.url, 503, {}, _RawBody(body))

    s3.meta.events.register("before-send.s3.PutObject", slow_down)
    # WHEN a part is written THEN it is a retryable write failure, and nothing was stored
    with pytest.raises(ThrottledError) as info:
        write_result_part(s3, bucket, RUN, 0, [_row(1)])
    assert (info.value.stage, info.value.error, info.value.retryable) == (
        Stage.WRITE,
        "SlowDown",
        True,
    )
    s3.meta.events.unregister("before-send.s3.PutObject", slow_down)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_replay_chunks_numbered_out_of_line_order_are_reported(s3, bucket):
    write_result_part(s3, bucket, RUN, 0, [_row(9)], replay_round=1)
    write_result_part(s3, bucket, RUN, 1, [_row(4)], replay_round=1)
    with pytest.raises(PartOrderError, match="line order"):
        list(iter_result_rows(s3, bucket, RUN))
