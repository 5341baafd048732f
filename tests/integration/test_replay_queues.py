"""Replay's adapters over the moto server: round claims, the WorkDLQ move, FailureQueue acks."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from pipeline.failures import ResultWriteError
from pipeline.ledger.items import ChunkCounts
from pipeline.ledger.runs import RunStatus
from pipeline.ledger.table import RunLedger
from pipeline.replay.failure_drain import acknowledge_failures
from pipeline.replay.ledger import ReplayInProgressError, ReplayLedger
from pipeline.replay.work_dlq import move_messages
from tests.lost_answers import lose_first_answer
from tests.queues import messages_held

pytestmark = pytest.mark.integration

RUN, OTHER = "a" * 20, "b" * 20


def _queue(sqs) -> str:
    return sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:10]}")["QueueUrl"]


def _bodies(sqs, url: str) -> list[dict]:
    found = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(m["Body"]) for m in found.get("Messages", [])]


def test_a_round_is_claimed_only_when_the_previous_one_was_fully_counted(dynamodb, table):
    ledger, replays = RunLedger(dynamodb, table), ReplayLedger(dynamodb, table)
    ledger.start_run(RUN, manifest="s3://in/m.csv")
    ledger.mark_finished(RUN, RunStatus.SUCCEEDED)  # rounds are claimed on finished runs only
    assert replays.claim_round(RUN, chunks=2) == 1
    with pytest.raises(ReplayInProgressError, match="0 of 2"):
        replays.claim_round(RUN, chunks=1)
    one = ChunkCounts(
        ok=1, failed=0, replaced_by_stage={"fetch": 1}, replaced_by_error={"NoSuchKey": 1}
    )
    ledger.record_replay_chunk(RUN, 1, 0, one)
    assert not replays.progress(RUN).is_settled
    ledger.record_replay_chunk(RUN, 1, 1, one)
    assert ledger.record_replay_chunk(RUN, 1, 1, one) is False  # a redelivery counts nothing
    assert replays.progress(RUN).is_settled
    with pytest.raises(ReplayInProgressError):  # counted, but not yet pruned from the parts
        replays.claim_round(RUN, chunks=1)
    replays.mark_pruned(RUN, 1)
    assert replays.claim_round(RUN, chunks=1) == 2


def test_a_claim_whose_answer_is_lost_is_known_as_its_own_when_botocore_sends_it_again(
    dynamodb, table
):
    # GIVEN a finished run, and a client that "loses" the answer to the first UpdateItem that
    # succeeds: botocore sends the very same request again, which fails its own condition
    ledger, replays = RunLedger(dynamodb, table), ReplayLedger(dynamodb, table)
    ledger.start_run(RUN, manifest="s3://in/m.csv")
    ledger.mark_finished(RUN, RunStatus.SUCCEEDED)
    sent = lose_first_answer(dynamodb, "UpdateItem")
    # WHEN a replay claims a round
    taken = replays.claim_round(RUN, chunks=2)
    # THEN it took round 1 once (not "a replay in progress"), and that round can finish
    assert (taken, sent) == (1, [1, 2])
    progress = replays.progress(RUN)
    assert (progress.replay_round, progress.sent) == (1, 2)
    with pytest.raises(ReplayInProgressError):  # its own 2 chunks are not counted yet
        replays.claim_round(RUN, chunks=1)


def test_of_two_claims_at_once_one_takes_the_round_and_the_other_is_told_why(dynamodb, table):
    # GIVEN a finished run, and two replays that both read "round 0, settled"; the second's
    # UpdateItem is forced to run just after the first one's claim
    ledger, first = RunLedger(dynamodb, table), ReplayLedger(dynamodb, table)
    ledger.start_run(RUN, manifest="s3://in/m.csv")
    ledger.mark_finished(RUN, RunStatus.SUCCEEDED)
    other_client = boto3.client("dynamodb")
    second = ReplayLedger(other_client, table)
    taken: list[int] = []

    def first_claims_now(**_: object) -> None:
        if not taken:
            taken.append(first.claim_round(RUN, chunks=2))

    other_client.meta.events.register("before-call.dynamodb.UpdateItem", first_claims_now)
    # WHEN the second claim's condition meets the first one's round
    # THEN it is refused with the round that beat it, as the item that refused it says
    with pytest.raises(ReplayInProgressError, match=r"replay round 1 is unfinished \(0 of 2 "):
        second.claim_round(RUN, chunks=5)
    # AND only the first claim is in the ledger
    progress = first.progress(RUN)
    assert (taken, progress.replay_round, progress.sent) == ([1], 1, 2)


def test_a_round_is_known_by_the_claim_that_took_it(dynamodb, table):
    ledger, replays = RunLedger(dynamodb, table), ReplayLedger(dynamodb, table)
    ledger.start_run(RUN, manifest="s3://in/m.csv")
    ledger.mark_finished(RUN, RunStatus.SUCCEEDED)
    assert replays.progress(RUN).claim is None
    assert replays.claim_round(RUN, chunks=3, claim="c0ffee") == 1
    # the claim names the round's kept chunks: a broken send is sent again from them
    assert replays.progress(RUN).claim == "c0ffee"


def test_a_round_after_one_that_counted_more_chunks_than_it_claimed_waits_for_its_own(
    dynamodb, table
):
    # GIVEN round 1 claimed for 1 chunk but counted 2 (as rounds claimed by an older replayer
    # could: it claimed a cut without the origins' splits, and sent the split one)
    ledger, replays = RunLedger(dynamodb, table), ReplayLedger(dynamodb, table)
    ledger.start_run(RUN, manifest="s3://in/m.csv")
    ledger.mark_finished(RUN, RunStatus.SUCCEEDED)
    assert replays.claim_round(RUN, chunks=1) == 1
    one = ChunkCounts(
        ok=1, failed=0, replaced_by_stage={"fetch": 1}, replaced_by_error={"NoSuchKey": 1}
    )
    ledger.record_replay_chunk(RUN, 1, 0, one)
    ledger.record_replay_chunk(RUN, 1, 1, one)
    replays.mark_pruned(RUN, 1)
    # WHEN round 2 is claimed for 2 chunks and one of them is counted
    assert replays.claim_round(RUN, chunks=2) == 2
    ledger.record_replay_chunk(RUN, 2, 0, one)
    # THEN round 2 is not settled: the surplus of round 1 stands in for none of its chunks
    progress = replays.progress(RUN)
    assert (progress.sent, progress.done, progress.is_settled) == (4, 3, False)
    ledger.record_replay_chunk(RUN, 2, 1, one)
    assert replays.progress(RUN).is_settled


def test_the_dlq_move_takes_only_the_runs_chunks_and_deletes_after_sending(sqs):
    dlq, work = _queue(sqs), _queue(sqs)
    for run, chunk in ((RUN, 0), (OTHER, 0), (RUN, 3)):
        body = {"v": 1, "run": run, "chunk": chunk, "items": [[1, "b", "k"]]}
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(body))
    planned = move_messages(sqs, dlq, work, run=RUN, dry_run=True)
    assert sorted(c.chunk for c in planned) == [0, 3]
    assert _bodies(sqs, work) == []
    moved = move_messages(sqs, dlq, work, run=RUN)
    assert sorted((c.run, c.chunk) for c in moved) == [(RUN, 0), (RUN, 3)]
    assert sorted(b["chunk"] for b in _bodies(sqs, work)) == [0, 3]
    assert [b["run"] for b in _bodies(sqs, dlq)] == [OTHER]  # released at once, untouched


def test_a_failed_send_leaves_the_message_in_the_dlq(sqs):
    dlq = _queue(sqs)
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"v": 1, "run": RUN, "chunk": 0}))
    missing = dlq.rsplit("/", 1)[0] + "/no-such-queue"
    with pytest.raises(ResultWriteError, match="no-such-queue"):
        move_messages(sqs, dlq, missing, run=RUN)
    assert messages_held(sqs, dlq) == 1  # still in the DLQ (hidden until its visibility timeout)


def test_acknowledge_deletes_only_superseded_records_of_the_replayed_lines(sqs):
    queue = _queue(sqs)
    for run, line, attempts in ((RUN, 1, 1), (RUN, 1, 1), (RUN, 2, 1), (RUN, 3, 2), (OTHER, 1, 1)):
        body = {
            "v": 1,
            "run": run,
            "line": line,
            "attempts": attempts,
            "stage": "fetch",
            "error": "NoSuchKey",
        }
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))
    sqs.send_message(QueueUrl=queue, MessageBody="not json")
    report = acknowledge_failures(sqs, queue, {(RUN, 1): 1, (RUN, 3): 1})
    assert report.deleted == 2  # both copies of line 1; line 3's newer record (attempts 2) stays
    assert report.left_reason is None
    left = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0)
    bodies = sorted(m["Body"] for m in left.get("Messages", []))
    assert len(bodies) == 4
    assert "not json" in bodies


def test_client_errors_are_not_swallowed_by_the_claim(dynamodb):
    with pytest.raises(ClientError):
        ReplayLedger(dynamodb, "no-such-table").claim_round(RUN, chunks=1)
