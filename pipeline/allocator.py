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

Glibc only: elsewhere (macOS, musl) nothing is changed.
"""

from __future__ import annotations

import ctypes
import sys

MMAP_THRESHOLD_BYTES = 16 * 1024 * 1024
"""Requests above it still get their own mapping: one never lingers in the heap."""
TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024
"""Free heap top kept at most: under a tenth of the Split function's 1,024 MB."""
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>


def keep_freed_buffers() -> bool:
    """Fix glibc's mmap and trim thresholds for this process; False where there is no glibc.

    Fixing them turns off glibc's own raising of the mmap threshold, so the values hold for
    the rest of the process. Call it once, early: buffers already mapped are unmapped as
    they are freed, as before.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a libc without mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
