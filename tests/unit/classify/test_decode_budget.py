"""The decode budget: bytes held at once stay within it, every image gets its turn, in order."""

from __future__ import annotations

import threading
import time

import pytest

from pipeline.classify.decode_budget import DecodeBudget
from tests.wait import wait_until


def _enter(budget: DecodeBudget, size: int, entered: list[int], leave: threading.Event):
    def run() -> None:
        with budget.reserve(size):
            entered.append(size)
            leave.wait(10)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _settle() -> None:
    time.sleep(0.05)  # long enough for a thread that could enter to have entered


def _entered(entered: list[int], count: int) -> None:
    wait_until(lambda: len(entered) == count, 5)


def test_a_reservation_that_does_not_fit_waits_for_room():
    budget = DecodeBudget(100)
    entered: list[int] = []
    first_leaves, second_leaves = threading.Event(), threading.Event()
    first = _enter(budget, 60, entered, first_leaves)
    _entered(entered, 1)
    second = _enter(budget, 60, entered, second_leaves)
    _settle()
    assert (entered, budget.held) == ([60], 60)
    first_leaves.set()
    first.join(5)
    _entered(entered, 2)
    assert (entered, budget.held) == ([60, 60], 60)
    second_leaves.set()
    second.join(5)
    assert budget.held == 0


def test_reservations_that_fit_together_hold_at_once():
    budget = DecodeBudget(100)
    entered: list[int] = []
    leave = threading.Event()
    threads = [_enter(budget, 30, entered, leave) for _ in range(3)]
    _entered(entered, 3)
    assert (entered, budget.held) == ([30, 30, 30], 90)
    leave.set()
    for thread in threads:
        thread.join(5)
    assert budget.held == 0


def test_an_image_bigger_than_the_budget_is_decoded_alone():
    budget = DecodeBudget(100)
    entered: list[int] = []
    big_leaves, small_leaves = threading.Event(), threading.Event()
    big = _enter(budget, 500, entered, big_leaves)
    _entered(entered, 1)
    small = _enter(budget, 1, entered, small_leaves)
    _settle()
    assert (entered, budget.held) == ([500], 100)
    big_leaves.set()
    big.join(5)
    _entered(entered, 2)
    assert entered == [500, 1]
    small_leaves.set()
    small.join(5)


def test_a_waiting_big_reservation_is_not_overtaken_by_later_small_ones():
    budget = DecodeBudget(100)
    entered: list[int] = []
    first_leaves, rest_leave = threading.Event(), threading.Event()
    first = _enter(budget, 50, entered, first_leaves)
    _entered(entered, 1)
    big = _enter(budget, 80, entered, rest_leave)  # waits: 50 + 80 > 100
    _settle()
    small = _enter(budget, 10, entered, rest_leave)  # would fit, but the big one came first
    _settle()
    assert entered == [50]
    first_leaves.set()
    first.join(5)
    _entered(entered, 3)
    assert entered == [50, 80, 10]
    rest_leave.set()
    big.join(5)
    small.join(5)
    assert budget.held == 0


def test_a_waiter_interrupted_in_line_leaves_it():
    budget = DecodeBudget(100)

    def interrupted(*args: object, **kwargs: object) -> bool:
        raise KeyboardInterrupt

    with budget.reserve(100):
        waiting = budget._changed.wait_for
        budget._changed.wait_for = interrupted  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt), budget.reserve(10):
            pass
        budget._changed.wait_for = waiting  # type: ignore[method-assign]
    entered: list[int] = []
    later = _enter(budget, 10, entered, threading.Event())
    _entered(entered, 1)  # not stuck behind the interrupted one's place in line
    assert budget.held == 10
    later.join(0)
