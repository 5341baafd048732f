"""The fault matrix: each row injects one fault into a real run on the embedded stack.

Invariant asserted by every row: every manifest line is exactly once across results + failures
(and the summary says ok + failed = lines); where the row allows a replay, after it every line
is exactly once in results. RELIABILITY.md lists the rows, what each proves, and how to run it.

One stack for all rows (the session's `local_stack`), small manifests. The kill -9 row waits
out the WorkQueue's visibility timeout (60 s, the template's minimum), so it is started first
(a module fixture) and checked last, while the other rows run.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from pipeline.ledger.ingest import ManifestObject
from pipeline.ledger.markers import committed_chunk
from pipeline.manifest.parse import ManifestRecord
from pipeline.parts.layout import PartKind, chunk_part
from pipeline.replay.replayer import ReplaySource
from pipeline.split.chunking import Chunk
from tests.conftest import LOCAL_STACK_PARAMETERS
from tests.e2e.faulty_classify import FLAKY, POISON
from tests.e2e.matrix_support import (
    Matrix,
    gzip_bomb,
    pixel_bomb_png,
    s3_event,
    truncated_gzip,
)
from tests.e2e.split_fault import kill_split_once
from tests.wait import wait_until

pytestmark = pytest.mark.e2e

KILL_LINES = 24
CLASSIFY_TIMEOUT_S = float(LOCAL_STACK_PARAMETERS["ClassifyTimeoutSeconds"])


@pytest.fixture(scope="module")
def matrix(local_stack) -> Matrix:
    return Matrix(local_stack)


@pytest.fixture(scope="module")
def killed(matrix: Matrix) -> tuple[str, int]:
    """Started before every other row: a run whose worker is killed -9 in the middle of a chunk."""
    pool = next(r for r in matrix.stack.runners if hasattr(r, "workers"))
    run = matrix.drop(matrix.good(KILL_LINES))

    def busy_worker() -> int | None:
        return next((w.process.pid for w in pool.workers if w.busy_since.value > 0), None)

    pid = wait_until(busy_worker, 60, interval_s=0.005, what="a worker busy with a chunk")
    os.kill(pid, signal.SIGKILL)
    return run, pid


def row_kill_worker(m: Matrix, killed: tuple[str, int]) -> None:
    run, pid = killed
    pool = next(r for r in m.stack.runners if hasattr(r, "workers"))
    summary = m.summary(run, timeout_s=180)
    assert pid not in [p.pid for p in pool.processes]  # it died and was replaced
    m.assert_exactly_once(run, KILL_LINES, results_only=True)
    assert summary["status"] == "SUCCEEDED"


def row_same_event_twice(m: Matrix) -> None:
    lines = m.good(3)
    body = ("\n".join(lines) + "\n").encode()
    bucket, key = m.outputs["InputBucketName"], "manifests/matrix-same-event.csv"
    etag = m.s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
    for _ in range(2):  # S3 delivers at least once: the same notification twice more
        m.sqs.send_message(
            QueueUrl=m.outputs["IngestQueueUrl"], MessageBody=s3_event(bucket, key, etag)
        )
    run = ManifestObject(bucket, key, etag).run
    m.summary(run)
    assert m.execution_names().count(run) == 1
    m.assert_exactly_once(run, 3, results_only=True)


def row_chunk_twice(m: Matrix) -> None:
    lines = [*m.good(4), m.put_image("twice.jpg", m.photo("coffee.jpg"))]
    dropped = time.time()
    run = m.drop(lines)
    before = m.summary(run)
    assert before["chunks"] == 2  # lines 1-4, then line 5 alone (4 items a chunk)
    # the marker names when the winner's invocation ends: its start (after the drop) + timeout
    marker = committed_chunk(m.ledger, run, 1)
    assert marker is not None and marker.live_until is not None
    assert dropped + CLASSIFY_TIMEOUT_S - 1 < marker.live_until < time.time() + CLASSIFY_TIMEOUT_S
    # the world changes before a duplicate of chunk 1 arrives: its image is gone
    m.s3.delete_object(Bucket=m.images, Key=f"{m.prefix}/twice.jpg")
    duplicate = Chunk(run, 1, (ManifestRecord(5, m.images, f"{m.prefix}/twice.jpg"),))
    m.sqs.send_message(
        QueueUrl=m.outputs["WorkQueueUrl"], MessageBody=json.dumps(duplicate.to_message())
    )
    # the original, then the duplicate (the traces window opens a little before the drop)
    m.wait_chunk_handled(run, 1, times=2, since=datetime.fromtimestamp(dropped - 5, UTC))
    # the duplicate found chunk 1 counted and did nothing: one version of its part, no failure
    part = chunk_part(PartKind.RESULTS, run, 1).key
    found = m.s3.list_object_versions(Bucket=m.results_bucket, Prefix=part)
    assert len(found.get("Versions", [])) == 1
    state = m.ledger.get_run(run)
    assert (state.ok, state.failed, state.chunks_done) == (before["ok"], 0, 2)
    assert m.queued_failures(run) == []
    m.assert_exactly_once(run, 5, results_only=True)


def row_slowdown(m: Matrix) -> None:
    names = [f"{FLAKY}{n}.jpg" for n in range(12)]
    for name in names:
        m.put_image(name, m.photo("coffee.jpg"))
    run = m.drop([m.uri(name) for name in names])
    m.summary(run)
    assert m.fault_markers("test-faults/slowdown/"), "no 503 was injected"
    got = m.assert_exactly_once(run, 12)
    if got.failed:  # what adaptive retries could not absorb is a retryable record: replay it
        assert all(f.retryable and f.error in {"SlowDown", "503"} for f in got.failures)
        m.replay(run, is_retryable_only=True)
    m.assert_exactly_once(run, 12, results_only=True)


def row_missing_then_uploaded(m: Matrix) -> None:
    lines = [*m.good(2), m.uri("late-1.jpg"), m.uri("late-2.jpg")]
    run = m.drop(lines)
    m.summary(run)
    got = m.assert_exactly_once(run, 4)
    assert [(f.line, f.error) for f in got.failures] == [(3, "NoSuchKey"), (4, "NoSuchKey")]
    assert sorted(r["line"] for r in m.queued_failures(run)) == [3, 4]
    dry = m.replay(run, error="NoSuchKey", dry_run=True)
    assert (dry.lines, dry.replay_round) == ((3, 4), 0)
    for name in ("late-1.jpg", "late-2.jpg"):
        m.put_image(name, m.photo("chelsea.jpg"))
    done = m.replay(run, error="NoSuchKey")
    assert (done.lines, done.replay_round, done.chunks) == ((3, 4), 1, 1)
    got = m.assert_exactly_once(run, 4, results_only=True)
    assert "cat" in got.results[2].labels[0][0]
    assert done.summary["status"] == "SUCCEEDED"
    assert (done.summary["ok"], done.summary["failed"], done.summary["failed_by_error"]) == (
        4,
        0,
        {},
    )
    assert m.queued_failures(run) == []  # the FailureQueue agrees with the parts


def row_corrupt_images(m: Matrix) -> None:
    m.put_image("corrupt.jpg", b"\xff\xd8\xff not a jpeg")
    run = m.drop([m.good(1)[0], m.uri("corrupt.jpg"), m.uri("corrupt.jpg")])
    m.summary(run)
    before = m.assert_exactly_once(run, 3)
    assert [f.stage.value for f in before.failures] == ["decode", "decode"]
    done = m.replay(run, stage="decode")
    assert done.lines == (2, 3)
    after = m.assert_exactly_once(run, 3)
    assert [(f.line, f.attempts) for f in after.failures] == [(2, 2), (3, 2)]
    assert done.summary["failed"] == 2  # moved from the old failure to the new one, not added
    assert sorted((r["line"], r["attempts"]) for r in m.queued_failures(run)) == [(2, 2), (3, 2)]


def row_poison_chunk(m: Matrix) -> None:
    names = [f"{POISON}-{n}.jpg" for n in range(3)]
    for name in names:
        m.put_image(name, m.photo("rocket.jpg"))
    run = m.drop([m.uri(name) for name in names])
    wait_until(lambda: m.parked(run), 90, interval_s=0.5, what="the poison chunk in the WorkDLQ")
    assert m.lines(run).ok == []
    m.s3.put_object(Bucket=m.results_bucket, Key=f"test-faults/{run}/cured", Body=b"fixed")
    report = m.replay(run, source=ReplaySource.DLQ)
    assert [c.chunk for c in report.dlq_chunks] == [0]
    assert m.summary(run)["status"] == "SUCCEEDED"
    m.assert_exactly_once(run, 3, results_only=True)
    assert m.parked(run) == []


def row_split_killed(m: Matrix) -> None:
    m.put_image("split-kill.jpg", m.photo("astronaut.jpg"))
    lines = [m.uri("split-kill.jpg"), *m.good(47)]  # 12 chunks: two SendMessageBatch calls
    with kill_split_once(marker="split-kill") as kills:
        run = m.drop(lines)
        summary = m.summary(run)
    assert run in kills.killed  # Split died after its first batch of chunks, and was retried
    m.assert_exactly_once(run, 48, results_only=True)
    assert (summary["status"], summary["chunks"]) == ("SUCCEEDED", 12)


def row_truncated_gzip(m: Matrix) -> None:
    run = m.drop(truncated_gzip(m.good(60), keep=2 / 3), suffix=".csv.gz")
    summary = m.summary(run)
    assert summary["status"] == "PARTIAL"
    assert "Truncated" in summary["reason"] or "truncated" in summary["reason"]
    got = m.lines(run)
    counted = sorted(got.ok + got.failed)
    assert 0 < len(counted) < 60
    assert counted == list(range(1, len(counted) + 1))  # a gap-free prefix
    assert summary["lines"] == summary["ok"] + summary["failed"] == len(counted)


def row_foreign_bucket(m: Matrix) -> None:
    foreign = f"foreign-{m.prefix}"
    m.s3.create_bucket(Bucket=foreign)
    m.s3.put_object(Bucket=foreign, Key="cat.jpg", Body=m.photo("chelsea.jpg"))
    run = m.drop([m.good(1)[0], f"s3://{foreign}/cat.jpg"])
    m.summary(run)
    got = m.assert_exactly_once(run, 2)
    assert [(f.line, f.error, f.retryable) for f in got.failures] == [
        (2, "BucketNotAllowed", False)
    ]
    assert m.replay(run, is_retryable_only=True) is None  # nothing retryable: nothing replayed
    assert m.lines(run).failure(2).attempts == 1


def row_gzip_bomb(m: Matrix) -> None:
    good = m.good(2)
    body = gzip_bomb(good[0], good[1], line_bytes=64 * 1024 * 1024)  # ~64 KB → 64 MB
    assert len(body) < 200_000
    run = m.drop(body, suffix=".csv.gz")
    m.summary(run)
    got = m.assert_exactly_once(run, 3)
    assert [(f.line, f.stage.value, f.error) for f in got.failures] == [(2, "parse", "LineTooLong")]


def row_pixel_bomb(m: Matrix) -> None:
    run = m.drop([m.good(1)[0], m.put_image("bomb.png", pixel_bomb_png())])
    m.summary(run)
    got = m.assert_exactly_once(run, 2)
    assert [(f.line, f.stage.value) for f in got.failures] == [(2, "decode")]


def row_oversize_line(m: Matrix) -> None:
    good = m.good(2)
    run = m.drop([good[0], "s3://x/" + "k" * 5_000_000, good[1]])  # 76x the 64 KiB limit
    m.summary(run)
    got = m.assert_exactly_once(run, 3)
    assert [(f.line, f.error) for f in got.failures] == [(2, "LineTooLong")]


def row_oversize_object(m: Matrix) -> None:
    run = m.drop(
        [m.put_image("huge.jpg", b"\xff\xd8\xff" + b"\0" * (51 * 1024 * 1024)), *m.good(1)]
    )
    m.summary(run)
    got = m.assert_exactly_once(run, 2)
    assert [(f.line, f.error) for f in got.failures] == [(1, "ObjectTooLarge")]


def row_not_gzip(m: Matrix) -> None:
    run = m.drop(m.good(3), suffix=".csv.gz")  # plain text under a .gz name
    assert m.summary(run)["status"] == "SUCCEEDED"
    m.assert_exactly_once(run, 3, results_only=True)


def row_empty_manifest(m: Matrix) -> None:
    run = m.drop(b"", suffix=".csv")
    summary = m.summary(run)
    assert (summary["status"], summary["lines"], summary["chunks"]) == ("SUCCEEDED", 0, 0)
    m.assert_exactly_once(run, 0)


def row_not_utf8(m: Matrix) -> None:
    good = m.good(2)
    body = f"{good[0]}\n".encode() + b"s3://x/\xff\xfe.jpg\n" + f"{good[1]}\n".encode()
    run = m.drop(body)
    m.summary(run)
    got = m.assert_exactly_once(run, 3)
    assert [(f.line, f.error) for f in got.failures] == [(2, "NotUtf8")]


@dataclass(frozen=True)
class Row:
    fault: str
    check: Callable[..., None]


ROWS = [
    Row("same S3 event delivered twice", row_same_event_twice),
    Row("a chunk delivered twice", row_chunk_twice),
    Row("20% of image GETs answered 503", row_slowdown),
    Row("missing images uploaded later, replayed", row_missing_then_uploaded),
    Row("corrupt images, replayed", row_corrupt_images),
    Row("poison chunk -> WorkDLQ -> replay", row_poison_chunk),
    Row("Split killed mid-pass", row_split_killed),
    Row("truncated gzip", row_truncated_gzip),
    Row("foreign bucket", row_foreign_bucket),
    Row("manifest decompression bomb", row_gzip_bomb),
    Row("image decompression bomb", row_pixel_bomb),
    Row("oversize line", row_oversize_line),
    Row("object over the byte limit", row_oversize_object),
    Row("not gzip despite .gz", row_not_gzip),
    Row("empty manifest", row_empty_manifest),
    Row("non-UTF-8 line", row_not_utf8),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.check.__name__.removeprefix("row_") for r in ROWS])
def test_fault_matrix(row: Row, matrix: Matrix, killed: tuple[str, int]) -> None:
    row.check(matrix)


def test_fault_matrix_kill_9_worker_mid_chunk(matrix: Matrix, killed: tuple[str, int]) -> None:
    row_kill_worker(matrix, killed)
