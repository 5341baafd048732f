"""A raw decompressed stream over indexed_gzip (zran) whose seek-point index stays small.

zran adds a seek point, with its 32 KiB window, every ``spacing`` decompressed bytes: ~80 MB of
windows per 10 GB at 4 MiB spacing, so a long pass would grow without bound. This stream sheds
every point but point 0 and those near the read position as it goes (export, trim, import), so
memory stays flat. It also turns zran's errors into `ManifestReadError` with the compressed
offset where the stream broke. Knows nothing of checkpoints' storage or of lines.

Longer than ~300 lines on purpose: the end-of-stream checks (trailer, trailing garbage proved by
its CRC) and the recovery of what zran drops at a break all read the same zran state and source.
"""

from __future__ import annotations

import io
import logging
import zlib
from typing import TYPE_CHECKING

from pipeline.failures import ManifestReadError, PipelineError
from pipeline.gzip.index import ZranIndex
from pipeline.gzip.members import GZIP_MAGIC

if TYPE_CHECKING:
    from collections.abc import Buffer

    from indexed_gzip import IndexedGzipFile

    from pipeline.gzip.ranged import RangedRawFile

logger = logging.getLogger(__name__)

DEFAULT_SPACING_BYTES = 1024 * 1024
"""Decompressed bytes between seek points: a resume re-inflates at most this much."""

_MIN_GZIP_BYTES = 18
"""A gzip member is at least a 10-byte header and an 8-byte trailer."""

_TAIL_BYTES = 64 * 1024
"""How much of the object's end is searched for the last trailer past NUL padding."""

_CRC_CHECK_MAX_BYTES = 64 * 1024 * 1024
"""Largest last member whose CRC is recomputed to tell trailing garbage from a cut stream."""
_RECOVER_MAX_BYTES = 16 * 1024 * 1024
"""Largest object decoded again with zlib to recover the bytes zran dropped at a break."""
_RECOVER_STEP_BYTES = 64 * 1024
"""Output of one zlib call when recovering: a corrupt stream loses at most this before its break."""

_TRIM_EVERY_POINTS = 64
"""Shed old seek points once this many spacings were read since the last trim (2 MiB windows)."""


class ZranRaw(io.RawIOBase):
    """Read-only, forward-only decompressed bytes from an `IndexedGzipFile`.

    Args:
        igz: The indexed_gzip file, already positioned at ``offset``.
        source: The compressed object, for error offsets.
        offset: The absolute decompressed offset the stream starts at.
        spacing_bytes: zran's seek-point spacing (sets how often old points are shed).
        keep_behind_bytes: Seek points this far behind the read position survive a trim, so a
            checkpoint at the consumer's (lagging) line end still finds a point before it.
    """

    def __init__(
        self,
        igz: IndexedGzipFile,
        source: RangedRawFile,
        *,
        offset: int,
        spacing_bytes: int,
        keep_behind_bytes: int,
    ) -> None:
        super().__init__()
        self._igz = igz
        self._source = source
        self._pos = offset
        self._keep_behind_bytes = keep_behind_bytes
        self._spacing_bytes = spacing_bytes
        self._trim_every_bytes = _TRIM_EVERY_POINTS * spacing_bytes
        self._last_trim = offset
        self._is_verified = False
        self.trailing_garbage_bytes = 0
        self._after_break: tuple[bytes, PipelineError] | None = None
        """Bytes after the last member's trailer that were ignored, as `gzip -d` ignores them."""

    @classmethod
    def open(
        cls,
        source: RangedRawFile,
        *,
        spacing_bytes: int,
        index: ZranIndex | None,
        offset: int,
        readbuf_bytes: int = 1024 * 1024,
        keep_behind_bytes: int = 64 * 1024 * 1024,
    ) -> ZranRaw:
        """Open at ``offset``, restarting from ``index``'s last seek point when one is given.

        ``readbuf_bytes`` is zran's compressed read size, and so most of what a pass fetches
        past its last line: keep it a fraction of the fetch block (bigger is ~8% faster).
        """
        # lazy: scan reads a plain gzip through ISA-L and never needs zran; importing
        # indexed_gzip (it reads its package metadata) was ~20 ms of every scan's start-up
        from indexed_gzip import IndexedGzipFile  # noqa: PLC0415

        try:
            igz = IndexedGzipFile(
                fileobj=source,
                spacing=spacing_bytes,
                readbuf_size=readbuf_bytes,
                buffer_size=spacing_bytes,
            )
            if index is not None:
                igz.import_index(fileobj=io.BytesIO(index.to_bytes()))
        except (OSError, ValueError) as exc:
            raise _read_error(exc, source) from exc
        raw = cls(
            igz,
            source,
            offset=offset,
            spacing_bytes=spacing_bytes,
            keep_behind_bytes=keep_behind_bytes,
        )
        try:
            igz.seek(offset)
        except (OSError, ValueError) as exc:  # a resumed pass seeking into a broken end
            raw._break(exc)
        return raw

    def readable(self) -> bool:
        """Always readable."""
        return True

    def tell(self) -> int:
        """The absolute decompressed offset of the next byte this raw stream returns."""
        return self._pos

    def readinto(self, buffer: Buffer) -> int:
        """Decompress into ``buffer``; trim the index now and then so memory stays flat."""
        if self._pos == 0:
            # zran adds no seek point on its first read from 0, and with no point it guesses
            # 0.8 compressed bytes per decompressed byte when it next expands: a short first
            # read keeps that guess (and the index's first gap) within one spacing.
            buffer = memoryview(buffer).cast("B")[: self._spacing_bytes]
        if self._after_break is not None:
            return self._serve_after_break(buffer)
        try:
            n = self._igz.readinto(buffer)
        except (OSError, ValueError) as exc:
            self._break(exc)
            return self._serve_after_break(buffer)
        self._pos += n
        if n == 0 and len(memoryview(buffer)) > 0 and not self._is_verified:
            self._verify_end()
        if self._pos - self._last_trim >= self._trim_every_bytes:
            self._shed_points()
        return n

    def _break(self, exc: Exception) -> None:
        """After a zran failure: what zlib still recovers past `_pos`, and the error to raise."""
        error = _read_error(exc, self._source)
        if isinstance(exc.__cause__, PipelineError):
            # the reader's own error (S3 broke a read, refused it, the object changed): not
            # the data's, so nothing past the position is recovered or served — a retried pass
            # must read the same bytes — and it is raised as it is, never read as a truncation
            self._after_break = (b"", error)
            return
        tail, is_cut = self._recover_tail()
        if is_cut and isinstance(error, ManifestReadError):
            error = _truncated(
                f"the gzip stream ends early: {self._pos + len(tail)} bytes decompressed, then "
                "the object stops; it is truncated, upload it again",
                self._source.size_bytes,
            )
        self._after_break = (tail, error)

    def _serve_after_break(self, buffer: Buffer) -> int:
        """Hand out what was recovered past a break, then raise the break's error."""
        assert self._after_break is not None  # set by readinto
        tail, error = self._after_break
        if not tail:
            raise error
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(tail))
        view[:n] = tail[:n]
        self._after_break = (tail[n:], error)
        self._pos += n
        return n

    def _recover_tail(self) -> tuple[bytes, bool]:
        """The bytes past `_pos` that zlib still decodes when zran broke near the end.

        zran drops the whole read in which the stream breaks: a gzip cut inside its 8-byte
        trailer loses up to a read buffer (all of a small manifest). An object up to
        `_RECOVER_MAX_BYTES` is decoded again from its start with zlib, which hands over every
        byte before the break, as `gzip -d` does; a bigger one keeps the loss (README).
        Also says whether the object simply stops inside a member (truncated, not corrupt).
        """
        size = self._source.size_bytes
        if size > _RECOVER_MAX_BYTES:
            return b"", False
        kept = bytearray()
        produced, decoder = 0, zlib.decompressobj(31)
        is_fed = False  # the member being decoded has had input (a fresh one after an end has not)
        self._source.seek(0)
        pending = b""
        while piece := pending or self._source.read(1024 * 1024):
            pending = b""
            is_fed = True
            out = b"-"
            # a full step may hold back output; at a member's end zlib keeps what follows in
            # `unconsumed_tail` too, and would hand it back forever
            while (piece or len(out) == _RECOVER_STEP_BYTES) and not decoder.eof:
                try:  # small outputs: an error drops only the step it happens in
                    out = decoder.decompress(piece, _RECOVER_STEP_BYTES)
                except zlib.error:
                    return bytes(kept), False
                if produced + len(out) > self._pos:
                    kept += out[max(0, self._pos - produced) :]
                produced += len(out)
                piece = decoder.unconsumed_tail
            if decoder.eof:  # another member may follow (NUL padding and garbage end it)
                pending = decoder.unused_data.lstrip(b"\0")
                if pending and not pending.startswith(GZIP_MAGIC):
                    return bytes(kept), False
                decoder, is_fed = zlib.decompressobj(31), False
        return bytes(kept), is_fed and not decoder.eof

    def export_index(self) -> ZranIndex:
        """Every seek point zran holds now (no I/O: the points are in memory)."""
        out = io.BytesIO()
        self._igz.export_index(fileobj=out)
        return ZranIndex.parse(out.getvalue())

    def trimmed_index(self, uncompressed_offset: int) -> ZranIndex:
        """Point 0 plus the last seek point at or before ``uncompressed_offset``."""
        return self.export_index().trimmed(uncompressed_offset)

    def close(self) -> None:
        """Close the indexed_gzip file (its zran buffers are freed now, not at collection)."""
        if not self.closed:
            self._igz.close()
        super().close()

    def _verify_end(self) -> None:
        """Check the last member's ISIZE trailer: zran reports a truncated stream as a clean EOF.

        zran does not validate CRCs when every read restarts at a seek point, and stops quietly
        where the data ends; the gzip trailer's ISIZE (length mod 2**32 of the last member) must
        match what was decompressed since that member's start, which the index records as a
        point without window. NUL padding after the trailer is allowed, as gzip allows it.
        Other bytes after it (trailing garbage, which `gzip -d` ignores with a warning) are
        ignored too, with `trailing_garbage_bytes` set, when the trailer's CRC proves the last
        member whole; garbage that starts like a gzip member is a cut member: truncated.
        Indexing the (cached) tail costs no new fetch.
        """
        self._is_verified = True
        size = self._source.size_bytes
        if size < _MIN_GZIP_BYTES:
            raise _truncated(
                f"the gzip stream is {size} bytes, shorter than a gzip header and trailer "
                "(18 bytes): the object is truncated, upload it again",
                size,
            )
        try:
            self._igz.seek(max(0, self._pos - 1))  # indexes to the end, from the cached tail
            self._igz.seek(self._pos)
            member_start = self.export_index().last_member_start()
        except (OSError, ValueError) as exc:
            raise _read_error(exc, self._source) from exc
        expected = ((self._pos - member_start) % 2**32).to_bytes(4, "little")
        tail = self._tail(8)
        if tail.endswith(b"\0") and not tail.endswith(expected):
            tail = self._tail(_TAIL_BYTES)  # NUL padding: look further back, rarely needed
        if _has_trailer(tail, expected):
            return
        garbage = self._garbage_after_trailer(self._tail(_TAIL_BYTES), expected, member_start)
        if garbage is None:
            raise _truncated(
                f"the gzip stream does not match its trailer: {self._pos} bytes decompressed, "
                f"the trailer at compressed byte {size} disagrees; the object is truncated or "
                "corrupt, upload it again",
                size,
            )
        self.trailing_garbage_bytes = garbage
        logger.warning(
            "%d bytes of trailing garbage after the last gzip member were ignored "
            "(gzip -d: decompression OK, trailing garbage ignored)",
            garbage,
        )

    def _garbage_after_trailer(self, tail: bytes, isize: bytes, member_start: int) -> int | None:
        """Bytes after the last member's trailer, when its CRC and ISIZE prove it whole; else None.

        The trailer is searched backwards in `tail`; what follows it must not start like a gzip
        member (that is a member cut short). The CRC is recomputed from the member's bytes, so
        only members up to `_CRC_CHECK_MAX_BYTES` can be proved (bigger ones are refused as
        truncated: a cut stream ending in the ISIZE's 4 bytes by chance must not pass).
        """
        member_bytes = self._pos - member_start
        if member_bytes > _CRC_CHECK_MAX_BYTES:
            return None
        at = tail.rfind(isize)
        while at >= 4:  # noqa: PLR2004  # the CRC's 4 bytes come before the ISIZE
            rest = tail[at + 4 :]
            if (
                rest
                and not GZIP_MAGIC.startswith(rest[:2])
                and self._crc_matches(member_start, member_bytes, tail[at - 4 : at])
            ):
                return len(rest)
            at = tail.rfind(isize, 0, at)
        return None

    def _crc_matches(self, start: int, length: int, crc: bytes) -> bool:
        """Whether the CRC-32 of decompressed bytes [start, start + length) is `crc`."""
        value = 0
        try:
            self._igz.seek(start)
            while length > 0:
                data = self._igz.read(min(length, 1024 * 1024))
                if not data:
                    return False
                value = zlib.crc32(data, value)
                length -= len(data)
            self._igz.seek(self._pos)
        except (OSError, ValueError):
            return False
        return value.to_bytes(4, "little") == crc

    def _tail(self, length: int) -> bytes:
        self._source.seek(max(0, self._source.size_bytes - length))
        return self._source.read(length) or b""

    def _shed_points(self) -> None:
        keep_from = max(0, self._pos - self._keep_behind_bytes)
        index = self.export_index().trimmed(keep_from, keep_later=True)
        self._igz.import_index(fileobj=io.BytesIO(index.to_bytes()))
        self._last_trim = self._pos
        logger.debug("kept %d seek points at offset %d", len(index.points), self._pos)


def _has_trailer(tail: bytes, isize: bytes) -> bool:
    """Whether ``tail`` ends with ``isize``, allowing NUL padding after it (gzip ignores it)."""
    padding = len(tail) - len(tail.rstrip(b"\0"))
    return any(tail[: len(tail) - cut].endswith(isize) for cut in range(padding + 1))


def _truncated(message: str, size: int) -> ManifestReadError:
    return ManifestReadError(message, error="TruncatedManifest", compressed_offset=size)


def _read_error(exc: Exception, source: RangedRawFile) -> PipelineError:
    """The reader's own error if it caused zran's, else a `ManifestReadError` with the offset."""
    cause = exc.__cause__
    if isinstance(cause, PipelineError):
        return cause
    offset = source.tell()
    return ManifestReadError(
        f"the gzip stream is corrupt or truncated near compressed byte {offset} ({exc}); "
        "check the manifest object (gzip -t) and upload it again",
        error="CorruptManifest",
        compressed_offset=offset,
    )
