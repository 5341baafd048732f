"""Decode a gzip stream (concatenated members) incrementally, losing nothing before a break.

ISA-L's `IGzipFile` (like any buffered gzip reader) decodes a block, finds the input ended
before the end-of-stream marker, and raises `EOFError` — throwing away the bytes that block had
already decoded. For a manifest that means the lines just before a truncation vanish (a 60-line
manifest cut at two thirds yielded 0 lines). `GzipMembers` drives ISA-L's decompressor itself:
`read` returns everything decoded so far, and the error is raised by the *next* call, so the
reader sees every complete line before the break and then the break.

Memory stays bounded: each step decodes at most `size` bytes (the caller's block), keeping the
rest of the input as the decompressor's unconsumed tail.
"""

from __future__ import annotations

import logging
import zlib
from typing import BinaryIO

from isal import igzip_lib, isal_zlib

logger = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
GZIP_WBITS = 31
"""zlib's "gzip container" window bits."""
RAW_BLOCK_BYTES = 128 * 1024
DECODE_ERRORS = (EOFError, zlib.error, isal_zlib.error, igzip_lib.IsalError)


class GzipMembers:
    """A read-only binary stream of the decoded bytes of `raw` (one or more gzip members)."""

    def __init__(self, raw: BinaryIO, *, raw_block_bytes: int = RAW_BLOCK_BYTES) -> None:
        self._raw = raw
        self._block = raw_block_bytes
        self._decoder = isal_zlib.decompressobj(GZIP_WBITS)
        self._pending = b""
        self._error: BaseException | None = None
        self._is_done = False  # trailing garbage was met: the stream is over

    def read(self, size: int = -1) -> bytes:
        """Up to `size` decoded bytes (all, if negative); b"" only at the clean end.

        Raises:
            EOFError: the input ended inside a member (after everything before it was read).
            zlib.error | isal_zlib.error: corrupt data (likewise).
        """
        if self._error is not None:
            raise self._error
        pieces: list[bytes] = []
        got = 0
        while size < 0 or got < size:
            try:
                piece = self._step(0 if size < 0 else size - got)
            except DECODE_ERRORS as exc:
                if not pieces:
                    raise
                self._error = exc  # hand over what was decoded; raise on the next call
                break
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
        return b"".join(pieces)

    def _step(self, limit: int) -> bytes:
        """Decode one piece of at most `limit` bytes (0: no limit); b"" at the clean end."""
        while not self._is_done:
            if self._decoder.eof:  # a member ended: another may follow (or zero padding)
                rest = self._decoder.unused_data.lstrip(b"\0") or self._next_member_bytes()
                while 0 < len(rest) < len(GZIP_MAGIC) and (more := self._raw.read(self._block)):
                    rest += more
                if not rest:
                    return b""
                if not GZIP_MAGIC.startswith(rest[: len(GZIP_MAGIC)]):
                    # What `gzip -d` does: "decompression OK, trailing garbage ignored".
                    logger.warning(
                        "trailing garbage after the last gzip member was ignored "
                        "(gzip -d: decompression OK, trailing garbage ignored)"
                    )
                    self._is_done = True
                    return b""
                self._decoder = isal_zlib.decompressobj(GZIP_WBITS)
                self._pending = rest
            data = self._decoder.unconsumed_tail or self._pending or self._raw.read(self._block)
            self._pending = b""
            if not data:
                raise EOFError("Compressed file ended before the end-of-stream marker was reached")
            out = self._decoder.decompress(data, limit)
            if out:
                return out
        return b""

    def _next_member_bytes(self) -> bytes:
        while True:
            data = self._raw.read(self._block)
            if not data:
                return b""
            data = data.lstrip(b"\0")
            if data:
                return data

    def close(self) -> None:
        """Nothing to release: the caller closes `raw`."""
