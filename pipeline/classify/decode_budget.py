"""How many bytes of decoded pixels a process holds at once, whatever its thread count.

The classify worker decodes on as many threads as it fetches on (16), each image up to 50 MB of
compressed bytes. Sixteen 16 M-pixel PNGs decoded at once need ~1.1 GB on top of their bytes
and the model: over the function's 1,769 MB, so on AWS the environment is ended out of memory on
every delivery of that chunk, and its other images never get labels until a replay. A budget
bounds the decoding instead: an image reserves its decoded size before its pixels are decoded
and waits while the others' reservations leave no room for it. An image larger than the whole
budget is decoded alone, so every image gets decoded. Reservations are served in arrival order,
so a big image is never starved by a stream of small ones.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class DecodeBudget:
    """A first-come, first-served budget of bytes, held while an image is decoded."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._held = 0
        self._waiting: deque[object] = deque()
        self._changed = threading.Condition()

    @property
    def held(self) -> int:
        """Bytes reserved now (an oversized reservation counts as the whole budget)."""
        return self._held

    @contextmanager
    def reserve(self, size: int) -> Iterator[None]:
        """Hold `size` bytes of the budget (at most all of it) for the body of the `with`."""
        size = min(size, self.capacity)
        ticket = object()
        with self._changed:
            self._waiting.append(ticket)
            try:
                self._changed.wait_for(
                    lambda: self._waiting[0] is ticket and self._held + size <= self.capacity
                )
            except BaseException:  # interrupted while waiting: never block the ones behind
                self._waiting.remove(ticket)
                self._changed.notify_all()
                raise
            self._waiting.popleft()
            self._held += size
            self._changed.notify_all()  # the next in line may fit too
        try:
            yield
        finally:
            with self._changed:
                self._held -= size
                self._changed.notify_all()
