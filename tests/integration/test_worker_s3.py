"""`ChunkWorker` against the emulator: rows stream into the part in line order, failures are data.

Real S3/SQS/DynamoDB over HTTP, the real model, the bundled photos.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from pipeline.classify.images import ImageDecoder
from pipeline.classify.model import Classifier
from pipeline.classify.signed_get import SdkGetter
from pipeline.classify.worker import ChunkWorker, fetch_client_config
from pipeline.config import DEFAULT_MODEL_PATH, Settings
from pipeline.failures import OutOfTimeError, Stage
from pipeline.ledger.items import table_definition
from pipeline.ledger.markers import committed_chunk
from pipeline.ledger.table import RunLedger
from pipeline.manifest.reader import ManifestRecord
from pipeline.replay.chunks import iter_replay_chunks
from pipeline.split.chunking import Chunk
from pipeline.split.work_message import parse_work_message
from tests import photos

NAMES = ("coffee", "chelsea", "rocket", "astronaut")


@pytest.fixture(scope="module")
def two_interpreters() -> Classifier:
    return Classifier.load(DEFAULT_MODEL_PATH, replicas=2)


@pytest.fixture
def worker(emulator, bucket, two_interpreters):
    name = f"test-{uuid.uuid4().hex[:12]}"
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(**table_definition(name))
    settings = Settings.from_env(
        {},
        results_bucket=bucket,
        source_buckets=frozenset({bucket}),
        failure_queue_url=queue,
        runs_table=name,
        fetch_concurrency=3,  # a window of 12: the chunk below is longer than one window
    )
    s3 = boto3.client("s3", config=fetch_client_config(settings))
    for image in NAMES:
        s3.put_object(Bucket=bucket, Key=f"{image}.jpg", Body=photos.photo_bytes(image))
    s3.put_object(Bucket=bucket, Key="not-an-image.jpg", Body=b"plain text")
    ledger = RunLedger(dynamodb, name)
    with ThreadPoolExecutor(3) as pool:
        yield ChunkWorker(s3, sqs, ledger, two_interpreters, settings, pool)


def _part_rows(s3, bucket: str, key: str) -> list[dict]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return [json.loads(line) for line in gzip.decompress(body).splitlines()]


def test_rows_are_streamed_in_line_order_and_failures_are_records(worker, s3, bucket):
    # GIVEN a chunk longer than the worker's window, its items out of line order, with a
    # missing key, a non-image and a bucket off the allowlist among the photos
    keys = [f"{NAMES[n % 4]}.jpg" for n in range(30)]
    items = [ManifestRecord(line, bucket, key) for line, key in enumerate(keys, start=10)]
    items += [
        ManifestRecord(3, bucket, "missing.jpg"),
        ManifestRecord(7, bucket, "not-an-image.jpg"),
        ManifestRecord(5, "someone-elses-bucket", "coffee.jpg"),
    ]
    items.reverse()
    run = f"r{uuid.uuid4().hex[:8]}"
    worker.ledger.start_run(run, manifest="s3://in/m.csv")
    # WHEN it is processed
    report = worker.process(Chunk(run, 0, tuple(items)))
    # THEN every photo has a row, in line order, with the photo's labels
    rows = _part_rows(s3, bucket, f"results/{run}/part-00000000.jsonl.gz")
    assert [row["line"] for row in rows] == list(range(10, 40))
    coffee = [row for row in rows if row["key"] == "coffee.jpg"]
    assert {row["labels"][0][0] for row in coffee} == {"espresso"}
    # and each bad item is a failure record, also in line order, counted once
    failures = _part_rows(s3, bucket, f"failures/{run}/part-00000000.jsonl.gz")
    assert [(f["line"], f["error"]) for f in failures] == [
        (3, "NoSuchKey"),
        (5, "BucketNotAllowed"),
        (7, "NotAnImage"),
    ]
    assert (report.ok, len(report.failures), report.is_counted) == (30, 3, True)
    state = worker.ledger.get_run(run)
    assert (state.ok, state.failed) == (30, 3)


def test_a_redelivered_chunk_that_was_counted_changes_nothing(worker, s3, bucket):
    # GIVEN a chunk processed and counted
    items = tuple(ManifestRecord(n, bucket, f"{NAMES[n % 4]}.jpg") for n in range(1, 6))
    run = f"r{uuid.uuid4().hex[:8]}"
    worker.ledger.start_run(run, manifest="s3://in/m.csv")
    first = worker.process(Chunk(run, 4, items))
    # WHEN the world changes (an image is deleted) and the same chunk is delivered again
    s3.delete_object(Bucket=bucket, Key=f"{NAMES[1]}.jpg")
    again = worker.process(Chunk(run, 4, items))
    # THEN the duplicate did nothing: its part and the counts stand, no failure was made
    assert (first.is_counted, first.ok) == (True, 5)
    assert (again.is_counted, again.ok, again.failures) == (False, 0, ())
    rows = _part_rows(s3, bucket, f"results/{run}/part-00000004.jsonl.gz")
    assert [row["line"] for row in rows] == [1, 2, 3, 4, 5]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"failures/{run}/")
    assert listed["KeyCount"] == 0
    state = worker.ledger.get_run(run)
    assert (state.ok, state.failed) == (5, 0)


def test_a_replay_reads_the_version_the_manifest_named_not_the_latest(worker, s3, bucket):
    # GIVEN a versioned key whose first version is not an image and whose latest is a photo
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="flip.jpg", Body=b"plain text")["VersionId"]
    latest = s3.put_object(Bucket=bucket, Key="flip.jpg", Body=photos.photo_bytes("coffee"))
    items = (
        ManifestRecord(1, bucket, "flip.jpg", first),
        ManifestRecord(2, bucket, "flip.jpg", latest["VersionId"]),
    )
    run = f"r{uuid.uuid4().hex[:8]}"
    worker.ledger.start_run(run, manifest="s3://in/m.csv")
    # WHEN the chunk is processed and its failure is replayed
    report = worker.process(Chunk(run, 0, items))
    (failure,) = report.failures
    assert (failure.line, failure.error, failure.version_id) == (1, "NotAnImage", first)
    (replay,) = iter_replay_chunks(
        report.failures, replay_round=1, chunk_items=10, chunk_max_bytes=10**5
    )
    replayed = worker.process(*parse_work_message(json.loads(json.dumps(replay.to_message()))))
    # THEN the replay read the named version again (it fails again) rather than the photo
    (again,) = replayed.failures
    assert (again.line, again.error, again.version_id, again.attempts) == (
        1,
        "NotAnImage",
        first,
        2,
    )
    rows = _part_rows(s3, bucket, f"results/{run}/part-00000000.jsonl.gz")
    assert [(row["line"], row["version_id"]) for row in rows] == [(2, latest["VersionId"])]
    state = worker.ledger.get_run(run)
    assert (state.ok, state.failed) == (1, 1)


def test_raw_lines_that_are_no_record_are_the_chunks_parse_failures_not_sent_to_replay(
    worker, s3, bucket
):
    # GIVEN a chunk Split sent unparsed (JSON Lines with other fields), two lines no record
    run = f"r{uuid.uuid4().hex[:8]}"
    worker.ledger.start_run(run, manifest="s3://in/m.jsonl")
    lines = [
        json.dumps({"bucket": bucket, "key": "coffee.jpg", "size": 1}),
        "not json",
        json.dumps({"key": "rocket.jpg", "label": "x", "bucket": bucket}),
        json.dumps({"bucket": bucket}),
    ]
    piece = {"line": 11, "raw_lines": "\n".join(lines)}
    body = {"v": 2, "run": run, "chunk": 3, "pieces": [piece]}
    chunk, replay = parse_work_message(json.loads(json.dumps(body)))
    # WHEN its worker processes it, and the same message is delivered again
    report = worker.process(chunk, replay)
    again = worker.process(chunk, replay)
    # THEN the records have rows and the other lines are the chunk's parse failures, once
    rows = _part_rows(s3, bucket, f"results/{run}/part-00000003.jsonl.gz")
    assert [(row["line"], row["key"]) for row in rows] == [(11, "coffee.jpg"), (13, "rocket.jpg")]
    failures = _part_rows(s3, bucket, f"failures/{run}/part-00000003.jsonl.gz")
    assert [(f["line"], f["stage"], f["error"]) for f in failures] == [
        (12, "parse", "BadJson"),
        (14, "parse", "MissingField"),
    ]
    assert (report.ok, len(report.failures), report.is_counted, again.is_counted) == (
        2,
        2,
        True,
        False,
    )
    # AND the ledger counts every line of the chunk once, the parse failures as such
    state = worker.ledger.get_run(run)
    assert (state.ok, state.failed, state.failed_by_stage) == (2, 2, {"parse": 2})
    marker = committed_chunk(worker.ledger, run, 3)
    assert (marker.items, marker.ok, marker.failed, marker.problems()) == (4, 2, 2, [])
    # AND nothing went to the FailureQueue: a line that is no record names nothing to replay
    queue = worker.settings.failure_queue_url
    assert "Messages" not in worker.sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)


def test_a_chunk_whose_images_cannot_be_reached_at_all_comes_back_whole(worker, bucket):
    # GIVEN a worker whose image reads go to an endpoint nobody listens on (S3 unreachable)
    unreachable = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        config=Config(connect_timeout=1, retries={"max_attempts": 1, "mode": "standard"}),
    )
    cut_off = dataclasses.replace(worker, getter=SdkGetter(unreachable))
    run = f"r{uuid.uuid4().hex[:8]}"
    worker.ledger.start_run(run, manifest="s3://in/m.csv")
    chunk = Chunk(run, 0, tuple(ManifestRecord(n, bucket, "coffee.jpg") for n in (1, 2, 3)))
    # WHEN it is processed THEN it fails, so its message comes back: no record a line blaming
    # the images (every line would fail alike), nothing counted, nothing published
    with pytest.raises(EndpointConnectionError):
        cut_off.process(chunk)
    assert committed_chunk(worker.ledger, run, 0) is None
    assert worker.s3.list_objects_v2(Bucket=bucket, Prefix=f"failures/{run}/")["KeyCount"] == 0
    # AND a delivery that reaches S3 labels every line
    assert worker.process(chunk).ok == 3


class _Stalled:
    """The real GETs, except that `slow.jpg`'s takes `STALL_S` (a stalled connection)."""

    STALL_S = 4.0

    def __init__(self, inner: SdkGetter) -> None:
        self.inner = inner

    def get(self, bucket: str, key: str, *, max_bytes: int, version_id: str | None) -> bytes:
        if key == "slow.jpg":
            time.sleep(self.STALL_S)
        return self.inner.get(bucket, key, max_bytes=max_bytes, version_id=version_id)


def _stalled(worker: ChunkWorker, s3, bucket: str) -> tuple[ChunkWorker, str]:
    """`worker` whose GETs of `slow.jpg` (a photo) stall, and a new run to process chunks of."""
    s3.put_object(Bucket=bucket, Key="slow.jpg", Body=photos.photo_bytes("coffee"))
    run = f"r{uuid.uuid4().hex[:8]}"
    worker.ledger.start_run(run, manifest="s3://in/m.csv")
    return dataclasses.replace(worker, getter=_Stalled(SdkGetter(worker.s3))), run


def test_lines_not_labelled_when_the_delivery_s_time_runs_out_are_retryable_records(
    worker, s3, bucket
):
    # GIVEN a chunk whose line 2's GET stalls, and a delivery with 2 s left (its labelling stops
    # at 1.5 s: a quarter is kept for the parts and the ledger)
    stalled, run = _stalled(worker, s3, bucket)
    keys = ("coffee.jpg", "slow.jpg", "chelsea.jpg", "rocket.jpg")
    chunk = Chunk(run, 0, tuple(ManifestRecord(n, bucket, k) for n, k in enumerate(keys, 1)))
    # WHEN it is processed
    started = time.monotonic()
    report = stalled.process(chunk, deadline=time.time() + 2.0)
    # THEN it is counted in time, with the stalled line a retryable record and the rest labelled
    assert time.monotonic() - started < _Stalled.STALL_S
    assert report.is_counted and report.ok == 3
    (record,) = report.failures
    assert (record.line, record.stage, record.error, record.retryable) == (
        2,
        Stage.FETCH,
        "OutOfTime",
        True,
    )
    assert committed_chunk(worker.ledger, run, 0) is not None


def test_a_delivery_that_got_no_line_done_in_its_time_gives_the_chunk_back_whole(
    worker, s3, bucket
):
    # GIVEN a chunk whose every GET stalls (or waits behind stalled threads), 2 s left
    stalled, run = _stalled(worker, s3, bucket)
    chunk = Chunk(
        run, 0, (ManifestRecord(1, bucket, "slow.jpg"), ManifestRecord(2, bucket, "slow.jpg"))
    )
    # WHEN it is processed THEN it fails in time, so its message comes back: no record a line
    # (another delivery, later, most likely gets past), nothing counted, nothing published
    with pytest.raises(OutOfTimeError, match="comes back whole"):
        stalled.process(chunk, deadline=time.time() + 2.0)
    assert committed_chunk(worker.ledger, run, 0) is None
    assert s3.list_objects_v2(Bucket=bucket, Prefix=f"failures/{run}/")["KeyCount"] == 0


def test_replicas_give_the_same_labels_as_one_interpreter(two_interpreters):
    images = [ImageDecoder().decode(photos.photo_bytes(name)) for name in NAMES]
    one = Classifier.load(DEFAULT_MODEL_PATH)
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda image: two_interpreters.predict([image]), images * 3))
    for image, probabilities in zip(images * 3, threaded, strict=True):
        assert (one.predict([image]) == probabilities).all()
    assert two_interpreters.replicas == 2
