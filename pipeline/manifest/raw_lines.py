r"""Lines Split sends unparsed: the worker that classifies them reads them.

Every shape no frame proof takes (JSON with other fields, CSV in another column order, quoted
URI lines, …) was read a column at a time (`pipeline.manifest.parsed_json`, `parsed_csv`) so
that Split knew which lines were records: orjson building each object alone cost ~0.45 µs a
line, more than decompressing it. Split need not know. A worker parses its chunk's lines with
the reader's own line parsers (`parse.parse_json_line`, `parse.parse_csv_line`), a cost that
is nothing beside ~10 ms of inference an image, and a line that is not a record becomes that
chunk's parse failure (stage `parse`, in the chunk's failures part) instead of one in Split's
parse part. Each line is still one line of the count, so `lines = ok + failed` holds as before.

A block goes raw only where that reads every line exactly as the reader would; else it is
read as before (and the reader finds its failures):
- UTF-8 throughout: it travels as JSON text (a line that is not fails as `NotUtf8`);
- no line blank or starting with whitespace (the reader skips blank lines: they are no
  line of the count), none over the length limit (`LineTooLong`);
- no control byte but tab, backspace, form feed, CR and the newlines, so that a line's bytes
  escape to at most twice as many in the message (the size bound below);
- CSV: the layout known, and no quote, or every line one quoted field (`"s3://b/k"`): a line
  left inside quotes is joined with the next ones into one record by the reader.

The message bytes a line adds are bounded by `2 * (its length + newline) + 1`; the chunk cut
uses that bound (not the exact size, which needs every quote counted), so it depends on the
bytes alone. Which blocks go raw depends on where a pass's reads fall, so a chunk holding a
malformed line depends on the checkpoint it is cut from (`pipeline.split.passes`). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline.manifest.batch import UnparsedBatch, line_starts
from pipeline.manifest.dense import _is_utf8
from pipeline.manifest.lines import STARTS_BLANK
from pipeline.manifest.parse import CsvLayout, ManifestRecord, parse_csv_line, parse_json_line

if TYPE_CHECKING:
    import numpy.typing as npt

    from pipeline.failures import ManifestLineError
    from pipeline.manifest.dense import DenseShape

_QUOTE, _CR = ord('"'), ord("\r")
_CONTROL = 0x20
_SHORT_ESCAPE = np.zeros(_CONTROL, bool)
_SHORT_ESCAPE[list(b"\b\t\n\x0c\r")] = True
"""Control bytes JSON writes in two bytes (`\t`); any other one takes six (`\u0001`)."""


@dataclass(frozen=True, slots=True)
class RawLinesBatch(UnparsedBatch):
    """Consecutive manifest lines, sent unparsed: each one record or one parse failure.

    `starts[i]` is line i's offset in `data` (`starts[n]` its length); `layout` reads CSV
    lines, None JSON Lines. Implements `batch.RecordBatch`, where a "record" is a line: which
    of them are records and which failures, the worker finds out (`read_raw_lines`).
    """

    first_line: int
    start_offset: int
    data: bytes
    starts: npt.NDArray[np.int64]
    layout: CsvLayout | None
    end_line: int
    end_offset: int
    part: int = 0
    failures: tuple[ManifestLineError, ...] = ()

    def __len__(self) -> int:
        return len(self.starts) - 1

    def text(self, start: int, stop: int) -> str:
        """Lines [start, stop), a newline between them (proved UTF-8)."""
        return self.data[self.starts[start] : self.starts[stop] - 1].decode()

    def parsed(self, start: int, stop: int) -> tuple[list[ManifestRecord], list[ManifestLineError]]:
        """Lines [start, stop) read as the worker reads them: records and parse failures."""
        return read_raw_lines(self.text(start, stop), self.first_line + start, self.layout)


def raw_lines_batch(
    data: bytes, shape: DenseShape, layout: CsvLayout | None
) -> RawLinesBatch | None:
    r"""The block of `\n`-terminated lines as a `RawLinesBatch`, or None where it must be parsed.

    `layout` is the CSV layout in force, None for JSON Lines (module docstring).
    """
    if not _is_utf8(data):
        return None
    starts = line_starts(data)
    if len(starts) < 2 or int(np.diff(starts).max()) - 1 > shape.max_line_bytes:  # noqa: PLR2004
        return None
    block = np.frombuffer(data, np.uint8)
    if STARTS_BLANK[block[starts[:-1]]].any():
        return None
    if not _short_escapes_only(block, len(starts) - 1):
        return None
    if layout is not None and b'"' in data and not _one_quoted_field(block, starts):
        return None
    count = len(starts) - 1
    return RawLinesBatch(
        shape.first_line,
        shape.start_offset,
        data,
        starts,
        layout,
        shape.first_line + count,
        shape.start_offset + len(data),
        shape.part,
    )


def _short_escapes_only(block: npt.NDArray[np.uint8], newlines: int) -> bool:
    """Whether every control byte is one JSON escapes in two bytes.

    Counted first: a block whose only control bytes are its newlines (nearly every one) is
    proved without gathering them.
    """
    control = block < _CONTROL
    if np.count_nonzero(control) == newlines:
        return True
    return bool(_SHORT_ESCAPE[block[control]].all())


def _one_quoted_field(block: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64]) -> bool:
    """Whether every line is `"…"` (a CR after it allowed) with no other quote in it.

    Counted, not located: each line's first byte and the one before its newline (or CR) are
    two distinct quotes, so a block with two quotes a line has no other.
    """
    count = len(starts) - 1
    if np.count_nonzero(block == _QUOTE) != 2 * count:
        return False
    first = starts[:-1]
    last = starts[1:] - 2  # the byte before each newline
    last -= block[last] == _CR
    return bool(
        (last > first).all() and (block[first] == _QUOTE).all() and (block[last] == _QUOTE).all()
    )


def read_raw_lines(
    text: str, line: int, layout: CsvLayout | None
) -> tuple[list[ManifestRecord], list[ManifestLineError]]:
    """Raw lines (a newline between), the first numbered `line`: its records and failures.

    Each line is read by the reader's own parser for it, so a line gives here exactly the
    record or failure the reader gives it.
    """
    records: list[ManifestRecord] = []
    failures: list[ManifestLineError] = []
    for n, row in enumerate(text.split("\n"), line):
        item = parse_json_line(row, n) if layout is None else parse_csv_line(row, n, layout)
        (records if isinstance(item, ManifestRecord) else failures).append(item)  # type: ignore[arg-type]
    return records, failures
