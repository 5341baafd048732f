"""The allocator thresholds keep freed megabyte buffers for reuse: no new page faults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_ROUNDS = """
import resource, sys
if sys.argv[1] == "kept":
    from pipeline.allocator import keep_freed_buffers
    assert keep_freed_buffers()

def one_round():  # what a block does: megabyte buffers made, filled, all freed
    held = [b"x" * (1 << 20) for _ in range(40)]
    del held

one_round(), one_round()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
one_round()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults_of_a_third_round(mode: str) -> int:
    """Minor page faults of the third round of 40 MiB made and freed, in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", _ROUNDS, mode],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(out)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's thresholds only")
def test_freed_buffers_are_reused_without_faulting_again() -> None:
    default, kept = _faults_of_a_third_round("default"), _faults_of_a_third_round("kept")

    assert default > 5_000  # 40 MiB of pages given back and faulted in again
    assert kept < default // 20
