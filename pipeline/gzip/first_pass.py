"""A pass from offset 0 that needs no checkpoint: ISA-L over a plain gzip, or a signal to use zran.

A pass that reads a gzip manifest to its end in one go (`lambdaflow scan`) never takes a
checkpoint, so it does not need zran's seek points; indexed_gzip's zlib was a third of scan's
time, and ISA-L inflates the same bytes ~3x faster. But Split's reading is more than inflating:
zran's stream (`pipeline/gzip/zran.py`) verifies the end, ignores proved trailing garbage with a
warning, recovers what it can past a break and names the error — and where the break shows
depends on its read sizes. So this stream serves ISA-L's bytes only while everything is plain:
whole gzip members one after another, each verified by ISA-L (CRC and size). At the first thing
that is not (a decode error, the object ending inside a member, bytes after a member that do not
start another) it raises `NotPlainGzip`, and the caller (`pipeline.split.dry_run`) reads the
whole manifest again through zran: a broken or padded file costs two reads, and reads exactly
as Split reads it. Every inflater yields the same bytes for the same valid deflate data, so a
plain file reads byte for byte as through zran. `tests/unit/split/test_scan_equals_split.py`
holds scan to Split on truncated and corrupt files.

ISA-L inflates on a thread of its own (it releases the GIL while it inflates), a few blocks
ahead of the reader, so on two cores inflating overlaps the parsing of the blocks before: the
reader then pays a queue hand-off a block instead of the inflate. The queue is bounded
(`_AHEAD` blocks of at most `_OUT_BYTES`), so memory stays flat; every byte, the end and any
error reach the reader in stream order.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from isal import isal_zlib

from pipeline.failures import NotPlainGzip
from pipeline.gzip.block_queue import BlockQueueRaw
from pipeline.gzip.members import GZIP_MAGIC

if TYPE_CHECKING:
    from pipeline.gzip.ranged import RangedRawFile

_GZIP_WBITS = 31
_READ_BYTES = 256 * 1024
"""Compressed bytes a feed: ~1.2 MB of text."""
_OUT_BYTES = 1024 * 1024
"""Decompressed bytes a block (fewer only at the end): the record reader's read size
(`pipeline.manifest.lines.BLOCK_BYTES`), so each of its reads takes one whole block. Blocks of
whatever one inflate call gave (~1.2 MB) were read as 1 MiB and a ~0.2 MB rest: twice the
blocks, each with its fixed cost (a line straddling two reads, a proof's start-up), ~0.04 s of a
184 MB scan. Also bounds a 1000:1 member's output."""
_AHEAD = 4
"""Decompressed blocks the inflating thread may hold ready (at most ~4 MB)."""


class FirstPassRaw(BlockQueueRaw):
    """Decompressed bytes from offset 0 through ISA-L; `NotPlainGzip` at any irregularity.

    Args:
        source: The compressed object, read forward from byte 0 (by the inflating thread
            only, from construction on).
    """

    def __init__(self, source: RangedRawFile) -> None:
        super().__init__(start=0, ahead=_AHEAD)
        source.seek(0)
        self._inflater = _Inflater(source)
        self._thread = threading.Thread(target=self._produce, name="isal-inflate", daemon=True)
        self._thread.start()

    def read_block(self, size: int) -> bytes:
        """Up to `size` bytes, one block at most: a whole queued block as ISA-L made it.

        `ResumableStream.read1` reads through this: a block handed over as it is costs no
        copy (`readinto` copies it, ~0.1 ms a MiB, ~0.03 s of a 184 MB scan).
        """
        block = self._serving()
        whole = block.obj
        data = whole if len(block) <= size and len(block) == len(whole) else bytes(block[:size])
        self._served(len(data))
        return data  # type: ignore[return-value]  # the queue holds bytes only

    def close(self) -> None:
        """Stop the inflating thread (it may be blocked on a full queue) and close."""
        self._ask_stop()
        self._thread.join()
        self._drop_queued()
        super().close()

    def _produce(self) -> None:
        """The inflating thread: blocks of `_OUT_BYTES`, then b"" at the clean end, or the error.

        A block is joined from the inflate calls that fill it; what came before an error (or
        the end) is queued first, so every byte reaches the reader before it.
        """
        parts: list[bytes] = []
        got = 0
        item: bytes | BaseException
        try:
            while item := self._inflater.inflate_some(_OUT_BYTES - got):
                parts.append(item)
                got += len(item)
                if got == _OUT_BYTES:
                    if not self._put(_joined(parts)):
                        return
                    parts, got = [], 0
        except BaseException as exc:  # handed to the reader, raised there
            item = exc
        if parts and not self._put(_joined(parts)):
            return
        self._put(item)


def _joined(parts: list[bytes]) -> bytes:
    return parts[0] if len(parts) == 1 else b"".join(parts)


class _Inflater:
    """Whole gzip members one after another, each verified by ISA-L (CRC and size)."""

    def __init__(self, source: RangedRawFile) -> None:
        self._source = source
        self._inflate = isal_zlib.decompressobj(wbits=_GZIP_WBITS)
        self._pending = b""  # compressed bytes read past a member, for the next one

    def inflate_some(self, size: int) -> bytes:
        """Up to `size` bytes; empty only at the clean end.

        Raises:
            NotPlainGzip: the gzip is not plain members to its end.
        """
        while True:
            inflate = self._inflate
            if inflate.eof:
                if not self._next_member(inflate.unused_data):
                    return b""
                continue
            feed = inflate.unconsumed_tail or self._pending or self._source.read(_READ_BYTES)
            self._pending = b""
            try:
                out = inflate.decompress(feed or b"", size)
            except isal_zlib.error as exc:
                raise NotPlainGzip(f"ISA-L: {exc}") from exc
            if out:
                return out
            if not feed and not inflate.eof:
                raise NotPlainGzip("the object ends inside a gzip member")

    def _next_member(self, unused: bytes) -> bool:
        """After a verified member: start the next one (True), or end cleanly (False)."""
        head = unused
        while len(head) < len(GZIP_MAGIC):
            more = self._source.read(_READ_BYTES)
            if not more:
                break
            head += more
        if not head:
            return False
        if not head.startswith(GZIP_MAGIC):  # padding or garbage: zran's checks decide
            raise NotPlainGzip("bytes after a gzip member that start no other")
        self._inflate = isal_zlib.decompressobj(wbits=_GZIP_WBITS)
        self._pending = head
        return True
