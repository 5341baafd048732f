"""The shared SendMessageBatch semantics: batches within both caps, failed entries re-sent,
sender faults and exhaustion raised with the right retryability."""

from __future__ import annotations

import orjson
import pytest
from botocore.exceptions import ClientError

from pipeline.aws.sqs_batch import (
    BatchBuffer,
    ResendPolicy,
    SqsEntry,
    SqsQueue,
    iter_batches,
    send_batch,
)
from pipeline.failures import ResultWriteError, Stage, ThrottledError

QUEUE = SqsQueue("url", name="TestQueue", noun="test messages", refused_hint="shrink them")


class ScriptedSqs:
    """Answers call k with the k-th scripted list of failed ids (HTTP 200), then with none."""

    def __init__(self, *failed_ids: list[str], sender_fault: bool = False) -> None:
        self.script = list(failed_ids)
        self.sender_fault = sender_fault
        self.calls: list[list[str]] = []
        self.accepted: list[str] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        assert QueueUrl == "url"
        failing = set(self.script[len(self.calls)]) if len(self.calls) < len(self.script) else set()
        self.calls.append([e["Id"] for e in Entries])
        self.accepted += [e["MessageBody"] for e in Entries if e["Id"] not in failing]
        failed = [{"Id": i, "SenderFault": self.sender_fault, "Code": "C"} for i in failing]
        return {"Failed": failed}


def _entries(count: int) -> list[SqsEntry]:
    return [SqsEntry.of(n, f"body-{n}") for n in range(count)]


def _policy(sleeps: list[float], attempts: int = 4) -> ResendPolicy:
    return ResendPolicy(attempts, lambda attempt: attempt / 10, sleeps.append)


def test_only_the_entries_sqs_failed_are_resent_after_a_backoff():
    # GIVEN SQS failing entry 2 twice and entry 5 once, accepting the rest
    sqs = ScriptedSqs(["2", "5"], ["2"])
    sleeps: list[float] = []
    # WHEN one batch of eight is sent
    sent = send_batch(sqs, QUEUE, _entries(8), _policy(sleeps))
    # THEN each failed entry went again (alone), with backoff(1), backoff(2), each body once
    assert sqs.calls[1:] == [["2", "5"], ["2"]]
    assert (sent.calls, sent.resent) == (3, 3)
    assert sleeps == [0.1, 0.2]
    assert sorted(sqs.accepted) == sorted(f"body-{n}" for n in range(8))


def test_a_sender_fault_raises_at_once_with_the_queues_hint():
    sqs = ScriptedSqs(["1"], sender_fault=True)
    with pytest.raises(ResultWriteError, match=r"TestQueue refused 1 test messages.*shrink them"):
        send_batch(sqs, QUEUE, _entries(3), _policy([]))
    assert len(sqs.calls) == 1


def test_entries_failing_every_attempt_raise_retryable_after_the_last():
    sqs = ScriptedSqs(*[["0"]] * 99)
    sleeps: list[float] = []
    with pytest.raises(ThrottledError) as caught:
        send_batch(sqs, QUEUE, _entries(2), _policy(sleeps, attempts=3))
    assert (caught.value.stage, caught.value.error, caught.value.retryable) == (
        Stage.WRITE,
        "SendMessageBatchFailed",
        True,
    )
    assert len(sqs.calls) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    ("code", "raised"), [("AccessDenied", ResultWriteError), ("Throttling", ThrottledError)]
)
def test_a_refused_call_maps_through_the_write_error_mapping(code, raised):
    class Refusing:
        def send_message_batch(self, **_kwargs):
            raise ClientError({"Error": {"Code": code}}, "SendMessageBatch")

    with pytest.raises(raised) as caught:
        send_batch(Refusing(), QUEUE, _entries(1), _policy([]))
    assert caught.value.error == code


def test_an_empty_batch_makes_no_call():
    sqs = ScriptedSqs()
    assert send_batch(sqs, QUEUE, [], _policy([])).calls == 0
    assert sqs.calls == []


def test_batches_close_at_ten_entries_or_before_the_byte_cap():
    assert [len(b) for b in iter_batches(_entries(25), max_bytes=10**6)] == [10, 10, 5]
    sized = [SqsEntry.of(n, "x" * 40) for n in range(7)]
    batches = list(iter_batches(sized, max_bytes=100))
    assert [len(b) for b in batches] == [2, 2, 2, 1]
    assert [e.id for b in batches for e in b] == [str(n) for n in range(7)]


def test_the_byte_cap_counts_utf8_bytes_and_an_oversized_entry_goes_alone():
    wide = SqsEntry.of(0, b"\xc3\xa9" * 30)  # 30 characters, 60 bytes
    assert (len(wide.body), wide.size_bytes) == (30, 60)
    buffer = BatchBuffer(max_bytes=100)
    assert buffer.add(wide) == []
    assert buffer.add(SqsEntry.of(1, "x" * 50)) == [wide]
    assert [e.id for e in buffer.add(SqsEntry.of(2, "y" * 500))] == ["1"]
    assert [e.id for e in buffer.take()] == ["2"]
    assert buffer.take() == []


@pytest.mark.parametrize("as_bytes", [True, False])
def test_an_entry_writes_the_noncharacters_sqs_refuses_as_json_escapes(as_bytes):
    # GIVEN a JSON body naming a key that holds U+FFFE and U+FFFF (valid UTF-8, refused by SQS)
    record = {"key": "a\ufffeb\uffffé.jpg"}
    body = orjson.dumps(record)
    # WHEN it becomes a batch entry
    entry = SqsEntry.of(3, body if as_bytes else body.decode())
    # THEN neither is in the body, which still reads back to the same key, sized in bytes
    assert "\ufffe" not in entry.body and "\uffff" not in entry.body
    assert orjson.loads(entry.body) == record
    assert entry.size_bytes == len(entry.body.encode())
