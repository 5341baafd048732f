"""Parse failures waiting for the chunk they belong to, in bounded memory.

Split attributes a malformed line to the chunk of the next good line after it (the part of the
last chunk sent otherwise), which it only knows once that chunk is cut. A manifest can hold
millions of malformed lines between two good ones, so the waiting records cannot simply sit in a
list: past `memory_records` they are spilled, a block at a time, to a temporary file, and read back
in order when their chunk is cut. Memory stays flat. The blocks are compressed, because a
Lambda's /tmp is bounded (Split's `EphemeralStorage`) and a pass can meet ~100 million such
lines: their records differ in little but the line, so a block shrinks from ~55 to ~4-7 bytes
a record, for ~0.3 µs a record against the ~9 µs it took to split the line.
Pure: no client, knows nothing of chunks.
"""

from __future__ import annotations

import dataclasses
import io
import operator
import os
import pickle
import struct
import tempfile
from collections import deque
from collections.abc import Iterator
from typing import IO, Any

from isal import isal_zlib

from pipeline.failures import FailureRecord

MEMORY_RECORDS = 20_000
"""Records kept in memory before the backlog spills to disk (~10 MB of records)."""
GROUP_RECORDS = 5_000
"""At most this many records per group handed out by `pop_through`."""
SPILL_LEVEL = 1
"""isal's fastest: level 2 makes typical parse failures' blocks no smaller (measured)."""
_BLOCK_HEADER = struct.Struct("<Q")

_as_row = operator.attrgetter(*(f.name for f in dataclasses.fields(FailureRecord)))
"""A record as the tuple of its fields in declaration order (`FailureRecord(*row)` rebuilds it):
pickling tuples is ~5x faster than pickling slotted dataclasses."""


class FailureBacklog:
    """A first-in first-out queue of failure records in line order, spilling to disk.

    Memory holds at most two blocks of `memory_records`: the newest records, and the oldest
    spilled block being taken back. Blocks are pickled (the file is private to this process and
    lives only as long as the pass), compressed, and written after their length.
    """

    def __init__(self, memory_records: int = MEMORY_RECORDS) -> None:
        self._memory_records = memory_records
        self._head: deque[FailureRecord] = deque()  # the oldest, read back from disk
        self._disk: IO[bytes] | None = None
        self._blocks = 0  # spilled blocks not read back yet
        self._disk_count = 0
        self._tail: deque[FailureRecord] = deque()  # the newest, not spilled

    def __len__(self) -> int:
        return len(self._head) + self._disk_count + len(self._tail)

    @property
    def in_memory(self) -> int:
        """How many of the queued records are held in memory (the rest are on disk)."""
        return len(self._head) + len(self._tail)

    @property
    def disk_bytes(self) -> int:
        """The spill file's size now (it is truncated only once every spilled block is back)."""
        return 0 if self._disk is None else os.fstat(self._disk.fileno()).st_size

    def add(self, record: FailureRecord) -> None:
        """Queue `record`; its line must follow every queued record's line."""
        self._tail.append(record)
        if len(self._tail) >= self._memory_records:
            self._spill()

    def pop_through(self, last_line: float) -> Iterator[list[FailureRecord]]:
        """Take the queued records with `line <= last_line`, oldest first, in groups.

        Consume the iterator fully: records are taken from the queue as groups are yielded.
        """
        group: list[FailureRecord] = []
        while True:
            source = self._oldest()
            if not source or source[0].line > last_line:
                break
            group.append(source.popleft())
            if len(group) >= GROUP_RECORDS:
                yield group
                group = []
        if group:
            yield group

    def close(self) -> None:
        """Delete the spill file, if any."""
        if self._disk is not None:
            self._disk.close()
            self._disk = None

    def __enter__(self) -> FailureBacklog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _oldest(self) -> deque[FailureRecord]:
        """Where the oldest queued record is: the head, the next spilled block, or the tail."""
        if not self._head and self._blocks:
            assert self._disk is not None  # blocks were spilled to it
            (size,) = _BLOCK_HEADER.unpack(self._disk.read(_BLOCK_HEADER.size))
            data = isal_zlib.decompress(self._disk.read(size))
            block: list[tuple[Any, ...]] = pickle.loads(data)  # our own file, this pass's
            self._head.extend(FailureRecord(*row) for row in block)
            self._blocks -= 1
            self._disk_count -= len(block)
            if not self._blocks:  # drained: start the file over
                self._disk.seek(0)
                self._disk.truncate()
        return self._head if self._head or self._blocks else self._tail

    def _spill(self) -> None:
        if self._disk is None:
            self._disk = tempfile.TemporaryFile()  # noqa: SIM115  # closed by close()
        read_at = self._disk.tell()
        self._disk.seek(0, io.SEEK_END)
        rows = [_as_row(record) for record in self._tail]
        data = isal_zlib.compress(pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL), SPILL_LEVEL)
        self._disk.write(_BLOCK_HEADER.pack(len(data)))
        self._disk.write(data)
        self._disk.seek(read_at if self._blocks else 0)
        self._blocks += 1
        self._disk_count += len(self._tail)
        self._tail.clear()
