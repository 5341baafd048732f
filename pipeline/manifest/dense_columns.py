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

Reaches into `pipeline.manifest.dense` for its byte-class helpers on purpose: one definition of
what a plain byte is serves every dense check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import partial
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np

from pipeline.manifest.batch import DenseBatch, digit_count_sum, line_starts
from pipeline.manifest.dense import DenseShape, _count_line_starts, _Form, _is_utf8, _ordinary
from pipeline.manifest.parse import CsvKind, CsvLayout, decode_key

if TYPE_CHECKING:
    import numpy.typing as npt

DenseCheck = Callable[[bytes, DenseShape], DenseBatch | None]
_ORDINARY = _ordinary(b",")
"""Field bytes: printable ASCII but `,` `"` `\\`, and all non-ASCII (see `dense._ordinary`)."""
_QUOTED_SEP = b'","'
_BARE_SEP = b","
_ITEM_EXTRA = len('[,"",""]')
_NEVER_EMPTY = -(2**62)
"""`_Form.min_row_bytes` that skips `DenseShape.batch`'s empty-key search: done here."""
_HIGH_DIGIT = np.zeros(256, bool)
_HIGH_DIGIT[list(b"234567")] = True
_LOW_DIGIT = np.zeros(256, bool)
_LOW_DIGIT[list(b"0123456789ABCDEFabcdef")] = True
_NOT_PLAIN = {ord(high): list(lows) for high, lows in (("2", b"2"), ("5", b"Cc"), ("7", b"Ff"))}
"""Escapes of `"` (`%22`), `\\` (`%5C`) and DEL (`%7F`): ASCII, but not plain in JSON."""
_COMMA, _QUOTE, _PERCENT = ord(","), ord('"'), ord("%")


@dataclass(frozen=True, slots=True)
class ColumnsBatch(DenseBatch):
    """A `DenseBatch` whose item sizes come from where its keys end, not from its line lengths.

    `key_starts[i]` is the sum over rows [0, i) of the offset in its row where the key ends,
    less 2 bytes an escape in the key (see `_locate_keys`, `_item_sums`); an item is that plus
    `item_delta` and its line digits (two columns: less 2 bytes a `%` in `escaped`).
    """

    key_starts: Sequence[int] = ()

    def item_bytes(self, start: int, stop: int) -> int:
        """Sum of item sizes: keys by prefix sums, the rest per item, the lines' digits."""
        keys, first = self.key_starts, self.first_line
        return (
            int(keys[stop] - keys[start])
            + self.item_delta * (stop - start)
            + digit_count_sum(first + start, first + stop)
            - 2 * self._escapes(start, stop)
        )

    def item_sizes(self, start: int, stop: int) -> list[int]:
        """Item sizes one by one."""
        keys, first, delta = self.key_starts, self.first_line, self.item_delta
        return [
            int(keys[i + 1] - keys[i]) + delta + len(str(first + i)) - 2 * self._escapes(i, i + 1)
            for i in range(start, stop)
        ]


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


@dataclass(frozen=True, slots=True)
class _Rows:
    """What the proof found out about a block's rows."""

    is_quoted: bool
    columns: int
    eol: bytes


def _row_form(skeleton: bytes) -> _Rows | None:
    r"""The form of a row skeleton `"",""(,"")*\r?\n` or `,+\r?\n`; else None."""
    eol = b"\r\n" if skeleton.endswith(b"\r\n") else b"\n"
    body = skeleton[: -len(eol)]
    columns = body.count(b",") + 1
    if columns < 2:  # noqa: PLR2004
        return None
    if body == b",".join(repeat(b'""', columns)):
        return _Rows(True, columns, eol)
    if body == b"," * (columns - 1):
        return _Rows(False, columns, eol)
    return None


def _quoted_framed(data: bytes, n: int, buckets: Sequence[bytes], eol: bytes) -> bool:
    """True when every row is framed: it starts `"B","` with a validated bucket B, ends `"` eol.

    Every line boundary but the last is counted once in `"` eol `"B","` (a bucket holds no
    `"`: a boundary matches one bucket at most), the first line's start and the last line's
    end are looked at directly.
    """
    if not any(data.startswith(b'"%b","' % b) for b in buckets):
        return False
    if not data.endswith(b'"' + eol):
        return False
    matched = 0
    for bucket in buckets:
        if matched == n - 1:
            break
        matched += data.count(b'"%b"%b","' % (eol, bucket))
    return matched == n - 1


def _bare_framed(data: bytes, n: int, buckets: Sequence[bytes], eol: bytes) -> bool:
    """True when every row starts `B,` with a validated bucket B (and a CR ends all or none)."""
    if eol == b"\r\n" and data.count(eol) != n:
        return False
    matched = 0
    for bucket in buckets:
        if matched == n:
            break
        matched += _count_line_starts(data, b"%b," % bucket)
    return matched == n


def _prove(data: bytes, n: int, buckets: Sequence[bytes]) -> _Rows | None:
    """The rows' form when every line is proved a plain row of it (see `dense_columns_batch`)."""
    skeleton = data.translate(None, _ORDINARY)
    first = skeleton[: skeleton.find(b"\n") + 1]
    form = _row_form(first)
    if form is None or skeleton != first * n:
        return None
    framing = _quoted_framed if form.is_quoted else _bare_framed
    if not framing(data, n, buckets, form.eol) or not _is_utf8(data):
        return None
    return form


@dataclass(frozen=True, slots=True)
class _Keys:
    """Where each row's key lies, as absolute offsets in the block (ends: None, two columns)."""

    starts: npt.NDArray[np.int64] | None
    ends: npt.NDArray[np.int64] | None
    sums: npt.NDArray[np.int64]  # prefix sums of the key ends' row offsets (two: row lengths)
    delta: int  # an item's size less its line digits is a row's `ends` (length) + delta


def _locate_keys(data: bytes, starts: npt.NDArray[np.int64], form: _Rows) -> _Keys | None:
    """Find every row's key from the block's comma positions; None when one key is empty.

    The proof (`_prove`) leaves commas only between fields: every line holds exactly c - 1,
    so one numpy search for them, shaped (n, c - 1), gives each row's key start (after the
    first comma, and its quote) and end (before the second, and its quote). Quoted rows must
    also have a quote on both sides of every comma, so each field is exactly `"F"` (the
    framing proved the line's first and last quotes). An item `[n,"B","K"]` is B + K + 8 bytes
    and the digits, and B + K is the key's end, as an offset in its row, less 4 (`"B","`) or 1
    (`B,`) whatever the bucket, so the items' sizes are prefix sums of the key ends. With two
    columns the key ends the row: a row's length stands for its key end.
    """
    before_key = 4 if form.is_quoted else 1
    delta = _ITEM_EXTRA - before_key
    n = len(starts) - 1
    if form.columns == 2:  # noqa: PLR2004
        if (b'",""' if form.is_quoted else b",") + form.eol in data:  # an empty key
            return None
        after_key = (1 if form.is_quoted else 0) + (form.eol == b"\r\n")  # `"`, CR
        return _Keys(None, None, starts - np.arange(n + 1), delta - after_key)
    block = np.frombuffer(data, np.uint8)
    commas = np.flatnonzero(block == _COMMA)
    if len(commas) != n * (form.columns - 1):
        return None
    if form.is_quoted and not (
        (block[commas - 1] == _QUOTE).all() and (block[commas + 1] == _QUOTE).all()
    ):
        return None
    commas = commas.reshape(n, form.columns - 1)
    quoted = int(form.is_quoted)
    key_starts = commas[:, 0] + (1 + quoted)
    key_ends = commas[:, 1] - quoted
    if not (key_ends > key_starts).all():
        return None
    sums = np.zeros(n + 1, np.int64)
    np.cumsum(key_ends - starts[:-1], out=sums[1:])
    return _Keys(key_starts, key_ends, sums, delta)


def _plain_escapes(block: npt.NDArray[np.uint8], percents: npt.NDArray[np.intp]) -> bool:
    r"""True when every `%` (at `percents` in `block`) starts an escape of a plain ASCII byte.

    That is `%` then a hex pair 20-7F but 22 (`"`), 5C (`\`) and 7F (DEL): control bytes
    and non-ASCII are not plain either (see `dense._HARD_ESCAPE`). Two gathers of the two
    bytes after every `%` at once, instead of a regex search or a count per common escape
    (those cost more than the rest of the proof on Inventory keys, a `%2F` a directory).
    """
    if len(percents) and int(percents[-1]) + 2 >= len(block):
        return False  # a `%` without two bytes after it
    high, low = block[percents + 1], block[percents + 2]
    if not (_HIGH_DIGIT[high].all() and _LOW_DIGIT[low].all()):
        return False
    return not any(
        ((high == digit) & np.isin(low, lows)).any() for digit, lows in _NOT_PLAIN.items()
    )


def _item_sums(keys: _Keys, percents: npt.NDArray[np.intp] | None) -> npt.NDArray[np.int64]:
    """Prefix sums of the key ends, each less 2 bytes an escape in its key (`ColumnsBatch`).

    A key's escapes are the `%`s (`percents`, None when no key is URL-encoded) between its
    start and end: two binary searches a key into the block's `%` positions, no row loop.
    """
    if keys.ends is None or keys.starts is None or percents is None:
        return keys.sums
    escapes = np.searchsorted(percents, keys.ends) - np.searchsorted(percents, keys.starts)
    sums = keys.sums.copy()
    sums[1:] -= 2 * np.cumsum(escapes)
    return sums


def dense_columns_batch(
    data: bytes, shape: DenseShape, *, is_key_encoded: bool
) -> DenseBatch | None:
    r"""A batch when every line is a row of c ≥ 2 fields, bucket then key, all quoted or all bare.

    Proof, for the `n` newline-terminated lines of `data`: deleting field bytes (`_ORDINARY`)
    leaves the first line's skeleton — `"",""` plus `,""` a further column, or c - 1 commas,
    then `\n` or `\r\n` — once a line (so each line has c fields, no quote inside a field, no
    backslash or control byte, a CR only as the last byte of every line, or of none); quoted
    rows are framed (every line starts `"B","` with a validated bucket B and ends with `"`, and
    every comma sits between two quotes), so each field is exactly `"F"`; bare rows start `B,`;
    no key is empty; the bytes are UTF-8; URL-encoded keys hold only escapes of plain ASCII
    bytes (each counted in its key). Then `parse_csv_row` reads bucket and key from the
    fields as they are (URL-decoded when encoded), and an item is bucket + key + 8 bytes, the
    line's digits, less 2 bytes an escape.
    """
    starts = line_starts(data)
    form = _prove(data, len(starts) - 1, shape.buckets)
    if form is None:
        return None
    keys = _locate_keys(data, starts, form)
    if keys is None:
        return None
    is_escaped = is_key_encoded and b"%" in data
    percents = None
    if is_escaped:
        block = np.frombuffer(data, np.uint8)
        percents = np.flatnonzero(block == _PERCENT)
        if not _plain_escapes(block, percents):
            return None
    sums = _item_sums(keys, percents)
    parse = _PARSERS[form.is_quoted, is_key_encoded]
    is_counted_later = is_escaped and keys.ends is None  # two columns: `%`s only in keys
    form_ = _Form(keys.delta, parse, 1, _NEVER_EMPTY, b"", is_counted_later)
    batch = shape.batch(data, None, form_, starts=starts)
    if batch is None:
        return None
    base = {f.name: getattr(batch, f.name) for f in fields(batch) if f.init}
    return ColumnsBatch(**base, key_starts=sums)
