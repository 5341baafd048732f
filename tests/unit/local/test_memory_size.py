"""A process held to a function's MemorySize: it ends itself once its peak memory is over."""

from __future__ import annotations

import multiprocessing
import signal
import sys
import time

import pytest

from pipeline.local.memory_size import MemorySize, peak_memory_mb

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the limit is enforced on Linux only"
)

_SPAWN = multiprocessing.get_context("spawn")


def _hold(limit_mb: int, hold_mb: int, watch: bool) -> None:
    """In a fresh process: watch (or not), hold `hold_mb` for 30 s, check once at the end."""
    memory = MemorySize("fn", limit_mb)
    if watch:
        memory.watch(interval_s=0.01)
    held = b"x" * (hold_mb * 1024 * 1024)
    time.sleep(30 if watch else 0)
    memory.check()
    del held


def _exit_code(limit_mb: int, hold_mb: int, *, watch: bool) -> tuple[int | None, float]:
    process = _SPAWN.Process(target=_hold, args=(limit_mb, hold_mb, watch))
    started = time.monotonic()
    process.start()
    process.join(60)
    return process.exitcode, time.monotonic() - started


def _peak_growth_mb(queue) -> None:
    """In a fresh process: how much the peak grew over holding 200 MB, once given back."""
    before = peak_memory_mb()
    held = b"x" * (200 * 1024 * 1024)
    del held
    after = peak_memory_mb()
    queue.put(None if before is None or after is None else after - before)


def test_the_peak_counts_memory_already_given_back():
    queue = _SPAWN.Queue()
    process = _SPAWN.Process(target=_peak_growth_mb, args=(queue,))
    process.start()
    growth = queue.get(timeout=60)
    process.join(60)
    assert growth is not None and growth >= 195


def test_a_process_over_its_memory_size_is_killed_mid_batch_by_the_watchdog():
    # GIVEN a 256 MB function whose process holds 400 MB and then waits 30 s
    # WHEN its watchdog looks THEN it is killed within seconds, not after the wait
    code, seconds = _exit_code(256, 400, watch=True)
    assert code == -signal.SIGKILL
    assert seconds < 20


def test_a_check_kills_a_process_over_its_memory_size_and_spares_one_under_it():
    assert _exit_code(256, 400, watch=False)[0] == -signal.SIGKILL
    assert _exit_code(1024, 400, watch=False)[0] == 0
