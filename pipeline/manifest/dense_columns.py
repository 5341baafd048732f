"""Prove a block of header-CSV, S3 Inventory or quoted/versioned Batch rows plain, at C speed.

The dense checks of `pipeline.manifest.dense` cover rows that are nothing but `bucket,key`;
a header CSV (`"Bucket","Key","Size"` then `"b","k","123"`), an S3 Inventory part (every
field quoted, keys URL-encoded, `fileSchema` naming the columns) and S3 Batch Operations rows
with a version (`bucket,key,version`, maybe quoted) carry more, so their rows went line by
line through the reference parser at ~1/20 of the decompression speed. The check here proves,
for a whole block, that every line is one the reference parser (`parse.parse_csv_row` with
the block's layout) turns into a record verbatim: bucket in column 0, key in column 1, the
version (if the layout has one) in a later column, and every field all quoted or all bare.

Columns after the key make an item's size (`[line,"bucket","key"]`) no function of its line
length, so such a block is a `ColumnsBatch`: a `DenseBatch` whose item sizes come from where
its keys end, found with the line ends by one numpy search, and which names the layout its rows
are read by (`layout`), so Split can send the rows as they are. Pure: no I/O.

The proof builds only the first line's skeleton; the other lines are held to it by counts and
gathers at the positions one numpy search finds (`dense_columns_batch`), not by deleting the
field bytes of the whole block: for Inventory rows that halved the proof's cost (BENCHMARKS.md,
"Inventory scan").

Reaches into `pipeline.manifest.dense` for its byte-class and line-edge helpers on purpose: one
definition of what a plain byte is serves every dense check. STYLE deviation: ~370 lines, over
the ~300 of the house style, because the proof's steps and the facts the batch keeps from them
(key ends, escapes) must be read side by side.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.manifest.batch import DenseBatch, summed_item_bytes, summed_item_sizes
from pipeline.manifest.dense import (
    DenseShape,
    _Form,
    _is_utf8,
    _lines_start_with_a_bucket,
    _ordinary,
)
from pipeline.manifest.parse import CsvKind, CsvLayout, decode_key

if TYPE_CHECKING:
    import numpy.typing as npt

DenseCheck = Callable[[bytes, DenseShape], DenseBatch | None]
_ORDINARY = _ordinary(b",")
"""Field bytes: printable ASCII but `,` `"` `\\`, and all non-ASCII (see `dense._ordinary`)."""
_ITEM_EXTRA = len('[,"",""]')
_NEVER_EMPTY = -(2**62)
"""`_Form.min_row_bytes` that skips `DenseShape.batch`'s empty-key search: done here."""
_PLAIN_PAIR = np.zeros(1 << 16, bool)
"""The two bytes after a `%`, read as one little-endian uint16: True for a plain escape."""
for _high in b"234567":
    for _low in b"0123456789ABCDEFabcdef":
        if int(bytes((_high, _low)), 16) not in (0x22, 0x5C, 0x7F):  # `"`, `\\`, DEL
            _PLAIN_PAIR[_high | _low << 8] = True
_COMMA, _QUOTE, _PERCENT, _NEWLINE, _CR = ord(","), ord('"'), ord("%"), ord("\n"), ord("\r")
_FIRST_PRINTABLE = ord(" ")
_SCRATCH = threading.local()


def _masks(size: int) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Two reusable bool buffers of `size`, this thread's own.

    The checks compare whole blocks byte by byte: a fresh ~1 MB mask each time costs more in
    page faults than the compare (measured: the same search took 2-4x as long in a process
    whose allocator handed back fresh pages every block). Two buffers a thread, grown to the
    largest block, keep that cost away.
    """
    buffers = getattr(_SCRATCH, "buffers", None)
    if buffers is None or len(buffers[0]) < size:
        buffers = (np.empty(size, bool), np.empty(size, bool))
        _SCRATCH.buffers = buffers
    return buffers[0][:size], buffers[1][:size]


@dataclass(frozen=True, slots=True)
class SummedBatch(DenseBatch):
    """A `DenseBatch` whose item sizes come from prefix sums over its rows, not its line lengths.

    Row i's item is `item_sums[i + 1] - item_sums[i]` plus `item_delta` and its line number's
    digits, plus `version_sums[i + 1] - version_sums[i]` when the rows carry a version column.
    """

    item_sums: Sequence[int] = ()
    version_sums: Sequence[int] | None = None

    def item_bytes(self, start: int, stop: int) -> int:
        """Sum of item sizes: the sums' spans, the rest per item, the lines' digits."""
        return summed_item_bytes(
            self.item_sums,
            self.first_line,
            start,
            stop,
            delta=self.item_delta,
            versions=self.version_sums,
        )

    def item_sizes(self, start: int, stop: int) -> list[int]:
        """Item sizes one by one."""
        return summed_item_sizes(
            self.item_sums,
            self.first_line,
            start,
            stop,
            delta=self.item_delta,
            versions=self.version_sums,
        )

    def _sliced(self, start: int, stop: int) -> dict[str, Any]:
        """The prefix sums of rows [start, stop) (only their differences are ever read)."""
        versions = self.version_sums
        return {
            "item_sums": self.item_sums[start : stop + 1],
            "version_sums": None if versions is None else versions[start : stop + 1],
        }


@dataclass(frozen=True, slots=True)
class ColumnsBatch(SummedBatch):
    """A `SummedBatch` of header-CSV, Inventory or Batch rows: sizes from where keys end.

    `item_sums[i]` is the sum over rows [0, i) of the offset in its row where the key ends,
    less 2 bytes an escape in the key; an item is that plus `item_delta` and its line digits.
    With a version column, `version_sums[i]` is what versions add to items [0, i) (`,"V"`,
    3 bytes and the version, when not empty). `layout` reads every row to its record with
    `parse.parse_csv_row` (bucket in column 0, key in column 1, the version column if any),
    and `is_quoted` says every field is `"F"`, holding no quote, backslash or control byte.
    """

    layout: CsvLayout | None = None
    is_quoted: bool = False

    @property
    def has_versions(self) -> bool:
        """Whether the rows have a version column (each may still be empty: no version)."""
        return self.version_sums is not None


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


def _quoted_fields(row: bytes) -> list[str]:
    return row.decode().split('"')[1::2]


def _bare_fields(row: bytes) -> list[str]:
    return row.decode().removesuffix("\r").split(",")


def _versioned_row(
    row: bytes, *, is_quoted: bool, is_key_encoded: bool, version_col: int
) -> tuple[str, ...]:
    """(bucket, key, version), or (bucket, key) when the version field is empty."""
    cells = _quoted_fields(row) if is_quoted else _bare_fields(row)
    key = decode_key(cells[1], 0) if is_key_encoded else cells[1]
    version = cells[version_col]
    return (cells[0], key, version) if version else (cells[0], key)  # type: ignore[return-value]


_BATCH_MAX_COLUMNS = 3
"""S3 Batch Operations rows: bucket, key and a version (more is `BadFieldCount`)."""


def columns_check(layout: CsvLayout | None) -> DenseCheck | None:
    """The dense check for blocks read with `layout`, or None when none applies.

    Layouts with the bucket in column 0, the key in column 1 and the version, if any, after
    them: header CSVs, Inventory (schema) reports — with `VersionId` when the report lists
    versions — and S3 Batch Operations rows quoted or carrying a version (`bucket,key` rows
    alone take `dense.dense_csv_batch`, which is cheaper).
    """
    if layout is None or layout.kind not in (CsvKind.HEADER, CsvKind.SCHEMA, CsvKind.BATCH):
        return None
    if (layout.bucket_col, layout.key_col, layout.uri_col) != (0, 1, None):
        return None
    if layout.version_col is not None and layout.version_col < 2:  # noqa: PLR2004
        return None
    return partial(
        dense_columns_batch,
        is_key_encoded=layout.is_key_encoded,
        version_col=layout.version_col,
        max_columns=_BATCH_MAX_COLUMNS if layout.kind is CsvKind.BATCH else None,
    )


@dataclass(frozen=True, slots=True)
class _Rows:
    """What the first line's skeleton tells: c fields a row, all quoted or all bare, the eol."""

    is_quoted: bool
    columns: int
    is_crlf: bool


def _row_form(line: bytes) -> _Rows | None:
    r"""The form of the block's first line (its newline included), or None when it is no row.

    The skeleton is what deleting field bytes (`_ORDINARY`) leaves of a line: `"",""(,"")*`
    or `,+`, then `\n` or `\r\n`. Only the first line's is built: the other lines are proved
    to have the same one by counts and gathers (`_find_fields`, `_controls_are_line_ends`,
    `_framed`), which cost less than deleting the field bytes of the whole block.
    """
    skeleton = line.translate(None, _ORDINARY)
    is_crlf = skeleton.endswith(b"\r\n")
    body = skeleton[: -1 - is_crlf]
    columns = body.count(b",") + 1
    if columns < 2:  # noqa: PLR2004
        return None
    if body == b",".join(repeat(b'""', columns)):
        return _Rows(is_quoted=True, columns=columns, is_crlf=is_crlf)
    if body == b"," * (columns - 1):
        return _Rows(is_quoted=False, columns=columns, is_crlf=is_crlf)
    return None


@dataclass(frozen=True, slots=True)
class _Fields:
    """Where the structure of a block's n rows lies, as absolute offsets in the block."""

    at: npt.NDArray[np.intp]  # (n, c): each row's c - 1 commas, then its newline
    starts: npt.NDArray[np.int64]  # line starts, `len(data)` last
    percents: npt.NDArray[np.intp] | None  # every `%`, when URL-encoded keys hold one
    escapes: npt.NDArray[np.intp] | None  # the `%`s in each row's key, then


def _find_fields(block: npt.NDArray[np.uint8], form: _Rows, *, has_escapes: bool) -> _Fields | None:
    """Every comma and newline (and `%`, with escapes) from one numpy search.

    The hits, less the `%`s, shaped (n, c) must each end with a newline; once the control
    bytes are counted (`_controls_are_line_ends`) those are all the newlines, so each row
    holds c - 1 commas: the line starts and every key's bounds. The `%`s are sorted out of
    the hits by one gather: a key's escapes are the `%` hits between its first two commas.
    """
    hits, scratch = _masks(len(block))
    np.equal(block, _NEWLINE, out=hits)
    np.logical_or(hits, np.equal(block, _COMMA, out=scratch), out=hits)
    if has_escapes:
        np.logical_or(hits, np.equal(block, _PERCENT, out=scratch), out=hits)
    at = np.flatnonzero(hits)
    percents = kept = None
    if has_escapes:
        is_percent = np.take(block, at) == _PERCENT
        percents = np.compress(is_percent, at)
        kept = np.flatnonzero(~is_percent)  # where each comma and newline is among the hits
        at = np.take(at, kept)
    n, rest = divmod(len(at), form.columns)
    if rest or not n:
        return None
    at = at.reshape(n, form.columns)
    newlines = np.ascontiguousarray(at[:, -1])
    if not (np.take(block, newlines) == _NEWLINE).all():
        return None
    starts = np.empty(n + 1, np.int64)
    starts[0] = 0
    np.add(newlines, 1, out=starts[1:])
    escapes = None
    if kept is not None:
        where = kept.reshape(n, form.columns)
        escapes = where[:, 1] - where[:, 0] - 1
    return _Fields(at, starts, percents, escapes)


def _controls_are_line_ends(block: npt.NDArray[np.uint8], found: _Fields, form: _Rows) -> bool:
    """True when the block's control bytes are its rows' newlines, and with CRLF their CRs.

    The n newlines that end the rows are found; as many control bytes in all (one numpy
    compare) leaves no other newline, CR, tab or NUL; with CRLF, 2n and a CR before each.
    """
    n = len(found.at)
    _, scratch = _masks(len(block))
    controls = int(np.count_nonzero(np.less(block, _FIRST_PRINTABLE, out=scratch)))
    if controls != n * (1 + form.is_crlf):
        return False
    return not form.is_crlf or bool((np.take(block, found.starts[1:] - 2) == _CR).all())


def _framed(
    data: bytes, block: npt.NDArray[np.uint8], found: _Fields, form: _Rows, buckets: Sequence[bytes]
) -> bool:
    """True when every line starts with a validated bucket and, quoted, each field is `"F"`.

    Bare: no quote at all, and each line starts `B,`. Quoted: a quote at the line's first
    byte, on both sides of every comma and before the eol, 2c places a line, distinct because
    the hits lie at least 3 bytes apart (4 from a last comma to a CRLF's newline); as many
    quotes in the block as that leaves none inside a field. Each line starts `"B"` with a
    validated bucket B: its first field is B, and the first line's first byte a quote and its
    first comma 3 bytes in at least (the gathers cover every other line's).
    """
    if not form.is_quoted:
        return b'"' not in data and _lines_start_with_a_bucket(data, found.starts, buckets, b"%b,")
    n, c = found.at.shape
    _, scratch = _masks(len(block))
    if int(np.count_nonzero(np.equal(block, _QUOTE, out=scratch))) != 2 * c * n:
        return False
    at = found.at.ravel()
    gaps = np.diff(at)
    if (gaps < 3).any() or (form.is_crlf and (gaps[c - 2 :: c] < 4).any()):  # noqa: PLR2004
        return False
    before = at - 1  # the quote closing each field: before its comma, CR or newline
    if form.is_crlf:
        before.reshape(n, c)[:, -1] -= 1
    if not (np.take(block, before) == _QUOTE).all():
        return False
    if not (np.take(block, at[:-1] + 1) == _QUOTE).all():  # after a comma; a line's first
        return False
    return _lines_start_with_a_bucket(data, found.starts, buckets, b'"%b"')


def _plain_escapes(block: npt.NDArray[np.uint8], percents: npt.NDArray[np.intp]) -> bool:
    r"""True when every `%` (at `percents`) starts an escape of a plain ASCII byte.

    That is `%` then a hex pair 20-7F but 22 (`"`), 5C (`\`) and 7F (DEL): control bytes
    and non-ASCII are not plain either (see `dense._HARD_ESCAPE`). Two byte gathers after
    every `%`, made one uint16, looked up in a table of the plain pairs.
    """
    if not len(percents):
        return True
    if int(percents[-1]) + 2 >= len(block):
        return False  # a `%` without two bytes after it
    pairs = np.take(block, percents + 2).astype(np.uint16)
    pairs <<= 8
    pairs |= np.take(block, percents + 1)
    return bool(np.take(_PLAIN_PAIR, pairs).all())


def dense_columns_batch(
    data: bytes,
    shape: DenseShape,
    *,
    is_key_encoded: bool,
    version_col: int | None = None,
    max_columns: int | None = None,
) -> DenseBatch | None:
    r"""A batch when every line is a row of c ≥ 2 fields, bucket then key, all quoted or all bare.

    Proof, for the `n` newline-terminated lines of `data`: the first line's skeleton (field
    bytes, `_ORDINARY`, deleted) is `"",""` plus `,""` a further column, or c - 1 commas,
    then `\n` or `\r\n`; every line has it too — no backslash or DEL in the block, c - 1
    commas then a newline a line, its control bytes only those newlines (and a CR before each
    with CRLF), and quoted rows framed (a quote at each line's start, both sides of every
    comma and before the eol, and no other), so each field is exactly `"F"`; every line starts
    `"B"` (bare: `B,`) with a validated bucket B; no key is empty; the bytes are UTF-8;
    URL-encoded keys hold only escapes of plain ASCII bytes (each counted in its key). Then
    `parse_csv_row` reads bucket and key from the fields as they are (URL-decoded when
    encoded), and an item is bucket + key + 8 bytes, the line's digits, less 2 bytes an escape.
    A row of more than `max_columns` fields is no row (Batch Operations: `BadFieldCount`).
    A version column (`version_col` < c) is taken verbatim, as the parser takes it: its bytes
    are plain like every field's, an empty one is no version, and another adds `,"V"` to
    the item.
    """
    form = _row_form(data[: data.find(b"\n") + 1])
    # too many fields; the non-ordinary bytes neither counted nor searched below (DEL refused
    # as before, though orjson writes it as it is: the blocks taken stay the skeleton proof's)
    too_wide = form is not None and form.columns > (max_columns or form.columns)
    if form is None or too_wide or b"\\" in data or b"\x7f" in data:
        return None
    block = np.frombuffer(data, np.uint8)
    found = _find_fields(block, form, has_escapes=is_key_encoded and b"%" in data)
    if (
        found is None
        or not _controls_are_line_ends(block, found, form)
        or not _framed(data, block, found, form, shape.buckets)
    ):
        return None
    quoted = int(form.is_quoted)
    key_starts = found.at[:, 0] + (1 + quoted)
    key_ends = found.at[:, 1] - ((form.is_crlf and form.columns == 2) + quoted)  # noqa: PLR2004
    if not (key_ends > key_starts).all() or not _is_utf8(data):
        return None
    if found.percents is not None and not _plain_escapes(block, found.percents):
        return None
    row_keys = key_ends - found.starts[:-1]
    if found.escapes is not None:
        row_keys -= 2 * found.escapes
    sums = np.zeros(len(row_keys) + 1, np.int64)
    np.cumsum(row_keys, out=sums[1:])
    bounds = None
    if version_col is not None and version_col < form.columns:
        parse: Callable[[bytes], tuple[str, ...]] = partial(
            _versioned_row,
            is_quoted=form.is_quoted,
            is_key_encoded=is_key_encoded,
            version_col=version_col,
        )
        bounds = _version_bounds(found, form, version_col)
    else:
        parse = _PARSERS[form.is_quoted, is_key_encoded]
    form_ = _Form(_ITEM_EXTRA - 1 - 3 * quoted, parse, 1, _NEVER_EMPTY, b"")
    layout = CsvLayout(
        CsvKind.SCHEMA,
        version_col=None if bounds is None else version_col,
        is_key_encoded=is_key_encoded,
    )
    return shape.batch(
        data,
        None,
        form_,
        starts=found.starts,
        kind=ColumnsBatch,
        item_sums=sums,
        version_sums=None if bounds is None else _version_sums(*bounds),
        layout=layout,
        is_quoted=form.is_quoted,
    )


def _version_bounds(
    found: _Fields, form: _Rows, column: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Where each row's field `column` (≥ 2) starts and ends, its quotes and CR left out.

    Between the comma before it and the comma (or newline) after it, both found by the proof;
    the last field of a CRLF row ends at its CR (proved to precede the newline).
    """
    quoted = int(form.is_quoted)
    starts = found.at[:, column - 1] + (1 + quoted)
    ends = found.at[:, column] - (quoted + int(form.is_crlf and column == form.columns - 1))
    return starts, ends


def _version_sums(
    starts: npt.NDArray[np.intp], ends: npt.NDArray[np.intp]
) -> npt.NDArray[np.int64]:
    """Prefix sums of what each version adds to its item: `,"V"`, nothing when it is empty."""
    widths = ends - starts
    sums = np.zeros(len(widths) + 1, np.int64)
    np.cumsum(np.where(widths > 0, widths + len(',""'), 0), out=sums[1:])
    return sums
