"""The allocator thresholds keep freed megabyte buffers for reuse (no new page faults), and a long
pass gives them back now and then (RSS stays flat)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import allocator

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


_GIVE_BACK = """
from pipeline.allocator import give_back_free_pages, keep_freed_buffers

def rss_mb():
    line = next(l for l in open("/proc/self/status") if l.startswith("VmRSS"))
    return int(line.split()[1]) / 1024

assert keep_freed_buffers()
held = [b"x" * (1 << 20) for _ in range(60)]  # blocks' buffers, touched, then all freed
del held
kept = rss_mb()
assert give_back_free_pages()
print(kept - rss_mb())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim only")
def test_kept_buffers_go_back_to_the_kernel_when_asked() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _GIVE_BACK], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    assert float(out) > 40  # of the 60 MiB the thresholds kept


def test_a_heap_trim_gives_back_once_every_so_many_bytes(monkeypatch) -> None:
    given_back_at: list[int] = []
    heap = allocator.HeapTrim(every_bytes=100)
    monkeypatch.setattr(
        allocator, "give_back_free_pages", lambda: given_back_at.append(read) or True
    )
    for read in (0, 99, 100, 150, 199, 260, 300, 359):
        heap.after(read)

    # once each time the input passes a multiple of 100, however far past it
    assert given_back_at == [100, 260, 300]
    assert heap.times == 3
