"""Split a decompressed byte stream into lines, in constant memory, counting byte offsets.

Lines are found by `bytes.split` on 1 MiB blocks (the line search runs in C); a line longer
than the limit is read past without being held, and reported as None so the caller can record
it as a failure at its line number. Offsets are counted, never taken from `tell()`: a reader
runs ahead of the line it hands out (the reader's `tell()` runs ahead).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

DEFAULT_MAX_LINE_BYTES = 64 * 1024
BLOCK_BYTES = 1024 * 1024
"""Read size: big enough that `bytes.split` does the line finding in C, small next to memory."""
BOM = b"\xef\xbb\xbf"


class HeadStream:
    """A stream with bytes already read from it (to sniff the format) put back in front.

    `offset` is the uncompressed offset of the next byte it will return.
    """

    def __init__(self, head: bytes, stream: BinaryIO, *, start_offset: int = 0) -> None:
        self._head = head
        self._stream = stream
        self.offset = start_offset

    def skip_bom(self) -> None:
        """Drop a UTF-8 byte order mark, if the stream starts (at offset 0) with one."""
        if self.offset != 0:
            return
        while len(self._head) < len(BOM):  # a short read must not hide a BOM
            more = self._stream.read(len(BOM) - len(self._head))
            if not more:
                break
            self._head += more
        if self._head.startswith(BOM):
            self._head = self._head[len(BOM) :]
            self.offset = len(BOM)

    def read(self, size: int = -1) -> bytes:
        """Read like a file; `read(0)` (a type probe some parsers make) consumes nothing."""
        if self._head and size != 0:
            data, self._head = self._head, b""
        else:
            data = self._stream.read(size)
        self.offset += len(data)
        return data


class LineSplitter:
    """Iterate lines of `source` without their newline; None stands for an over-long line.

    `end` is the offset just past the last line yielded (its newline included), the value a
    checkpoint stores to restart right after that line.
    """

    def __init__(self, source: HeadStream, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._source = source
        self._limit = max_line_bytes
        self.end = source.offset

    def __iter__(self) -> Iterator[bytes | None]:
        self._source.skip_bom()
        read, limit = self._source.read, self._limit
        offset, pending, skipped = self._source.offset, b"", 0
        while block := read(BLOCK_BYTES):
            parts = block.split(b"\n")
            tail = parts.pop()
            if parts and skipped:
                offset += skipped + len(parts[0]) + 1
                skipped, self.end = 0, offset
                yield None
                del parts[0]
            elif parts and pending:
                parts[0], pending = pending + parts[0], b""
            for line in parts:
                offset += len(line) + 1
                self.end = offset
                yield None if len(line) > limit else line
            if skipped:
                skipped += len(tail)
            else:
                pending += tail
                if len(pending) > limit:
                    skipped, pending = len(pending), b""
        if skipped or pending:
            self.end = offset + (skipped or len(pending))
            yield None if skipped else pending

    def iter_runs(self, block_bytes: int = BLOCK_BYTES) -> Iterator[LineRun]:
        """Iterate the same lines as `iter(self)`, a read block's worth at a time.

        The fast path of `RecordReader.iter_batches`: a run that carries `data` (its lines,
        each with its newline, as one bytes object) can be checked and measured whole by C
        string methods instead of line by line. A line that straddles two reads comes alone,
        without `data`. Lines in `data` are handed on whatever their length (they are in
        memory already); a longer-than-limit line straddling reads is None, never held.
        """
        self._source.skip_bom()
        read, limit = self._source.read, self._limit
        offset, pending, skipped = self._source.offset, b"", 0
        while block := read(block_bytes):
            first = block.find(b"\n")
            if first < 0:
                if skipped:
                    skipped += len(block)
                else:
                    pending += block
                    if len(pending) > limit:
                        skipped, pending = len(pending), b""
                continue
            line: bytes | None = None if skipped else pending + block[:first]
            length = skipped + first if skipped else len(line)  # type: ignore[arg-type]
            start, offset = offset, offset + length + 1
            self.end = offset
            yield LineRun(start, offset, None, line)
            last = block.rfind(b"\n")
            if last > first:
                data = block[first + 1 : last + 1]
                start, offset = offset, offset + len(data)
                self.end = offset
                yield LineRun(start, offset, data)
            pending, skipped = block[last + 1 :], 0
            if len(pending) > limit:
                skipped, pending = len(pending), b""
        if skipped or pending:
            self.end = offset + (skipped or len(pending))
            yield LineRun(offset, self.end, None, None if skipped else pending)


@dataclass(frozen=True, slots=True)
class LineRun:
    """Consecutive lines of one read block, as `LineSplitter.iter_runs` yields them.

    Attributes:
        start: Uncompressed offset of the first line.
        end: Offset just past the last line (its newline included, when it has one).
        data: The lines, each with its newline, when they came whole from one read.
        line: Otherwise the run's one line, without newline; None when over-long, read past.
    """

    start: int
    end: int
    data: bytes | None
    line: bytes | None = None

    def lines(self) -> list[bytes | None]:
        """The lines without their newlines (a dense check splits `data` its own way)."""
        if self.data is None:
            return [self.line]
        lines: list[bytes | None] = self.data.split(b"\n")  # type: ignore[assignment]
        lines.pop()
        return lines
