"""Prove a span of JSON array elements plain, vectorized over the element ends.

A JSON array manifest (`[{"bucket":"b","key":"k"},…]`, one element a line as most writers put it)
was split element by element and each element parsed by orjson: ~1/20 of the decompression speed.
`ArraySplitter` offers each buffer's run of whole elements here; when every element is exactly
`{"bucket":"B","key":"K"}` (or `{"bucket": "B", "key": "K"}`, as `json.dump` writes it, all on one
line: the first element's spelling, `json_spelling`) with a plain key and one separator (`,` with
the same whitespace around it) before each, the span becomes a `DenseBatch` (see
`pipeline.manifest.batch`) whose records are exactly what `parse_json_value(orjson.loads(…))` gives
for each element, with the element numbers, restart offsets (just past each element's `}`) and
chunk item sizes the element-by-element path gives. The proof is the JSON Lines one
(`pipeline.manifest.dense_json`) with `}` ending a record instead of a newline. Pure: no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.manifest.batch import DenseBatch
from pipeline.manifest.dense import DenseShape, _Form, _is_utf8
from pipeline.manifest.dense_json import (
    _CLOSE,
    _ELEMENT_END,
    _FIRST_PRINTABLE,
    _NEVER_EMPTY,
    _QUOTE,
    _WHITESPACE,
    _WORD,
    _bucket_needs,
    _json_specials_are_the_frames,
)
from pipeline.manifest.json_spelling import spelling_of

if TYPE_CHECKING:
    import numpy.typing as npt


def _array_row(row: bytes) -> tuple[str, str]:
    """Bucket and key of `SEP{"bucket":"B","key":"K` (the separator holds no quote).

    Not `dense._jsonl_row`, though the same: the chunk encoder tells batches apart by their
    row parser, and these rows carry their separator.
    """
    parts = row.decode().split('"')
    return parts[3], parts[7]


def dense_array_batch(span: bytes, shape: DenseShape) -> DenseBatch | None:
    r"""A `DenseBatch` when `span` is n elements `{"bucket":"B","key":"K"}`, each after a `SEP`.

    In the spelling of the first element: compact, or with a space after each `:` and `,`.

    `span` runs from just past an element to just past a later one's `"}`. Proof: `SEP`, the
    bytes before the first `{`, is whitespace, one comma, whitespace; the span's `}` bytes
    (one numpy search) cut it into n rows, the last ending the span; every row starts with
    `SEP{"bucket":"B","key":"` for a validated bucket B and ends `"}`, gathered at the row
    starts and ends, with at least one byte between the two (so the key is not empty and
    the pieces do not overlap); the span holds 8n quotes, and n times the separator's control
    bytes (the frames' own: none in a key), no backslash or DEL; it is UTF-8. So no `}` lies
    inside a key either, and the rows are the elements the element path would read. An item
    is the row less the separator and 12 bytes (15 spaced), plus its number's digits.
    """
    sep = span[: span.find(b"{")]
    if len(span) < _WORD or b"{" not in span or sep.strip(_WHITESPACE) != b",":
        return None
    spelling = spelling_of(span[len(sep) :])
    opens = [sep + spelling.bucket_open % bucket for bucket in shape.buckets]
    if not span.startswith(tuple(opens)):
        return None  # the first row already is no frame: spare the whole-span searches
    starts = _element_starts(span, sep)
    if starts is None:
        return None
    need = _bucket_needs(span, starts[:-1], opens, 1 + len(_ELEMENT_END))
    if need is None or not (np.diff(starts) >= need).all():
        return None
    block = np.frombuffer(span, np.uint8)
    if not (block[starts[1:] - 2] == _QUOTE).all() or not _is_utf8(span):
        return None
    delta = spelling.row_item_delta - len(sep)
    form = _Form(delta, _array_row, 2, _NEVER_EMPTY, b"", row_end=_ELEMENT_END)
    return shape.batch(span, None, form, starts=starts)


def _element_starts(span: bytes, sep: bytes) -> npt.NDArray[np.int64] | None:
    """Each row's start (just past a `}`; `len(span)` last), unless a key may need escapes.

    The span's `}` bytes end the rows, the last at the span's end; the span holds exactly 8
    quotes a row, as many control bytes a row as `sep`, and no backslash or DEL. Once every
    row is proved to start with `sep` and a frame and to end `"}`, those are the frames' own.
    """
    if b"\\" in span or b"\x7f" in span:
        return None
    block = np.frombuffer(span, np.uint8)
    closes = np.flatnonzero(block == _CLOSE)
    n = len(closes)
    if not n or closes[-1] != len(span) - 1:
        return None
    if not _json_specials_are_the_frames(block, n):
        return None
    controls = sum(byte < _FIRST_PRINTABLE for byte in sep)
    if int(np.count_nonzero(block < _FIRST_PRINTABLE)) != controls * n:
        return None
    starts = np.empty(n + 1, np.int64)
    starts[0] = 0
    np.add(closes, 1, out=starts[1:])
    return starts
