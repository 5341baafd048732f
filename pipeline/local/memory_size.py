"""A worker process held to its function's `MemorySize`, as Lambda holds an environment.

Lambda ends an execution environment the moment its memory passes the function's `MemorySize`
(the invocation fails: `Runtime.OutOfMemory`, "signal: killed"), and the batch's messages come
back after their visibility timeout. A laptop has gigabytes to spare, so without this a chunk
that needs more memory than the function has would pass locally and fail on every delivery on
AWS. A worker process here watches its own peak resident memory (`VmHWM`: the high-water mark,
so a spike between two looks is still seen) and kills itself with SIGKILL once it is over, from
a watchdog thread while a batch runs and again before the poller may delete the batch's
messages. Linux only: elsewhere there is no per-process high-water mark to read (`ru_maxrss`
counts the parent's memory from before the worker was spawned), and nothing is enforced.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.02
"""How often the watchdog looks: ~30 µs a look, 0.15 % of a core."""
_STATUS = Path("/proc/self/status")
_PEAK_FIELD = "VmHWM:"


def peak_memory_mb() -> float | None:
    """This process's peak resident memory in MB (Lambda's "Max Memory Used"); None: unknown."""
    if not sys.platform.startswith("linux"):
        return None
    for line in _STATUS.read_text().splitlines():
        if line.startswith(_PEAK_FIELD):
            return int(line.split()[1]) / 1024  # kB
    return None


@dataclass(frozen=True, slots=True)
class MemorySize:
    """The `MemorySize` of one function, enforced on the process it runs in."""

    function: str
    limit_mb: int

    def check(self) -> None:
        """End this process, as Lambda ends the environment, if its peak is over the limit."""
        peak = peak_memory_mb()
        if peak is None or peak <= self.limit_mb:
            return
        logger.error(
            "%s used %.0f MB, over its MemorySize of %d MB: ended, as Lambda ends it "
            "(Runtime.OutOfMemory); the batch's messages come back after their visibility timeout",
            self.function,
            peak,
            self.limit_mb,
        )
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)

    def watch(self, interval_s: float = WATCH_INTERVAL_S) -> threading.Thread:
        """Check every `interval_s` from a daemon thread, for as long as the process lives."""

        def run() -> None:
            while True:
                time.sleep(interval_s)
                self.check()

        thread = threading.Thread(target=run, name=f"memory-size-{self.function}", daemon=True)
        thread.start()
        return thread
