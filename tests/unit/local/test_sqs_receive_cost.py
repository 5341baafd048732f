"""A receive from moto's SQS walks its queue once, not nine times per message handed out.

moto 5.2.5 checked each received message's retention through `get_queue_attributes`, which
counts every message of the queue nine times over, so receiving a run's chunks one by one took
quadratic time. Held here on moto's own backend objects, in process: the passes a receive makes,
and retention still applied as moto applies it.
"""

from __future__ import annotations

import pytest
from moto.sqs.models import SQSBackend

from pipeline.local.sqs_receive_cost import install_cheap_receives

DEPTH = 300


@pytest.fixture
def backend(sqs_backend: SQSBackend) -> SQSBackend:
    install_cheap_receives()
    return sqs_backend


def receive(backend: SQSBackend, queue_name: str, count: int) -> list:
    return backend.receive_message(queue_name, count, wait_seconds_timeout=0, visibility_timeout=30)


def test_receiving_ten_of_a_full_queue_reads_it_about_once(backend, queue_name, visible_reads):
    # GIVEN a queue holding 300 messages
    for n in range(DEPTH):
        backend.send_message(queue_name, f"m{n}")
    # WHEN ten are received
    visible_reads[0] = 0
    received = receive(backend, queue_name, 10)
    # THEN they are the first ten, and the queue was walked once (plus the ten themselves)
    assert [m.body for m in received] == [f"m{n}" for n in range(10)]
    assert visible_reads[0] <= DEPTH + 2 * 10  # moto's own pass was 9 x 300 per message
    # AND the counts anyone asks for still count every message
    queue = backend.get_queue(queue_name)
    assert queue.approximate_number_of_messages == DEPTH - 10
    assert queue.approximate_number_of_messages_not_visible == 10


def test_a_message_past_the_retention_period_stops_the_receive_as_moto_does(backend, queue_name):
    backend.set_queue_attributes(queue_name, {"MessageRetentionPeriod": "60"})
    backend.send_message(queue_name, "fresh")
    backend.send_message(queue_name, "stale")
    queue = backend.get_queue(queue_name)
    assert queue.message_retention_period == 60  # an int, as moto's own check read it
    stale = next(m for m in queue._messages if m.body == "stale")
    stale.sent_timestamp -= 61_000  # sent 61 s ago: one second past retention
    assert [m.body for m in receive(backend, queue_name, 10)] == ["fresh"]


def test_a_message_just_inside_the_retention_period_is_received(backend, queue_name):
    backend.set_queue_attributes(queue_name, {"MessageRetentionPeriod": "60"})
    backend.send_message(queue_name, "old")
    (message,) = backend.get_queue(queue_name)._messages
    message.sent_timestamp -= 50_000
    assert [m.body for m in receive(backend, queue_name, 1)] == ["old"]


def test_installing_twice_hooks_once():
    install_cheap_receives()
    first = SQSBackend.is_message_valid_based_on_retention_period
    install_cheap_receives()
    assert SQSBackend.is_message_valid_based_on_retention_period is first
