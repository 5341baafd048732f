"""The SQS chunk sink: batches of ten under 1 MiB, failed entries re-sent, never dropped."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from pipeline.failures import ResultWriteError, ThrottledError
from pipeline.split.sinks import BATCH_BYTES, SEND_ATTEMPTS, ChunkMessage, SqsChunkSink


class FakeSqs:
    """Records each SendMessageBatch; `fail` maps an entry id to how many times it fails."""

    def __init__(self, fail: dict[str, int] | None = None, sender_fault: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.delivered: list[str] = []
        self.fail = dict(fail or {})
        self.sender_fault = sender_fault

    def send_message_batch(self, QueueUrl, Entries):  # boto3's parameter names
        assert len(Entries) <= 10
        assert sum(len(e["MessageBody"]) for e in Entries) <= BATCH_BYTES
        self.calls.append([e["Id"] for e in Entries])
        failed = []
        for entry in Entries:
            if self.fail.get(entry["Id"], 0) > 0:
                self.fail[entry["Id"]] -= 1
                failed.append(
                    {"Id": entry["Id"], "SenderFault": self.sender_fault, "Code": "InternalError"}
                )
            else:
                self.delivered.append(entry["MessageBody"])
        return {"Failed": failed}


def _message(n: int, size: int = 10) -> ChunkMessage:
    return ChunkMessage(n, (b"%08d" % n) + b"x" * (size - 8), 1, last_line=n)


def test_sends_in_batches_of_ten_and_flushes_the_rest():
    # GIVEN 23 small messages WHEN sent and flushed THEN 10 + 10 + 3, all delivered in order
    sqs = FakeSqs()
    sink = SqsChunkSink(sqs, "q", sleep=lambda _s: None)
    for n in range(23):
        sink.send(_message(n))
    sink.flush()
    assert [len(c) for c in sqs.calls] == [10, 10, 3]
    assert [int(body[:8]) for body in sqs.delivered] == list(range(23))
    assert sink.sent == 23


def test_a_batch_closes_before_passing_one_mebibyte():
    # GIVEN messages of 300 KB WHEN sent THEN no batch passes 1 MiB (3 a batch)
    sqs = FakeSqs()
    sink = SqsChunkSink(sqs, "q", sleep=lambda _s: None)
    for n in range(7):
        sink.send(_message(n, 300_000))
    sink.flush()
    assert [len(c) for c in sqs.calls] == [3, 3, 1]


def test_failed_entries_are_resent_never_dropped():
    # GIVEN SQS failing entry 3 twice and entry 7 once (HTTP 200 with Failed)
    sqs = FakeSqs(fail={"3": 2, "7": 1})
    sleeps: list[float] = []
    sink = SqsChunkSink(sqs, "q", sleep=sleeps.append)
    # WHEN ten messages are sent
    for n in range(10):
        sink.send(_message(n))
    sink.flush()
    # THEN only the failed ones were re-sent, with backoff, and every message arrived once
    assert sqs.calls[1:] == [["3", "7"], ["3"]]
    assert sorted(int(body[:8]) for body in sqs.delivered) == list(range(10))
    assert len(sleeps) == 2


def test_entries_failing_every_attempt_fail_the_pass_retryably():
    sqs = FakeSqs(fail={"0": SEND_ATTEMPTS})
    sink = SqsChunkSink(sqs, "q", sleep=lambda _s: None)
    sink.send(_message(0))
    with pytest.raises(ThrottledError):
        sink.flush()


def test_a_sender_fault_fails_at_once():
    sqs = FakeSqs(fail={"0": 1}, sender_fault=True)
    sink = SqsChunkSink(sqs, "q", sleep=lambda _s: None)
    sink.send(_message(0))
    with pytest.raises(ResultWriteError):
        sink.flush()
    assert len(sqs.calls) == 1


def test_a_refused_call_becomes_a_write_error():
    class Refusing:
        def send_message_batch(self, **_kwargs):
            raise ClientError({"Error": {"Code": "AccessDenied"}}, "SendMessageBatch")

    sink = SqsChunkSink(Refusing(), "q", sleep=lambda _s: None)
    sink.send(_message(0))
    with pytest.raises(ResultWriteError) as caught:
        sink.flush()
    assert caught.value.error == "AccessDenied"
