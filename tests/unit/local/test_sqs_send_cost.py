"""A send to moto's SQS walks no message of its queue; every other caller still counts them all.

moto 5.2.5 built every queue attribute (three counts, each a pass over the queue) to read one
flag on every SendMessage, so filling a FailureQueue took quadratic time. Held here on moto's
own backend objects, in process: the count a send no longer makes, the counts everyone else
still gets, and a send on one thread never zeroing another thread's counts (the interleaving
forced with events).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from moto.sqs.models import SQSBackend

from pipeline.local.sqs_send_cost import install_cheap_sends, is_sending


@pytest.fixture
def backend(sqs_backend: SQSBackend) -> SQSBackend:
    install_cheap_sends()
    return sqs_backend


def test_a_send_reads_no_message_of_a_full_queue(backend, queue_name, visible_reads):
    # GIVEN a queue holding 300 messages
    for n in range(300):
        backend.send_message(queue_name, f"m{n}")
    # WHEN ten more are sent, one by one and in a batch
    visible_reads[0] = 0
    for n in range(5):
        backend.send_message(queue_name, f"more{n}")
    entries = {
        str(n): {"Id": str(n), "MessageBody": f"b{n}", "MessageAttributes": {}, "DelaySeconds": 0}
        for n in range(5)
    }
    backend.send_message_batch(queue_name, entries)
    # THEN no message was looked at
    assert visible_reads[0] == 0
    # AND the queue still counts all 310 for anyone who asks
    queue = backend.get_queue(queue_name)
    assert queue.approximate_number_of_messages == 310
    assert queue.attributes["ApproximateNumberOfMessages"] == 310
    assert visible_reads[0] >= 310


def test_a_send_on_one_thread_leaves_another_threads_counts_whole(
    backend, queue_name, monkeypatch: pytest.MonkeyPatch
):
    for n in range(7):
        backend.send_message(queue_name, f"m{n}")
    inside, release = threading.Event(), threading.Event()
    validate = SQSBackend._validate_message
    seen_while_sending: list[bool] = []

    def held(self: Any, *args: Any, **kwargs: Any) -> None:
        seen_while_sending.append(is_sending())
        inside.set()
        assert release.wait(10)
        validate(self, *args, **kwargs)

    monkeypatch.setattr(SQSBackend, "_validate_message", held)
    # GIVEN a thread stopped inside a send
    sender = threading.Thread(target=backend.send_message, args=(queue_name, "late"))
    sender.start()
    assert inside.wait(10)
    try:
        # WHEN this thread asks for the queue's attributes meanwhile
        queue = backend.get_queue(queue_name)
        counts = (queue.approximate_number_of_messages, queue.attributes)
        # THEN it gets every message counted, and is not sending itself
        assert counts[0] == 7
        assert counts[1]["ApproximateNumberOfMessages"] == 7
        assert counts[1]["ApproximateNumberOfMessagesNotVisible"] == 0
        assert not is_sending()
    finally:
        release.set()
        sender.join(10)
    assert seen_while_sending == [True]
    assert queue.approximate_number_of_messages == 8


def test_a_failed_send_leaves_the_thread_counting_again(backend, queue_name):
    backend.send_message(queue_name, "m")
    with pytest.raises(Exception, match="900"):
        backend.send_message(queue_name, "late", delay_seconds=901)
    assert not is_sending()
    assert backend.get_queue(queue_name).approximate_number_of_messages == 1


def test_installing_twice_wraps_once():
    install_cheap_sends()
    first = SQSBackend.send_message
    install_cheap_sends()
    assert SQSBackend.send_message is first
