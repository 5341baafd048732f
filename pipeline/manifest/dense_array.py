"""Prove a span of JSON array elements plain, vectorized over the element ends.

A JSON array manifest (`[{"bucket":"b","key":"k"},…]`, one element a line as most writers put it)
was split element by element and each element parsed by orjson: ~1/20 of the decompression speed.
`ArraySplitter` offers each buffer's run of whole elements here; when every element is exactly
`{"bucket":"B","key":"K"}` with the whitespace of the span's first element between its tokens
(none, `json.dump`'s spaces on one line, or its indentation) with a plain key and one separator
(`,` with the same whitespace around it) before each, the span becomes a `DenseBatch` (see
`pipeline.manifest.batch`) whose records are exactly what `parse_json_value(orjson.loads(…))` gives
for each element, with the element numbers, restart offsets (just past each element's `}`) and
chunk item sizes the element-by-element path gives. The proof is the JSON Lines one
(`pipeline.manifest.dense_json`) with `}` ending a record instead of a newline. Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from pipeline.manifest.batch import DenseBatch
from pipeline.manifest.dense import DenseShape, _Form, _is_utf8, frame_matches
from pipeline.manifest.dense_json import (
    _CLOSE,
    _NEVER_EMPTY,
    _WHITESPACE,
    _WHITESPACE_RUN,
    _WORD,
    _bucket_needs,
    _controls_are_the_frames,
    _json_specials_are_the_frames,
)
from pipeline.manifest.dense_template import _ITEM_FRAME

if TYPE_CHECKING:
    import numpy.typing as npt

_FIRST_ELEMENT = re.compile(
    rb'\{(%b)"bucket"(%b:%b)"[^"\\]*"(%b,%b)"key"(%b:%b)"[^"\\]*"(%b)\}' % ((_WHITESPACE_RUN,) * 8)
)
"""A `{"bucket","key"}` element with any JSON whitespace between its tokens (the groups)."""


def _array_row(row: bytes) -> tuple[str, str]:
    """Bucket and key of `SEP{"bucket":"B","key":"K` (no quote in the separator or whitespace).

    Not `dense._jsonl_row`, though the same: the chunk encoder tells batches apart by their
    row parser, and these rows carry their separator.
    """
    parts = row.decode().split('"')
    return parts[3], parts[7]


def dense_array_batch(span: bytes, shape: DenseShape) -> DenseBatch | None:
    r"""A `DenseBatch` when `span` is n elements `{"bucket":"B","key":"K"}`, each after a `SEP`.

    Each element laid out as the first one is (`_frame_of`): compact, spaced as `json.dump`
    writes one line, or indented as `json.dump(indent=…)` writes it.

    `span` runs from just past an element to just past a later one's `}`. Proof: `SEP`, the
    bytes before the first `{`, is whitespace, one comma, whitespace; the span's `}` bytes
    (one numpy search) cut it into n rows, the last ending the span; every row starts with
    `SEP{"bucket":"B","key":"` (the first element's whitespace in it) for a validated bucket
    B and ends with the first element's `"}` (and the whitespace before its `}`), gathered at
    the row starts and ends, with at least one byte between the two (so the key is not empty
    and the pieces do not overlap); the span holds 8n quotes, and n times the control bytes
    of the separator and the frame (the frames' own: none in a key), no backslash or DEL; it
    is UTF-8. So no `}` lies inside a key either, and the rows are the elements the element
    path would read. An item is the row less the separator and the frame's fixed bytes, plus
    `[,"",""]` and its number's digits.
    """
    sep = span[: span.find(b"{")]
    frame = _frame_of(span, sep)
    if frame is None:
        return None
    bucket_open, element_end = frame
    opens = [sep + bucket_open % bucket for bucket in shape.looped_buckets]
    if not span.startswith(tuple(opens)):
        return None  # the first row already is no frame: spare the whole-span searches
    starts = _element_starts(span, (sep, bucket_open, element_end))
    need = None if starts is None else _bucket_needs(span, starts[:-1], opens, 1 + len(element_end))
    if need is None or not (np.diff(starts) >= need).all():
        return None
    ends = frame_matches(span, starts[1:] - len(element_end), element_end, backward=True)
    if not ends.all() or not _is_utf8(span):
        return None
    delta = _ITEM_FRAME - len(bucket_open % b"") - len(sep)
    form = _Form(delta, _array_row, len(element_end), _NEVER_EMPTY, b"", row_end=element_end)
    return shape.batch(span, None, form, starts=starts)


def _frame_of(span: bytes, sep: bytes) -> tuple[bytes, bytes] | None:
    r"""The first element's fixed bytes, `{"bucket":"%b","key":"` and `"}`; None: no frame.

    Each with the whitespace the element holds around its braces, colons and comma (JSON's
    four whitespace bytes only): `{"bucket": "%b", "key": "` for `json.dump` on one line,
    `{\n    "bucket": "%b",\n    "key": "` and `"\n  }` for `json.dump(indent=2)`. None
    also when `sep`, the bytes before the first `{`, is no comma in whitespace.
    """
    if len(span) < _WORD or b"{" not in span or sep.strip(_WHITESPACE) != b",":
        return None
    first = _FIRST_ELEMENT.match(span, len(sep))
    if first is None:
        return None
    open_space, colon, comma, key_colon, close_space = first.groups()
    bucket_open = b'{%b"bucket"%b"%%b"%b"key"%b"' % (open_space, colon, comma, key_colon)
    return bucket_open, b'"%b}' % close_space


def _element_starts(span: bytes, frame: tuple[bytes, ...]) -> npt.NDArray[np.int64] | None:
    """Each row's start (just past a `}`; `len(span)` last), unless a key may need escapes.

    The span's `}` bytes end the rows, the last at the span's end; the span holds exactly 8
    quotes a row, the control bytes of the `frame` pieces a row (the separator's too), and no
    backslash or DEL. Once every row is proved to start with the separator and a frame and to
    end with the frame's end, those are the frames' own.
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
    if not _controls_are_the_frames(block, n, frame):
        return None
    starts = np.empty(n + 1, np.int64)
    starts[0] = 0
    np.add(closes, 1, out=starts[1:])
    return starts
