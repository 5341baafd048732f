"""Stream records out of an already-decompressed manifest, from any restart point.

This is the seam between reading bytes (local file, S3, gzip, a resumable zran reader) and
parsing them: give `RecordReader` a binary stream, a format and where it starts (line number,
uncompressed offset, CSV layout) and it yields records and line errors in constant memory. After
any item, `reader.position` says where a later reader should start to continue right after it.
Knows nothing of gzip, S3 or smart_open.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO

import orjson

from pipeline.failures import ManifestLineError, ManifestReadError
from pipeline.manifest_json_array import ArraySplitter
from pipeline.manifest_lines import BOM, DEFAULT_MAX_LINE_BYTES, HeadStream, LineSplitter
from pipeline.manifest_parse import (
    CsvKind,
    CsvLayout,
    ManifestRecord,
    detect_csv_layout,
    parse_csv_row,
    parse_json_value,
)

SNIFF_BYTES = 64 * 1024

Item = ManifestRecord | ManifestLineError


class ManifestFormat(StrEnum):
    """The manifest formats of DESIGN.md, as sniffed from the first decompressed bytes."""

    CSV = "csv"
    JSON_LINES = "jsonl"
    JSON_ARRAY = "json"
    INVENTORY = "inventory"  # an S3 Inventory manifest.json: a list of gzip CSV parts


@dataclass(frozen=True, slots=True)
class Position:
    """Where to restart so the next item read is the one after the last item yielded.

    Attributes:
        line: The line number (JSON arrays: element number) the restarted reader starts at.
        offset: Uncompressed byte offset just past the last item's line (JSON arrays: just
            past its element, where `,` or `]` follows) in the current part.
        part: Index of the file being read (S3 Inventory parts); 0 otherwise.
        layout: The CSV layout in force (a header row lies behind the restart point).
    """

    line: int
    offset: int
    part: int = 0
    layout: CsvLayout | None = None


def sniff_format(head: bytes) -> ManifestFormat:
    """Tell the format from the first decompressed bytes, never from the name.

    `[` starts a JSON array, `{` JSON Lines, unless the first object (or, pretty-printed, the
    head) carries an S3 Inventory `fileSchema`; anything else is CSV.
    """
    text = head.removeprefix(BOM).lstrip()
    if text.startswith(b"["):
        return ManifestFormat.JSON_ARRAY
    if not text.startswith(b"{"):
        return ManifestFormat.CSV
    try:
        first = orjson.loads(text.split(b"\n", 1)[0])
    except orjson.JSONDecodeError:
        is_inventory = b'"fileSchema"' in text
    else:
        is_inventory = isinstance(first, dict) and "fileSchema" in first
    return ManifestFormat.INVENTORY if is_inventory else ManifestFormat.JSON_LINES


class RecordReader:
    """Iterate one decompressed manifest stream; see the module docstring.

    Args:
        stream: Decompressed bytes, positioned at `start_offset` (minus `head`).
        fmt: The format; `INVENTORY` is not a stream format (see `pipeline.manifest_inventory`).
        first_line: Line (element) number of the first line in the stream.
        start_offset: Uncompressed offset of the stream's first byte (a BOM is stripped only at 0).
        layout: The CSV layout; None detects it from the first non-blank line.
        max_line_bytes: Longer lines become `LineTooLong` failures, read past in constant memory.
        part: Reported back in `position`.
        head: Bytes already read from `stream` (for sniffing) that logically come first.
    """

    def __init__(
        self,
        stream: BinaryIO,
        fmt: ManifestFormat,
        *,
        first_line: int = 1,
        start_offset: int = 0,
        layout: CsvLayout | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        part: int = 0,
        head: bytes = b"",
    ) -> None:
        if fmt is ManifestFormat.INVENTORY:
            raise ValueError("an Inventory manifest.json lists parts; read it with iter_manifest")
        self._fmt = fmt
        self._max_line_bytes, self._part, self._layout = max_line_bytes, part, layout
        self._first_line = first_line
        self._next_line, self._next_offset = first_line, start_offset
        self._line_after = first_line
        self._source = HeadStream(head, stream, start_offset=start_offset)
        self._lines = LineSplitter(self._source, max_line_bytes=max_line_bytes)

    @property
    def position(self) -> Position:
        """The restart point just past the last item yielded."""
        return Position(self._next_line, self._next_offset, self._part, self._layout)

    @property
    def uncompressed_bytes(self) -> int:
        """Uncompressed offset reached so far (read ahead of the last item by up to a block)."""
        return self._source.offset

    @property
    def lines_read(self) -> int:
        """Lines (array elements) read: exact at the end, else up to the last item yielded."""
        return max(self._line_after, self._next_line) - self._first_line

    def __iter__(self) -> Iterator[Item]:
        items = self._iter_json_array() if self._fmt is ManifestFormat.JSON_ARRAY else None
        if items is None:
            lines = iter(self._lines)
            is_csv = self._fmt is ManifestFormat.CSV
            items = self._iter_csv(lines) if is_csv else self._iter_json_lines(lines)
        try:
            yield from items
        except ManifestReadError as exc:
            if exc.line is not None:
                raise
            line = self._line_after
            raise ManifestReadError(
                f"{exc.message} while reading line {line}; every line before it was read",
                error=exc.error,
                line=line,
                compressed_offset=exc.compressed_offset,
            ) from exc

    def _too_long(self, line: int) -> ManifestLineError:
        return ManifestLineError(
            f"line {line}: longer than {self._max_line_bytes} bytes; raise max_line_bytes "
            "if it is a real key",
            error="LineTooLong",
            line=line,
        )

    def _iter_csv(self, lines: Iterator[bytes | None]) -> Iterator[Item]:
        n = self._next_line - 1
        try:
            for raw in lines:
                n += 1
                if raw is None:
                    item: Item = self._too_long(n)
                elif not raw or raw.isspace():
                    continue
                else:
                    try:
                        text = raw.decode().removesuffix("\r")
                    except UnicodeDecodeError as exc:
                        item = _not_utf8(n, exc)
                    else:
                        if self._layout is None and self._detect_layout(text, n):
                            continue
                        item = parse_csv_row(text, n, self._layout)  # type: ignore[arg-type]
                self._next_line, self._next_offset = n + 1, self._lines.end
                yield item
        finally:
            self._line_after = n + 1

    def _detect_layout(self, text: str, line: int) -> bool:
        """Set the layout from the first non-blank line; True when that line is a header."""
        layout = detect_csv_layout(text, line)
        if isinstance(layout, ManifestLineError):
            raise ManifestReadError(layout.message, error=layout.error, line=line)
        self._layout = layout
        return layout.kind is CsvKind.HEADER

    def _iter_json_lines(self, lines: Iterator[bytes | None]) -> Iterator[Item]:
        n = self._next_line - 1
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        try:
            for raw in lines:
                n += 1
                if raw is None:
                    item: Item = self._too_long(n)
                elif not raw or raw.isspace():
                    continue
                else:
                    try:
                        item = parse_json_value(loads(raw), n)
                    except decode_error as exc:
                        item = _bad_json_line(raw, n, exc)
                self._next_line, self._next_offset = n + 1, self._lines.end
                yield item
        finally:
            self._line_after = n + 1

    def _iter_json_array(self) -> Iterator[Item]:
        """Yield array elements; element number (index + 1) is the line identity."""
        n = self._next_line - 1
        elements = ArraySplitter(self._source, max_element_bytes=self._max_line_bytes)
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        try:
            for raw in elements:
                n += 1
                if raw is None:
                    item: Item = self._too_long(n)
                else:
                    try:
                        item = parse_json_value(loads(raw), n)
                    except decode_error as exc:
                        item = _bad_json_line(raw, n, exc)
                self._next_line, self._next_offset = n + 1, elements.end
                yield item
        finally:
            self._line_after = n + 1


def _not_utf8(line: int, exc: UnicodeDecodeError) -> ManifestLineError:
    return ManifestLineError(
        f"line {line}: not UTF-8 at byte {exc.start}", error="NotUtf8", line=line
    )


def _bad_json_line(raw: bytes, line: int, exc: Exception) -> ManifestLineError:
    try:
        raw.decode()
    except UnicodeDecodeError as err:
        return _not_utf8(line, err)
    return ManifestLineError(f"line {line}: not a JSON object ({exc})", error="BadJson", line=line)


def iter_records_from_stream(
    stream: BinaryIO,
    fmt: ManifestFormat,
    *,
    first_line: int = 1,
    start_offset: int = 0,
    layout: CsvLayout | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[Item]:
    """Yield records and line errors from a decompressed stream (no position tracking needed).

    Use `RecordReader` directly when you need `position` after each item.
    """
    return iter(
        RecordReader(
            stream,
            fmt,
            first_line=first_line,
            start_offset=start_offset,
            layout=layout,
            max_line_bytes=max_line_bytes,
        )
    )
