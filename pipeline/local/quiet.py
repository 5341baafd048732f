"""Keep native libraries' chatter out of a person's terminal.

LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` from C++ straight to
file descriptor 2 when a model is loaded (no environment variable turns it off), once per
process: noise between a command's progress bar and its results. Python's `sys.stderr` cannot
catch it; only the descriptor can be pointed elsewhere, briefly, around the load.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point fd 2 at /dev/null for the block (Python's own stderr is flushed first).

    Process-wide: keep the block short (a model load), and let exceptions out of it, so their
    traceback is printed after fd 2 is back.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
