"""Prove a block of header-CSV or S3 Inventory rows plain, with C-speed byte operations.

The dense checks of `pipeline.manifest.dense` cover rows that are nothing but `bucket,key`;
a header CSV (`"Bucket","Key","Size"` then `"b","k","123"`) and an S3 Inventory part (every
field quoted, keys URL-encoded, `fileSchema` naming the columns) carry more columns, so their
rows went line by line through the reference parser at ~1/20 of the decompression speed. The
check here proves, for a whole block, that every line is one the reference parser
(`parse.parse_csv_row` with the block's layout) turns into a record verbatim: bucket in column
0, key in column 1, no version column, and every field either all quoted or all bare.

Columns after the key make an item's size (`[line,"bucket","key"]`) no function of its line
length, so such a block is a `ColumnsBatch`: a `DenseBatch` whose item sizes come from the
key lengths (one `bytes.split` on the field separator) instead. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from functools import partial
from itertools import accumulate, repeat
from operator import add, sub

from pipeline.manifest.batch import DenseBatch, digit_count_sum
from pipeline.manifest.dense import (
    DenseShape,
    _count_line_starts,
    _Form,
    _has_plain_escapes,
    _is_utf8,
    _ordinary,
)
from pipeline.manifest.parse import CsvKind, CsvLayout, decode_key

_ORDINARY = _ordinary(b",")
"""Field bytes: printable ASCII but `,` `"` `\\`, and all non-ASCII (see `dense._ordinary`)."""
_QUOTED_SEP = b'","'
_BARE_SEP = b","
_ITEM_EXTRA = len('[,"",""]')
_NEVER_EMPTY = -(2**62)
"""`_Form.min_row_bytes` that skips `DenseShape.batch`'s empty-key search: done here."""


@dataclass(frozen=True, slots=True)
class ColumnsBatch(DenseBatch):
    """A `DenseBatch` whose chunk item sizes are given, not derived from the line lengths.

    `item_starts[i]` is the sum of the item sizes of rows [0, i), line-number digits left out
    (they are added by range, as `DenseBatch` does).
    """

    item_starts: list[int] | None = None

    def item_bytes(self, start: int, stop: int) -> int:
        """Sum of item sizes: key and bucket bytes by prefix sums, plus the line digits."""
        starts, first = self.item_starts, self.first_line
        assert starts is not None  # always built with them
        return starts[stop] - starts[start] + digit_count_sum(first + start, first + stop)

    def item_sizes(self, start: int, stop: int) -> list[int]:
        """Item sizes one by one."""
        starts, first = self.item_starts, self.first_line
        assert starts is not None  # always built with them
        return [starts[i + 1] - starts[i] + len(str(first + i)) for i in range(start, stop)]


def _quoted_row(row: bytes) -> tuple[str, str]:
    parts = row.decode().split('"', 4)
    return parts[1], parts[3]


def _quoted_encoded_row(row: bytes) -> tuple[str, str]:
    parts = row.decode().split('"', 4)
    return parts[1], decode_key(parts[3], 0)  # type: ignore[return-value]  # proved decodable


def _bare_row(row: bytes) -> tuple[str, str]:
    parts = row.decode().split(",", 2)
    return parts[0], parts[1].removesuffix("\r")


def _bare_encoded_row(row: bytes) -> tuple[str, str]:
    bucket, key = _bare_row(row)
    return bucket, decode_key(key, 0)  # type: ignore[return-value]  # proved decodable


DenseCheck = Callable[[bytes, DenseShape], DenseBatch | None]
_PARSERS = {
    (True, False): _quoted_row,
    (True, True): _quoted_encoded_row,
    (False, False): _bare_row,
    (False, True): _bare_encoded_row,
}


def columns_check(layout: CsvLayout | None) -> DenseCheck | None:
    """The dense check for blocks read with `layout`, or None when none applies.

    Only header and Inventory (schema) layouts with the bucket in column 0, the key in column
    1 and no version column: the rows every header CSV and Inventory report we write hold.
    """
    if layout is None or layout.kind not in (CsvKind.HEADER, CsvKind.SCHEMA):
        return None
    columns = (layout.bucket_col, layout.key_col, layout.uri_col, layout.version_col)
    if columns != (0, 1, None, None):
        return None
    return partial(dense_columns_batch, is_key_encoded=layout.is_key_encoded)


def _row_skeleton(first: bytes) -> tuple[bool, int, bool] | None:
    r"""(quoted, columns, CRLF) of a row skeleton `"",""(,"")*\r?\n` or `,+\r?\n`; else None."""
    is_crlf = first.endswith(b"\r\n")
    body = first[: -1 - is_crlf]
    columns = body.count(b",") + 1
    if columns >= 2 and body == b",".join(repeat(b'""', columns)):  # noqa: PLR2004
        return True, columns, is_crlf
    if columns >= 2 and body == b"," * (columns - 1):  # noqa: PLR2004
        return False, columns, is_crlf
    return None


def _bucket_bytes(data: bytes, n: int, buckets: Sequence[bytes], prefix: bytes) -> int | None:
    """The length shared by the buckets every line starts with (`prefix % bucket`).

    0 when every line starts with a validated bucket but their lengths differ; None when
    some line starts with none (a bucket name holds no `"` or `,`: one match a line at most).
    """
    matched, lengths = 0, set()
    for bucket in buckets:
        count = _count_line_starts(data, prefix % bucket)
        if count:
            matched, lengths = matched + count, lengths | {len(bucket)}
        if matched == n:
            return lengths.pop() if len(lengths) == 1 else 0
    return None


@dataclass(frozen=True, slots=True)
class _Rows:
    """What the proof found out about a block's rows."""

    is_quoted: bool
    columns: int
    is_crlf: bool
    bucket_bytes: int  # 0: buckets of different lengths


def _prove(data: bytes, n: int, buckets: Sequence[bytes]) -> _Rows | None:
    """The rows' form when every line is proved a plain row of it (see `dense_columns_batch`)."""
    skeleton = data.translate(None, _ORDINARY)
    first = skeleton[: skeleton.find(b"\n") + 1]
    form = _row_skeleton(first)
    if form is None or skeleton != first * n:
        return None
    is_quoted, columns, is_crlf = form
    eol = b"\r\n" if is_crlf else b"\n"
    if is_crlf and data.count(eol) != n:
        return None
    if is_quoted and (data.count(_QUOTED_SEP) != n * (columns - 1) or data.count(b'"' + eol) != n):
        return None
    bucket_bytes = _bucket_bytes(data, n, buckets, b'"%b","' if is_quoted else b"%b,")
    if bucket_bytes is None or not _is_utf8(data):
        return None
    return _Rows(is_quoted, columns, is_crlf, bucket_bytes)


def _bucket_lengths(rows: list[bytes], form: _Rows) -> Iterable[int]:
    """Each row's bucket length (per row only when the block's buckets differ in length)."""
    if form.bucket_bytes:
        return repeat(form.bucket_bytes)
    if form.is_quoted:
        return [row.index(b'"', 1) - 1 for row in rows]
    return [row.index(b",") for row in rows]


def _keys(data: bytes, rows: list[bytes], form: _Rows) -> tuple[list[bytes], list[int]]:
    """Bytes holding each row's key and nothing else that may hold a `%`, and key lengths.

    Past two columns, the key is every (c - 1)th piece of the block split at the field
    separator; with two, the row less its bucket field and punctuation.
    """
    if form.columns > 2:  # noqa: PLR2004
        keys = data.split(_QUOTED_SEP if form.is_quoted else _BARE_SEP)[1 :: form.columns - 1]
        return keys, list(map(len, keys))
    punctuation = (5 if form.is_quoted else 1) + form.is_crlf  # `"B","K"` / `B,K`, and a CR
    lengths = map(sub, map(len, rows), map(punctuation.__add__, _bucket_lengths(rows, form)))
    return rows, list(lengths)


def dense_columns_batch(
    data: bytes, shape: DenseShape, *, is_key_encoded: bool
) -> DenseBatch | None:
    r"""A batch when every line is a row of c ≥ 2 fields, bucket then key, all quoted or all bare.

    Proof, for the `n` newline-terminated lines of `data`: deleting field bytes (`_ORDINARY`)
    leaves the first line's skeleton — `"",""` plus `,""` a further column, or c - 1 commas,
    then `\n` or `\r\n` — once a line (so each line has c fields, no quote inside a field, no
    backslash or control byte, a CR only as the last byte of every line, or of none); for
    quoted rows every comma sits between two quotes (`","` occurs once a comma) and every line
    ends with a quote, so each field is exactly `"F"`; every line starts with a validated
    bucket's field; no key is empty; the bytes are UTF-8; URL-encoded keys hold only escapes of
    plain ASCII bytes. Then `parse_csv_row` reads bucket and key from the fields as they are
    (URL-decoded when encoded), and an item is bucket + key + 8 bytes and the line's digits.
    """
    rows = data.split(b"\n")
    rows.pop()
    form = _prove(data, len(rows), shape.buckets)
    if form is None:
        return None
    is_escaped = is_key_encoded and b"%" in data
    if is_escaped and not _has_plain_escapes(data):
        return None
    keys, key_bytes = _keys(data, rows, form)
    if 0 in key_bytes:
        return None
    if is_escaped:  # each escape is 3 bytes for one
        key_bytes = list(
            map(sub, key_bytes, map((2).__mul__, map(bytes.count, keys, repeat(b"%"))))
        )
    sizes = map(add, key_bytes, map(_ITEM_EXTRA.__add__, _bucket_lengths(rows, form)))
    parse = _PARSERS[form.is_quoted, is_key_encoded]
    batch = shape.batch(data, rows, _Form(0, parse, 1, _NEVER_EMPTY, b""))
    if batch is None:
        return None
    base = {f.name: getattr(batch, f.name) for f in fields(batch) if f.init}
    return ColumnsBatch(**base, item_starts=list(accumulate(sizes, initial=0)))
