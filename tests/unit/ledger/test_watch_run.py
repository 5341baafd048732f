"""`watch_run`: the summary looked for every poll, the ledger read once a second and at the end."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.ledger import submit
from pipeline.ledger.submit import RunTimeoutError, watch_run
from pipeline.ledger.table import UnknownRunError
from tests.clocks import ManualClock


class _Ledger:
    """Counts its reads; unknown until `known_at` (Split has not started the run yet)."""

    def __init__(self, clock: ManualClock, known_at: float = 0.0) -> None:
        self.clock = clock
        self.known_at = known_at
        self.reads: list[float] = []

    def get_run(self, run: str) -> Any:
        self.reads.append(self.clock.now)
        if self.clock.now < self.known_at:
            raise UnknownRunError(run)
        return f"state of {run} at {self.clock.now:.2f}"


def _summary_at(monkeypatch: pytest.MonkeyPatch, clock: ManualClock, at: float) -> list[float]:
    looks: list[float] = []

    def read_summary(s3: Any, bucket: str, run: str) -> dict[str, Any] | None:
        looks.append(clock.now)
        return {"run": run, "status": "SUCCEEDED"} if clock.now >= at else None

    monkeypatch.setattr(submit, "read_summary", read_summary)
    return looks


def _watch(ledger: _Ledger, clock: ManualClock, seen: list[Any], timeout_s: float = 60.0) -> Any:
    return watch_run(
        ledger=ledger,  # type: ignore[arg-type]
        s3=None,
        results_bucket="results",
        run="r1",
        on_progress=seen.append,
        poll_s=0.25,
        progress_every_s=1.0,
        timeout_s=timeout_s,
        clock=clock,
        sleep=clock.sleep,
    )


def test_summary_every_poll_ledger_once_a_second_and_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = ManualClock()
    looks = _summary_at(monkeypatch, clock, at=2.6)
    ledger = _Ledger(clock, known_at=0.5)
    seen: list[Any] = []
    summary = _watch(ledger, clock, seen)
    assert summary == {"run": "r1", "status": "SUCCEEDED"}
    assert looks == [0.25 * i for i in range(12)]  # 0 … 2.75: found within one poll of 2.6
    assert ledger.reads == [0.0, 1.0, 2.0, 2.75]  # once a second, then the final counts
    assert seen == [None, "state of r1 at 1.00", "state of r1 at 2.00", "state of r1 at 2.75"]


def test_no_summary_in_time_is_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock()
    _summary_at(monkeypatch, clock, at=float("inf"))
    with pytest.raises(RunTimeoutError, match="r1 did not finish within 5s"):
        _watch(_Ledger(clock), clock, [], timeout_s=5.0)
    assert clock.now == pytest.approx(5.0)
