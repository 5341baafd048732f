r"""Prove a span of JSON array elements laid out like its first element plain, at C speed.

The array frame proof (`pipeline.manifest.dense_array`) takes elements that are exactly
`{"bucket":"B","key":"K"}`, one a line. Arrays as `json.dump` writes them (all on one line
with `", "` and `": "`, or indented over several lines a field), with other fields, or of URI
strings took none: `scan` parsed them an `orjson.loads` a span and read the objects a column at
a time, ~0.4x `gzip -dc | wc -l` (BENCHMARKS.md, "scan of the shapes read a column at a time"),
and Split sent them unparsed (`raw_elements`), as text whose every quote `orjson.dumps`
escaped. Here a whole span is proved from one template: its first element, read as a JSON
Lines line is (`pipeline.manifest.dense_template`). `scan` counts such a span without an
object an element, and Split sends its elements as the JSON they are (`objects`).

A span runs from just past an element to just past a later one's end (`ArraySplitter`): rows
`SEP` + element, `SEP` whitespace around one comma. Proof, with no backslash or DEL in the
span and UTF-8: the span holds the template's quotes a row, in rows; before each row's first
string lie the first row's `SEP` and the template's opening bytes, between its strings the
template's bytes (or an integer, for a number), after its last string the template's
closing bytes, up to the next row's `SEP` (the span's end, for the last); the field names are
the template's, the bucket known, the key not empty; and the span's control bytes are all
those bytes' own (none in a string). Every byte outside a string is then the template's, so
the splitter cuts the elements at the rows' ends, and each element reads, by the reference
parser (`parse.parse_json_line`), to the record whose parts the proof measured. Elements that
are URI strings are proved the same way, each `SEP` + `"s3://B/K"`. Anything else returns
None and the span goes as before. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from pipeline.manifest.dense import _is_utf8
from pipeline.manifest.dense_columns import SummedBatch
from pipeline.manifest.dense_json import _WHITESPACE, _WHITESPACE_RUN, _controls_are_the_frames
from pipeline.manifest.dense_template import (
    _URI_FRAME,
    _gap_holds,
    _names_a_known_bucket,
    _sizes,
    _Template,
    _template,
    summed_batch,
)
from pipeline.manifest.parse import ManifestRecord, parse_json_line

if TYPE_CHECKING:
    import numpy.typing as npt

    from pipeline.manifest.dense import DenseShape

_QUOTE = ord('"')
_SEPARATOR_BYTES = _WHITESPACE + b","
_SEPARATOR = re.compile(_WHITESPACE_RUN + b"," + _WHITESPACE_RUN)
_FIRST_TRIES = 8
"""`}` bytes tried as the end of the first element (the others lie inside its strings)."""


@dataclass(frozen=True, slots=True)
class ElementsBatch(SummedBatch):
    """A `SummedBatch` of array elements, row i `separator` + element i, cut at `starts`.

    Not at a `row_end` byte, as `DenseBatch` cuts: a `}` may lie inside a key here. Every row
    starts with the same `separator`, so the rows less the first's are JSON array elements
    with their commas: Split sends them so (`objects`).
    """

    separator: bytes = b","

    @property
    def rows(self) -> list[bytes]:
        """Every row, built once from `data` at `starts`."""
        if not self._rows and self.data is not None:
            self._rows.extend(self.data[a:b] for a, b in pairwise(self.starts))
        return self._rows


def dense_array_template_batch(span: bytes, shape: DenseShape) -> ElementsBatch | None:
    """The span's elements as one batch when laid out like its first (module docstring).

    A span cut inside a string (`ArraySplitter` cuts after the last `}` it read, which may lie
    in a key) is taken up to its last whole element: the batch ends there.
    """
    separator = _SEPARATOR.match(span)
    if separator is None:
        return None
    sep, opening = separator.group(), span[separator.end() : separator.end() + 1]
    if opening == b"{":
        template = _first_element_template(span, len(sep))
        lead = None if template is None else template.gaps[0]
        if template is None or not isinstance(lead, bytes):
            return None
        rows = _whole_rows(span, template.quotes, len(sep) + len(lead), closing=b"}")
        proved = None if rows is None else _objects(rows, sep, template, shape)
    elif opening == b'"':
        rows = _whole_rows(span, 2, len(sep), closing=b'"')
        proved = None if rows is None else _uris(rows, sep, shape)
    else:
        return None
    if rows is None or proved is None or not _is_utf8(rows.span):
        return None
    items, versions = proved
    return summed_batch(
        shape,
        rows.span,
        rows.starts,
        (items, versions),
        _element_row,
        line_extra=0,
        kind=ElementsBatch,
        separator=sep,
    )


def _first_element_template(span: bytes, at: int) -> _Template | None:
    """The layout of the element at `at`: it ends at the first `}` outside its strings."""
    end = at
    for _ in range(_FIRST_TRIES):
        end = span.find(b"}", end) + 1
        if not end:
            return None
        if span.count(b'"', at, end) % 2 == 0:
            return _template(span[at:end])
    return None


@dataclass(frozen=True, slots=True)
class _Rows:
    """A span's whole rows: their bytes, its quotes a row at a time, and where rows start.

    `starts[i]` is where row i starts (`len(span)` last).
    """

    span: bytes
    block: npt.NDArray[np.uint8]
    pairs: npt.NDArray[np.intp]
    starts: npt.NDArray[np.int64]


def _whole_rows(span: bytes, quotes_a_row: int, lead: int, *, closing: bytes) -> _Rows | None:
    """The span cut in rows by the quotes; None if it holds none, or not whole rows.

    The rows hold `quotes_a_row` quotes each, their first `lead` bytes after the row's start.
    A span that ends inside a string (an odd number of quotes: no backslash escapes one) is
    taken up to its last row whole, which ends at the first `closing` byte after its last
    quote; any other span is taken whole or not at all, so an odd element goes on to the
    paths that take it with its span (`raw_elements`) as it did. Nothing here proves the bytes
    between the quotes: the callers do. No backslash or DEL in the rows.
    """
    block = np.frombuffer(span, np.uint8)
    quotes = np.flatnonzero(block == _QUOTE)
    whole = len(quotes) if len(quotes) % 2 == 0 else len(quotes) // quotes_a_row * quotes_a_row
    if not whole or whole % quotes_a_row:
        return None
    if whole < len(quotes):  # the span ends inside a string: cut after the last row whole
        end = span.find(closing, int(quotes[whole - 1])) + 1
        if not end:
            return None
        span, block = span[:end], block[:end]
    count = whole // quotes_a_row
    if b"\\" in span or b"\x7f" in span:
        return None
    pairs = quotes[:whole].reshape(count, quotes_a_row)
    starts = np.empty(count + 1, np.int64)
    np.subtract(pairs[:, 0], lead, out=starts[:-1])
    starts[-1] = len(span)
    return None if starts[0] != 0 else _Rows(span, block, pairs, starts)


if TYPE_CHECKING:
    _Proved = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64] | None]
    """Each row's bucket + key bytes, and the versions' prefix sums (or None)."""


def _objects(rows: _Rows, sep: bytes, template: _Template, shape: DenseShape) -> _Proved | None:
    """Rows `SEP` + an object laid out as `template` (module docstring)."""
    block, pairs, starts = rows.block, rows.pairs, rows.starts
    gaps = (p for gap in template.gaps for p in ((gap,) if isinstance(gap, bytes) else gap))
    if not _controls_are_the_frames(block, len(pairs), (sep, *gaps)):
        return None
    led = replace(template, gaps=(sep + template.gaps[0], *template.gaps[1:]))  # type: ignore[operator]
    return _sizes(block, pairs, starts[:-1], starts[1:], led, shape.looped_buckets)


def _uris(rows: _Rows, sep: bytes, shape: DenseShape) -> _Proved | None:
    """Rows `SEP` + `"s3://B/K"` (module docstring)."""
    block, pairs, starts = rows.block, rows.pairs, rows.starts
    if not _controls_are_the_frames(block, len(pairs), (sep,)):
        return None
    if not (
        _gap_holds(block, starts[:-1], pairs[:, 0], sep) and (pairs[:, 1] + 1 == starts[1:]).all()
    ):
        return None
    start, length = pairs[:, 0] + 1, pairs[:, 1] - pairs[:, 0] - 1
    if not _names_a_known_bucket(block, start, length, shape.looped_buckets, uri=True):
        return None
    return (length - _URI_FRAME).astype(np.int64), None


def _element_row(row: bytes) -> tuple[str, ...]:
    """A proved row's record parts: its element, read by the reference parser itself."""
    record = parse_json_line(row.lstrip(_SEPARATOR_BYTES), 0)
    if not isinstance(record, ManifestRecord):  # cannot be: the proof took the element
        raise ValueError(f"a proved element is no record: {record}")
    parts = (record.bucket, record.key)
    return parts if record.version_id is None else (*parts, record.version_id)
