"""Prove CSV rows laid out like the block's first line plain, for `scan`: any column order.

The CSV frame proofs (`pipeline.manifest.dense`, `dense_columns`, `dense_uri_columns`) take
the record's columns where most writers put them: `bucket,key` first, or the URI first. A
header naming `key,bucket`, pandas' index column before the URI (`,uri` then `0,s3://B/K`),
or URI lines each in quotes (`csv.writer` with `QUOTE_ALL`) took none: `scan` read them a
column at a time (`pipeline.manifest.parsed_csv`), one `str` a field, at ~0.4x
`gzip -dc | wc -l` (BENCHMARKS.md, "scan of the shapes read a column at a time"). Split
sends such lines unparsed (`raw_lines`); `scan` must count them exactly, so it must know each
line is a record. Here that is proved for a whole block at once, with the block's layout.

Proof, for the n newline-terminated lines of the block (with no backslash, DEL or control byte
but the newlines, and UTF-8):
- header rows (the layout's columns anywhere, keys verbatim): no quote in the block, and every
  line holds the first line's number of commas, at least the layout's fields (one numpy search,
  reshaped a row a line); so `str.split(",")` cuts every line into the same fields, and the
  bucket column is a known bucket, the key column not empty, or the URI column `s3://B/` with a
  known B and a key after it;
- URI lines: every line is `"` + `s3://B/K` + `"` with no other quote (commas may lie inside),
  which the csv module reads to the URI as it stands, B known and K not empty.
Every line is then read by the reference parser (`parse.parse_csv_line` with the layout) to
the record whose parts the proof measured: item sizes come from the fields' lengths, versions
from their column. Anything else returns None and the block goes as before. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from pipeline.manifest.dense import _is_utf8
from pipeline.manifest.dense_columns import _version_sums
from pipeline.manifest.dense_template import (
    _URI_FRAME,
    _names_a_known_bucket,
    found_a_line,
    plain_lines,
    summed_batch,
)
from pipeline.manifest.parse import CsvKind, CsvLayout, ManifestRecord, parse_csv_line

if TYPE_CHECKING:
    import numpy.typing as npt

    from pipeline.manifest.batch import DenseBatch
    from pipeline.manifest.dense import DenseShape

    _Block = npt.NDArray[np.uint8]
    _Starts = npt.NDArray[np.int64]
    _Proved = tuple[_Starts, npt.NDArray[np.int64], npt.NDArray[np.int64] | None]
    """Line starts, each line's bucket + key bytes, and the versions' prefix sums (or None)."""

_COMMA, _QUOTE = ord(","), ord('"')


def dense_csv_template_batch(
    data: bytes, shape: DenseShape, layout: CsvLayout
) -> DenseBatch | None:
    """The block as one batch when every row is laid out like its first (module docstring)."""
    if layout.kind is CsvKind.URI:
        proved = _quoted_uris(data, shape)
    elif layout.kind is CsvKind.HEADER and not layout.is_key_encoded:
        proved = _header_rows(data, shape, layout)
    else:
        return None
    if proved is None or not _is_utf8(data):
        return None
    starts, items, versions = proved
    row = partial(_template_row, layout=layout)
    return summed_batch(shape, data, starts, (items, versions), row, line_extra=1)


def _header_rows(data: bytes, shape: DenseShape, layout: CsvLayout) -> _Proved | None:
    """Rows of bare fields, each line with the first line's commas (module docstring)."""
    table = _table(data, shape, layout)
    if table is None:
        return None
    if layout.uri_col is not None:
        start, end = table.field(layout.uri_col)
        buckets = shape.looped_buckets
        if not _names_a_known_bucket(table.block, start, end - start, buckets, uri=True):
            return None
        items = end - start - _URI_FRAME
    else:
        bucket_start, bucket_end = table.field(layout.bucket_col)
        key_start, key_end = table.field(layout.key_col)
        bucket_length = bucket_end - bucket_start
        if not (key_end > key_start).all() or not _names_a_known_bucket(
            table.block, bucket_start, bucket_length, shape.looped_buckets, uri=False
        ):
            return None
        items = bucket_length + key_end - key_start
    versions = None
    if layout.version_col is not None and layout.version_col <= table.width:
        versions = _version_sums(*table.field(layout.version_col))
    return table.starts, items.astype(np.int64), versions


@dataclass(frozen=True, slots=True)
class _Table:
    """A block of rows with `width` commas each: `commas[i]` are row i's, in order."""

    block: _Block
    starts: _Starts
    commas: npt.NDArray[np.intp]
    width: int

    def field(self, j: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Where field j of every row starts and ends."""
        start = self.starts[:-1] if j == 0 else self.commas[:, j - 1] + 1
        end = self.starts[1:] - 1 if j == self.width else self.commas[:, j]
        return start, end


def _table(data: bytes, shape: DenseShape, layout: CsvLayout) -> _Table | None:
    """The block's rows, when none holds a quote and each holds the first row's commas."""
    width = data[: data.find(b"\n")].count(b",")
    if b'"' in data or width + 1 < layout.min_fields:
        return None
    plain = plain_lines(data)
    if plain is None:
        return None
    block, starts = plain
    commas = found_a_line(block, starts, _COMMA, width)
    return None if commas is None else _Table(block, starts, commas, width)


def _quoted_uris(data: bytes, shape: DenseShape) -> _Proved | None:
    """URI lines, each one quoted field and nothing else (module docstring)."""
    plain = plain_lines(data)
    if plain is None:
        return None
    block, starts = plain
    pairs = found_a_line(block, starts, _QUOTE, 2)
    if pairs is None or not (
        (pairs[:, 0] == starts[:-1]).all() and (pairs[:, 1] == starts[1:] - 2).all()
    ):
        return None
    start, length = pairs[:, 0] + 1, pairs[:, 1] - pairs[:, 0] - 1
    if not _names_a_known_bucket(block, start, length, shape.looped_buckets, uri=True):
        return None
    return starts, (length - _URI_FRAME).astype(np.int64), None


def _template_row(row: bytes, *, layout: CsvLayout) -> tuple[str, ...]:
    """A proved row's record parts, read by the reference parser itself."""
    record = parse_csv_line(row, 0, layout)
    if not isinstance(record, ManifestRecord):  # cannot be: the proof took the row
        raise ValueError(f"a proved row is no record: {record}")
    parts = (record.bucket, record.key)
    return parts if record.version_id is None else (*parts, record.version_id)
