"""The three races of "exactly once where users look", each forced deterministically.

Race 1 — two deliveries of one chunk that see different worlds, interleaved step by step.

SQS is at least once, and a retried Split pass re-sends chunks a few seconds later: one copy
meets a missing (or throttled) image, the other succeeds. The interleaving below is the one that
broke the promise before the commit protocol: A writes its first part, B writes all of its own,
then A finishes writing, A counts, B finds the chunk counted. Read raw afterwards, the line must
be in exactly one of results/failures and the ledger must agree with the rows — whichever copy
won. A delivery that dies between the ledger write and the publish is rolled forward by the next
delivery, or by Finalize.

Race 2 — a replay asked for while the run is still running: the replayer refuses a running run,
the ledger refuses to claim a round for one and to count a replay chunk whose origin chunk is not
counted, and parts of a chunk whose ledger write failed are never visible to be replayed.

Race 3 — after a replay succeeds, the failure parts read raw no longer hold the labelled line,
also when the replayer crashed before pruning (the next replay finishes it).

Real S3, SQS and DynamoDB over HTTP (the emulator), the real worker and model; the interleaving
is forced with botocore event hooks on each delivery's own clients, never by editing the code.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import orjson
import pytest
from botocore.awsrequest import AWSResponse

from pipeline.classify.model import Classifier
from pipeline.classify.signed_get import SdkGetter
from pipeline.classify.worker import FINISH_MARGIN_S, ChunkWorker, fetch_client_config
from pipeline.config import DEFAULT_MODEL_PATH, Settings
from pipeline.failures import FailureRecord, ImageFetchError, ThrottledError
from pipeline.ledger.commit import CLOCK_SKEW_S, CommitTargets
from pipeline.ledger.finalize import finalize_run
from pipeline.ledger.items import ChunkCounts, table_definition
from pipeline.ledger.runs import RunStatus
from pipeline.ledger.summary import read_summary
from pipeline.ledger.table import OriginNotCountedError, RunLedger
from pipeline.manifest.reader import ManifestRecord
from pipeline.parts.commit import part_names
from pipeline.parts.store import write_records
from pipeline.replay.chunks import MAX_ORIGINS, ReplayFilter
from pipeline.replay.ledger import ReplayInProgressError, ReplayLedger, RunStillRunningError
from pipeline.replay.replayer import (
    Replayer,
    ReplaySource,
    ReplayTargets,
    ReplayTimeoutError,
    replay_runs,
)
from pipeline.replay.round_store import ORPHAN_AGE_S, delete_rounds, round_key
from pipeline.split.chunking import Chunk
from pipeline.split.work_message import parse_work_message
from tests import photos
from tests.ledger_counts import count_chunk
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


def _dies_on_failure_part_read(request: Any, **_: Any) -> None:
    """A before-send hook: the delivery dies when it reads a published failure part back (the
    first thing its prune does)."""
    if request.method == "GET" and "/failures/" in str(request.url):
        raise ConnectionError("the function died")


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

    def delivery(duplicate_wait_s: float = 0.5) -> ChunkWorker:
        """A worker with clients of its own, as a second Lambda environment would have.

        Its image GETs all go through boto3 (`SdkGetter`): a delivery's world is made by a
        botocore hook on its client (`_missing`), which the lean signed GET would bypass.
        """
        s3 = boto3.client("s3", config=fetch_client_config(settings))
        return ChunkWorker(
            s3,
            sqs,
            RunLedger(boto3.client("dynamodb"), name),
            classifier,
            settings,
            pool,
            duplicate_wait_s=duplicate_wait_s,
            getter=SdkGetter(s3),
        )

    run = f"r{uuid.uuid4().hex[:8]}"
    RunLedger(boto3.client("dynamodb"), name).start_run(run, manifest="s3://in/m.csv")
    chunk = Chunk(
        run, 0, (ManifestRecord(1, bucket, "coffee.jpg"), ManifestRecord(2, bucket, "chelsea.jpg"))
    )
    work_queue = sqs.create_queue(QueueName=f"{name}-work")["QueueUrl"]
    replayer = Replayer(
        s3=s3,
        sqs=sqs,
        ledger=RunLedger(boto3.client("dynamodb"), name),
        replays=ReplayLedger(boto3.client("dynamodb"), name),
        targets=ReplayTargets(
            results_bucket=bucket,
            work_queue_url=work_queue,
            work_dlq_url=work_queue,
            failure_queue_url=queue,
        ),
    )
    yield {
        "replayer": replayer,
        "work_queue": work_queue,
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


def _dies_after_the_count(worker: ChunkWorker) -> ChunkWorker:
    """`worker` will count its chunk, then die before publishing (its publishing PUT fails)."""

    def crash_on_publish(params: dict[str, Any], **_: Any) -> None:
        if params.get("IfNoneMatch") == "*":
            raise ConnectionError("the function died here")

    worker.s3.meta.events.register("provide-client-params.s3.PutObject", crash_on_publish)
    return worker


def _assert_finished_once(world: dict[str, Any]) -> Any:
    """The chunk's run read raw: each line once, as the ledger counts it, nothing left staged."""
    run = world["chunk"].run
    state = RunLedger(boto3.client("dynamodb"), world["table"]).get_run(run)
    raw = assert_exactly_once_raw(
        world["s3"], world["bucket"], run, 2, {"ok": state.ok, "failed": state.failed}
    )
    assert raw.staged == []
    return raw


def test_a_delivery_that_dies_after_the_count_is_published_by_the_next_one(world):
    # GIVEN a delivery that counts the chunk, then dies before publishing (its PUT fails)
    a, b = _dies_after_the_count(world["delivery"]()), world["delivery"]()
    a.s3.meta.events.register("before-send.s3.GetObject", _missing("chelsea.jpg"))
    with pytest.raises(ConnectionError):
        a.process(world["chunk"])
    run = world["chunk"].run
    assert read_raw(world["s3"], world["bucket"], run).failures == []  # nothing published yet
    # WHEN the message comes back (the image exists again in this delivery's world)
    again = b.process(world["chunk"])
    # THEN it does nothing of its own but publishes the winner's parts and sends its failures
    assert not again.is_counted
    raw = _assert_finished_once(world)
    assert [r["line"] for r in raw.failures] == [2]
    sent = world["sqs"].receive_message(QueueUrl=world["queue"], MaxNumberOfMessages=10)
    assert [m["Body"].count('"line":2') for m in sent.get("Messages", [])] == [1]


def test_a_count_whose_answer_was_lost_is_this_deliverys_and_it_publishes(world):
    # GIVEN a delivery whose ledger write is applied but whose answer is lost, so the write is
    # made again and refused as already counted: a retry that DynamoDB does not match to the
    # first request (another token; botocore's own retries keep theirs, and DynamoDB matches
    # them for 10 minutes: tests/integration/test_dynamodb_idempotency.py)
    a = world["delivery"]()
    a.s3.meta.events.register("before-send.s3.GetObject", _missing("chelsea.jpg"))
    elsewhere = boto3.client("dynamodb")
    applied: list[bool] = []

    def applied_then_lost(params: dict[str, Any], **_: Any) -> None:
        if not applied:
            elsewhere.transact_write_items(**params)
            applied.append(True)

    a.ledger.client.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems", applied_then_lost
    )
    # WHEN it processes the chunk
    report = a.process(world["chunk"])
    # THEN it knows the count is its own and publishes: each line once read raw, its failure sent
    assert applied and report.is_counted
    raw = _assert_finished_once(world)
    assert [r["line"] for r in raw.failures] == [2]
    sent = world["sqs"].receive_message(QueueUrl=world["queue"], MaxNumberOfMessages=10)
    assert [m["Body"].count('"line":2') for m in sent.get("Messages", [])] == [1]


def _finalize(
    world: dict[str, Any],
    run: str,
    *,
    now: float,
    ledger: RunLedger | None = None,
    is_rolling: bool = True,
) -> dict[str, Any]:
    """Split done (2 lines, 1 chunk), then Finalize at `now`, rolling commits forward or not."""
    ledger = ledger or RunLedger(boto3.client("dynamodb"), world["table"])
    ledger.record_split_progress(run, lines_split=2, chunks_sent=1, is_done=True)
    queue = world["settings"].failure_queue_url
    targets = CommitTargets(world["s3"], world["sqs"], world["bucket"], queue)
    return finalize_run(
        {"run": run, "manifest": {"uri": "s3://in/m.csv"}},
        ledger=ledger,
        s3=world["s3"],
        results_bucket=world["bucket"],
        now=now,
        targets=targets if is_rolling else None,
    )


def test_a_redelivery_past_the_winners_deadline_finishes_its_commit_without_waiting(world):
    # GIVEN a delivery whose invocation ends in 1 s: it counts the chunk, then dies unpublished
    a = _dies_after_the_count(world["delivery"]())
    deadline = time.time() + 1.0
    with pytest.raises(ConnectionError):
        a.process(world["chunk"], deadline=deadline)
    # WHEN the chunk comes back after that deadline, to a delivery that gives a live winner 60 s
    time.sleep(max(0.0, deadline + CLOCK_SKEW_S - time.time()))
    b = world["delivery"](duplicate_wait_s=60)
    started = time.monotonic()
    again = b.process(world["chunk"], deadline=time.time() + 300)
    # THEN it finished the dead winner's commit at once: every line once, nothing staged
    assert time.monotonic() - started < 20  # far below the 60 s a live winner is given
    assert not again.is_counted
    _assert_finished_once(world)


def test_a_duplicate_waits_for_a_live_winner_only_while_its_own_deadline_allows(world):
    # GIVEN a winner that counted the chunk and has not published, its deadline 5 min away
    a = _dies_after_the_count(world["delivery"]())
    with pytest.raises(ConnectionError):
        a.process(world["chunk"], deadline=time.time() + 300)
    # WHEN a duplicate that gives a live winner 60 s arrives with 1 s to spare past its margin
    b = world["delivery"](duplicate_wait_s=60)
    started = time.monotonic()
    again = b.process(world["chunk"], deadline=time.time() + FINISH_MARGIN_S + 1.0)
    waited = time.monotonic() - started
    # THEN it waited for the winner about that 1 s, then finished the commit itself
    assert 0.5 <= waited < 20
    assert not again.is_counted
    _assert_finished_once(world)


def test_a_chunk_counted_after_a_stall_by_a_delivery_that_died_is_settled_by_the_next(world):
    # GIVEN a run finalized as stalled before its one chunk was counted
    run, s3, bucket = world["chunk"].run, world["s3"], world["bucket"]
    ledger = RunLedger(boto3.client("dynamodb"), world["table"])
    ledger.record_split_progress(run, lines_split=2, chunks_sent=1, is_done=True)
    finalize_run(
        {"run": run, "manifest": {"uri": "s3://in/m.csv"}, "stalled": True},
        ledger=ledger,
        s3=s3,
        results_bucket=bucket,
        now=10**10,
    )
    assert ledger.get_run(run).status is RunStatus.PARTIAL
    # AND the chunk back from the WorkDLQ, counted by a delivery that dies before publishing
    with pytest.raises(ConnectionError):
        _dies_after_the_count(world["delivery"]()).process(world["chunk"])
    # WHEN the next delivery finds it counted and finishes the commit
    assert not world["delivery"]().process(world["chunk"]).is_counted
    # THEN the run is settled again: SUCCEEDED, its summary too, each line once read raw
    assert ledger.get_run(run).status is RunStatus.SUCCEEDED
    assert read_summary(s3, bucket, run)["status"] == "SUCCEEDED"
    _assert_finished_once(world)


def test_finalize_publishes_a_commit_whose_delivery_died(world):
    # GIVEN a delivery that counted the chunk and died before publishing, and no redelivery
    a = _dies_after_the_count(world["delivery"]())
    with pytest.raises(ConnectionError):
        a.process(world["chunk"])
    run = world["chunk"].run
    # WHEN Finalize runs (later than the abandon grace)
    summary = _finalize(world, run, now=10**10)
    # THEN the committed parts are published and the run SUCCEEDED with matching raw rows
    assert summary["status"] == "SUCCEEDED"
    raw = assert_exactly_once_raw(world["s3"], world["bucket"], run, 2, summary)
    assert raw.staged == []


def test_finalize_waits_for_a_live_winner_to_publish_before_the_summary(world):
    # GIVEN a delivery that counted the last chunk and is still publishing (slowly) when the
    # count ends the execution's wait and Finalize starts
    a = world["delivery"]()
    counted = threading.Event()

    def slow_publish(params: dict[str, Any], **_: Any) -> None:
        if params.get("IfNoneMatch") == "*":
            counted.set()
            time.sleep(1.5)

    a.s3.meta.events.register("provide-client-params.s3.PutObject", slow_publish)
    delivery = threading.Thread(target=a.process, args=(world["chunk"],))
    delivery.start()
    assert counted.wait(30)
    run = world["chunk"].run
    # WHEN Finalize runs now, its staging fresh
    summary = _finalize(world, run, now=time.time())
    # THEN the summary is written only once the parts are readable: raw rows match it at once
    raw = assert_exactly_once_raw(world["s3"], world["bucket"], run, 2, summary)
    delivery.join(30)
    assert summary["status"] == "SUCCEEDED"
    assert raw.staged == []


# -- race 2: replay while the run is running ------------------------------------------------


def _fail_ledger_write_once(worker: ChunkWorker) -> None:
    calls = {"n": 0}

    def hook(**_: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("the ledger write never arrived")

    worker.ledger.client.meta.events.register("before-call.dynamodb.TransactWriteItems", hook)


def _run_replay_chunks(world: dict[str, Any], worker: ChunkWorker) -> None:
    """Deliver the replay round's chunk messages, as the WorkQueue's poller would."""
    sqs = world["sqs"]
    while messages := sqs.receive_message(QueueUrl=world["work_queue"], MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in messages:
            worker.process(*parse_work_message(orjson.loads(message["Body"])))
            sqs.delete_message(QueueUrl=world["work_queue"], ReceiptHandle=message["ReceiptHandle"])


def _finish(world: dict[str, Any], run: str) -> dict[str, Any]:
    return _finalize(world, run, now=10**10, ledger=world["replayer"].ledger, is_rolling=False)


def test_a_replay_of_a_running_run_is_refused_and_counts_nothing_twice(world):
    # GIVEN a delivery whose image is missing and whose ledger write fails (the function died)
    run, chunk = world["chunk"].run, world["chunk"]
    a = world["delivery"]()
    a.s3.meta.events.register("before-send.s3.GetObject", _missing("chelsea.jpg"))
    _fail_ledger_write_once(a)
    with pytest.raises(ConnectionError):
        a.process(chunk)
    # THEN none of its parts is visible: there is nothing a replay could read
    assert read_raw(world["s3"], world["bucket"], run).failures == []
    # WHEN a replay is asked for while the run is running THEN it is refused, in the replayer
    replayer = world["replayer"]
    with pytest.raises(RunStillRunningError, match=f"run {run} is still running"):
        replay_runs(replayer, [run], ReplayFilter())
    # AND in the ledger, whoever asks
    with pytest.raises(RunStillRunningError):
        replayer.replays.claim_round(run, chunks=1)
    # WHEN the original comes back (counted once), the run finishes, and the image is back
    again = world["delivery"]()
    again.s3.meta.events.register("before-send.s3.GetObject", _missing("chelsea.jpg"))
    assert again.process(chunk).is_counted
    assert _finish(world, run)["failed"] == 1
    report = replayer.replay_items(run, ReplayFilter())
    _run_replay_chunks(world, world["delivery"]())
    summary = replayer.refresh_summary(run, now=10**10, replayed=report)
    # THEN the line moved once: the summary and the raw parts agree, each line once
    assert (summary["status"], summary["ok"], summary["failed"], summary["lines"]) == (
        "SUCCEEDED",
        2,
        0,
        2,
    )
    assert_exactly_once_raw(world["s3"], world["bucket"], run, 2, summary)


def test_the_ledger_counts_a_replay_chunk_only_once_its_origin_chunk_is_counted(world):
    run = world["chunk"].run
    ledger = world["replayer"].ledger
    moved = ChunkCounts(
        ok=1,
        failed=0,
        seconds=0.1,
        images=1,
        replaced_by_stage={"fetch": 1},
        replaced_by_error={"NoSuchKey": 1},
    )
    with pytest.raises(OriginNotCountedError):
        ledger.record_replay_chunk(run, 1, 0, moved, origins=[(0, 0)])
    state = ledger.get_run(run)
    assert (state.ok, state.failed, state.replay_chunks_done) == (0, 0, 0)
    count_chunk(ledger, run, 0, ok=1, missing=1)
    assert ledger.record_replay_chunk(run, 1, 0, moved, origins=[(0, 0)])
    state = ledger.get_run(run)
    assert (state.ok, state.failed, state.replay_chunks_done) == (2, 0, 1)


# -- race 3: the failure view after a replay, read raw ----------------------------------------


def _line_2_failed_in_a_finished_run(world: dict[str, Any]) -> tuple[str, Replayer]:
    """The chunk delivered once with its line 2's image missing, the run finished: its run id
    and the replayer (the image is there again for later deliveries)."""
    run = world["chunk"].run
    first = world["delivery"]()
    first.s3.meta.events.register("before-send.s3.GetObject", _missing("chelsea.jpg"))
    first.process(world["chunk"])
    _finish(world, run)
    return run, world["replayer"]


def test_a_replay_crashed_before_pruning_is_pruned_by_the_next_replay(world):
    # GIVEN a finished run whose line 2 failed, replayed successfully by a delivery that died
    # before its own prune, and a replayer that crashed after the round was counted and
    # before it pruned the failure part
    run, replayer = _line_2_failed_in_a_finished_run(world)
    replayer.replay_items(run, ReplayFilter())
    dying = world["delivery"]()
    dying.s3.meta.events.register("before-send.s3.GetObject", _dies_on_failure_part_read)
    with pytest.raises(ConnectionError):
        _run_replay_chunks(world, dying)
    raw = read_raw(world["s3"], world["bucket"], run)
    assert raw.result_lines[2] == raw.failure_lines[2] == 1  # the stale view a crash leaves
    # WHEN the next replay runs (nothing left to select) THEN it prunes the counted round first
    assert replay_runs(replayer, [run], ReplayFilter()) == []
    state = replayer.ledger.get_run(run)
    raw = assert_exactly_once_raw(
        world["s3"], world["bucket"], run, 2, {"ok": state.ok, "failed": state.failed}
    )
    assert raw.failures == []
    assert replayer.replays.progress(run).is_pruned


def test_a_replay_chunk_counted_but_not_yet_published_is_published_before_the_prune(world):
    # GIVEN a finished run whose line 2 failed, replayed, and the replay chunk's delivery
    # counts it, then dies before publishing (a slow publish leaves the same window)
    run, replayer = _line_2_failed_in_a_finished_run(world)
    report = replayer.replay_items(run, ReplayFilter())
    with pytest.raises(ConnectionError):
        _run_replay_chunks(world, _dies_after_the_count(world["delivery"]()))
    assert replayer.is_settled(run)  # counted: the replayer stops waiting here
    assert read_raw(world["s3"], world["bucket"], run).result_lines[2] == 0  # not published
    # WHEN the replayer prunes the round and rewrites the summary
    summary = replayer.refresh_summary(run, now=10**10, replayed=report)
    # THEN it published the counted parts first, then pruned: line 2 is a result, once, and
    # in no failure part
    raw = assert_exactly_once_raw(world["s3"], world["bucket"], run, 2, summary)
    assert (raw.result_lines[2], raw.failure_lines[2], raw.staged) == (1, 0, [])
    assert summary["status"] == "SUCCEEDED"


def test_a_replay_that_waited_prunes_a_later_replays_round_over_every_failure_part(world):
    # GIVEN replay A's round 1, in which line 2 failed again (its record now in round 1's
    # failure part), then replay C's round 2, which labelled it, and C stopped before pruning
    run, replayer = _line_2_failed_in_a_finished_run(world)
    replay_a = replayer.replay_items(run, ReplayFilter())
    again_missing = world["delivery"]()
    again_missing.s3.meta.events.register("before-send.s3.GetObject", _missing("chelsea.jpg"))
    _run_replay_chunks(world, again_missing)
    assert replayer.replay_items(run, ReplayFilter()).replay_round == 2
    _run_replay_chunks(world, world["delivery"]())
    # WHEN replay A, done waiting, prunes and rewrites the summary
    summary = replayer.refresh_summary(run, now=10**10, replayed=replay_a)
    # THEN round 2 was pruned over every earlier failure part, not only those round 1 read:
    # line 2 is a result, once, and in no failure part
    raw = assert_exactly_once_raw(world["s3"], world["bucket"], run, 2, summary)
    assert (raw.result_lines[2], raw.failure_lines[2]) == (1, 0)


def test_a_round_claimed_with_no_kept_chunks_is_refused_before_anything_is_kept(world):
    # GIVEN a finished run whose round 1 was claimed by an older replayer, which kept no copy
    # of its chunks, and sent none
    run, replayer = _line_2_failed_in_a_finished_run(world)
    replayer.replays.claim_round(run, chunks=1, claim="older")
    # WHEN a replay of the run is asked for THEN it is refused, saying why, and keeps nothing
    with pytest.raises(ReplayInProgressError, match="no copy of its chunks is kept"):
        replayer.replay_items(run, ReplayFilter())
    kept = world["s3"].list_objects_v2(Bucket=world["bucket"], Prefix=f"replays/{run}/")
    assert kept["KeyCount"] == 0


def test_a_pruned_round_s_kept_chunks_go_with_those_lost_claims_left_an_hour_ago(world):
    s3, bucket, run = world["s3"], world["bucket"], world["chunk"].run
    for claim in ("ours", "lost"):
        s3.put_object(Bucket=bucket, Key=round_key(run, claim), Body=b"")
    # a lost claim's object may belong to a replay about to claim: kept while it is new
    assert delete_rounds(s3, bucket, run, "ours") == 1
    assert delete_rounds(s3, bucket, run, None, now=time.time() + ORPHAN_AGE_S + 60) == 1
    assert s3.list_objects_v2(Bucket=bucket, Prefix=f"replays/{run}/")["KeyCount"] == 0


def _failing_entry(sqs: Any, entry_id: str) -> None:
    """This client's SendMessageBatch never gets entry `entry_id` through (SQS fails it, not as
    the sender's fault); the batch's other entries really are sent. A call of that entry alone
    is answered here, as SQS would, without reaching the server."""
    failed = {"Id": entry_id, "SenderFault": False, "Code": "InternalError"}
    alone: list[bool] = []

    def drop(params: dict[str, Any], **_: Any) -> None:
        others = [e for e in params["Entries"] if e["Id"] != entry_id]
        alone[:] = [not others]
        params["Entries"] = others or params["Entries"]

    def answer_alone(**_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if alone[0]:
            return AWSResponse("", 200, {}, _Raw(b"")), {"Successful": [], "Failed": [failed]}
        return None

    def report(parsed: dict[str, Any], **_: Any) -> None:
        if failed not in parsed.setdefault("Failed", []):
            parsed["Failed"].append(failed)

    sqs.meta.events.register("provide-client-params.sqs.SendMessageBatch", drop)
    sqs.meta.events.register("before-call.sqs.SendMessageBatch", answer_alone)
    sqs.meta.events.register("after-call.sqs.SendMessageBatch", report)


def _two_failed_lines_replayed_one_a_chunk(world: dict[str, Any], sqs: Any) -> Replayer:
    """A finished run whose two lines both failed, and a replayer sending one line a chunk
    through `sqs` (a client the test hooks)."""
    first = world["delivery"]()
    for key in ("coffee.jpg", "chelsea.jpg"):
        first.s3.meta.events.register("before-send.s3.GetObject", _missing(key))
    first.process(world["chunk"])
    _finish(world, world["chunk"].run)
    base = world["replayer"]
    return Replayer(
        s3=base.s3,
        sqs=sqs,
        ledger=base.ledger,
        replays=base.replays,
        targets=dataclasses.replace(base.targets, chunk_items=1),
    )


def _assert_replayed_once_after_a_resend(world: dict[str, Any]) -> None:
    """The next replay (its clients unhooked) sends the broken round again; then each line is
    counted once."""
    run, again = world["chunk"].run, world["replayer"]
    progress = again.replays.progress(run)
    assert (progress.replay_round, progress.sent, progress.done) == (1, 2, 0)
    report = again.replay_items(run, ReplayFilter())
    assert (report.replay_round, report.resent, report.lines) == (1, True, (1, 2))
    _run_replay_chunks(world, world["delivery"]())
    assert replay_runs(again, [run], ReplayFilter()) == []  # nothing left: it prunes round 1
    raw = _assert_finished_once(world)
    assert (raw.failures, again.ledger.get_run(run).ok) == ([], 2)
    assert again.replays.progress(run).replay_round == 1  # no second round was needed
    kept = world["s3"].list_objects_v2(Bucket=world["bucket"], Prefix=f"replays/{run}/")
    assert kept["KeyCount"] == 0  # the round's kept chunks go once it is pruned


def test_a_replay_chunk_s_lines_leave_the_older_failures_when_it_is_published(world):
    # GIVEN a finished run with lines 1 and 2 failed, replayed one line a chunk
    run = world["chunk"].run
    replayer = _two_failed_lines_replayed_one_a_chunk(world, boto3.client("sqs"))
    assert replayer.replay_items(run, ReplayFilter()).chunks == 2
    # WHEN replay chunk 0 is delivered, and chunk 1 never is (slow, poison, in the WorkDLQ)
    sqs, queue = world["sqs"], world["work_queue"]
    bodies = []
    while got := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        for message in got:
            bodies.append(parse_work_message(orjson.loads(message["Body"])))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    world["delivery"]().process(*next(b for b in bodies if b[0].number == 0))
    # AND the user's replay waits for the round and gives up, as does the next one
    for _ in range(2):
        with pytest.raises(ReplayTimeoutError):
            replay_runs(replayer, [run], ReplayFilter(), source=ReplaySource.ITEMS, timeout_s=1)
    # THEN read raw, line 1 is a result only and line 2 a failure only, as the ledger counts
    raw = read_raw(world["s3"], world["bucket"], run)
    assert (raw.result_lines, raw.failure_lines) == ({1: 1}, {2: 1})
    state = replayer.ledger.get_run(run)
    assert (state.ok, state.failed) == (1, 1)
    # AND the summary says so too
    summary = read_summary(world["s3"], world["bucket"], run)
    assert (summary["ok"], summary["failed"]) == (1, 1)


def test_a_redelivered_replay_chunk_prunes_for_a_delivery_that_died_after_publishing(world):
    # GIVEN a replayed line whose delivery counts and publishes, then dies before its prune
    run = world["chunk"].run
    replayer = _two_failed_lines_replayed_one_a_chunk(world, boto3.client("sqs"))
    replayer.replay_items(run, ReplayFilter())
    sqs, queue = world["sqs"], world["work_queue"]
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)["Messages"][0]
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=got["ReceiptHandle"])
    chunk, mark = parse_work_message(orjson.loads(got["Body"]))
    dying = world["delivery"]()
    dying.s3.meta.events.register("before-send.s3.GetObject", _dies_on_failure_part_read)
    with pytest.raises(ConnectionError):
        dying.process(chunk, mark)
    line = chunk.items[0].line
    raw = read_raw(world["s3"], world["bucket"], run)
    assert (raw.result_lines[line], raw.failure_lines[line]) == (1, 1)  # twice, for now
    # WHEN the message comes back
    assert not world["delivery"]().process(chunk, mark).is_counted
    # THEN the line is a result only
    raw = read_raw(world["s3"], world["bucket"], run)
    assert (raw.result_lines[line], raw.failure_lines[line]) == (1, 0)


def test_a_replay_whose_send_breaks_part_way_is_sent_again_by_the_next_replay(world):
    # GIVEN a replay whose SQS accepts chunk 0 of the round and fails chunk 1 on every try
    sqs = boto3.client("sqs")
    _failing_entry(sqs, "1")
    broken = _two_failed_lines_replayed_one_a_chunk(world, sqs)
    # WHEN the replay's send breaks
    with pytest.raises(ThrottledError):
        broken.replay_items(world["chunk"].run, ReplayFilter())
    # THEN the round keeps its claim of both chunks, and the next replay sends again the one
    # not counted; each line is counted once
    _assert_replayed_once_after_a_resend(world)


def test_a_replay_stopped_between_its_claim_and_its_send_is_sent_again_by_the_next(world):
    # GIVEN a replay stopped (Ctrl-C) as it starts sending, its round claimed
    sqs = boto3.client("sqs")

    def ctrl_c(**_: Any) -> None:
        raise KeyboardInterrupt

    sqs.meta.events.register("before-call.sqs.SendMessageBatch", ctrl_c)
    broken = _two_failed_lines_replayed_one_a_chunk(world, sqs)
    with pytest.raises(KeyboardInterrupt):
        broken.replay_items(world["chunk"].run, ReplayFilter())
    assert (
        world["sqs"].get_queue_attributes(
            QueueUrl=world["work_queue"], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        == "0"
    )
    # THEN the next replay sends the round, instead of being refused for good
    _assert_replayed_once_after_a_resend(world)


def test_a_replay_send_whose_answer_is_lost_after_sqs_took_it_counts_each_line_once(world):
    # GIVEN a replay whose SendMessageBatch reaches SQS (both chunks stored), then its answer
    # is lost on botocore's last try: the replay cannot know the chunks went out
    sqs = boto3.client("sqs")

    def lost_answer(**_: Any) -> None:
        raise ConnectionError("the answer was lost")

    sqs.meta.events.register("after-call.sqs.SendMessageBatch", lost_answer)
    broken = _two_failed_lines_replayed_one_a_chunk(world, sqs)
    with pytest.raises(ConnectionError):
        broken.replay_items(world["chunk"].run, ReplayFilter())
    # THEN the next replay sends both again (neither is counted yet): each is counted once,
    # the copies refused by their markers, and no second round claims lines still on their way
    _assert_replayed_once_after_a_resend(world)


def test_a_replay_of_lines_from_more_chunks_than_one_replay_chunk_names_claims_all_it_sends(
    world,
):
    # GIVEN a finished run of 70 one-line chunks whose image was missing (it is back now):
    # a replay chunk names at most MAX_ORIGINS (64) origin chunks, so the lines need two
    replayer, s3, bucket = world["replayer"], world["s3"], world["bucket"]
    ledger, run, lines = replayer.ledger, f"r{uuid.uuid4().hex[:8]}", MAX_ORIGINS + 6
    ledger.start_run(run, manifest="s3://in/m.csv")
    for chunk in range(lines):
        error = ImageFetchError("gone", error="NoSuchKey", line=chunk + 1)
        record = FailureRecord.from_exception(
            error, run=run, line=chunk + 1, bucket=bucket, key="coffee.jpg", attempts=1
        )
        write_records(s3, bucket, part_names(run, chunk, 0)[1].key, [record])
        count_chunk(ledger, run, chunk, ok=0, missing=1)
    ledger.record_split_progress(run, lines_split=lines, chunks_sent=lines, is_done=True)
    targets = CommitTargets(s3, world["sqs"], bucket, world["queue"])
    finalize_run(
        {"run": run, "manifest": {"uri": "s3://in/m.csv"}},
        ledger=ledger,
        s3=s3,
        results_bucket=bucket,
        now=10**10,
        targets=targets,
    )
    # WHEN every line is replayed
    report = replayer.replay_items(run, ReplayFilter())
    # THEN the round claimed exactly the chunks it sent: not settled before the last is counted
    assert report.chunks == replayer.replays.progress(run).sent == 2
    worker = world["delivery"]()
    first = world["sqs"].receive_message(QueueUrl=world["work_queue"], MaxNumberOfMessages=1)
    (message,) = first["Messages"]
    worker.process(*parse_work_message(orjson.loads(message["Body"])))
    world["sqs"].delete_message(
        QueueUrl=world["work_queue"], ReceiptHandle=message["ReceiptHandle"]
    )
    assert not replayer.is_settled(run)
    # AND once both are counted, the raw parts hold every line exactly once, in the results
    _run_replay_chunks(world, worker)
    replayer.wait_settled([run], timeout_s=30)
    summary = replayer.refresh_summary(run, now=10**10, replayed=report)
    raw = assert_exactly_once_raw(s3, bucket, run, lines, summary)
    assert (len(raw.results), len(raw.failures)) == (lines, 0)
