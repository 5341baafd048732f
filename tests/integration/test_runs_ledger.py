"""The run ledger against DynamoDB on the moto server: counts add exactly once."""

from __future__ import annotations

import threading

import boto3
import orjson
import pytest
from botocore.awsrequest import AWSResponse

from pipeline.ledger.items import ChunkCounts
from pipeline.ledger.runs import RunStatus, run_id
from pipeline.ledger.summary import build_summary
from pipeline.ledger.table import RunLedger, UnknownRunError
from tests.clocks import ManualClock
from tests.ledger_counts import count_chunk
from tests.split_chain import EARLY_RETRY_LINES, EARLY_RETRY_SENDS, split_with_an_early_retry

pytestmark = pytest.mark.integration


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_000.0)


@pytest.fixture
def ledger(dynamodb, table, clock) -> RunLedger:
    return RunLedger(dynamodb, table, clock=clock)


def test_start_run_is_idempotent(ledger):
    run = run_id("in", "m.csv.gz", "etag1")
    assert ledger.start_run(run, manifest="s3://in/m.csv.gz") is True
    assert ledger.start_run(run, manifest="s3://in/other.csv.gz") is False
    state = ledger.get_run(run)
    assert (state.run, state.manifest, state.status) == (run, "s3://in/m.csv.gz", RunStatus.RUNNING)
    assert state.started_at == 1_000.0


def test_get_run_of_unknown_run_raises(ledger):
    with pytest.raises(UnknownRunError):
        ledger.get_run("0" * 20)


def test_chunk_recorded_twice_counts_once(ledger):
    run = "a" * 20
    ledger.start_run(run, manifest="s3://in/m")
    assert count_chunk(ledger, run, 0, ok=8, missing=2) is True
    assert count_chunk(ledger, run, 0, ok=8, missing=2) is False
    assert count_chunk(ledger, run, 1, ok=10) is True
    state = ledger.get_run(run)
    assert (state.ok, state.failed, state.chunks_done, state.images) == (18, 2, 2, 20)
    assert state.failed_by_stage == {"fetch": 2}
    assert state.failed_by_error == {"NoSuchKey": 2}
    assert state.compute_s == pytest.approx(3.0)


def test_concurrent_double_record_from_two_threads_counts_once(dynamodb, table):
    run = "b" * 20
    RunLedger(dynamodb, table).start_run(run, manifest="s3://in/m")
    chunks = range(12)
    results: dict[str, list[bool]] = {"t1": [], "t2": []}
    barrier = threading.Barrier(2)

    def worker(name: str) -> None:
        client = boto3.client("dynamodb", endpoint_url=dynamodb.meta.endpoint_url)
        ledger = RunLedger(client, table)
        barrier.wait()
        for chunk in chunks:
            results[name].append(count_chunk(ledger, run, chunk, ok=5, missing=1))

    threads = [threading.Thread(target=worker, args=(name,)) for name in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # exactly one of the two calls for each chunk counted it
    assert [a + b for a, b in zip(results["t1"], results["t2"], strict=True)] == [1] * 12
    state = RunLedger(dynamodb, table).get_run(run)
    assert (state.ok, state.failed, state.chunks_done) == (60, 12, 12)


def test_split_progress_never_moves_backwards(ledger):
    run = "c" * 20
    ledger.start_run(run, manifest="s3://in/m")
    assert ledger.record_split_progress(
        run, lines_split=100, chunks_sent=2, is_done=False, parse_failures_by_error={"BadCsv": 1}
    )
    # a Split retried from an older checkpoint reports less: ignored
    assert not ledger.record_split_progress(run, lines_split=50, chunks_sent=1, is_done=False)
    assert ledger.record_split_progress(
        run, lines_split=100, chunks_sent=2, is_done=True, parse_failures_by_error={"BadCsv": 1}
    )
    state = ledger.get_run(run)
    assert (state.lines_split, state.chunks_sent, state.is_split_done) == (100, 2, True)
    assert (state.failed, state.failed_by_stage, state.failed_by_error) == (
        1,
        {"parse": 1},
        {"BadCsv": 1},
    )


def test_a_paused_split_pass_is_recorded_until_the_next_pass(ledger):
    run = "p" * 20
    ledger.start_run(run, manifest="s3://in/m")
    ledger.record_split_progress(run, lines_split=40, chunks_sent=1, is_done=False, is_paused=True)
    assert ledger.get_run(run).is_split_paused
    ledger.record_split_progress(run, lines_split=80, chunks_sent=2, is_done=False)
    assert not ledger.get_run(run).is_split_paused


def test_chunk_reservations_only_rise_within_a_pass_and_a_later_pass_replaces_them(ledger):
    run = "v" * 20
    ledger.start_run(run, manifest="s3://in/m")
    assert ledger.reserve_chunks(run, first_chunk=0, below=1) is None
    assert ledger.reserve_chunks(run, first_chunk=0, below=4) == (0, 1)
    # a retry of the same pass asks for less: kept as it was, and told what that is
    assert ledger.reserve_chunks(run, first_chunk=0, below=2) == (0, 4)
    assert ledger.reserve_chunks(run, first_chunk=0, below=4) == (0, 4)
    # the next pass replaces it; a pass from an older checkpoint cannot
    assert ledger.reserve_chunks(run, first_chunk=3, below=4) == (0, 4)
    assert ledger.reserve_chunks(run, first_chunk=0, below=9) == (3, 4)
    assert ledger.reserve_chunks(run, first_chunk=3, below=5) == (3, 4)


@pytest.mark.parametrize("retry_stops", ["paused", "out of budget"])
def test_a_retry_told_to_stop_at_once_goes_past_its_dead_attempt_by_the_ledger(
    ledger, tmp_path, retry_stops
):
    # GIVEN pass 0 died after sending 40 chunks, and its retry is told to stop after its first
    run = "w" * 20
    ledger.start_run(run, manifest="s3://in/m")
    # WHEN the split goes on to the end, its chunk reservations in the ledger, over the wire
    chain = split_with_an_early_retry(
        tmp_path, retry_stops=retry_stops, reservations=ledger, run=run
    )
    # THEN every re-sent chunk held the same lines (`Chain.read_chunks` asserts it), and the
    # chunks and Split's parse parts hold every line exactly once
    assert chain.outcomes[0].pass_chunks >= EARLY_RETRY_SENDS
    assert len(chain.read_chunks) == chain.outcomes[-1].chunks_sent
    assert sorted(chain.lines + chain.failed) == list(range(1, EARLY_RETRY_LINES + 1))


def test_replay_moves_lines_from_failed_to_ok_once(ledger):
    run = "d" * 20
    ledger.start_run(run, manifest="s3://in/m")
    ledger.record_split_progress(run, lines_split=10, chunks_sent=1, is_done=True)
    count_chunk(ledger, run, 0, ok=6, missing=4)
    # replay round 1 of the 4 failed lines: 3 now succeed, 1 fails again, at decode this time
    counts = ChunkCounts(
        ok=3,
        failed=1,
        failed_by_stage={"decode": 1},
        failed_by_error={"DecodeFailed": 1},
        seconds=0.5,
        images=4,
        replaced_by_stage={"fetch": 4},
        replaced_by_error={"NoSuchKey": 4},
    )
    assert ledger.record_replay_chunk(run, 1, 0, counts) is True
    assert ledger.record_replay_chunk(run, 1, 0, counts) is False
    state = ledger.get_run(run)
    assert (state.ok, state.failed, state.lines) == (9, 1, 10)
    assert state.failed_by_stage == {"decode": 1}
    assert state.failed_by_error == {"DecodeFailed": 1}
    assert (state.chunks_done, state.replay_chunks_done) == (1, 1)


def test_replay_chunk_must_replace_as_many_failures_as_it_has_lines(ledger):
    counts = ChunkCounts(ok=2, failed=0, replaced_by_stage={"fetch": 1}, replaced_by_error={"X": 1})
    with pytest.raises(ValueError, match="replaced failures"):
        ledger.record_replay_chunk("e" * 20, 1, 0, counts)


def test_summary_of_a_finished_run_adds_up(ledger, clock):
    run = "f" * 20
    ledger.start_run(run, manifest="s3://in/m.csv.gz")
    ledger.record_split_progress(
        run, lines_split=31, chunks_sent=3, is_done=True, parse_failures_by_error={"BadCsv": 1}
    )
    for chunk, (ok, bad) in enumerate([(10, 0), (8, 2), (10, 0)]):
        count_chunk(ledger, run, chunk, ok=ok, missing=bad)
    count_chunk(ledger, run, 1, ok=8, missing=2)  # a redelivery
    clock.now += 10
    ledger.mark_finished(run, RunStatus.SUCCEEDED)
    summary = build_summary(ledger.get_run(run), now=clock.now).to_dict()
    assert summary["ok"] + summary["failed"] == summary["lines"] == 31
    assert (summary["ok"], summary["failed"], summary["chunks"]) == (28, 3, 3)
    assert summary["failed_by_stage"] == {"fetch": 2, "parse": 1}
    assert summary["failed_by_error"] == {"BadCsv": 1, "NoSuchKey": 2}
    assert summary["status"] == "SUCCEEDED"
    assert summary["seconds"] == 10.0
    assert summary["images_per_s"] == 3.0


def test_list_runs_newest_first_and_mark_finished_unknown(ledger, clock):
    for i, name in enumerate(["1" * 20, "2" * 20, "3" * 20]):
        clock.now = 2_000.0 + i
        ledger.start_run(name, manifest=f"s3://in/{i}")
    assert [s.run for s in ledger.list_runs()][:3] == ["3" * 20, "2" * 20, "1" * 20]
    with pytest.raises(UnknownRunError):
        ledger.mark_finished("9" * 20, RunStatus.FAILED)


def test_listed_runs_are_read_from_the_table_not_from_the_lagging_index(ledger, dynamodb, clock):
    # GIVEN a finished run, and an index page that still shows it running (a global secondary
    # index is eventually consistent on AWS: the page can predate the finish)
    run = "4" * 20
    ledger.start_run(run, manifest="s3://in/4")
    count_chunk(ledger, run, 0, ok=3)
    ledger.mark_finished(run, RunStatus.SUCCEEDED)

    def stale(parsed, **_):
        for item in parsed.get("Items", []):
            item["status"] = {"S": RunStatus.RUNNING.value}
            item.pop("finished_at", None)

    dynamodb.meta.events.register("after-call.dynamodb.Query", stale)
    # WHEN the runs are listed THEN the run is as the table says: finished, its chunk counted
    (state,) = [s for s in ledger.list_runs() if s.run == run]
    assert state.status is RunStatus.SUCCEEDED
    assert (state.ok, state.finished_at) == (3, clock.now)


class _RawBody:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_):
        yield self._data


def test_transaction_conflict_is_retried_and_counted_once(ledger, dynamodb):
    # GIVEN DynamoDB cancels the first transaction for a conflict on the run item
    run = "g" * 20
    ledger.start_run(run, manifest="s3://in/m")
    body = orjson.dumps(
        {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled",
            "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
        }
    )
    calls = []

    def conflict_once(request, **_):
        calls.append(1)
        if len(calls) == 1:
            return AWSResponse(request.url, 400, {}, _RawBody(body))
        return None

    dynamodb.meta.events.register("before-send.dynamodb.TransactWriteItems", conflict_once)
    try:
        assert count_chunk(ledger, run, 0, ok=3) is True
    finally:
        dynamodb.meta.events.unregister("before-send.dynamodb.TransactWriteItems", conflict_once)
    # THEN it was retried on the wire and counted exactly once
    assert len(calls) == 2
    assert ledger.get_run(run).ok == 3
