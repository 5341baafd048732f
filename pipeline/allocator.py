"""Keep the C allocator's freed megabyte buffers in the process, for the next block to reuse.

glibc's malloc serves each request above `M_MMAP_THRESHOLD` (128 KiB at start, raised as such
blocks are freed) with a fresh `mmap` and returns it with `munmap` when freed, and gives the
heap's free top back to the kernel past `M_TRIM_THRESHOLD`. A Split pass (or `scan`) allocates
and frees buffers of a megabyte or more for every block it reads: inflated bytes, numpy masks
and offsets, encoded chunk messages. With the default thresholds each block's buffers are new
pages to the kernel, and touching them page-faults again: ~96,000 minor faults and 0.2 s of
kernel time in a 0.58 s pass over a 184 MB JSON array. Fixed thresholds stop both (mmap only
above 16 MiB, trim only past 64 MiB of free top): ~20,000 faults, the pass 1.4x faster, its
peak RSS 1 MB higher (freed buffers are reused, not added to). Both lie within the range
glibc's own adjustment may reach on 64-bit (an mmap threshold up to 32 MiB, trim at twice it),
so a process keeps no more freed memory than glibc itself may let it keep. The classify worker
measured no difference, so only the manifest readers set them: the Split handler and the CLI.

Kept free pages must still go back now and then: over a long pass the heap fragments. A
`lambdaflow scan` of 54 GB grew from 49 MB of RSS to 92-101 MB, while malloc counted ~11 MB
in use, so a pass gives the free pages back (`malloc_trim`) each time its input passes another
`GIVE_BACK_EVERY_BYTES` (`HeapTrim`). The kept buffers still serve the blocks in between.

Glibc only: elsewhere (macOS, musl) nothing is changed.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass, field
from typing import Any

MMAP_THRESHOLD_BYTES = 16 * 1024 * 1024
"""Requests above it still get their own mapping: one never lingers in the heap."""
TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024
"""Free heap top kept at most: under a tenth of the Split function's 1,024 MB."""
GIVE_BACK_EVERY_BYTES = 1024 * 1024 * 1024
"""Input between two give-backs. The 54 GB scan then peaked at 64-66 MB in the same time, for
~2,600 more minor faults a GB (every 256 MiB: sys time +30 %)."""
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>


def keep_freed_buffers() -> bool:
    """Fix glibc's mmap and trim thresholds for this process; False where there is no glibc.

    Fixing them turns off glibc's own raising of the mmap threshold, so the values hold for
    the rest of the process. Call it once, early: buffers already mapped are unmapped as
    they are freed, as before.
    """
    mallopt = _glibc("mallopt", (ctypes.c_int, ctypes.c_int))
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


def give_back_free_pages() -> bool:
    """Return the free pages of every heap arena to the kernel; False where there is no glibc.

    The buffers `keep_freed_buffers` kept go with them: the next blocks fault their pages in
    once more, then are kept again.
    """
    malloc_trim = _glibc("malloc_trim", (ctypes.c_size_t,))
    if malloc_trim is None:
        return False
    malloc_trim(0)
    return True


@dataclass(slots=True)
class HeapTrim:
    """Gives free pages back each time a pass's input passes a multiple of `every_bytes`.

    Told the input read so far after each unit of work; a pass that reads less than
    `every_bytes` never pays for it.
    """

    every_bytes: int = GIVE_BACK_EVERY_BYTES
    times: int = 0
    """How many times it gave pages back."""
    passed: int = field(default=0, init=False)
    """Multiples of `every_bytes` the input had passed at the last give-back."""

    def after(self, input_bytes: int) -> None:
        """Give pages back if the input passed another multiple of `every_bytes`."""
        passed = input_bytes // self.every_bytes
        if passed > self.passed:
            give_back_free_pages()
            self.times += 1
            self.passed = passed


def _glibc(name: str, argtypes: tuple[type, ...]) -> Any:
    """The C library function `name`, returning an int; None off Linux or in a libc without it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None)[name]
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = argtypes, ctypes.c_int
    return function
