"""Inflate a Split pass's gzip on a thread of its own, a few blocks ahead of the parser.

A Split pass over `bucket,key` or URI rows spent ~40 % of its CPU in zran's zlib inflate and the
rest in Python (proofs, chunk cuts, message encoding), one after the other on one thread.
indexed_gzip releases the GIL while it inflates (`zran_read` runs `nogil`; it takes the GIL back
only to fetch compressed bytes through the Python file object), so on two cores the inflate of
the next blocks can overlap the parsing of the last ones, as `FirstPassRaw` does for ISA-L in
`scan`. This stream does that for any raw stream (`OneInflateRaw`, or `ZranRaw`; ctypes
releases the GIL in `inflate` as zran does in `zran_read`): a thread reads blocks of
`block_bytes` into a bounded queue (`ahead` blocks, so memory stays flat); the reader takes
them in order, then the end, or the error where the stream broke (and that error again on every
later read, as `ZranRaw` raises it).

A checkpoint reads zran's seek points, which must not change under it: `paused()` stops the
thread between two reads (a block it read but could not queue is kept for later, never lost)
and hands out the inner stream; the thread goes on afterwards. `tell()` is the reader's
position (what it was handed), not the thread's. The thread runs up to (`ahead` + 1) blocks
past the reader, so the inner stream must keep its seek points that much further behind
(`open_resumable` adds `reach_bytes` to zran's `keep_behind_bytes`).

Read sizes: zran restarts its inflate state on each read, so a block is a few MiB (1 MiB reads
cost ~30 % more zlib time than 4 MiB ones, measured; BENCHMARKS.md "Split at decompression
speed").
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections import deque
from collections.abc import Iterator

from pipeline.gzip.block_queue import BlockQueueRaw

DEFAULT_BLOCK_BYTES = 4 * 1024 * 1024
"""Decompressed bytes a read of the thread (zran costs more per byte below ~4 MiB)."""
DEFAULT_AHEAD = 2
"""Blocks the thread may hold ready for the reader."""

_Item = memoryview | BaseException


class ReadAheadRaw(BlockQueueRaw):
    """The bytes of `inner` from its current position, read by a thread `ahead` blocks ahead.

    Args:
        inner: A raw stream, read only by the thread (except while `paused`).
        block_bytes: Bytes a read of the thread asks for.
        ahead: Blocks read but not yet taken, at most.
    """

    def __init__(
        self,
        inner: io.RawIOBase,
        *,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
        ahead: int = DEFAULT_AHEAD,
    ) -> None:
        super().__init__(start=inner.tell(), ahead=ahead)
        self.inner = inner
        self._block_bytes = block_bytes
        self._spare: deque[bytearray] = deque()  # blocks the reader finished, for reuse
        self._held: _Item | None = None  # read by the thread, not queued when it stopped
        self._is_last_queued = False  # the end or an error is queued: the thread is done
        self._block: bytearray | None = None  # the block `_view` serves from
        self._thread: threading.Thread | None = None
        self._start()

    @staticmethod
    def reach_bytes(block_bytes: int = DEFAULT_BLOCK_BYTES, ahead: int = DEFAULT_AHEAD) -> int:
        """How far past the reader's position the thread may have read."""
        return (ahead + 2) * block_bytes

    @contextlib.contextmanager
    def paused(self) -> Iterator[io.RawIOBase]:
        """Stop the thread between two reads, yield the inner stream, then let it go on."""
        self._halt()
        try:
            yield self.inner
        finally:
            if not self.closed:
                self._start()

    def close(self) -> None:
        """Stop the thread (it may wait on a full queue), then close the inner stream."""
        if not self.closed:
            self._halt()
            self.inner.close()
            # a closed stream may outlive its part (a reader keeps it): free its blocks now
            self._spare.clear()
            self._held, self._view, self._block = None, memoryview(b""), None
            self._drop_queued()
        super().close()

    def _start(self) -> None:
        if self._is_last_queued:
            return
        self._ask_stop(is_stopping=False)
        self._thread = threading.Thread(target=self._produce, name="zran-inflate", daemon=True)
        self._thread.start()

    def _halt(self) -> None:
        self._ask_stop()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _produce(self) -> None:
        """The thread: blocks in order, then b"" at the end, or the error; until stopped."""
        while not self._is_stopping:
            item, self._held = self._held, None
            if item is None:
                item = self._read_block()
            if not self._put(item):
                self._held = item
                return
            if isinstance(item, BaseException) or not item:
                self._is_last_queued = True
                return

    def _read_block(self) -> _Item:
        block = self._spare.pop() if self._spare else bytearray(self._block_bytes)
        try:
            n = self.inner.readinto(block)
        except BaseException as exc:  # handed to the reader, raised there
            return exc
        return memoryview(block)[:n]

    def _finished_block(self) -> None:
        """Give the finished block back to the thread (no view of it is left)."""
        if self._block is not None:
            self._spare.append(self._block)
            self._view, self._block = memoryview(b""), None

    def _took_block(self, block: bytes | memoryview) -> memoryview:
        """Serve the thread's view, keeping its bytearray to hand back once finished."""
        assert isinstance(block, memoryview)  # the thread queues views of its own blocks
        self._block = block.obj  # type: ignore[assignment]
        return block
