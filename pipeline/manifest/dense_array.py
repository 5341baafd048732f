"""Prove a span of JSON array elements plain, with C-speed byte operations.

A JSON array manifest (`[{"bucket":"b","key":"k"},…]`, one element a line as most writers put
it) was split element by element and each element parsed by orjson: ~1/20 of the decompression
speed. `ArraySplitter` offers each buffer's run of whole elements here; when every element is
exactly `{"bucket":"B","key":"K"}` with plain strings and one separator (`,` with the same
whitespace around it) between them, the span becomes a `DenseBatch` (see
`pipeline.manifest.batch`) whose records are exactly what `parse_json_value(orjson.loads(…))`
gives for each element, with the element numbers, restart offsets (just past each element's
`}`) and chunk item sizes the element-by-element path gives. Pure: no I/O.

Reaches into `pipeline.manifest.dense` for its byte-class helpers on purpose: one definition of
what a plain byte is serves every dense check.
"""

from __future__ import annotations

from pipeline.manifest.batch import DenseBatch
from pipeline.manifest.dense import DenseShape, _Form, _is_utf8, _ordinary

_ORDINARY = _ordinary(b"{}:,")
"""String bytes: printable ASCII but `{}:,"\\`, and all non-ASCII (see `dense._ordinary`)."""
_ELEMENT_END = b'"}'
_OPEN = b'{"bucket":"%b","key":"'
_SKELETON = b'{"":"","":""}'
_EMPTY_KEY = b'"key":""}'
_WHITESPACE = b" \t\r\n"
_PREFIX_BYTES = len(_OPEN % b"")
_NEVER_EMPTY = -(2**62)
"""`_Form.min_row_bytes` that skips `DenseShape.batch`'s empty-key search: done here."""


def _array_row(row: bytes) -> tuple[str, str]:
    """Bucket and key of `SEP{"bucket":"B","key":"K` (the separator holds no quote).

    Not `dense._jsonl_row`, though the same: the chunk encoder copies rows of that one verbatim,
    and these carry their separator.
    """
    parts = row.decode().split('"')
    return parts[3], parts[7]


def dense_array_batch(span: bytes, shape: DenseShape) -> DenseBatch | None:
    r"""A `DenseBatch` when `span` is n elements `{"bucket":"B","key":"K"}`, each after a `SEP`.

    `span` runs from just past an element to just past a later one's `"}`. Proof: split at
    `"}`, it is n rows and nothing after; `SEP`, the bytes before the first `{`, is whitespace,
    one comma, whitespace; deleting ordinary bytes leaves the skeleton of `SEP` plus
    `{"":"","":""}` n times (so no backslash, control byte or `{}:,` inside a string, and a
    `"}` only at an element's end); every row starts `SEP{"bucket":"B","key":"` with a
    validated bucket B (the first directly, the others counted after a `"}`: a bucket holds no
    quote, so one matches a row at most); no key is empty; the bytes are UTF-8. An item is the
    row less the separator and 12 bytes, plus its number's digits.
    """
    rows = span.split(_ELEMENT_END)
    if rows.pop():
        return None
    n, sep = len(rows), span[: span.find(b"{")]
    if sep.strip(_WHITESPACE) != b"," or not span.startswith(sep + b'{"bucket":"'):
        return None
    if span.translate(None, _ORDINARY) != (sep.translate(None, _ORDINARY) + _SKELETON) * n:
        return None
    first = span[len(sep) :]
    if not any(first.startswith(_OPEN % bucket) for bucket in shape.buckets):
        return None
    matched = 1
    for bucket in shape.buckets:
        if matched == n:
            break
        matched += span.count(_ELEMENT_END + sep + _OPEN % bucket)
    if matched != n or _EMPTY_KEY in span or not _is_utf8(span):
        return None
    form = _Form(-_PREFIX_BYTES + 8 - len(sep), _array_row, 2, _NEVER_EMPTY, b"")
    return shape.batch(span, rows, form)
