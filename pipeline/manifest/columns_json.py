"""The JSON strings of a proved header-CSV or Inventory block's chunk items, built at once.

Split sends every row as an item `[line,"bucket","key"]`. Built row by row (decode, split, URL-
decode, orjson) that cost ~15 µs a row on Inventory keys, ~50x what decompressing them costs.
A block that `pipeline.manifest.dense_columns` proved plain holds its items' strings in its own
bytes: each row's `"B","K"` (bare rows: `B,K`) is a known span, the columns after it are
dropped, and a key's `%XX` escapes (proved escapes of plain ASCII bytes) and `+` decode to one
byte each. So the whole block becomes `"B","K"` lines with a few numpy passes; the chunk
encoder slices it. A version column is taken verbatim (the reference parser does not decode
it), so its values are cut out of the block apart, one a line (`FieldLines`), as are the URIs
of a header CSV whose first column is the URI. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

_HEX_DIGITS = b"0123456789ABCDEFabcdef"
_PAIR_VALUE = np.zeros(1 << 16, np.uint8)
"""The byte a `%XX` escape names, indexed by XX read as one little-endian uint16."""
for _high in _HEX_DIGITS:
    for _low in _HEX_DIGITS:
        _PAIR_VALUE[_high | _low << 8] = int(bytes((_high, _low)), 16)
_KEEP_DROP_KEEP = np.array([True, False, True])
_DROP_KEEP = np.array([False, True])
_NEWLINE = ord("\n")
_SEPARATOR = 0
"""Marks the bare rows' bucket/key comma: no proved row holds a NUL, decoded or not."""


def json_rows_block(
    data: bytes,
    starts: npt.NDArray[np.int64],
    kept_ends: npt.NDArray[np.int64],
    separators: npt.NDArray[np.int64] | None,
    percents: npt.NDArray[np.intp] | None,
    *,
    is_decoded: bool,
) -> bytes:
    r"""Every row's `"B","K"` as orjson writes the item's strings, each followed by `\n`.

    `starts` are the rows' line starts (`len(data)` last); row i keeps `data[starts[i]:
    kept_ends[i]]` — `"B","K"` when quoted, `B,K` when bare (then `separators[i]` is its comma)
    — and its newline: one `np.repeat` of keep/drop/keep over the lengths makes the byte mask.
    With `is_decoded` (URL-encoded keys), `+` is a space and each `%` at `percents` becomes
    the byte its two hex digits name, the digits dropped. Proof obligations (the caller's):
    every `%` starts an escape of a plain ASCII byte, and buckets hold no `+`, `%` or NUL.
    """
    if is_decoded and b"+" in data:
        data = data.replace(b"+", b" ")  # a bucket holds no `+`; other columns are dropped
    block = np.frombuffer(data, np.uint8)
    has_escapes = percents is not None and len(percents) > 0
    if has_escapes or separators is not None:
        block = block.copy()
    n = len(starts) - 1
    lengths = np.empty((n, 3), np.int64)
    lengths[:, 0] = kept_ends - starts[:-1]
    lengths[:, 1] = starts[1:] - 1 - kept_ends
    lengths[:, 2] = 1
    keep = np.repeat(np.tile(_KEEP_DROP_KEEP, n), lengths.ravel())
    if has_escapes:  # two bytes at a time: each escape's hex pair read, then dropped
        digits = percents + 1  # type: ignore[operator]
        pairs = np.ndarray((len(block) - 1,), "<u2", block, strides=(1,))
        block[percents] = _PAIR_VALUE[pairs[digits]]
        np.ndarray((len(keep) - 1,), "<u2", keep, strides=(1,))[digits] = 0
    if separators is None:
        return block[keep].tobytes()
    block[separators] = _SEPARATOR
    rows = block[keep].tobytes().replace(b"\n", b'"\n"')
    return (b'"' + rows[:-1]).replace(b"\0", b'","')


def field_lines_block(
    data: bytes, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
) -> bytes:
    r"""Each row's field `data[starts[i]:ends[i]]`, each followed by `\n`, verbatim.

    The byte at each `ends[i]` (the field's closing quote, comma, CR or newline) is kept as
    the row's `\n`: one `np.repeat` of drop/keep over the gaps and widths makes the byte
    mask. Proof obligation (the caller's): no field holds a newline.
    """
    n = len(starts)
    if not n:
        return b""
    block = np.frombuffer(data, np.uint8).copy()
    block[ends] = _NEWLINE
    lengths = np.empty((n + 1, 2), np.int64)
    lengths[0, 0] = starts[0]
    lengths[1:-1, 0] = starts[1:] - ends[:-1] - 1
    lengths[:-1, 1] = ends - starts + 1
    lengths[-1] = (len(data) - ends[-1] - 1, 0)
    keep = np.repeat(np.tile(_DROP_KEEP, n + 1), lengths.ravel())
    return block[keep].tobytes()


@dataclass(frozen=True, slots=True)
class FieldLines:
    r"""One field of every row of a block, `\n` after each, cut out once and sliced by rows."""

    lines: bytes
    offsets: npt.NDArray[np.int64]  # where row i's field starts in `lines`; its length last

    @classmethod
    def cut(
        cls, data: bytes, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
    ) -> FieldLines:
        """The fields `data[starts[i]:ends[i]]` (see `field_lines_block`)."""
        offsets = np.zeros(len(starts) + 1, np.int64)
        np.cumsum(np.subtract(ends, starts) + 1, out=offsets[1:])
        return cls(field_lines_block(data, starts, ends), offsets)

    def rows(self, start: int, stop: int) -> bytes:
        r"""Rows [start, stop)'s fields, `\n` between (start < stop)."""
        return self.lines[self.offsets[start] : self.offsets[stop] - 1]
