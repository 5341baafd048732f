"""A retried pass that would stop earlier than its dead attempt goes on to the attempt's chunks.

Forced interleaving: the first attempt of a pass sends chunks and dies; its retry is told at
once that the queue is full (or its clock says the budget is spent). Without the reservations
the retry stopped after one chunk, and the next pass, from that later checkpoint, cut the dead
attempt's chunk numbers again with other lines: the worker keeps the first copy of a number,
so one line was counted twice and another lost, with Split's totals still right.
"""

from __future__ import annotations

import itertools

import pytest

from pipeline.split.reservations import MAX_AHEAD, PassReservation, SplitOverlapError
from tests.split_chain import (
    EARLY_RETRY_LINES,
    EARLY_RETRY_SENDS,
    MemoryReservations,
    split_with_an_early_retry,
)


@pytest.mark.parametrize("retry_stops", ["paused", "out of budget"])
def test_a_retry_told_to_stop_at_once_resends_every_chunk_its_dead_attempt_sent(
    tmp_path, retry_stops
):
    # GIVEN pass 0 died after sending 40 chunks, and its retry is told to stop after its first
    # WHEN the split goes on to the end, chunk reservations kept as the ledger keeps them
    chain = split_with_an_early_retry(
        tmp_path, retry_stops=retry_stops, reservations=MemoryReservations()
    )
    # THEN the retry went on past the dead attempt's chunks, re-sending each with the same
    # lines (`Chain.read_chunks` asserts every re-send equal to the first send)
    assert chain.outcomes[0].pass_chunks >= EARLY_RETRY_SENDS
    assert len(chain.read_chunks) == chain.outcomes[-1].chunks_sent
    # AND the chunks a worker reads and Split's parse parts hold every line exactly once
    assert sorted(chain.lines + chain.failed) == list(range(1, EARLY_RETRY_LINES + 1))


def test_without_reservations_the_same_interleaving_cuts_chunk_numbers_again(tmp_path):
    # GIVEN the same interleaving, with no reservations kept (as a dry run keeps none)
    # WHEN the split goes on to the end
    chain = split_with_an_early_retry(tmp_path, retry_stops="paused", reservations=None)
    # THEN the retry stopped after one chunk, and a later pass re-cut chunks the dead attempt
    # had sent, with other lines: what the reservations prevent
    assert chain.outcomes[0].pass_chunks == 1
    with pytest.raises(AssertionError):
        _ = chain.read_chunks


def test_a_pass_reserves_ahead_in_doubling_steps_up_to_the_cap():
    # GIVEN a pass starting at chunk 10
    store = MemoryReservations()
    reserved = PassReservation(store, "r", 10)
    writes = []
    # WHEN it sends 20,000 chunks
    for number in range(10, 20_010):
        before = store.kept.get("r")
        reserved.before_sending(number)
        if store.kept["r"] != before:
            writes.append(store.kept["r"][1])
        assert store.kept["r"][1] > number  # reserved before it is sent
    # THEN it wrote in doubling steps, then a step of MAX_AHEAD each time: 13 writes to reach
    # chunk 4,106, then one every 4,096 chunks
    assert writes[:6] == [11, 12, 14, 18, 26, 42]
    assert all(b - a == MAX_AHEAD for a, b in itertools.pairwise(writes[-4:]))
    assert len(writes) == 13 + 4
    # AND nothing bound it: no earlier attempt of this pass reserved anything
    assert reserved.may_stop_before(11)


def test_a_retry_must_reach_what_its_dead_attempt_reserved_not_a_previous_pass():
    store = MemoryReservations({"r": (0, 64)})  # pass 0 reserved below 64, stopped at 50
    # WHEN pass 1 (from chunk 50) dies after reserving below 80, and is retried
    first = PassReservation(store, "r", 50)
    first.before_sending(50)
    assert first.may_stop_before(51)  # pass 0's reservation never bound pass 1
    store.kept["r"] = (50, 80)
    retry = PassReservation(store, "r", 50)
    retry.before_sending(50)
    # THEN the retry may stop only past chunk 79
    assert not retry.may_stop_before(79)
    assert retry.may_stop_before(80)
    # AND a pass from an older checkpoint, once a later one reserved, is refused loudly
    with pytest.raises(SplitOverlapError):
        PassReservation(store, "r", 10).before_sending(10)
