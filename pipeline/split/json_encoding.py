"""Chunk items of dense JSON batches, rewritten from the manifest's bytes with whole-block replaces.

A dense JSON batch (`pipeline.manifest.dense_json`, `pipeline.manifest.dense_array`) holds
records proved to be exactly `{"bucket":"B","key":"K"}` or `{"key":"K","bucket":"B"}` (a JSON
array's with a separator before each), whose strings need no escaping: the item
`[line,"B","K"]` orjson would write is the record's own bytes, rearranged. Building the items
(a `bytes.split` and a `str.split` a record, then orjson) cost ~1 µs a record, more than
decompressing it; here a chunk's records become one `%`-format template by one or two
`bytes.replace` calls over the chunk's bytes, filled with the line numbers by one format call.
Every pattern replaced holds a quote, which no key holds, so it matches only where one record
meets the next. The bytes equal `orjson.dumps(items)` exactly (`tests/unit/split/
test_chunk_encoding.py`). Pure.
"""

from __future__ import annotations

from pipeline.manifest.batch import DenseBatch
from pipeline.manifest.dense import _jsonl_key_first_row, _jsonl_row
from pipeline.manifest.dense_array import _array_row

_BUCKET_OPEN = b'{"bucket":'
_KEY_OPEN = b'{"key":'
_KEY_FIELD = b',"key":'
_KEY_FIRST_END = b',"bucket":"%b"}\n'


def json_items(batch: DenseBatch, start: int, stop: int) -> bytes | None:
    """Items [start, stop) comma-joined (no brackets), or None for a batch of another kind."""
    if stop <= start or batch.data is None or batch.given_rows is not None:
        return None
    parse, starts = batch.parse_row, batch.starts
    block = batch.data[starts[start] : starts[stop]]
    if b"%" in block:
        block = block.replace(b"%", b"%%")  # the template's own `%d` are added after
    if parse is _jsonl_row:  # `{"bucket":"B","key":"K"}` newline, each
        fields = block[len(_BUCKET_OPEN) : -2].replace(b'}\n{"bucket":', b"],[%d,")
        template = b"[%d," + fields.replace(_KEY_FIELD, b",") + b"]"
    elif parse is _array_row:  # SEP `{"bucket":"B","key":"K"}`, each
        sep = batch.data[: batch.data.find(b"{")]
        fields = block[len(sep) + len(_BUCKET_OPEN) : -1].replace(
            b"}" + sep + b'{"bucket":', b"],[%d,"
        )
        template = b"[%d," + fields.replace(_KEY_FIELD, b",") + b"]"
    elif parse is _jsonl_key_first_row:  # `{"key":"K","bucket":"B"}` newline, each
        template = _key_first_template(block, batch.buckets, stop - start)
        if template is None:
            return None
    else:
        return None
    first = batch.first_line
    return template % tuple(range(first + start, first + stop))


def _key_first_template(block: bytes, buckets: tuple[bytes, ...], count: int) -> bytes | None:
    """The template of `count` key-first records that all name one bucket; else None.

    The bucket comes last in each record but first in its item, so one replace serves only
    when every record names the same bucket: then each record's end and the next one's start
    become `],[%d,"B",`. Mixed buckets (rare) take the item path.
    """
    for bucket in buckets:
        end = _KEY_FIRST_END % bucket
        if len(buckets) > 1 and block.count(end) != count:
            continue
        fields = block[len(_KEY_OPEN) : -len(end)].replace(
            end + _KEY_OPEN, b'],[%d,"' + bucket + b'",'
        )
        return b'[%d,"' + bucket + b'",' + fields + b"]"
    return None
