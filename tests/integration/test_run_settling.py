"""A finished run's status over the wire: which reasons stop holding once every chunk is counted.

The run item has one `reason`, and a stall or a failed execution overwrites whatever the split
wrote there before; the split's own reason (a truncated manifest) is kept apart in
`split_reason`, so a run that lost lines can never settle SUCCEEDED, and one that lost none does
not stay PARTIAL for a reason that no longer holds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import boto3
import pytest

import pipeline.ledger.finalize as finalize_module
from pipeline.ledger.finalize import MarkerRead, finalize_run, resettle_if_finished
from pipeline.ledger.items import ChunkCommit, ChunkCounts, run_key
from pipeline.ledger.runs import RunStatus
from pipeline.ledger.summary import read_summary
from pipeline.ledger.table import RunLedger
from tests.ledger_counts import count_chunk

pytestmark = pytest.mark.integration

RUN = "c" * 20
TRUNCATED = "TruncatedGzip: the gzip stream ends before its end marker"
STALLED = {"stalled": True}
EXECUTION_FAILED = {"error": {"Error": "WaitNotArmed", "Cause": "InternalServerError"}}


@pytest.fixture
def ledger(dynamodb, table) -> RunLedger:
    ledger = RunLedger(dynamodb, table)
    ledger.start_run(RUN, manifest="s3://in/m.csv.gz")
    return ledger


def _split(ledger: RunLedger, *, reason: str | None = None) -> None:
    """The split is done: 4 lines in 2 chunks, the last pass's reason as given."""
    ledger.record_split_progress(RUN, lines_split=4, chunks_sent=2, is_done=True, reason=reason)


def _count_chunk_1_against_parts_of_1_row(ledger: RunLedger) -> None:
    """Count chunk 1 ok 2 while its committed parts hold 1 row: counters and markers disagree."""
    count_chunk(ledger, RUN, 1, ok=2, attempt="late", result_rows=1)


def _finalize(ledger: RunLedger, s3, bucket: str, ended: dict) -> str:
    """Finalize with the execution's state as the state machine hands it over; the status."""
    state = {"run": RUN, "manifest": {"uri": "s3://in/m.csv.gz"}, **ended}
    return finalize_run(state, ledger=ledger, s3=s3, results_bucket=bucket, now=2e9)["status"]


def _count_the_rest(ledger: RunLedger, s3, bucket: str) -> None:
    """Chunk 1 is counted after Finalize, as a worker does it: count, then re-settle."""
    assert count_chunk(ledger, RUN, 1, ok=1, missing=1, attempt="late")
    assert resettle_if_finished(ledger, s3, bucket, RUN)


@pytest.mark.parametrize("ended", [STALLED, EXECUTION_FAILED], ids=["stalled", "execution failed"])
def test_a_run_whose_last_chunk_is_counted_after_finalize_settles_succeeded(
    ledger, s3, bucket, ended
):
    _split(ledger)
    count_chunk(ledger, RUN, 0, ok=2, attempt="first")
    assert _finalize(ledger, s3, bucket, ended) == RunStatus.PARTIAL
    _count_the_rest(ledger, s3, bucket)
    state = ledger.get_run(RUN)
    assert (state.status, state.reason, state.pending) == (RunStatus.SUCCEEDED, None, 0)
    summary = read_summary(s3, bucket, RUN)
    assert (summary["status"], summary["ok"], summary["failed"]) == ("SUCCEEDED", 3, 1)


@pytest.mark.parametrize("ended", [STALLED, EXECUTION_FAILED], ids=["stalled", "execution failed"])
def test_a_truncated_manifest_stays_partial_with_its_own_reason_once_counted(
    ledger, s3, bucket, ended
):
    # GIVEN a split that found the manifest cut short, then a stall or a failed execution,
    # whose reason overwrites the split's in the run item
    _split(ledger, reason=TRUNCATED)
    count_chunk(ledger, RUN, 0, ok=2, attempt="first")
    assert _finalize(ledger, s3, bucket, ended) == RunStatus.PARTIAL
    assert ledger.get_run(RUN).reason != TRUNCATED
    # WHEN every chunk the split sent is counted
    _count_the_rest(ledger, s3, bucket)
    # THEN the lines past the cut are still missing: PARTIAL, for the split's reason
    state = ledger.get_run(RUN)
    assert (state.status, state.reason, state.pending) == (RunStatus.PARTIAL, TRUNCATED, 0)
    summary = read_summary(s3, bucket, RUN)
    assert (summary["status"], summary["reason"]) == ("PARTIAL", TRUNCATED)


def test_an_execution_that_failed_before_the_split_was_done_stays_partial(ledger, s3, bucket):
    ledger.record_split_progress(RUN, lines_split=2, chunks_sent=1, is_done=False)
    count_chunk(ledger, RUN, 0, ok=2, attempt="first")
    assert _finalize(ledger, s3, bucket, EXECUTION_FAILED) == RunStatus.PARTIAL
    state = ledger.get_run(RUN)
    assert state.pending == 0  # every line split is counted, but the split never ended
    assert state.reason.startswith("the run's execution failed: WaitNotArmed")


def test_a_run_item_without_the_split_s_reason_keeps_a_failed_execution_s(ledger, s3, bucket):
    # A run item written before `split_reason` was kept: nothing says the split read it all
    _split(ledger)
    ledger.client.update_item(
        TableName=ledger.table,
        Key=run_key(RUN),
        UpdateExpression="REMOVE split_reason",
    )
    count_chunk(ledger, RUN, 0, ok=2, attempt="first")
    assert _finalize(ledger, s3, bucket, EXECUTION_FAILED) == RunStatus.PARTIAL
    _count_the_rest(ledger, s3, bucket)
    assert ledger.get_run(RUN).status is RunStatus.PARTIAL


# -- two settlers, or a settler and a late count, interleaved ---------------------------------


def _while_settling(monkeypatch, name: str, then) -> None:
    """Run `then()` once, when Finalize's settling first calls `pipeline.ledger.finalize.name`."""
    real = getattr(finalize_module, name)
    fired: list[bool] = []

    def hooked(*args, **kwargs):
        if not fired:
            fired.append(True)
            then()
        return real(*args, **kwargs)

    monkeypatch.setattr(finalize_module, name, hooked)


def _late_worker(ledger: RunLedger, s3, bucket: str) -> Callable[[], None]:
    """A worker counting the last chunk, then settling again, as `ChunkWorker` does."""

    def late() -> None:
        count_chunk(ledger, RUN, 1, ok=1, missing=1, attempt="late")
        resettle_if_finished(ledger, s3, bucket, RUN)

    return late


@pytest.mark.parametrize(
    "moment",
    ["settled_status", "write_summary"],
    ids=["once the counters are read", "before the summary is written"],
)
def test_the_last_count_landing_while_finalize_settles_ends_succeeded_everywhere(
    ledger, s3, bucket, monkeypatch, moment
):
    # GIVEN a stalled run whose last chunk is counted (and its worker settles again) at a
    # moment inside Finalize's own settling
    _split(ledger)
    count_chunk(ledger, RUN, 0, ok=2, attempt="first")
    _while_settling(monkeypatch, moment, _late_worker(ledger, s3, bucket))
    # WHEN Finalize settles THEN the run, its summary and what Finalize returns all say
    # SUCCEEDED: never FAILED for counters read before the markers, never a stale PARTIAL
    assert _finalize(ledger, s3, bucket, STALLED) == RunStatus.SUCCEEDED
    state = ledger.get_run(RUN)
    assert (state.status, state.reason, state.pending) == (RunStatus.SUCCEEDED, None, 0)
    assert _summaries(s3, bucket) == ["_SUCCESS.json"]
    assert read_summary(s3, bucket, RUN)["failed_by_stage"] == {"fetch": 1}


def test_a_replay_chunk_counted_while_the_markers_are_read_is_no_impossible_count(
    ledger, s3, bucket, monkeypatch
):
    # GIVEN a finished run, every chunk counted, lines 3 and 4 failed; line 3 replayed since
    _split(ledger)
    count_chunk(ledger, RUN, 0, ok=2, attempt="first")
    count_chunk(ledger, RUN, 1, ok=0, missing=2, attempt="first")
    assert _finalize(ledger, s3, bucket, {}) == RunStatus.SUCCEEDED
    moved = ChunkCounts(
        ok=1, failed=0, replaced_by_stage={"fetch": 1}, replaced_by_error={"NoSuchKey": 1}
    )
    commit = ChunkCommit("replay", items=1, result_rows=1, failure_rows=0)
    ledger.record_replay_chunk(RUN, 1, 0, moved, commit=commit, origins=[(0, 1)])
    # AND line 4's replay chunk counted while the next settle reads the markers: they then
    # hold its marker, and the counters read before them do not hold its count
    _while_settling(
        monkeypatch,
        "iter_committed_chunks",
        lambda: ledger.record_replay_chunk(RUN, 1, 1, moved, commit=commit, origins=[(0, 1)]),
    )
    # WHEN the run is settled
    finalize_module.settle_run(ledger, s3, bucket, RUN, now=2e9)
    # THEN it is SUCCEEDED with both replays counted, never FAILED for "impossible counts"
    state = ledger.get_run(RUN)
    assert (state.status, state.reason, state.ok, state.failed) == (
        RunStatus.SUCCEEDED,
        None,
        4,
        0,
    )
    assert read_summary(s3, bucket, RUN)["ok"] == 4


def test_two_settlers_interleaving_their_summary_writes_leave_the_right_one(
    ledger, dynamodb, s3, bucket, monkeypatch
):
    # GIVEN Finalize deciding PARTIAL (the last chunk is counted just after it read the
    # counters) and that chunk's worker settling SUCCEEDED, their writes interleaved: Finalize
    # puts _PARTIAL, the worker puts _SUCCESS, Finalize deletes _SUCCESS, the worker deletes
    # _PARTIAL
    _split(ledger)
    count_chunk(ledger, RUN, 0, ok=2, attempt="first")
    _while_settling(
        monkeypatch,
        "settled_status",
        lambda: count_chunk(ledger, RUN, 1, ok=1, missing=1, attempt="late"),
    )
    worker_s3 = boto3.client("s3", endpoint_url=s3.meta.endpoint_url)
    worker_put, finalize_deleted = threading.Event(), threading.Event()
    worker: list[threading.Thread] = []

    def start_the_worker(**_) -> None:  # Finalize, before its first delete
        if worker:
            return
        worker_ledger = RunLedger(dynamodb, ledger.table)
        settle = lambda: resettle_if_finished(worker_ledger, worker_s3, bucket, RUN)  # noqa: E731
        worker.append(threading.Thread(target=settle))
        worker[0].start()
        assert worker_put.wait(30)

    def let_the_worker_delete(**_) -> None:  # Finalize, after its first delete
        if not finalize_deleted.is_set():
            finalize_deleted.set()
            worker[0].join(30)

    def wait_for_finalize_s_delete(**_) -> None:  # the worker, before its delete
        finalize_deleted.wait(30)

    worker_s3.meta.events.register("after-call.s3.PutObject", lambda **_: worker_put.set())
    worker_s3.meta.events.register("before-call.s3.DeleteObject", wait_for_finalize_s_delete)
    s3.meta.events.register("before-call.s3.DeleteObject", start_the_worker)
    s3.meta.events.register("after-call.s3.DeleteObject", let_the_worker_delete)
    # WHEN Finalize settles
    _finalize(ledger, s3, bucket, STALLED)
    # THEN one summary is left, and it says what the ledger says
    assert not worker[0].is_alive()
    assert ledger.get_run(RUN).status is RunStatus.SUCCEEDED
    assert _summaries(s3, bucket) == ["_SUCCESS.json"]


def _summaries(s3, bucket: str) -> list[str]:
    found = s3.list_objects_v2(Bucket=bucket, Prefix=f"results/{RUN}/_")
    return sorted(o["Key"].rsplit("/", 1)[1] for o in found.get("Contents", []))


def _count_marker_reads(monkeypatch) -> list[str]:
    """Every read of a run's chunk markers by settling, from now on."""
    reads: list[str] = []
    real = finalize_module.iter_committed_chunks

    def counted(ledger_, run):
        reads.append(run)
        return real(ledger_, run)

    monkeypatch.setattr(finalize_module, "iter_committed_chunks", counted)
    return reads


def test_the_markers_are_read_once_every_chunk_is_counted_and_only_then(
    ledger, s3, bucket, monkeypatch
):
    # GIVEN a run of 3 chunks finalized as stalled after its first
    ledger.record_split_progress(RUN, lines_split=6, chunks_sent=3, is_done=True)
    count_chunk(ledger, RUN, 0, ok=2, attempt="first")
    reads = _count_marker_reads(monkeypatch)
    assert _finalize(ledger, s3, bucket, STALLED) == RunStatus.PARTIAL
    assert reads == []  # PARTIAL whatever they say: not read while chunks are out
    # WHEN a late chunk is counted and its worker settles again, one chunk still out
    count_chunk(ledger, RUN, 1, ok=2, attempt="late")
    assert resettle_if_finished(ledger, s3, bucket, RUN)
    # THEN the summary follows the count, and the markers were not read
    assert (read_summary(s3, bucket, RUN)["ok"], len(reads)) == (4, 0)
    # WHEN the last one is counted THEN they are, once, and the run SUCCEEDED
    count_chunk(ledger, RUN, 2, ok=1, missing=1, attempt="late")
    assert resettle_if_finished(ledger, s3, bucket, RUN)
    assert (ledger.get_run(RUN).status, len(reads)) == (RunStatus.SUCCEEDED, 1)
    # AND neither a duplicate delivery of a chunk nor a replay chunk's worker reads them again
    assert resettle_if_finished(ledger, s3, bucket, RUN)
    assert resettle_if_finished(ledger, s3, bucket, RUN, is_replay=True)
    assert (ledger.get_run(RUN).status, len(reads)) == (RunStatus.SUCCEEDED, 1)


def test_a_duplicate_settles_a_run_whose_counting_delivery_died_before_it_did(ledger, s3, bucket):
    # GIVEN a stalled run whose last chunk was counted by a delivery that died before settling
    _split(ledger)
    count_chunk(ledger, RUN, 0, ok=2, attempt="first")
    _finalize(ledger, s3, bucket, STALLED)
    count_chunk(ledger, RUN, 1, ok=1, missing=1, attempt="late")
    # WHEN a duplicate delivery of that chunk comes (it counts nothing) THEN it settles the run
    assert resettle_if_finished(ledger, s3, bucket, RUN)
    assert ledger.get_run(RUN).status is RunStatus.SUCCEEDED


def test_a_settler_deciding_from_an_older_view_never_overwrites_a_newer_decision(
    ledger, s3, bucket, monkeypatch
):
    # GIVEN a finished, fully counted run whose chunk 1 marker disagrees with its counters
    # (counted ok 2, its committed parts hold 1 row)
    _split(ledger)
    count_chunk(ledger, RUN, 0, ok=2, attempt="first")
    _count_chunk_1_against_parts_of_1_row(ledger)
    ledger.mark_finished(RUN, RunStatus.SUCCEEDED)
    # AND a replay chunk's worker settling without reading the markers, while the replayer's
    # settle (which reads them) finds the disagreement and writes FAILED first
    _while_settling(
        monkeypatch,
        "settled_status",
        lambda: finalize_module.settle_run(ledger, s3, bucket, RUN, now=2e9),
    )
    # WHEN the worker's settle goes on from the view it read before that
    resettle_if_finished(ledger, s3, bucket, RUN, is_replay=True)
    # THEN the run stays FAILED, in the ledger and in its summary
    state = ledger.get_run(RUN)
    assert state.status is RunStatus.FAILED, state.reason
    assert state.reason.startswith("impossible counts")
    assert _summaries(s3, bucket) == ["_PARTIAL.json"]
    assert read_summary(s3, bucket, RUN)["status"] == "FAILED"


def test_impossible_counts_found_before_stand_while_the_markers_are_not_read(ledger, s3, bucket):
    # GIVEN a finished run found FAILED, with a chunk still to count
    ledger.record_split_progress(RUN, lines_split=6, chunks_sent=3, is_done=True)
    count_chunk(ledger, RUN, 0, ok=2, attempt="first")
    reason = "impossible counts: chunk 0 is counted but Split sent only 0"
    ledger.mark_finished(RUN, RunStatus.FAILED, reason=reason)
    # WHEN a late chunk's worker settles again, not reading the markers
    count_chunk(ledger, RUN, 1, ok=2, attempt="late")
    assert resettle_if_finished(ledger, s3, bucket, RUN)
    # THEN the run stays FAILED for that reason: nothing read since says otherwise
    state = ledger.get_run(RUN)
    assert (state.status, state.reason) == (RunStatus.FAILED, reason)


def test_a_duplicate_mends_the_summary_of_a_settle_that_died_before_writing_it(
    ledger, s3, bucket, monkeypatch
):
    # GIVEN a stalled run whose last chunk's worker settles SUCCEEDED in the ledger and dies
    # before its summary is written (an S3 503, the function's timeout)
    _split(ledger)
    count_chunk(ledger, RUN, 0, ok=2, attempt="first")
    _finalize(ledger, s3, bucket, STALLED)
    count_chunk(ledger, RUN, 1, ok=1, missing=1, attempt="late")

    def dies(*_, **__) -> None:
        raise ConnectionError("the function died")

    with monkeypatch.context() as patched:
        patched.setattr(finalize_module, "write_summary", dies)
        with pytest.raises(ConnectionError):
            resettle_if_finished(ledger, s3, bucket, RUN)
    assert ledger.get_run(RUN).status is RunStatus.SUCCEEDED
    assert _summaries(s3, bucket) == ["_PARTIAL.json"]  # the file still says what it said
    # WHEN its message comes back: the chunk is counted, the delivery a duplicate
    assert resettle_if_finished(ledger, s3, bucket, RUN)
    # THEN the summary file says what the ledger says
    assert _summaries(s3, bucket) == ["_SUCCESS.json"]
    assert read_summary(s3, bucket, RUN)["ok"] == 3


def test_counts_moving_under_the_marker_read_never_drop_impossible_counts(
    ledger, s3, bucket, monkeypatch
):
    # GIVEN a fully counted run found FAILED: chunk 1's marker holds 2 failure rows, counted 1
    _split(ledger)
    count_chunk(ledger, RUN, 0, ok=1, missing=1, attempt="first")
    count_chunk(ledger, RUN, 1, ok=1, missing=1, attempt="late", failure_rows=2)
    assert _finalize(ledger, s3, bucket, {}) == RunStatus.FAILED
    # AND a replay since (so the next settle reads the markers again), and another replay
    # chunk counted while it reads them; that settle stops after its first summary write
    # (the replayer is killed)
    moved = ChunkCounts(
        ok=1, failed=0, replaced_by_stage={"fetch": 1}, replaced_by_error={"NoSuchKey": 1}
    )
    commit = ChunkCommit("replay", items=1, result_rows=1, failure_rows=0)
    ledger.record_replay_chunk(RUN, 1, 1, moved, commit=commit, origins=[(0, 0)])
    reads = _count_marker_reads(monkeypatch)
    _while_settling(
        monkeypatch,
        "iter_committed_chunks",
        lambda: ledger.record_replay_chunk(RUN, 1, 0, moved, commit=commit, origins=[(0, 1)]),
    )
    written: list[str] = []
    real = finalize_module.write_summary

    def killed_after_one(client, bucket_, run, summary):
        written.append(summary.status.value)
        real(client, bucket_, run, summary)
        raise ConnectionError("the replayer was stopped")

    monkeypatch.setattr(finalize_module, "write_summary", killed_after_one)
    with pytest.raises(ConnectionError):
        finalize_module.settle_run(ledger, s3, bucket, RUN, now=2e9)
    # THEN what it wrote before it stopped still says FAILED: the markers read while a count
    # moved the counters are as if unread, and the impossible counts found before stand
    assert (written, len(reads)) == (["FAILED"], 1)
    assert ledger.get_run(RUN).status is RunStatus.FAILED
    assert _summaries(s3, bucket) == ["_PARTIAL.json"]


@pytest.mark.parametrize("settlers", [2, 3])
def test_settlers_that_agree_stop_at_once(ledger, s3, bucket, monkeypatch, settlers):
    # GIVEN a finished run, and several settlers at once whose S3 calls are slower than their
    # DynamoDB ones (each one's read-back sees another's newer write of the same decision)
    _split(ledger)
    count_chunk(ledger, RUN, 0, ok=2, attempt="first")
    count_chunk(ledger, RUN, 1, ok=1, missing=1, attempt="first")
    assert _finalize(ledger, s3, bucket, {}) == RunStatus.SUCCEEDED
    rounds: list[int] = []
    real = finalize_module.write_summary

    def counted(*args, **kwargs):
        rounds.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(finalize_module, "write_summary", counted)
    start = threading.Barrier(settlers)

    def settle() -> None:
        client = boto3.client("s3", endpoint_url=s3.meta.endpoint_url)
        client.meta.events.register("before-call.s3.*", lambda **_: time.sleep(0.03))
        dynamodb = boto3.client("dynamodb", endpoint_url=ledger.client.meta.endpoint_url)
        own = RunLedger(dynamodb, ledger.table)
        start.wait()
        finalize_module.settle_run(own, client, bucket, RUN, now=2e9, markers=MarkerRead.NEVER)

    threads = [threading.Thread(target=settle) for _ in range(settlers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # THEN each wrote its summary at most twice (it went round for ever before), and all agree
    assert len(rounds) <= 2 * settlers
    assert ledger.get_run(RUN).status is RunStatus.SUCCEEDED
    assert _summaries(s3, bucket) == ["_SUCCESS.json"]


def test_a_duplicate_checks_the_markers_its_dead_counting_delivery_never_checked(
    ledger, s3, bucket
):
    # GIVEN a stalled run whose last chunk is counted ok 2 while its committed parts hold 1
    # row, by a delivery that died before settling
    _split(ledger)
    count_chunk(ledger, RUN, 0, ok=2, attempt="first")
    _finalize(ledger, s3, bucket, STALLED)
    _count_chunk_1_against_parts_of_1_row(ledger)
    # WHEN its message comes back, a duplicate, and settles the run
    assert resettle_if_finished(ledger, s3, bucket, RUN)
    # THEN it read the markers no settle had read at these counts: FAILED, never SUCCEEDED
    state = ledger.get_run(RUN)
    assert state.status is RunStatus.FAILED
    assert state.reason.startswith("impossible counts")
    assert read_summary(s3, bucket, RUN)["status"] == "FAILED"


def test_a_split_pass_still_running_after_the_run_finished_changes_nothing(ledger, s3, bucket):
    # GIVEN a truncated manifest's run found FAILED by its markers (chunk 1 counted ok 2, its
    # parts hold 1 row) and settled
    _split(ledger, reason=TRUNCATED)
    count_chunk(ledger, RUN, 0, ok=2, attempt="first")
    _count_chunk_1_against_parts_of_1_row(ledger)
    assert _finalize(ledger, s3, bucket, {}) == RunStatus.FAILED
    # WHEN an attempt of the last pass, still running (a zombie), writes its totals again
    again = ledger.record_split_progress(
        RUN, lines_split=4, chunks_sent=2, is_done=True, reason=TRUNCATED
    )
    # THEN it is refused, and a later settle (a duplicate delivery) keeps the run FAILED
    assert again is False
    assert resettle_if_finished(ledger, s3, bucket, RUN)
    state = ledger.get_run(RUN)
    assert (state.status, state.reason.startswith("impossible counts")) == (RunStatus.FAILED, True)
