"""Chunk counting under contention on the moto server, which returns DynamoDB's conflicts.

Real DynamoDB cancels one of two transactions that touch one item at once (`TransactionConflict`)
and refuses a plain write to an item a transaction holds; the local stack does the same
(pipeline/local/dynamodb_conflicts.py), so the ledger's retries really run here. The first
tests force the interleaving by holding the emulator's apply lock (the server runs in this
process) while a transaction waits, claims held; the last one measures conflicts and retries of
many concurrent completions, each chunk delivered twice.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.exceptions import ClientError

from pipeline.failures import ResultWriteError, ThrottledError
from pipeline.ledger.items import COUNTER_SHARDS, shard_key
from pipeline.ledger.table import TRANSACTION_ATTEMPTS, RunLedger
from pipeline.local import dynamodb_conflicts
from pipeline.local.dynamodb_conflicts import ConflictStats
from tests.wait import wait_until

pytestmark = pytest.mark.integration

RUN = "c0ffee" * 3 + "00"


def _record(ledger: RunLedger, chunk: int, ok: int = 3) -> bool:
    return ledger.record_chunk(
        RUN,
        chunk,
        ok=ok,
        failed=1,
        failed_by_stage={"fetch": 1},
        failed_by_error={"NoSuchKey": 1},
        seconds=0.5,
        images=ok,
    )


@pytest.fixture
def ledger(dynamodb, table) -> RunLedger:
    ledger = RunLedger(dynamodb, table)
    ledger.start_run(RUN, manifest="s3://in/m.csv")
    return ledger


def _in_flight(ledger: RunLedger, chunk: int) -> threading.Thread:
    """Start counting `chunk` while the emulator's apply lock is held: its claims stay held."""
    thread = threading.Thread(target=_record, args=(ledger, chunk))
    thread.start()
    wait_until(lambda: dynamodb_conflicts._claims, 10, interval_s=0.01, what="the claim")
    return thread


def test_a_transaction_on_a_held_item_is_cancelled_with_transaction_conflict(
    ledger, dynamodb, table
):
    with dynamodb_conflicts._apply_lock:
        first = _in_flight(RunLedger(dynamodb, table), chunk=0)
        update = {
            "TableName": table,
            "Key": shard_key(RUN, 0),
            "UpdateExpression": "ADD ok :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
        with pytest.raises(ClientError) as cancelled:
            dynamodb.transact_write_items(TransactItems=[{"Update": update}])
        with pytest.raises(ClientError) as refused:
            dynamodb.update_item(**update)
        other_shard = {**update, "Key": shard_key(RUN, 1)}
        writer = threading.Thread(target=dynamodb.update_item, kwargs=other_shard)
        writer.start()  # another item: no conflict, it only waits its turn
    first.join(10)
    writer.join(10)
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = cancelled.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["TransactionConflict"]
    assert refused.value.response["Error"]["Code"] == "TransactionConflictException"
    state = ledger.get_run(RUN)
    assert (state.chunks_done, state.ok) == (1, 4)  # chunk 0's 3, the other shard's 1


def test_the_ledger_retries_a_conflict_until_its_chunk_is_counted(ledger, dynamodb, table):
    second = RunLedger(dynamodb, table)
    with dynamodb_conflicts._apply_lock:
        first = _in_flight(RunLedger(dynamodb, table), chunk=0)
        racing = threading.Thread(target=_record, args=(second, COUNTER_SHARDS))  # same shard
        racing.start()
        wait_until(lambda: second.conflict_retries, 10, interval_s=0.01, what="a conflict")
    first.join(10)
    racing.join(30)
    state = ledger.get_run(RUN)
    assert second.conflict_retries >= 1
    assert (state.chunks_done, state.ok, state.failed) == (2, 6, 2)


class _Stalls:
    """Hold the emulator's apply lock for `hold_s` every `every_s`, as a busy partition would.

    Transactions that arrive meanwhile wait with their items claimed, so a chunk's two deliveries
    in flight together meet each other for certain, not only when the scheduler happens to line
    them up: on a quiet or a loaded machine alike.
    """

    def __init__(self, *, every_s: float = 0.5, hold_s: float = 0.05) -> None:
        self._every_s, self._hold_s = every_s, hold_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            with dynamodb_conflicts._apply_lock:
                time.sleep(self._hold_s)

    def __enter__(self) -> _Stalls:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def test_many_concurrent_completions_conflict_and_count_every_chunk_once(ledger, emulator, table):
    # GIVEN 240 chunks, each delivered twice at once (SQS hands a message out again while its
    # first receiver still works), counted by 16 concurrent workers. Deliveries taken in chunk
    # order would never meet: 16 consecutive chunks fall on 16 different shards, and with fast
    # transactions the workers keep in step.
    chunks, workers = 240, 16
    before = ConflictStats.transactions_cancelled[table]
    ledgers = [
        RunLedger(boto3.client("dynamodb", endpoint_url=emulator.endpoint_url), table)
        for _ in range(workers)
    ]
    twice = [chunk for chunk in range(chunks) for _ in range(2)]
    deliveries = [(ledgers[i % workers], chunk) for i, chunk in enumerate(twice)]
    started = time.monotonic()
    gave_up: list[int] = []

    def deliver(ledger: RunLedger, chunk: int) -> bool:
        """One delivery; a write that gave up is delivered again, as SQS redelivers it."""
        while True:
            try:
                return _record(ledger, chunk)
            except ThrottledError:
                pytest.fail("a conflict surfaced as throttling")
            except ResultWriteError as exc:
                assert exc.error == "TransactionCanceledException", exc
                gave_up.append(chunk)

    with _Stalls(), ThreadPoolExecutor(workers) as pool:
        counted = list(pool.map(lambda d: deliver(*d), deliveries))
    elapsed = time.monotonic() - started
    # THEN conflicts really happened, were retried, and every chunk counted exactly once
    conflicts = ConflictStats.transactions_cancelled[table] - before
    retries = sum(each.conflict_retries for each in ledgers)
    print(
        f"\n{chunks} chunks x2 deliveries, {workers} threads, {COUNTER_SHARDS} shards: "
        f"{conflicts} TransactionConflicts, {retries} retries, {len(gave_up)} deliveries gave "
        f"up after {TRANSACTION_ATTEMPTS} tries and came again, {elapsed:.1f} s"
    )
    assert conflicts > 0
    # every cancelled transaction was retried, or ended a delivery that then came again (a
    # loaded machine slows the emulator's transactions, so a few give up; none is lost)
    assert retries + len(gave_up) == conflicts
    assert len(gave_up) <= chunks // 10
    assert sum(counted) == chunks
    state = ledger.get_run(RUN)
    assert (state.chunks_done, state.ok, state.failed) == (chunks, 3 * chunks, chunks)
    assert state.failed_by_error == {"NoSuchKey": chunks}
