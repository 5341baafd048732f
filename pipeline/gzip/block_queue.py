"""A raw stream served from blocks a producer thread queues: the reader's half, in stream order.

Both inflating threads (`FirstPassRaw`: ISA-L for scan, `ReadAheadRaw`: zran for Split) hand
their blocks to the reader the same way: a bounded queue (memory stays flat) of blocks, then
`b""` at the clean end or the exception where the stream broke. The reader must see every byte,
the end and the error in that order, and a broken stream must never read as a clean end later:
the error is raised again on every read after it. That contract lives here once; subclasses
start the thread and decide what a block is.

A producer blocked on a full queue wakes the moment it is told to stop (one condition for
"taken" and "stop"), so pausing for a checkpoint or closing a pass costs the thread's current
read, not a polling interval (a 0.1 s poll cost a one-chunk pass ~0.15 s of waiting).
"""

from __future__ import annotations

import io
import threading
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Buffer

_Item = bytes | memoryview | BaseException


class BlockQueueRaw(io.RawIOBase):
    """Bytes from queued blocks (`bytes` or `memoryview`), then the end or the error.

    Args:
        start: The absolute offset of the first queued byte (what `tell` starts at).
        ahead: Blocks queued but not yet taken, at most.
    """

    def __init__(self, *, start: int, ahead: int) -> None:
        super().__init__()
        self._pos = start
        self._ahead = ahead
        self._queued: deque[_Item] = deque()
        self._changed = threading.Condition()  # an item queued or taken, or a stop asked for
        self._is_stopping = False
        self._view = memoryview(b"")  # what is left of the block being served
        self._error: BaseException | None = None
        self._is_done = False

    def readable(self) -> bool:
        """Always readable."""
        return True

    def tell(self) -> int:
        """The absolute offset of the next byte handed to the reader."""
        return self._pos

    def readinto(self, buffer: Buffer) -> int:
        """The next bytes into `buffer`: 0 at the clean end, the producer's error at a break."""
        block = self._serving()
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(block))
        view[:n] = block[:n]
        self._served(n)
        return n

    def _serving(self) -> memoryview:
        """What is left of the block being served, or the next block; empty at the clean end."""
        if not self._view:
            if self._error is not None:
                raise self._error  # again: a broken stream never reads as a clean end
            if self._is_done:
                return self._view
            self._finished_block()
            item = self._take()
            if isinstance(item, BaseException):
                self._error = item
                raise item
            if not item:
                self._is_done = True
                return self._view
            self._view = self._took_block(item)
        return self._view

    def _served(self, n: int) -> None:
        """The reader took the next `n` bytes of the block being served."""
        self._view = self._view[n:]
        self._pos += n

    def _take(self) -> _Item:
        """The next queued item, waiting for the producer (the reader's side)."""
        with self._changed:
            while not self._queued:
                self._changed.wait()
            item = self._queued.popleft()
            self._changed.notify_all()
            return item

    def _put(self, item: _Item) -> bool:
        """Queue `item` for the reader (the producer's side); False when told to stop first."""
        with self._changed:
            while len(self._queued) >= self._ahead and not self._is_stopping:
                self._changed.wait()
            if self._is_stopping:
                return False
            self._queued.append(item)
            self._changed.notify_all()
            return True

    def _ask_stop(self, *, is_stopping: bool = True) -> None:
        """Tell the producer to stop (it returns from `_put` at once), or to go on again."""
        with self._changed:
            self._is_stopping = is_stopping
            self._changed.notify_all()

    def _drop_queued(self) -> None:
        """Forget what is queued (the producer has ended): its blocks are freed now."""
        with self._changed:
            self._queued.clear()

    def _finished_block(self) -> None:
        """The reader is done with the block it served (no view of it is left): hook."""

    def _took_block(self, block: bytes | memoryview) -> memoryview:
        """The view to serve `block` from: hook (a subclass may keep the block to reuse)."""
        return memoryview(block)
