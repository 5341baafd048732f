"""A Split pass's gzip, inflated once, leaving zran seek points behind it; zran takes any oddity.

indexed_gzip (zran) inflates every byte of a forward read twice: its index expansion inflates
ahead to lay seek points, then each read restarts at a seek point and inflates again. That was
most of a Split pass's time (BENCHMARKS.md "Split's own time is zran's inflating, twice"). This
stream inflates once, with zlib's own `Z_BLOCK` (`pipeline/gzip/zlib_blocks.py`), and lays a
seek point at the first block boundary past every `spacing_bytes` of output, in zran's own
terms (compressed offset of the next whole byte, bits of the byte before, the 32 KiB window, a
windowless point after each member header). So a checkpoint it takes is a zran index, and one
zran took is a start for it: passes of either kind chain.

It serves only what is plain: whole gzip members one after another, each trailer's ISIZE
matching what was inflated. Every member's CRC-32 and ISIZE are checked (ISA-L's crc32,
~40 GB/s): a mismatch serves the member, then raises `CorruptManifest` (zran checks only the
last member's trailer, so a member before it that disagreed passed); zran checked no CRC once a read
restarted at a seek point, so a flipped byte that still inflated passed. A member longer than a
pass is checked across passes: each seek point carries the CRC-32 of its member's bytes before
it (`MemberCrc`), the checkpoint keeps the one it resumes from, and the next pass goes on from
it, so a 20 GB single-member manifest read in ten passes is checked whole at its trailer. At the
first thing that is not plain (a decode error, the object ending inside a member, bytes after a
trailer that start no member, a header it does not take) it hands over,
at the byte it reached, to `ZranRaw` opened at its last seek point. zran then decides, exactly
as before, what the end means: NUL padding, trailing garbage proved by its CRC, a cut or corrupt
stream, what is recovered past a break, and the error's words. Every inflater yields the same
bytes for the same valid deflate data, so the bytes before the hand-over are the bytes zran
would have served. A plain file never meets zran.
"""

from __future__ import annotations

import ctypes
import dataclasses
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from isal import isal_zlib

from pipeline.failures import ManifestReadError
from pipeline.gzip.index import SeekPoint, ZranIndex
from pipeline.gzip.members import GZIP_MAGIC
from pipeline.gzip.zlib_blocks import WINDOW_BYTES, RawInflater, ZlibError

if TYPE_CHECKING:
    from collections.abc import Buffer

    from pipeline.gzip.ranged import RangedRawFile

logger = logging.getLogger(__name__)

HandOver = Callable[[ZranIndex | None, int], io.RawIOBase]
"""Opens zran at an uncompressed offset, from an index (None: from byte 0)."""

_DEFLATE = 8
_FHCRC, _FEXTRA, _FNAME, _FCOMMENT, _RESERVED = 0x02, 0x04, 0x08, 0x10, 0xE0
_FIXED_HEADER_BYTES = 10
_TRAILER_BYTES = 8
_MAX_HEADER_BYTES = 1024 * 1024
"""A member header longer than this (a name or comment without end) is left to zran."""
_TRIM_EVERY_POINTS = 64
_SKIP_BYTES = 1024 * 1024


class _MemberMismatch(ManifestReadError):
    """A member's bytes disagree with its trailer (CRC-32 or length): served up to it first.

    The only error a read defers. Any other (a ranged GET that broke) raises at once, losing
    the bytes inflated in that read: a pass then dies at the end of its last whole block, and
    its retry from the same checkpoint reads the same blocks. Served short, that block would
    have ended the dead attempt's last run of lines early, where Split sends a run unparsed or
    parses it as a whole, and its retry would have cut other chunks under the same numbers.
    """


class _NotPlain(Exception):
    """Something zran must judge: the stream is handed over where it stands."""


@dataclass(frozen=True, slots=True)
class MemberCrc:
    """The CRC-32 of a member's bytes before a seek point: where a resumed pass's check goes on.

    Attributes:
        at: The seek point's uncompressed offset (a checkpoint's index resumes from it).
        crc32: CRC-32 of the member's decompressed bytes from its start up to ``at``.
    """

    at: int
    crc32: int


class OneInflateRaw(io.RawIOBase):
    """Forward-only decompressed bytes of a gzip, inflated once; seek points as zran lays them.

    Args:
        source: The compressed object.
        spacing_bytes: Decompressed bytes between seek points (at the next block boundary).
        keep_behind_bytes: Seek points this far behind the read position survive a trim, so a
            checkpoint at the consumer's (lagging) line end still finds a point before it.
        read_bytes: Compressed bytes a refill asks the source for.
        hand_over: Opens zran where this stream stops being plain.
    """

    def __init__(
        self,
        source: RangedRawFile,
        *,
        spacing_bytes: int,
        keep_behind_bytes: int,
        read_bytes: int,
        hand_over: HandOver,
    ) -> None:
        super().__init__()
        self._source = source
        self._spacing_bytes = spacing_bytes
        self._keep_behind_bytes = keep_behind_bytes
        self._read_bytes = read_bytes
        self._hand_over_to = hand_over
        self._inflater = RawInflater()
        self._points: list[SeekPoint] = []
        self._windows: list[bytes | None] = []
        self._last_point_at = 0
        self._since_trim = 0
        self._pos = 0
        self._member_start = 0
        self._in = b""
        self._in_at = 0  # bytes of `_in` inflate has taken
        self._in_base = 0  # compressed offset of `_in[0]`
        self._ended = False
        self._crc: int | None = None  # of the member so far; None when it began before us
        self._point_crcs: dict[int, int] = {}  # seek point offset → its member's CRC before it
        self._error: ManifestReadError | None = None
        self._zran: io.RawIOBase | None = None
        self._not_plain: str | None = None

    @classmethod
    def open(
        cls,
        source: RangedRawFile,
        *,
        index: ZranIndex | None,
        offset: int,
        spacing_bytes: int,
        keep_behind_bytes: int,
        read_bytes: int,
        hand_over: HandOver,
        member_crc: MemberCrc | None = None,
    ) -> OneInflateRaw:
        """Open at ``offset``, from ``index``'s last seek point at or before it (or byte 0).

        ``member_crc`` (the checkpoint's) goes on with the CRC-32 of the member holding that
        point; without it (or for another point) that member's CRC goes unchecked.
        """
        raw = cls(
            source,
            spacing_bytes=spacing_bytes,
            keep_behind_bytes=keep_behind_bytes,
            read_bytes=read_bytes,
            hand_over=hand_over,
        )
        try:
            if index is None or not index.points:
                raw._start_at_zero()
            elif index.uncompressed_size and offset >= index.uncompressed_size:
                # an index zran exported at the end holds its end point, past the last trailer,
                # where no block starts: zran resumes from it as it always did
                raise _NotPlain("the checkpoint is at the stream's end")
            else:
                raw._start_at(index, offset, member_crc)
        except (_NotPlain, ZlibError) as exc:
            raw._not_plain = str(exc)
            raw._zran = hand_over(index if index is not None and index.points else None, offset)
            raw._pos = offset
            raw._inflater.close()
            return raw
        raw._skip_to(offset)
        return raw

    @property
    def handed_over(self) -> str | None:
        """Why zran serves this stream now, or None while it is plain."""
        return self._not_plain

    def readable(self) -> bool:
        """Always readable."""
        return True

    def tell(self) -> int:
        """The absolute decompressed offset of the next byte this raw stream returns."""
        return self._zran.tell() if self._zran is not None else self._pos

    def readinto(self, buffer: Buffer) -> int:
        """Inflate into ``buffer``, laying seek points; zran's bytes once not plain."""
        if self._zran is not None:
            return self._zran.readinto(buffer)
        if self._error is not None:
            raise self._error
        view = memoryview(buffer).cast("B")
        if self._ended or not len(view):
            return 0
        out = (ctypes.c_char * len(view)).from_buffer(view)
        produced, why = self._inflate_into(view, ctypes.addressof(out))
        del out  # the buffer may be resized once no export of it is left
        self._pos += produced
        if why is None:
            if not produced and self._error is not None:
                raise self._error
            return produced
        self._hand_over(why)
        if produced:
            return produced
        return self._zran.readinto(view)  # type: ignore[union-attr]  # set just now

    def member_crc(self, at: int) -> MemberCrc | None:
        """The CRC-32 of the member's bytes before the seek point at ``at``, if known.

        Known when this reader read the member from its start, or resumed with its `MemberCrc`.
        """
        crc = None if self._zran is not None else self._point_crcs.get(at)
        return None if crc is None else MemberCrc(at, crc)

    def export_index(self) -> ZranIndex:
        """The seek points held now, as zran exports them."""
        if self._zran is not None:
            return _without_end_point(self._zran.export_index())  # type: ignore[attr-defined]
        return ZranIndex(
            flags=0,
            compressed_size=self._source.size_bytes,
            uncompressed_size=0,  # as zran exports it before it has read to the end
            spacing=self._spacing_bytes,
            window_size=WINDOW_BYTES,
            points=tuple(self._points),
            windows=tuple(self._windows),
        )

    def trimmed_index(self, uncompressed_offset: int) -> ZranIndex:
        """Point 0, the member start and the last seek point at or before the offset."""
        return self.export_index().trimmed(uncompressed_offset)

    def close(self) -> None:
        """Free zlib's state, and zran's if it took over."""
        if not self.closed:
            self._inflater.close()
            if self._zran is not None:
                self._zran.close()
        super().close()

    # -- where to start --------------------------------------------------------------------

    def _start_at_zero(self) -> None:
        self._source.seek(0)
        self._in_base = 0
        self._member(0)

    def _start_at(self, index: ZranIndex, offset: int, member_crc: MemberCrc | None) -> None:
        """From the last point at or before ``offset``, as zran restarts from it."""
        at = index.seek_point_before(offset)
        point, window = index.points[at], index.windows[at]
        member_at = index.member_start_before(at)
        member = index.points[member_at]
        start = point.compressed_offset
        if point.bits:
            self._source.seek(start - 1)
            byte = self._source.read(1) or b""
            if not byte:
                raise _NotPlain("the seek point lies past the object's end")
            self._inflater.prime(point.bits, byte[0] >> (8 - point.bits))
        else:
            self._source.seek(start)
        if window is not None:
            self._inflater.set_window(window)
        self._in_base = start
        self._pos = point.uncompressed_offset
        self._member_start = member.uncompressed_offset
        if window is None:  # a windowless point starts a member's data
            self._crc = 0
        elif member_crc is not None and member_crc.at == point.uncompressed_offset:
            self._crc = member_crc.crc32
        else:
            self._crc = None
        self._keep_crc(point.uncompressed_offset)
        keep = sorted({0, member_at, at})
        self._points = [index.points[i] for i in keep]
        self._windows = [index.windows[i] for i in keep]
        self._last_point_at = point.uncompressed_offset

    def _skip_to(self, offset: int) -> None:
        """Inflate and drop what lies between the seek point and ``offset`` (under a spacing)."""
        scratch = bytearray(min(_SKIP_BYTES, max(1, offset - self._pos)))
        while (at := self.tell()) < offset:
            view = memoryview(scratch)[: min(len(scratch), offset - at)]
            if not self.readinto(view):
                return

    # -- inflating -------------------------------------------------------------------------

    def _inflate_into(self, view: memoryview, out: int) -> tuple[int, str | None]:
        """Fill ``view`` (at address ``out``), laying seek points and checking members' CRCs.

        Returns the bytes produced (fewer at the clean end, or before a CRC mismatch, which
        the next read raises) and, when the stream stopped being plain after them, why.
        """
        size = len(view)
        produced = crc_from = 0
        inflater = self._inflater
        try:
            while produced < size:
                if self._in_at == len(self._in) and not self._refill():
                    raise _NotPlain("the object ends inside a gzip member")
                to_point = self._spacing_bytes - (self._pos + produced - self._last_point_at)
                block = to_point <= 0
                data = self._in
                address = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0
                step = inflater.inflate(
                    address + self._in_at,
                    len(data) - self._in_at,
                    out + produced,
                    size - produced if block else min(size - produced, to_point),
                    block=block,
                )
                self._in_at += step.consumed
                produced += step.produced
                if step.stream_end:
                    self._crc_update(view[crc_from:produced])
                    crc_from = produced
                    if not self._next_member(self._pos + produced):
                        self._ended = True
                        break
                elif block and step.at_boundary:
                    self._crc_update(view[crc_from:produced])  # the point carries it
                    crc_from = produced
                    self._add_point(step.bits, inflater.window(), self._pos + produced)
                elif not step.consumed and not step.produced:
                    raise _NotPlain("zlib made no progress")
        except _NotPlain as exc:
            return produced, str(exc)
        except ZlibError as exc:
            return produced, f"zlib: {exc}"
        except _MemberMismatch as exc:  # serve what came before, then raise
            self._error = exc
            return produced, None
        finally:
            self._crc_update(view[crc_from:produced])
        return produced, None

    def _crc_update(self, data: memoryview) -> None:
        if self._crc is not None and len(data):
            self._crc = isal_zlib.crc32(data, self._crc)

    def _keep_crc(self, at: int) -> None:
        """Remember the member's CRC-32 so far for the seek point just laid at ``at``."""
        if self._crc is not None:
            self._point_crcs[at] = self._crc

    def _next_member(self, end: int) -> bool:
        """After a member's last block: check its ISIZE, then start the next (True) or end."""
        trailer = self._take(_TRAILER_BYTES)
        if len(trailer) < _TRAILER_BYTES:
            raise _NotPlain("the object ends inside a gzip trailer")
        wrong = None  # zran checks only the last member's trailer: every one is judged here
        if int.from_bytes(trailer[4:], "little") != (end - self._member_start) % 2**32:
            wrong = "its length (ISIZE)"
        elif self._crc is not None and int.from_bytes(trailer[:4], "little") != self._crc:
            wrong = "its CRC-32"
        if wrong is not None:
            at = self._in_base + self._in_at - _TRAILER_BYTES
            raise _MemberMismatch(
                f"the gzip stream is corrupt: the member ending at compressed byte {at} does "
                f"not match {wrong}; check the manifest object (gzip -t) and upload it again",
                error="CorruptManifest",
                compressed_offset=at,
            )
        if self._in_at == len(self._in) and not self._refill():
            return False
        self._member(end)
        self._inflater.reset()
        return True

    def _member(self, uncompressed_offset: int) -> None:
        """Read a member header here; lay the windowless point zran lays after it."""
        skip = self._header_bytes()
        self._in_at += skip
        self._member_start = uncompressed_offset
        self._crc = 0  # seen from its start: its CRC-32 is checked at its trailer
        self._points.append(SeekPoint(self._in_base + self._in_at, uncompressed_offset, 0, False))
        self._windows.append(None)
        self._keep_crc(uncompressed_offset)
        self._last_point_at = uncompressed_offset

    def _header_bytes(self) -> int:
        """Length of the gzip member header at the read position (more input read as needed)."""
        while True:
            head = memoryview(self._in)[self._in_at :]
            length = _header_length(head)
            if length is not None:
                return length
            if len(head) > _MAX_HEADER_BYTES or not self._refill(keep=True):
                raise _NotPlain("the object ends inside a gzip header")

    def _take(self, count: int) -> bytes:
        """The next ``count`` compressed bytes (fewer at the object's end), taken."""
        while len(self._in) - self._in_at < count and self._refill(keep=True):
            pass
        taken = self._in[self._in_at : self._in_at + count]
        self._in_at += len(taken)
        return taken

    def _refill(self, *, keep: bool = False) -> bool:
        """Read more compressed bytes; ``keep`` the untaken ones before them. False at the end."""
        more = self._source.read(self._read_bytes) or b""
        if not more:
            return False
        rest = self._in[self._in_at :] if keep else b""
        self._in_base += self._in_at
        self._in = rest + more if rest else more
        self._in_at = 0
        return True

    def _add_point(self, bits: int, window: bytes, at: int) -> None:
        if len(window) < WINDOW_BYTES:  # a point early in a member: what precedes it is unused
            window = bytes(WINDOW_BYTES - len(window)) + window
        self._points.append(SeekPoint(self._in_base + self._in_at, at, bits, True))
        self._windows.append(window)
        self._keep_crc(at)
        self._last_point_at = at
        self._since_trim += 1
        if self._since_trim >= _TRIM_EVERY_POINTS:
            self._shed_points(at)

    def _shed_points(self, at: int) -> None:
        kept = self.export_index().trimmed(max(0, at - self._keep_behind_bytes), keep_later=True)
        self._points, self._windows = list(kept.points), list(kept.windows)
        offsets = {point.uncompressed_offset for point in kept.points}
        self._point_crcs = {a: c for a, c in self._point_crcs.items() if a in offsets}
        self._since_trim = 0

    def _hand_over(self, why: str) -> None:
        """Let zran serve from the position reached, starting at the last seek point before it."""
        index = self.export_index() if self._points else None
        logger.info("gzip handed to zran at %d: %s", self._pos, why)
        self._not_plain = why
        self._inflater.close()
        self._zran = self._hand_over_to(
            index.trimmed(self._pos) if index is not None else None, self._pos
        )


def _without_end_point(index: ZranIndex) -> ZranIndex:
    """The index zran exports, less the point it lays at the very end and the size it read.

    That point sits past the last block (no block starts there), and zran records the size it
    reached even when the stream is cut; an index carrying both makes zran's next seek to the
    end fail as corrupt where the same file, read from a point before, is called truncated.
    Dropping a point only makes a resume start earlier.
    """
    size = index.uncompressed_size
    if not size:
        return index
    keep = [i for i, p in enumerate(index.points) if i == 0 or p.uncompressed_offset < size]
    return dataclasses.replace(
        index,
        uncompressed_size=0,
        points=tuple(index.points[i] for i in keep),
        windows=tuple(index.windows[i] for i in keep),
    )


def _header_length(head: memoryview) -> int | None:
    """Bytes of the gzip member header at the start of ``head``; None when more are needed.

    Raises `_NotPlain` for what is not a header zlib would take (zran then judges it).
    """
    if len(head) < _FIXED_HEADER_BYTES:
        if bytes(head[:2]) != GZIP_MAGIC[: len(head[:2])]:
            raise _NotPlain("bytes after a gzip member that start no other")
        return None
    if bytes(head[:2]) != GZIP_MAGIC or head[2] != _DEFLATE or head[3] & _RESERVED:
        raise _NotPlain("bytes after a gzip member that start no other")
    flags, at = head[3], _FIXED_HEADER_BYTES
    if flags & _FEXTRA:
        if len(head) < at + 2:
            return None
        at += 2 + int.from_bytes(head[at : at + 2], "little")
    for flag in (_FNAME, _FCOMMENT):
        if flags & flag:
            end = bytes(head[at:]).find(b"\0")
            if end < 0:
                return None
            at += end + 1
    if flags & _FHCRC:
        at += 2
    return at if at <= len(head) else None
