"""Chunk messages go out in batches SQS accepts, and nothing is dropped on a partial failure."""

from __future__ import annotations

import orjson
import pytest

from pipeline.aws.sqs_batch import BATCH_ENTRIES
from pipeline.failures import ResultWriteError, ThrottledError
from pipeline.manifest.reader import ManifestRecord
from pipeline.split.chunking import Chunk
from pipeline.split.sinks import BATCH_BYTES
from pipeline.split.work_queue import send_chunks


def _chunk(number: int, key_bytes: int = 10) -> Chunk:
    record = ManifestRecord(line=number + 1, bucket="b", key="k" * key_bytes)
    return Chunk(run="r", number=number, items=(record,))


class FakeSqs:
    """Fails the entries named in `fail_once` on their first send, as SQS may."""

    def __init__(self, fail_once: set[str] = frozenset(), sender_fault: bool = False) -> None:
        self.fail_once = set(fail_once)
        self.sender_fault = sender_fault
        self.sent: list[int] = []
        self.batches: list[list[tuple[int, bytes]]] = []
        self.calls = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        self.calls += 1
        self.batches.append(
            [(orjson.loads(e["MessageBody"])["chunk"], e["MessageBody"].encode()) for e in Entries]
        )
        failed = [e for e in Entries if e["Id"] in self.fail_once]
        self.fail_once -= {e["Id"] for e in failed}
        self.sent += [orjson.loads(e["MessageBody"])["chunk"] for e in Entries if e not in failed]
        return {
            "Failed": [
                {"Id": e["Id"], "SenderFault": self.sender_fault, "Code": "X"} for e in failed
            ]
        }


def _batches(chunks) -> list[list[tuple[int, bytes]]]:
    """The (number, body) batches `send_chunks` sent, as SQS saw them."""
    sqs = FakeSqs()
    send_chunks(sqs, "url", chunks)
    return sqs.batches


def test_batches_hold_at_most_ten_entries_and_one_mebibyte():
    small = _batches(_chunk(n) for n in range(25))
    assert [len(b) for b in small] == [10, 10, 5]
    big = _batches(_chunk(n, key_bytes=300_000) for n in range(7))
    assert all(sum(len(body) for _, body in b) <= BATCH_BYTES for b in big)
    assert all(len(b) <= BATCH_ENTRIES for b in big)
    assert [n for b in big for n, _ in b] == list(range(7))


def test_entries_failed_by_sqs_are_resent_and_none_is_lost():
    sqs = FakeSqs(fail_once={"3", "7"})
    assert send_chunks(sqs, "url", (_chunk(n) for n in range(12))) == 12
    assert sorted(sqs.sent) == list(range(12))
    assert sqs.calls == 3  # two batches, one retry of the two failed entries


def test_an_entry_refused_as_the_senders_fault_raises():
    with pytest.raises(ResultWriteError, match="MaximumMessageSize"):
        send_chunks(FakeSqs(fail_once={"0"}, sender_fault=True), "url", [_chunk(0)])


def test_an_entry_that_keeps_failing_raises_retryable():
    class AlwaysFailing(FakeSqs):
        def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
            return {"Failed": [{"Id": e["Id"], "SenderFault": False} for e in Entries]}

    with pytest.raises(ThrottledError):
        send_chunks(AlwaysFailing(), "url", [_chunk(0)], sleep=lambda _s: None)
