"""Read and trim indexed_gzip's exported zran index (format v1), in pure Python.

A checkpoint needs only the seek point just before the next line: indexed_gzip has no API to
drop points, so this module rewrites its export. The v1 layout (``zran_export_index`` in
indexed_gzip 1.10.3's ``zran.c``), all little-endian:

- header, 35 bytes: ``b"GZIDX"``, version u8 (1), flags u8, compressed size u64, uncompressed
  size u64 (0 until the whole stream was read), spacing u32, window size u32, point count u32;
- one 18-byte record per point: compressed offset u64, uncompressed offset u64, bit offset u8,
  has-window u8;
- then one ``window size`` block (32 KiB) for every point whose has-window flag is set, in point
  order. Point 0 and points at gzip member boundaries have no window.

Knows nothing of I/O: bytes in, bytes out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_HEADER = struct.Struct("<5sBBQQIII")
_POINT = struct.Struct("<QQBB")
_MAGIC = b"GZIDX"
_VERSION = 1


class IndexFormatError(ValueError):
    """The bytes are not a zran v1 index (wrong magic or version, or truncated)."""


@dataclass(frozen=True, slots=True)
class SeekPoint:
    """One zran seek point: where decompression can restart without reading what precedes it."""

    compressed_offset: int
    uncompressed_offset: int
    bits: int
    has_window: bool


@dataclass(frozen=True, slots=True)
class ZranIndex:
    """A parsed index: its header fields, its points, and each point's window (or None)."""

    flags: int
    compressed_size: int
    uncompressed_size: int
    spacing: int
    window_size: int
    points: tuple[SeekPoint, ...]
    windows: tuple[bytes | None, ...]

    @classmethod
    def parse(cls, data: bytes) -> ZranIndex:
        """Parse an ``export_index`` result; raise `IndexFormatError` if it is not one."""
        if len(data) < _HEADER.size:
            raise IndexFormatError(f"index truncated: {len(data)} bytes, header is {_HEADER.size}")
        magic, version, flags, csize, usize, spacing, wsize, npoints = _HEADER.unpack_from(data)
        if magic != _MAGIC or version != _VERSION:
            raise IndexFormatError(f"not a zran v1 index (magic {magic!r}, version {version})")
        points = tuple(
            SeekPoint(c, u, bits, bool(flag))
            for c, u, bits, flag in _POINT.iter_unpack(
                data[_HEADER.size : _HEADER.size + npoints * _POINT.size]
            )
        )
        if len(points) != npoints:
            raise IndexFormatError(f"index truncated: {len(points)} of {npoints} points")
        offset = _HEADER.size + npoints * _POINT.size
        windows: list[bytes | None] = []
        for point in points:
            if not point.has_window:
                windows.append(None)
                continue
            window = data[offset : offset + wsize]
            if len(window) != wsize:
                raise IndexFormatError("index truncated inside a window")
            windows.append(window)
            offset += wsize
        return cls(flags, csize, usize, spacing, wsize, points, tuple(windows))

    def to_bytes(self) -> bytes:
        """Serialise in the v1 layout, ready for ``import_index``."""
        parts = [
            _HEADER.pack(
                _MAGIC,
                _VERSION,
                self.flags,
                self.compressed_size,
                self.uncompressed_size,
                self.spacing,
                self.window_size,
                len(self.points),
            )
        ]
        parts.extend(
            _POINT.pack(p.compressed_offset, p.uncompressed_offset, p.bits, int(p.has_window))
            for p in self.points
        )
        parts.extend(window for window in self.windows if window is not None)
        return b"".join(parts)

    def seek_point_before(self, uncompressed_offset: int) -> int:
        """Index of the last point at or before ``uncompressed_offset`` (0 if none is)."""
        best = 0
        for i, point in enumerate(self.points):
            if point.uncompressed_offset > uncompressed_offset:
                break
            best = i
        return best

    def member_start_before(self, point_no: int) -> int:
        """Index of the last gzip member start (a point without window) at or before a point."""
        for i in range(point_no, 0, -1):
            if not self.points[i].has_window:
                return i
        return 0

    def last_member_start(self) -> int:
        """Uncompressed offset where the last gzip member seen so far starts."""
        if not self.points:
            return 0
        return self.points[self.member_start_before(len(self.points) - 1)].uncompressed_offset

    def trimmed(self, uncompressed_offset: int, *, keep_later: bool = False) -> ZranIndex:
        """Keep point 0 and the last point at or before the offset (and later ones if asked).

        Point 0 stays because zran reads from offset 0 without a point and expects its list to
        begin there; the last point before the offset is where a resumed read restarts, so the
        compressed bytes before it are never fetched again. The start of the member holding
        that point stays too (18 bytes, no window): the end-of-stream check needs it.
        ``keep_later`` keeps the points after the offset too: used to shed memory mid-pass
        while the reader runs ahead.
        """
        if not self.points:
            return self
        last = self.seek_point_before(uncompressed_offset)
        stop = len(self.points) if keep_later else last + 1
        member = self.member_start_before(last)
        keep = sorted({0, member, *range(max(1, last), stop)})
        return ZranIndex(
            flags=self.flags,
            compressed_size=self.compressed_size,
            uncompressed_size=self.uncompressed_size,
            spacing=self.spacing,
            window_size=self.window_size,
            points=tuple(self.points[i] for i in keep),
            windows=tuple(self.windows[i] for i in keep),
        )
