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

import numpy as np

DEFAULT_MAX_LINE_BYTES = 64 * 1024
BLOCK_BYTES = 1024 * 1024
"""Read size: big enough that `bytes.split` does the line finding in C, small next to memory."""
BOM = b"\xef\xbb\xbf"
_LF = ord("\n")
STARTS_BLANK = np.zeros(256, bool)
STARTS_BLANK[list(b" \t\n\r\x0b\x0c")] = True
"""A line starting with one of these may be blank (`bytes.isspace`): the reader skips it."""


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


def around_blank_lines(run: LineRun, *, narrowest: int) -> list[tuple[LineRun, bool]] | None:
    """The run cut around its blank lines: (piece, whether it has none), in order.

    A blank line is empty or whitespace alone (`bytes.isspace`: a CR before the newline, spaces,
    tabs), as the reader skips it: no record and no failure. Every frame proof refuses a block
    holding one: one every 1,000 lines sent every block of a manifest line by line. Cut out,
    the blank lines are counted, and the lines between them proved. Lines between two cuts that
    make up less than `narrowest` bytes stay with the blank lines around them (a double-spaced
    file would cost a proof a line). None when the run has no blank line.
    """
    data = run.data
    if data is None:
        return None
    spans = _blank_spans(data)
    if not spans:
        return None
    pieces: list[tuple[LineRun, bool]] = []
    plain_from = 0  # where the lines since the last blank span start
    loose_from: int | None = None  # where the piece read line by line starts, if one is open
    for at, end in [*spans, (len(data), len(data))]:
        if at - plain_from >= narrowest:
            if loose_from is not None:
                pieces.append((_sub_run(run, loose_from, plain_from), False))
            pieces.append((_sub_run(run, plain_from, at), True))
            loose_from = at
        elif loose_from is None:
            loose_from = plain_from
        plain_from = end
    if loose_from is not None and loose_from < len(data):
        pieces.append((_sub_run(run, loose_from, len(data)), False))
    return pieces


def _blank_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each stretch of consecutive blank lines that end with a newline, in order.

    From the newlines' offsets, at numpy speed (`bytes.find` of two newlines ran at ~1 GB/s, a
    third of the cost of proving the block): a line is blank if it is empty, or starts with
    whitespace and is whitespace alone (checked line by line: only those few).
    """
    block = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(block == _LF)
    if not len(ends):
        return []
    starts = np.empty_like(ends)
    starts[0], starts[1:] = 0, ends[:-1] + 1
    blank = starts == ends
    maybe = np.flatnonzero(~blank & STARTS_BLANK[block[starts]])
    for i in maybe.tolist():
        blank[i] = data[starts[i] : ends[i]].isspace()
    lines = np.flatnonzero(blank)
    if not len(lines):
        return []
    breaks = np.flatnonzero(np.diff(lines) != 1)
    first, last = lines[np.r_[0, breaks + 1]], lines[np.r_[breaks, len(lines) - 1]]
    return list(zip(starts[first].tolist(), (ends[last] + 1).tolist(), strict=True))


def _sub_run(run: LineRun, start: int, end: int) -> LineRun:
    """Bytes [start, end) of a run's data as a run of its own (both at line starts)."""
    assert run.data is not None  # only cut from whole lines
    return LineRun(run.start + start, run.start + end, run.data[start:end])
