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
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from isal import isal_zlib

from pipeline.failures import NotPlainGzip

if TYPE_CHECKING:
    from collections.abc import Buffer

    from pipeline.gzip.ranged import RangedRawFile

_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 31
_READ_BYTES = 1024 * 1024


class FirstPassRaw(io.RawIOBase):
    """Decompressed bytes from offset 0 through ISA-L; `NotPlainGzip` at any irregularity.

    Args:
        source: The compressed object, read forward from byte 0.
    """

    def __init__(self, source: RangedRawFile) -> None:
        super().__init__()
        self._source = source
        self._inflate = isal_zlib.decompressobj(wbits=_GZIP_WBITS)
        self._pos = 0
        self._is_done = False
        self._pending = b""  # compressed bytes read past a member, for the next one
        source.seek(0)

    def readable(self) -> bool:
        """Always readable."""
        return True

    def tell(self) -> int:
        """The absolute decompressed offset of the next byte this raw stream returns."""
        return self._pos

    def readinto(self, buffer: Buffer) -> int:
        """Inflate into `buffer` with ISA-L; 0 at the clean end.

        Raises:
            NotPlainGzip: the gzip is not plain members to its end (read it through zran).
        """
        if self._is_done:
            return 0
        view = memoryview(buffer).cast("B")
        out = self._inflate_some(len(view))
        view[: len(out)] = out
        self._pos += len(out)
        return len(out)

    def _inflate_some(self, size: int) -> bytes:
        """Up to `size` bytes; empty only at the clean end."""
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
        while len(head) < len(_GZIP_MAGIC):
            more = self._source.read(_READ_BYTES)
            if not more:
                break
            head += more
        if not head:
            self._is_done = True
            return False
        if not head.startswith(_GZIP_MAGIC):  # padding or garbage: zran's checks decide
            raise NotPlainGzip("bytes after a gzip member that start no other")
        self._inflate = isal_zlib.decompressobj(wbits=_GZIP_WBITS)
        self._pending = head
        return True
