"""The decode budget: bytes held at once stay within it, every image gets its turn, in order."""

from __future__ import annotations

import threading
import time

import pytest

from pipeline.classify.decode_budget import DecodeBudget
from tests.wait import wait_until


class _Reservation:
    """A thread that reserves `size` of the budget, notes it in `entered`, and holds it until
    released."""

    def __init__(self, budget: DecodeBudget, size: int, entered: list[int]) -> None:
        self._leave = threading.Event()

        def hold() -> None:
            with budget.reserve(size):
                entered.append(size)
                self._leave.wait(10)

        self._thread = threading.Thread(target=hold, daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._leave.set()
        self._thread.join(5)


def _settle() -> None:
    time.sleep(0.05)  # long enough for a thread that could enter to have entered


def _entered(entered: list[int], count: int) -> None:
    wait_until(lambda: len(entered) == count, 5)


def test_a_reservation_that_does_not_fit_waits_for_room():
    budget = DecodeBudget(100)
    entered: list[int] = []
    first = _Reservation(budget, 60, entered)
    _entered(entered, 1)
    second = _Reservation(budget, 60, entered)
    _settle()
    assert (entered, budget.held) == ([60], 60)
    first.release()
    _entered(entered, 2)
    assert (entered, budget.held) == ([60, 60], 60)
    second.release()
    assert budget.held == 0


def test_reservations_that_fit_together_hold_at_once():
    budget = DecodeBudget(100)
    entered: list[int] = []
    reservations = [_Reservation(budget, 30, entered) for _ in range(3)]
    _entered(entered, 3)
    assert (entered, budget.held) == ([30, 30, 30], 90)
    for reservation in reservations:
        reservation.release()
    assert budget.held == 0


def test_an_image_bigger_than_the_budget_is_decoded_alone():
    budget = DecodeBudget(100)
    entered: list[int] = []
    big = _Reservation(budget, 500, entered)
    _entered(entered, 1)
    small = _Reservation(budget, 1, entered)
    _settle()
    assert (entered, budget.held) == ([500], 100)
    big.release()
    _entered(entered, 2)
    assert entered == [500, 1]
    small.release()


def test_a_waiting_big_reservation_is_not_overtaken_by_later_small_ones():
    budget = DecodeBudget(100)
    entered: list[int] = []
    first = _Reservation(budget, 50, entered)
    _entered(entered, 1)
    big = _Reservation(budget, 80, entered)  # waits: 50 + 80 > 100
    _settle()
    small = _Reservation(budget, 10, entered)  # would fit, but the big one came first
    _settle()
    assert entered == [50]
    first.release()
    _entered(entered, 3)
    assert entered == [50, 80, 10]
    big.release()
    small.release()
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
    later = _Reservation(budget, 10, entered)
    _entered(entered, 1)  # not stuck behind the interrupted one's place in line
    assert budget.held == 10
    later.release()
