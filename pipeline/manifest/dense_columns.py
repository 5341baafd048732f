"""Prove a block of header-CSV or S3 Inventory rows plain, with C-speed byte operations.

The dense checks of `pipeline.manifest.dense` cover rows that are nothing but `bucket,key`;
a header CSV (`"Bucket","Key","Size"` then `"b","k","123"`) and an S3 Inventory part (every
field quoted, keys URL-encoded, `fileSchema` naming the columns) carry more columns, so their
rows went line by line through the reference parser at ~1/20 of the decompression speed. The
check here proves, for a whole block, that every line is one the reference parser
(`parse.parse_csv_row` with the block's layout) turns into a record verbatim: bucket in column
0, key in column 1, no version column, and every field either all quoted or all bare.

Columns after the key make an item's size (`[line,"bucket","key"]`) no function of its line
length, so such a block is a `ColumnsBatch`: a `DenseBatch` whose item sizes come from where
its keys end, found with the line ends by one numpy search, and which hands Split its items'
JSON strings for a whole block at once (`json_rows`). Pure: no I/O.

Reaches into `pipeline.manifest.dense` for its byte-class and line-edge helpers on purpose: one
definition of what a plain byte is serves every dense check. STYLE deviation: ~360 lines, over
the ~300 of the house style, because the proof's steps and the facts the batch keeps from them
(key ends, escapes, separators) must be read side by side; the JSON building lives apart
(`pipeline.manifest.columns_json`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from functools import partial
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np

from pipeline.manifest.batch import DenseBatch, digit_count_sum
from pipeline.manifest.columns_json import json_rows_block
from pipeline.manifest.dense import (
    DenseShape,
    _all_start_with_a_bucket,
    _Form,
    _is_utf8,
    _lines_end_with,
    _ordinary,
)
from pipeline.manifest.parse import CsvKind, CsvLayout, decode_key

if TYPE_CHECKING:
    import numpy.typing as npt

DenseCheck = Callable[[bytes, DenseShape], DenseBatch | None]
_ORDINARY = _ordinary(b",")
"""Field bytes: printable ASCII but `,` `"` `\\`, and all non-ASCII (see `dense._ordinary`)."""
_ORDINARY_BUT_PERCENT = _ORDINARY.replace(b"%", b"")
_ITEM_EXTRA = len('[,"",""]')
_NEVER_EMPTY = -(2**62)
"""`_Form.min_row_bytes` that skips `DenseShape.batch`'s empty-key search: done here."""
_PLAIN_PAIR = np.zeros(1 << 16, bool)
"""The two bytes after a `%`, read as one little-endian uint16: True for a plain escape."""
for _high in b"234567":
    for _low in b"0123456789ABCDEFabcdef":
        if int(bytes((_high, _low)), 16) not in (0x22, 0x5C, 0x7F):  # `"`, `\\`, DEL
            _PLAIN_PAIR[_high | _low << 8] = True
_COMMA, _QUOTE, _PERCENT, _NEWLINE = ord(","), ord('"'), ord("%"), ord("\n")
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
class ColumnsBatch(DenseBatch):
    """A `DenseBatch` whose item sizes come from where its keys end, not from its line lengths.

    `item_sums[i]` is the sum over rows [0, i) of the offset in its row where the key ends,
    less 2 bytes an escape in the key; an item is that plus `item_delta` and its line digits.
    For `json_rows`: `kept_ends[i]` is where row i's `"B","K"` (bare rows: `B,K`) ends in
    `data`, `separators` the bare rows' bucket/key commas (None when quoted), `percents`
    every `%` in `data` when keys are URL-encoded (`is_decoded`; None when none holds one).
    """

    item_sums: Sequence[int] = ()
    kept_ends: Sequence[int] = ()
    separators: Sequence[int] | None = None
    percents: Sequence[int] | None = None
    is_decoded: bool = False
    _json: list[bytes] = field(default_factory=list)

    def item_bytes(self, start: int, stop: int) -> int:
        """Sum of item sizes: keys by prefix sums, the rest per item, the lines' digits."""
        sums, first = self.item_sums, self.first_line
        return (
            int(sums[stop] - sums[start])
            + self.item_delta * (stop - start)
            + digit_count_sum(first + start, first + stop)
        )

    def item_sizes(self, start: int, stop: int) -> list[int]:
        """Item sizes one by one."""
        sums, first, delta = self.item_sums, self.first_line, self.item_delta
        return [
            int(sums[i + 1] - sums[i]) + delta + len(str(first + i)) for i in range(start, stop)
        ]

    def json_rows(self, start: int, stop: int) -> bytes:
        r"""Rows [start, stop) as their items' strings `"B","K"`, `\n` between rows.

        Exactly what orjson writes for the items' bucket and key (the proof leaves no byte
        JSON escapes in them). Built for the whole batch once, then sliced: a row's `"B","K"`
        is its item less `[`, `,`, `]` and the line digits, so row i starts at `item_sums[i]
        + (item_delta - 2) * i`.
        """
        if stop <= start:
            return b""
        if not self._json:
            json = json_rows_block(
                self.data,  # type: ignore[arg-type]  # a ColumnsBatch always keeps its block
                self.starts,  # type: ignore[arg-type]
                self.kept_ends,  # type: ignore[arg-type]
                self.separators,  # type: ignore[arg-type]
                self.percents,  # type: ignore[arg-type]
                is_decoded=self.is_decoded,
            )
            self._json.append(json)
        sums, step = self.item_sums, self.item_delta - 2
        return self._json[0][int(sums[start]) + step * start : int(sums[stop]) + step * stop - 1]


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
    """What the skeleton told about a block's rows: n lines of c fields, quoted or bare."""

    is_quoted: bool
    columns: int
    eol: bytes
    n: int
    escapes: npt.NDArray[np.intp] | None  # `%`s in each row's key, when `%`s were kept


def _row_form(data: bytes, *, keep_percents: bool) -> _Rows | None:
    r"""The rows' form when each line's skeleton is the first's; else None.

    The skeleton is what deleting field bytes (`_ORDINARY`) leaves of a line: `"",""(,"")*`
    or `,+`, then `\n` or `\r\n`. With `keep_percents` the `%`s stay in it (one translate
    still): less them it must be the same, and they give each key's escapes (`_key_escapes`).
    """
    skeleton = data.translate(None, _ORDINARY_BUT_PERCENT if keep_percents else _ORDINARY)
    bare = skeleton.replace(b"%", b"") if keep_percents else skeleton
    first = bare[: bare.find(b"\n") + 1]
    n, rest = divmod(len(bare), len(first) or 1)
    if not first or rest or bare != first * n:
        return None
    eol = b"\r\n" if first.endswith(b"\r\n") else b"\n"
    body = first[: -len(eol)]
    columns = body.count(b",") + 1
    if columns < 2:  # noqa: PLR2004
        return None
    if body == b",".join(repeat(b'""', columns)):
        is_quoted = True
    elif body == b"," * (columns - 1):
        is_quoted = False
    else:
        return None
    escapes = _key_escapes(skeleton, first, n, columns) if keep_percents else None
    return _Rows(is_quoted, columns, eol, n, escapes)


def _key_escapes(skeleton: bytes, first: bytes, n: int, columns: int) -> npt.NDArray[np.intp]:
    """Each row's `%`s between its first comma and the comma (or newline) after its key.

    The skeleton with `%`s kept is the first line's (`first`) a row, with a row's `%`s added
    in its fields: its commas and newlines, shaped (n, c), give each row's key span, longer
    than the first's by the key's `%`s. Works on the skeleton, a fifth of the block.
    """
    sk = np.frombuffer(skeleton, np.uint8)
    hits, newlines = _masks(len(sk))
    np.equal(sk, _COMMA, out=hits)
    hits |= np.equal(sk, _NEWLINE, out=newlines)
    at = np.flatnonzero(hits).reshape(n, columns)
    template = np.flatnonzero(np.frombuffer(first.replace(b"\n", b","), np.uint8) == _COMMA)
    return at[:, 1] - at[:, 0] - int(template[1] - template[0])


@dataclass(frozen=True, slots=True)
class _Fields:
    """Where the structure of a block's rows lies, as absolute offsets in the block."""

    starts: npt.NDArray[np.int64]  # line starts, `len(data)` last
    commas: npt.NDArray[np.intp]  # (n, c - 1)
    key_ends: npt.NDArray[np.intp]  # just past each key (the comma or quote after it)
    is_comma: npt.NDArray[np.bool_]  # the block's commas, as a mask (a `_masks` buffer)


def _find_fields(block: npt.NDArray[np.uint8], form: _Rows) -> _Fields | None:
    """Every comma and newline from one numpy search.

    The skeleton left exactly c - 1 commas then a newline a line, so the search's hits,
    shaped (n, c), are each line's commas and newline: the line starts, every key's bounds.
    """
    n, c = form.n, form.columns
    is_comma, hits = _masks(len(block))
    np.equal(block, _COMMA, out=is_comma)
    np.equal(block, _NEWLINE, out=hits)
    at = np.flatnonzero(np.logical_or(hits, is_comma, out=hits))
    if len(at) != n * c:
        return None
    fields_ = at.reshape(n, c)
    starts = np.empty(n + 1, np.int64)
    starts[0] = 0
    np.add(fields_[:, -1], 1, out=starts[1:])
    key_ends = fields_[:, 1] - (form.eol == b"\r\n" and c == 2)  # noqa: PLR2004 - a CR ends it
    return _Fields(starts, fields_[:, :-1], key_ends, is_comma)


def _framed(
    data: bytes, block: npt.NDArray[np.uint8], found: _Fields, form: _Rows, buckets: Sequence[bytes]
) -> bool:
    """True when every line starts with a validated bucket and its fields are framed.

    Quoted: each line starts `"B","` and ends `"` + eol (every line boundary counted once in
    `"` eol `"B","` — a bucket holds no `"`, so a boundary matches one bucket at most — the
    block's edges looked at), and every comma sits between two quotes (so each field is
    exactly `"F"`): as many `","` as commas, counted on masks. Bare: each line starts `B,`,
    and with CRLF the CR sits right before every newline.
    """
    n, eol = form.n, form.eol
    if not form.is_quoted:
        if not _all_start_with_a_bucket(data, n, buckets, b"%b,"):
            return False
        return eol == b"\n" or _lines_end_with(data, found.starts, eol)
    if not data.endswith(b'"' + eol) or not any(data.startswith(b'"%b","' % b) for b in buckets):
        return False
    matched = 0
    for bucket in buckets:
        if matched == n - 1:
            break
        matched += data.count(b'"%b"%b","' % (eol, bucket))
    if matched != n - 1:
        return False
    is_comma, is_quote = _masks(len(block))  # `found.is_comma` is the first
    np.equal(block, _QUOTE, out=is_quote)
    quoted_commas = np.logical_and(is_comma[1:-1], is_quote[:-2], out=is_comma[1:-1])
    quoted_commas &= is_quote[2:]
    return int(np.count_nonzero(quoted_commas)) == n * (form.columns - 1)


def _plain_escapes(data: bytes, percents: npt.NDArray[np.intp]) -> bool:
    r"""True when every `%` (at `percents`) starts an escape of a plain ASCII byte.

    That is `%` then a hex pair 20-7F but 22 (`"`), 5C (`\`) and 7F (DEL): control bytes
    and non-ASCII are not plain either (see `dense._HARD_ESCAPE`). One gather of the two
    bytes after every `%`, read as one uint16, looked up in a table of the plain pairs.
    """
    if not len(percents):
        return True
    if int(percents[-1]) + 2 >= len(data):
        return False  # a `%` without two bytes after it
    pairs = np.ndarray((len(data) - 1,), "<u2", data, strides=(1,))
    return bool(_PLAIN_PAIR[pairs[percents + 1]].all())


def dense_columns_batch(
    data: bytes, shape: DenseShape, *, is_key_encoded: bool
) -> DenseBatch | None:
    r"""A batch when every line is a row of c ≥ 2 fields, bucket then key, all quoted or all bare.

    Proof, for the `n` newline-terminated lines of `data`: deleting field bytes (`_ORDINARY`)
    leaves the first line's skeleton — `"",""` plus `,""` a further column, or c - 1 commas,
    then `\n` or `\r\n` — once a line (so each line has c fields, no quote inside a field, no
    backslash or control byte, a CR only in the last field of every line, or of none); quoted
    rows are framed (every line starts `"B","` with a validated bucket B and ends with `"` eol,
    and every comma sits between two quotes), so each field is exactly `"F"`; bare rows start
    `B,` (and a CR, if any, ends every line); no key is empty; the bytes are UTF-8;
    URL-encoded keys hold only escapes of plain ASCII bytes (each counted in its key). Then
    `parse_csv_row` reads bucket and key from the fields as they are (URL-decoded when
    encoded), and an item is bucket + key + 8 bytes, the line's digits, less 2 bytes an escape.
    """
    has_escapes = is_key_encoded and b"%" in data
    form = _row_form(data, keep_percents=has_escapes)
    if form is None:
        return None
    block = np.frombuffer(data, np.uint8)
    found = _find_fields(block, form)
    if found is None or not _framed(data, block, found, form, shape.buckets):
        return None
    quoted = int(form.is_quoted)
    key_starts = found.commas[:, 0] + (1 + quoted)
    key_ends = found.key_ends - quoted
    if not (key_ends > key_starts).all() or not _is_utf8(data):
        return None
    percents = None
    if has_escapes:
        percents = np.flatnonzero(np.equal(block, _PERCENT, out=_masks(len(block))[0]))
    if percents is not None and not _plain_escapes(data, percents):
        return None
    sums = np.zeros(form.n + 1, np.int64)
    row_keys = key_ends - found.starts[:-1]
    np.cumsum(row_keys if form.escapes is None else row_keys - 2 * form.escapes, out=sums[1:])
    parse = _PARSERS[form.is_quoted, is_key_encoded]
    form_ = _Form(_ITEM_EXTRA - 1 - 3 * quoted, parse, 1, _NEVER_EMPTY, b"")
    batch = shape.batch(data, None, form_, starts=found.starts)
    if batch is None:
        return None
    base = {f.name: getattr(batch, f.name) for f in fields(batch) if f.init}
    return ColumnsBatch(
        **base,
        item_sums=sums,
        kept_ends=key_ends + quoted,
        separators=None if form.is_quoted else found.commas[:, 0],
        percents=percents,
        is_decoded=is_key_encoded,
    )
