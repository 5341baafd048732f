"""Two deliveries of one chunk that see different worlds, interleaved step by step (race 1).

SQS is at least once, and a retried Split pass re-sends chunks a few seconds later: one copy
meets a missing (or throttled) image, the other succeeds. The interleaving below is the one that
broke the promise before the commit protocol: A writes its first part, B writes all of its own,
then A finishes writing, A counts, B finds the chunk counted. Read raw afterwards, the line must
be in exactly one of results/failures and the ledger must agree with the rows — whichever copy
won. A delivery that dies between the ledger write and the publish is rolled forward by the next
delivery, or by Finalize.

Real S3, SQS and DynamoDB over HTTP (the emulator), the real worker and model; the interleaving
is forced with botocore event hooks on each delivery's own clients, never by editing the code.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from pipeline.classify.model import Classifier
from pipeline.classify.worker import ChunkWorker, fetch_client_config
from pipeline.config import DEFAULT_MODEL_PATH, Settings
from pipeline.ledger.commit import CommitTargets
from pipeline.ledger.finalize import finalize_run
from pipeline.ledger.items import table_definition
from pipeline.ledger.table import RunLedger
from pipeline.manifest.reader import ManifestRecord
from pipeline.split.chunking import Chunk
from tests import photos
from tests.raw_parts import assert_exactly_once_raw, read_raw

pytestmark = pytest.mark.integration

WAIT_S = 20


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *_: Any, **__: Any) -> Any:
        yield self._body


def _missing(key: str):
    """A before-send hook: this client's GETs of `key` answer 404 NoSuchKey (its world)."""

    def hook(request: Any, **_: Any) -> AWSResponse | None:
        if request.method == "GET" and str(request.url).split("?")[0].endswith("/" + key):
            body = b"<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>"
            return AWSResponse(request.url, 404, {}, _Raw(body))
        return None

    return hook


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.load(DEFAULT_MODEL_PATH)


@pytest.fixture
def world(emulator, bucket, classifier):
    name = f"race-{uuid.uuid4().hex[:10]}"
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    boto3.client("dynamodb").create_table(**table_definition(name))
    settings = Settings.from_env(
        {},
        results_bucket=bucket,
        source_buckets=frozenset({bucket}),
        failure_queue_url=queue,
        runs_table=name,
        fetch_concurrency=2,
    )
    s3 = boto3.client("s3")
    for image in ("coffee", "chelsea"):
        s3.put_object(Bucket=bucket, Key=f"{image}.jpg", Body=photos.photo_bytes(image))
    pool = ThreadPoolExecutor(2)

    def delivery() -> ChunkWorker:
        """A worker with clients of its own, as a second Lambda environment would have."""
        return ChunkWorker(
            boto3.client("s3", config=fetch_client_config(settings)),
            sqs,
            RunLedger(boto3.client("dynamodb"), name),
            classifier,
            settings,
            pool,
            duplicate_wait_s=0.5,
        )

    run = f"r{uuid.uuid4().hex[:8]}"
    RunLedger(boto3.client("dynamodb"), name).start_run(run, manifest="s3://in/m.csv")
    chunk = Chunk(
        run, 0, (ManifestRecord(1, bucket, "coffee.jpg"), ManifestRecord(2, bucket, "chelsea.jpg"))
    )
    yield {
        "delivery": delivery,
        "chunk": chunk,
        "bucket": bucket,
        "s3": s3,
        "sqs": sqs,
        "queue": queue,
        "table": name,
        "settings": settings,
    }
    pool.shutdown()


def _interleave(a: ChunkWorker, b: ChunkWorker) -> tuple[dict[str, Any], Any]:
    """A writes its first part; B writes all of its own and reaches its ledger write; A goes
    on to the end (its count wins); then B's ledger write: the schedule that showed a line
    twice before the commit protocol."""
    a_wrote_once, b_at_ledger, a_done = threading.Event(), threading.Event(), threading.Event()

    def a_after_put(**_: Any) -> None:
        a_wrote_once.set()

    def a_before_ledger(**_: Any) -> None:
        assert b_at_ledger.wait(WAIT_S)

    def b_before_write(**_: Any) -> None:
        assert a_wrote_once.wait(WAIT_S)

    def b_before_ledger(**_: Any) -> None:
        b_at_ledger.set()
        assert a_done.wait(WAIT_S)

    a.s3.meta.events.register("after-call.s3.PutObject", a_after_put)
    a.ledger.client.meta.events.register("before-call.dynamodb.TransactWriteItems", a_before_ledger)
    for op in ("PutObject", "DeleteObject", "HeadObject"):
        b.s3.meta.events.register(f"before-call.s3.{op}", b_before_write)
    b.ledger.client.meta.events.register("before-call.dynamodb.TransactWriteItems", b_before_ledger)
    outcome: dict[str, Any] = {}

    def deliver(name: str, worker: ChunkWorker, chunk: Chunk) -> None:
        try:
            outcome[name] = worker.process(chunk)
        finally:
            if name == "a":
                a_done.set()

    return outcome, deliver


@pytest.mark.parametrize("missing_in", ["a", "b"], ids=["first-copy-misses", "second-copy-misses"])
def test_two_deliveries_in_different_worlds_show_each_line_once_read_raw(world, missing_in):
    # GIVEN two deliveries of chunk 0: in one of them, line 2's image is missing
    a, b = world["delivery"](), world["delivery"]()
    (a if missing_in == "a" else b).s3.meta.events.register(
        "before-send.s3.GetObject", _missing("chelsea.jpg")
    )
    outcome, deliver = _interleave(a, b)
    # WHEN they run interleaved: A writes a part, B writes everything, A counts, B is refused
    threads = [
        threading.Thread(target=deliver, args=(name, worker, world["chunk"]))
        for name, worker in (("a", a), ("b", b))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # THEN exactly one counted, and the raw parts hold what the ledger counted, each line once
    assert (outcome["a"].is_counted, outcome["b"].is_counted) == (True, False)
    state = RunLedger(boto3.client("dynamodb"), world["table"]).get_run(world["chunk"].run)
    summary = {"ok": state.ok, "failed": state.failed}
    raw = assert_exactly_once_raw(world["s3"], world["bucket"], world["chunk"].run, 2, summary)
    assert (state.ok, state.failed) == ((1, 1) if missing_in == "a" else (2, 0))
    assert raw.staged == []  # the winner published and cleaned up, the loser removed its own


def test_a_delivery_that_dies_after_the_count_is_published_by_the_next_one(world):
    # GIVEN a delivery that counts the chunk, then dies before publishing (its PUT fails)
    a, b = world["delivery"](), world["delivery"]()
    a.s3.meta.events.register("before-send.s3.GetObject", _missing("chelsea.jpg"))

    def crash_on_publish(params: dict[str, Any], **_: Any) -> None:
        if params.get("IfNoneMatch") == "*":
            raise ConnectionError("the function died here")

    a.s3.meta.events.register("provide-client-params.s3.PutObject", crash_on_publish)
    with pytest.raises(ConnectionError):
        a.process(world["chunk"])
    run = world["chunk"].run
    assert read_raw(world["s3"], world["bucket"], run).failures == []  # nothing published yet
    # WHEN the message comes back (the image exists again in this delivery's world)
    again = b.process(world["chunk"])
    # THEN it does nothing of its own but publishes the winner's parts and sends its failures
    assert not again.is_counted
    state = RunLedger(boto3.client("dynamodb"), world["table"]).get_run(run)
    raw = assert_exactly_once_raw(
        world["s3"], world["bucket"], run, 2, {"ok": state.ok, "failed": state.failed}
    )
    assert [r["line"] for r in raw.failures] == [2]
    assert raw.staged == []
    sent = world["sqs"].receive_message(QueueUrl=world["queue"], MaxNumberOfMessages=10)
    assert [m["Body"].count('"line":2') for m in sent.get("Messages", [])] == [1]


def test_finalize_publishes_a_commit_whose_delivery_died(world):
    # GIVEN a delivery that counted the chunk and died before publishing, and no redelivery
    a = world["delivery"]()

    def crash_on_publish(params: dict[str, Any], **_: Any) -> None:
        if params.get("IfNoneMatch") == "*":
            raise ConnectionError("the function died here")

    a.s3.meta.events.register("provide-client-params.s3.PutObject", crash_on_publish)
    with pytest.raises(ConnectionError):
        a.process(world["chunk"])
    run = world["chunk"].run
    ledger = RunLedger(boto3.client("dynamodb"), world["table"])
    ledger.record_split_progress(run, lines_split=2, chunks_sent=1, is_done=True)
    # WHEN Finalize runs (later than the abandon grace)
    settings = world["settings"]
    targets = CommitTargets(world["s3"], world["sqs"], world["bucket"], settings.failure_queue_url)
    summary = finalize_run(
        {"run": run, "manifest": {"uri": "s3://in/m.csv"}},
        ledger=ledger,
        s3=world["s3"],
        results_bucket=world["bucket"],
        now=10**10,
        targets=targets,
    )
    # THEN the committed parts are published and the run SUCCEEDED with matching raw rows
    assert summary["status"] == "SUCCEEDED"
    raw = assert_exactly_once_raw(world["s3"], world["bucket"], run, 2, summary)
    assert raw.staged == []
