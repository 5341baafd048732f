"""Prove a block of header-CSV rows whose first column is an `s3://` URI plain, at C speed.

A training-set listing is often a header CSV such as `uri,label` (pandas `to_csv`), one
`s3://bucket/key,cat` a line. The reference parser (`parse.parse_csv_row` with the header's
layout) splits such a row at its commas and reads the first field as a URI, the key verbatim.
The check here proves, for a whole block, that every line is such a row: the same number of
bare fields (no quote), the first one `s3://B/K` with a validated bucket B and a non-empty key.
Then the items' sizes follow from where each row's first comma lies, and Split sends the rows
as they are, with the layout that reads them (`URI_COLUMN_LAYOUT`). Reuses the header-CSV
proof's field search (`pipeline.manifest.dense_columns`). A version column in these rows is
left to the line parser. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.manifest.batch import DenseBatch
from pipeline.manifest.dense import DenseShape, _Form, _is_utf8, _lines_start_with_a_bucket
from pipeline.manifest.dense_columns import (
    SummedBatch,
    _controls_are_line_ends,
    _find_fields,
    _row_form,
)
from pipeline.manifest.parse import CsvKind, CsvLayout, split_uri

_URI_ITEM_DELTA = len('[,"",""]') - len("s3:///")
"""A URI `s3://b/k` is b + k + 6 bytes; its item `[n,"b","k"]` b + k + 8 + digits."""
_SLASH = ord("/")
_NEVER_EMPTY = -(2**62)
"""`_Form.min_row_bytes` that skips `DenseShape.batch`'s empty-key search: done here."""


def _first_field_uri(row: bytes) -> tuple[str, str]:
    return split_uri(row.decode().split(",", 1)[0])  # type: ignore[return-value]  # proved


URI_COLUMN_LAYOUT = CsvLayout(CsvKind.SCHEMA, uri_col=0, version_col=None, is_key_encoded=False)
"""What reads a `UriColumnBatch` row: the URI in the first field, taken verbatim."""


@dataclass(frozen=True, slots=True)
class UriColumnBatch(SummedBatch):
    """A `SummedBatch` of bare `s3://B/K,…` rows: `item_sums` sums URI lengths, rows [0, i)."""

    layout: CsvLayout = URI_COLUMN_LAYOUT
    is_quoted: bool = False


def dense_uri_columns_batch(
    data: bytes, shape: DenseShape, *, version_col: int | None
) -> DenseBatch | None:
    r"""A batch when every line is `s3://B/K` and c - 1 more bare fields, c ≥ 2; else None.

    Proof, for the n newline-terminated lines of `data`: the first line's skeleton is c - 1
    commas then `\n` or `\r\n`, and every line has it (`dense_columns`: no quote, backslash
    or DEL in the block, c - 1 commas then a newline a line, the control bytes only those
    newlines and their CRs); every line starts `s3://B/` with a validated bucket B; no byte
    before a line's first comma is `/` (so no key is empty: a key ending in `/`, a folder
    marker, is left to the line parser too); the bytes are UTF-8. Then the reference parser
    reads the URI from the first field as it is (no version column among the c fields).
    """
    form = _row_form(data[: data.find(b"\n") + 1])
    if (
        form is None
        or form.is_quoted
        or (version_col is not None and version_col < form.columns)
        or b'"' in data
        or b"\\" in data
        or b"\x7f" in data
    ):
        return None
    block = np.frombuffer(data, np.uint8)
    found = _find_fields(block, form, has_escapes=False)
    if found is None or not _controls_are_line_ends(block, found, form):
        return None
    uri_ends = found.at[:, 0]
    if not _lines_start_with_a_bucket(data, found.starts, shape.buckets, b"s3://%b/"):
        return None
    if (np.take(block, uri_ends - 1) == _SLASH).any() or not _is_utf8(data):
        return None
    sums = np.zeros(len(uri_ends) + 1, np.int64)
    np.cumsum(uri_ends - found.starts[:-1], out=sums[1:])
    form_ = _Form(_URI_ITEM_DELTA, _first_field_uri, 1, _NEVER_EMPTY, b"")
    return shape.batch(data, None, form_, starts=found.starts, kind=UriColumnBatch, item_sums=sums)
