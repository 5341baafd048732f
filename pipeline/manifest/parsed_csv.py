"""Read a block of CSV rows of any layout at once, a column at a time.

The dense proofs (`pipeline.manifest.dense`, `dense_columns`, `dense_uri_columns`) take the
layouts most writers use: `bucket,key` first, or the URI first, every field bare or every one
quoted. Any other CSV — a header naming `key,bucket` or putting the URI after a label or
pandas' index column (`,uri` then `0,s3://…`), URI lines each in quotes (`csv.writer` with
`QUOTE_ALL`) — went line by line through `parse.parse_csv_row`, at ~5 µs a line. Here a
block is decoded once, split into rows by `str.split` (no quote in it) or by one
`csv.reader` over its lines, and its records are read out a column at a time with the
block's layout, as `parse_csv_row` reads each row; records and restart points are built only
when Split asks (`scan` never does). A block holding a row the reference would make a
failure, a line over the length limit, a blank line or a CR anywhere returns None and goes
line by line, so the two paths never disagree.

Why one `csv.reader` over the lines reads each as `csv.reader([line])` does: a line that
ends outside quotes ends its record, and the reader starts the next line afresh; a line
ending inside quotes would join the next, making fewer rows than lines, which is refused.
Pure: no I/O.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING

import numpy as np

from pipeline.failures import ManifestLineError
from pipeline.manifest.batch import line_starts
from pipeline.manifest.parse import _BATCH_MAX_FIELDS, CsvKind, CsvLayout, decode_key
from pipeline.manifest.parsed_json import PLAIN_JSON_BYTES, ParsedBatch, parsed_batch, uri_columns

if TYPE_CHECKING:
    import numpy.typing as npt

    from pipeline.manifest.dense import DenseShape

_COMMA, _QUOTE = ord(","), ord('"')


@dataclass(frozen=True, slots=True)
class _Table:
    """A block's rows, as `parse._split_fields` cuts each: a column at a time.

    Rows of one width with no quote are one flat `str.split` (column j is every width-th
    field, sliced in C); other rows are a list of field lists.
    """

    flat: list[str] | None
    rows: list[list[str]]
    narrowest: int
    widest: int

    def column(self, index: int) -> list[str]:
        if self.flat is not None:
            return self.flat[index :: self.widest]
        return list(map(itemgetter(index), self.rows))


def parsed_csv_batch(data: bytes, shape: DenseShape, layout: CsvLayout) -> ParsedBatch | None:
    r"""The block of `\n`-terminated CSV rows as a `ParsedBatch`, when every row is a record.

    None otherwise (see the module docstring): the caller reads it line by line.
    """
    starts = line_starts(data)
    if int(np.diff(starts).max()) - 1 > shape.max_line_bytes or b"\r" in data:
        return None
    try:
        lines = data.decode().split("\n")
    except UnicodeDecodeError:
        return None
    lines.pop()
    if "" in lines:
        return None
    if layout.kind is CsvKind.URI:  # the whole line, or its first field when quoted
        columns = _records(_uri_lines(lines, data, starts), None)
    else:
        table = _table(lines, data, starts)
        columns = None if table is None else _columns(table, layout)
    if columns is None:
        return None
    escapes = layout.is_key_encoded and b"%" in data
    rest = data.translate(None, PLAIN_JSON_BYTES)
    is_plain = not escapes and data.isascii() and rest.count(b"\n") == len(rest)
    return parsed_batch(columns, starts, data, shape, is_plain=is_plain)


def _table(lines: list[str], data: bytes, starts: npt.NDArray[np.int64]) -> _Table | None:
    """The rows' fields; None if a row is no CSV row (or the rows join across lines)."""
    if b'"' not in data:
        block = np.frombuffer(data, np.uint8)
        commas = np.searchsorted(np.flatnonzero(block == _COMMA), starts[1:])
        widths = np.diff(commas, prepend=0) + 1
        narrowest, widest = int(widths.min()), int(widths.max())
        if narrowest == widest:
            return _Table(",".join(lines).split(","), [], narrowest, widest)
        return _Table(None, [line.split(",") for line in lines], narrowest, widest)
    try:
        rows = list(csv.reader(lines, strict=True))
    except csv.Error:
        return None
    if len(rows) != len(lines):
        return None
    widths = set(map(len, rows))
    return _Table(None, rows, min(widths), max(widths))


def _columns(
    table: _Table, layout: CsvLayout
) -> tuple[list[str], list[str], list[str | None] | None] | None:
    """Buckets, keys and versions as `parse.parse_csv_row` reads the rows with `layout`."""
    too_wide = layout.kind is CsvKind.BATCH and table.widest > _BATCH_MAX_FIELDS
    if table.narrowest < layout.min_fields or too_wide:
        return None
    versions = _versions(table, layout.version_col)
    if layout.uri_col is not None:
        return _records(uri_columns(table.column(layout.uri_col)), versions)  # type: ignore[arg-type]
    keys = table.column(layout.key_col)
    if layout.is_key_encoded:
        keys = [decode_key(key, 0) for key in keys]  # type: ignore[misc]
        if any(isinstance(key, ManifestLineError) for key in keys):
            return None
    return _records((table.column(layout.bucket_col), keys), versions)


def _uri_lines(
    lines: list[str], data: bytes, starts: npt.NDArray[np.int64]
) -> tuple[list[str], list[str]] | None:
    """Buckets and keys of URI lines: each read whole, or, quoted, as its one CSV field.

    A line quoted at both ends with no other quote is that one field, its quotes cut off;
    other quoted lines go through `csv.reader` as the reference does.
    """
    if b'"' not in data:
        return uri_columns(lines)  # type: ignore[arg-type]
    block = np.frombuffer(data, np.uint8)
    is_one_field = np.count_nonzero(block == _QUOTE) == 2 * len(lines) and bool(
        (block[starts[:-1]] == _QUOTE).all() and (block[starts[1:] - 2] == _QUOTE).all()
    )
    if is_one_field:
        return uri_columns(list(map(itemgetter(slice(1, -1)), lines)))
    table = _table(lines, data, starts)
    if table is None or not all(line.startswith('"') for line in lines):
        return None
    return uri_columns(table.column(0))  # type: ignore[arg-type]


def _records(
    halves: tuple[list[str], list[str]] | None, versions: list[str | None] | None
) -> tuple[list[str], list[str], list[str | None] | None] | None:
    return None if halves is None else (*halves, versions)


def _versions(table: _Table, column: int | None) -> list[str | None] | None:
    """Each row's version (None for an empty one or a short row); None if none has one."""
    if column is None:
        return None
    if column < table.narrowest:
        versions = [version or None for version in table.column(column)]
    else:
        versions = [row[column] or None if column < len(row) else None for row in table.rows]
    return None if versions.count(None) == len(versions) else versions
