"""Who ends the execution's wait, and how often workers heartbeat (pure logic, fakes only)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from pipeline.ledger.completion import HEARTBEATS_PER_STALL_TIMEOUT, CompletionSignal, WaitNotArmed
from pipeline.ledger.runs import RunState, RunStatus
from tests.clocks import ManualClock

ASL = Path(__file__).parents[3] / "statemachine" / "pipeline.asl.json"
RUNNING = RunState(
    run="r", manifest="s3://in/m", status=RunStatus.RUNNING, started_at=0.0, chunks_sent=3
)
SPLIT_DONE = replace(RUNNING, is_split_done=True, chunks_done=2)
COMPLETE = replace(SPLIT_DONE, chunks_done=3)


class FakeLedger:
    def __init__(self, state: RunState) -> None:
        self.state, self.token = state, None

    def store_wait_token(self, run: str, token: str) -> None:
        self.token = token

    def wait_token(self, run: str) -> str | None:
        return self.token

    def get_run(self, run: str) -> RunState:
        return self.state


class FakeSfn:
    def __init__(self, error: str | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.error = error

    def send_task_success(self, taskToken: str, output: str) -> None:  # boto3's
        self._call("success", taskToken)

    def send_task_heartbeat(self, taskToken: str) -> None:
        self._call("heartbeat", taskToken)

    def _call(self, what: str, token: str) -> None:
        self.calls.append((what, token))
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "x"}}, what)


def _signal(ledger: FakeLedger, sfn: FakeSfn, clock: ManualClock | None = None) -> CompletionSignal:
    return CompletionSignal(ledger, sfn, stall_timeout_s=400, clock=clock or ManualClock(100.0))


class FailingLedger(FakeLedger):
    """DynamoDB failing the counters' read past the SDK's retries."""

    def get_run(self, run: str) -> RunState:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "Get")


def test_an_arm_that_cannot_read_the_run_fails_with_the_name_its_task_retries():
    ledger, sfn = FailingLedger(SPLIT_DONE), FakeSfn()
    with pytest.raises(WaitNotArmed, match=r"arming the wait of run r: .*InternalServerError"):
        _signal(ledger, sfn).arm("r", "t1")
    wait = json.loads(ASL.read_text())["States"]["AwaitChunks"]
    retried = {name for retry in wait["Retry"] for name in retry["ErrorEquals"]}
    assert {WaitNotArmed.__name__, "Sandbox.Timedout"} <= retried
    assert sfn.calls == []


def test_the_arm_completes_at_once_when_every_chunk_was_counted_before_it():
    ledger, sfn = FakeLedger(COMPLETE), FakeSfn()
    assert _signal(ledger, sfn).arm("r", "t1")
    assert (ledger.token, sfn.calls) == ("t1", [("success", "t1")])


def test_the_arm_waits_and_the_worker_of_the_last_chunk_completes():
    ledger, sfn = FakeLedger(SPLIT_DONE), FakeSfn()
    signal = _signal(ledger, sfn)
    assert not signal.arm("r", "t1")
    assert sfn.calls == []
    ledger.state = COMPLETE
    assert signal.after_chunk("r")
    assert sfn.calls == [("success", "t1")]


def test_no_signal_before_the_wait_is_armed():
    sfn = FakeSfn()
    assert not _signal(FakeLedger(COMPLETE), sfn).after_chunk("r")
    assert sfn.calls == []


def test_heartbeats_are_rate_limited_per_process():
    ledger, sfn, clock = FakeLedger(SPLIT_DONE), FakeSfn(), ManualClock(100.0)
    ledger.token = "t1"
    signal = _signal(ledger, sfn, clock)
    every = 400 / HEARTBEATS_PER_STALL_TIMEOUT
    for _ in range(5):
        signal.after_chunk("r")  # five chunks at once: one heartbeat
    clock.now += every - 1
    signal.after_chunk("r")
    clock.now += 1
    signal.after_chunk("r")
    assert sfn.calls == [("heartbeat", "t1"), ("heartbeat", "t1")]


def test_a_token_already_used_is_not_an_error():
    ledger, sfn = FakeLedger(COMPLETE), FakeSfn(error="InvalidToken")
    ledger.token = "t1"
    assert not _signal(ledger, sfn).after_chunk("r")  # someone else completed it first
    assert sfn.calls == [("success", "t1")]
