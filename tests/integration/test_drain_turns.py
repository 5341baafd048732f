"""FailureQueue drains take turns (`pipeline/replay/drain_lease.py`), over the moto server.

A drain hides what it has looked at until it ends: two replays draining at once, of two runs,
would hide each other's messages, and the one that ends first would leave its superseded
failures in the queue. The race is forced: one drain is held just after its first receive, the
other starts then, and the held one is let go only once the other has asked for its turn.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest

from pipeline.local import sqs_in_flight
from pipeline.replay.drain_lease import LEASE_S, DrainLease
from pipeline.replay.failure_drain import AT_QUOTA, DrainReport, acknowledge_failures
from tests.clocks import ManualClock
from tests.lost_answers import lose_first_answer

pytestmark = pytest.mark.integration

RUN_X, RUN_Y, OTHER = "x" * 20, "y" * 20, "o" * 20
WAIT_S = 30.0


def test_the_lease_is_one_drains_until_given_back_or_lapsed(dynamodb, table, caplog):
    clock = ManualClock(1_000_000.0)
    first, second = DrainLease(dynamodb, table, clock), DrainLease(dynamodb, table, clock)
    assert first.renew()
    assert not second.renew()
    assert not second.acquire(wait_s=0)
    assert "waiting up to 0 s for its turn" in caplog.text  # a replay that waits says so
    assert first.renew()  # its own: extended
    first.release()
    assert second.renew()
    # a holder that died never gives it back: it lapses
    clock.now += LEASE_S + 1
    third = DrainLease(dynamodb, table, clock)
    assert third.renew()
    second.release()  # too late: the lease is the third's now, and stays so
    assert not DrainLease(dynamodb, table, clock).renew()


def test_a_lease_whose_answer_is_lost_is_known_as_its_own_when_botocore_sends_it_again(
    dynamodb, table
):
    lease = DrainLease(dynamodb, table)
    attempts = lose_first_answer(dynamodb, "PutItem")
    assert lease.renew()  # the repeat meets its own first write, not another drain's
    assert attempts == [1, 2]


class _HeldAfterFirstReceive:
    """An SQS client whose first receive, once answered, waits until the test lets it go."""

    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs
        self.holding, self.go = threading.Event(), threading.Event()

    def receive_message(self, **kwargs: Any) -> Any:
        answer = self.sqs.receive_message(**kwargs)
        if not self.holding.is_set():
            self.holding.set()  # its messages are hidden now
            assert self.go.wait(WAIT_S)
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sqs, name)


def _failure(run: str, line: int) -> str:
    return json.dumps({"v": 1, "run": run, "line": line, "attempts": 1, "error": "NoSuchKey"})


def test_two_replays_draining_at_once_each_delete_their_own_superseded_failures(
    sqs, dynamodb, table
):
    # GIVEN a FailureQueue holding failures of runs X and Y, and of a run not replayed
    url = sqs.create_queue(QueueName=f"failures-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    bodies = [_failure(RUN_X, 1), _failure(RUN_Y, 1), _failure(RUN_X, 2), _failure(RUN_Y, 2)]
    bodies += [_failure(OTHER, 1), _failure(RUN_Y, 3), _failure(OTHER, 2)]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    held = _HeldAfterFirstReceive(sqs)
    asked = threading.Event()

    def asking(seconds: float) -> None:
        asked.set()
        time.sleep(seconds)

    reports: dict[str, DrainReport] = {}

    def drain(name: str, client: Any, run: str, lines: int, lease: DrainLease) -> None:
        replayed = {(run, line): 1 for line in range(1, lines + 1)}
        reports[name] = acknowledge_failures(
            client, url, replayed, lease=lease, lease_wait_s=WAIT_S
        )

    # WHEN X's replay drains and, while it holds every message it received, Y's replay drains
    x = threading.Thread(target=drain, args=("x", held, RUN_X, 2, DrainLease(dynamodb, table)))
    x.start()
    assert held.holding.wait(WAIT_S)
    y_lease = DrainLease(dynamodb, table, sleep=asking)
    y = threading.Thread(target=drain, args=("y", sqs, RUN_Y, 3, y_lease))
    y.start()
    deadline = time.monotonic() + WAIT_S
    while not asked.is_set() and y.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)  # until Y has asked for its turn (or, taking none, has drained)
    held.go.set()
    x.join(WAIT_S)
    y.join(WAIT_S)
    # THEN each deleted every superseded failure of its own run, and nothing else
    assert reports == {"x": DrainReport(2), "y": DrainReport(3)}
    left = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert sorted(m["Body"] for m in left.get("Messages", [])) == sorted(
        [_failure(OTHER, 1), _failure(OTHER, 2)]
    )


def test_a_drain_at_the_in_flight_quota_says_its_lines_failures_may_remain(sqs, monkeypatch):
    # GIVEN a queue at its in-flight quota (lowered to 5): a consumer holds 5 messages, and the
    # replayed run's 2 failures are visible behind them
    monkeypatch.setattr(sqs_in_flight.LIMITS, "standard", 5)
    url = sqs.create_queue(QueueName=f"failures-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for line in range(1, 6):
        sqs.send_message(QueueUrl=url, MessageBody=_failure(OTHER, line))
    taken = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600)
    assert len(taken["Messages"]) == 5
    for line in (1, 2):
        sqs.send_message(QueueUrl=url, MessageBody=_failure(RUN_X, line))
    # WHEN the replay drains (SQS answers its long polls with nothing, as if it were empty)
    report = acknowledge_failures(sqs, url, {(RUN_X, 1): 1, (RUN_X, 2): 1})
    # THEN it says why its lines' failures may remain, instead of taking the queue for empty
    assert report == DrainReport(0, AT_QUOTA)
