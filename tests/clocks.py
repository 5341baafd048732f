"""A clock a test moves by hand, for code that takes `clock=` (and `sleep=`) to be testable."""

from __future__ import annotations


class ManualClock:
    """Reads `now`; `sleep` moves it on (nothing else does), so a wait costs no real time."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
