"""The FailureQueue drain against an in-memory SQS that models visibility and `OverLimit`.

A pure fake (unit layer): the drain's job is bookkeeping — what it has seen, what it holds,
when holds lapse — and the fake keeps SQS's rules for exactly that: a received message is
invisible until its visibility lapses, past `in_flight_limit` held messages a short poll fails
with OverLimit and a long poll gets nothing (as AWS answers), and every receive takes
`receive_s` of the fake clock.
"""

from __future__ import annotations

import json
import random

import pytest
from botocore.exceptions import ClientError

from pipeline.replay.failure_drain import (
    AT_QUOTA,
    DRAIN_VISIBILITY_S,
    LEASE_BUSY,
    acknowledge_failures,
)


class FakeQueue:
    def __init__(self, bodies: list[str], *, receive_s: float, in_flight_limit: int = 120_000):
        self.now = 0.0
        self.receive_s = receive_s
        self.limit = in_flight_limit
        self.messages = {str(i): body for i, body in enumerate(bodies)}
        self.visible_at = dict.fromkeys(self.messages, 0.0)
        self.handles: dict[str, str] = {}
        self.deleted: list[str] = []
        self.random = random.Random(7)

    def clock(self) -> float:
        return self.now

    def receive_message(self, *, VisibilityTimeout, MaxNumberOfMessages, WaitTimeSeconds, **_):
        self.now += self.receive_s
        in_flight = sum(1 for at in self.visible_at.values() if at > self.now)
        if in_flight >= self.limit:
            if WaitTimeSeconds:  # a long poll at the quota: nothing, and no error
                self.now += WaitTimeSeconds
                return {"Messages": []}
            error = {"Error": {"Code": "OverLimit", "Message": "too many in flight"}}
            raise ClientError(error, "ReceiveMessage")
        visible = sorted((m for m, at in self.visible_at.items() if at <= self.now), key=int)
        # SQS samples its servers: any visible message may come back, in no order
        ready = self.random.sample(visible, min(MaxNumberOfMessages, len(visible)))
        out = []
        for message_id in ready:
            self.visible_at[message_id] = self.now + VisibilityTimeout
            handle = f"{message_id}@{self.now}"
            self.handles[handle] = message_id
            out.append(
                {
                    "MessageId": message_id,
                    "ReceiptHandle": handle,
                    "Body": self.messages[message_id],
                }
            )
        return {"Messages": out}

    def delete_message(self, *, ReceiptHandle, **_):
        message_id = self.handles[ReceiptHandle]
        self.deleted.append(message_id)
        del self.messages[message_id], self.visible_at[message_id]

    def change_message_visibility_batch(self, *, Entries, **_):
        for entry in Entries:
            message_id = self.handles[entry["ReceiptHandle"]]
            if message_id in self.visible_at:
                self.visible_at[message_id] = self.now + entry["VisibilityTimeout"]


def _bodies(run: str, lines: range) -> list[str]:
    return [json.dumps({"run": run, "line": line, "attempts": 1}) for line in lines]


def test_a_drain_longer_than_the_visibility_timeout_still_sees_every_message():
    # GIVEN 400 failure messages of another run and 20 of ours at the end; each receive takes
    # a second, so the drain lasts far longer than the 60 s it hides messages for
    queue = FakeQueue(_bodies("other", range(400)) + _bodies("ours", range(20)), receive_s=1.0)
    replayed = {("ours", line): 1 for line in range(20)}
    # WHEN the replay acknowledges its lines
    report = acknowledge_failures(queue, "q", replayed, clock=queue.clock)
    # THEN every one of ours was deleted, and everything else is visible again
    assert (report.deleted, report.left_reason) == (20, None)
    assert sorted(json.loads(b)["run"] for b in queue.messages.values()) == ["other"] * 400
    assert all(at <= queue.now for at in queue.visible_at.values())


def test_overlimit_releases_what_the_drain_holds_and_the_drain_goes_on():
    # GIVEN SQS refuses receives past 50 messages in flight
    queue = FakeQueue(
        _bodies("other", range(120)) + _bodies("ours", range(5)),
        receive_s=0.1,
        in_flight_limit=50,
    )
    report = acknowledge_failures(
        queue, "q", {("ours", line): 1 for line in range(5)}, clock=queue.clock
    )
    assert (report.deleted, report.left_reason) == (5, None)
    assert all(at <= queue.now for at in queue.visible_at.values())


def test_what_the_drain_holds_is_released_when_it_fails_half_way():
    queue = FakeQueue(_bodies("other", range(30)) + _bodies("ours", range(1)), receive_s=0.1)

    def broken_delete(**_):
        raise RuntimeError("SQS went away")

    queue.delete_message = broken_delete  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        acknowledge_failures(queue, "q", {("ours", 0): 1}, clock=queue.clock)
    held = [m for m, at in queue.visible_at.items() if at > queue.now]
    assert held == []  # everything it had received was released, the failed delete's too


def test_a_drain_that_meets_the_quota_held_by_another_consumer_says_so():
    # GIVEN a queue at its in-flight quota of 50: another consumer holds 50 messages, and the
    # replayed lines' own 5 are among the visible rest
    queue = FakeQueue(
        _bodies("other", range(50)) + _bodies("ours", range(5)), receive_s=0.1, in_flight_limit=50
    )
    for message_id in map(str, range(50)):
        queue.visible_at[message_id] = 10_000.0
    # WHEN a replay drains it (its long polls answered with nothing, as if it were empty)
    report = acknowledge_failures(
        queue, "q", {("ours", line): 1 for line in range(5)}, clock=queue.clock
    )
    # THEN it deleted nothing, and says why its lines' messages may remain
    assert (report.deleted, report.left_reason) == (0, AT_QUOTA)
    assert len(queue.messages) == 55


def test_a_drain_that_has_seen_much_stops_soon_once_another_consumer_holds_the_quota():
    # GIVEN a drain that has looked at 300 messages when another consumer takes the rest of the
    # queue up to its in-flight quota of 100, and holds it
    queue = FakeQueue(
        _bodies("other", range(400)) + _bodies("ours", range(3)), receive_s=0.1, in_flight_limit=100
    )
    receive = queue.receive_message

    def receive_then_taken(**kwargs):
        answer = receive(**kwargs)
        if len(answer["Messages"]) and queue.now >= 3.0 and not hasattr(queue, "taken"):
            queue.taken = [m for m, at in queue.visible_at.items() if at <= queue.now][:100]
            for message_id in queue.taken:
                queue.visible_at[message_id] = 1e9  # another consumer's, for good
        return answer

    queue.receive_message = receive_then_taken  # type: ignore[method-assign]
    report = acknowledge_failures(
        queue, "q", {("ours", line): 1 for line in range(3)}, clock=queue.clock
    )
    # THEN it says why, after a few seconds, not after a fruitless receive per message seen
    assert report.left_reason == AT_QUOTA
    assert queue.now < 30


class FakeLease:
    def __init__(self, *, free: bool) -> None:
        self.free, self.calls = free, []

    def acquire(self, *, wait_s: float) -> bool:
        self.calls.append(("acquire", wait_s))
        return self.free

    def renew(self) -> bool:
        self.calls.append(("renew",))
        return True

    def release(self) -> None:
        self.calls.append(("release",))


def test_a_drain_waits_its_turn_and_without_it_deletes_nothing_and_says_why():
    queue = FakeQueue(_bodies("ours", range(3)), receive_s=0.1)
    lease = FakeLease(free=False)
    report = acknowledge_failures(
        queue, "q", {("ours", 0): 1}, clock=queue.clock, lease=lease, lease_wait_s=7.0
    )
    assert (report.deleted, report.left_reason) == (0, LEASE_BUSY)
    assert lease.calls == [("acquire", 7.0)]
    assert queue.now == 0.0  # not one receive: holding messages now would hide them from the other


def test_a_long_drain_renews_its_turn_and_gives_it_back_after_releasing_its_messages():
    # GIVEN a drain that lasts several visibility periods (a second a receive)
    queue = FakeQueue(_bodies("other", range(400)) + _bodies("ours", range(2)), receive_s=1.0)
    lease = FakeLease(free=True)
    report = acknowledge_failures(
        queue, "q", {("ours", 0): 1, ("ours", 1): 1}, clock=queue.clock, lease=lease
    )
    assert report.deleted == 2
    renewals = lease.calls.count(("renew",))
    assert renewals >= queue.now // DRAIN_VISIBILITY_S  # each time its messages are renewed
    assert lease.calls[0][0] == "acquire"
    assert lease.calls[-1] == ("release",)
    assert all(at <= queue.now for at in queue.visible_at.values())  # its messages released
