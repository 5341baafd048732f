"""Encode a chunk span straight into its WorkQueue message bytes, without building records.

Split sends every line of the manifest, so building one `ManifestRecord` and one item list a
line just to serialize them costs more than decompressing (~3 µs a line against ~0.2). A
`DenseBatch` whose rows are verbatim (`bucket,key` or `s3://bucket/key`, with or without a CR,
proved to hold no character JSON would escape) has its items in
the rows themselves: they are rewritten with a few whole-block `bytes.replace` calls and joined
with their line numbers; dense JSON records are rewritten the same way in
`pipeline.split.json_encoding`. A header-CSV or Inventory `ColumnsBatch` hands over its items'
strings for the whole block, URL-decoded (`ColumnsBatch.json_rows`), joined the same way. Any
other batch (URL-encoded `bucket,key` rows, listed batches) goes through `batch.items` and
orjson. Either way the bytes equal
`orjson.dumps(span.to_chunk().to_message())` exactly (a property test holds them to it).
Pure: knows nothing of SQS.
"""

from __future__ import annotations

import orjson

from pipeline.manifest.batch import DenseBatch, RecordBatch
from pipeline.manifest.dense import _csv_crlf_row, _csv_row, _uri_crlf_row, _uri_row
from pipeline.manifest.dense_columns import ColumnsBatch
from pipeline.split.chunking import MESSAGE_VERSION, ChunkSpan
from pipeline.split.json_encoding import json_items

_CSV, _URI = "csv", "uri"
_VERBATIM_ROWS = {
    _csv_row: (_CSV, b""),
    _csv_crlf_row: (_CSV, b"\r"),
    _uri_row: (_URI, b""),
    _uri_crlf_row: (_URI, b"\r"),
}
"""Row parsers whose fields are the row's bytes as they are: (row shape, line end dropped).

Private names of `manifest_dense`, imported on purpose: this encoding is only valid for rows
those parsers take verbatim, and a renamed parser must fail the import, not fall back quietly."""


def encode_span(span: ChunkSpan) -> bytes:
    """The exact JSON message of `span`: `{"v":1,"run":…,"chunk":N,"items":[[line,b,k],…]}`."""
    envelope = orjson.dumps(
        {"v": MESSAGE_VERSION, "run": span.run, "chunk": span.number, "items": []}
    )
    items = b",".join(_items(batch, start, stop) for batch, start, stop in span.pieces)
    return envelope[:-2] + items + b"]}"


def _items(batch: RecordBatch, start: int, stop: int) -> bytes:
    """Items [start, stop) of `batch`, comma-separated, without the enclosing brackets."""
    if isinstance(batch, ColumnsBatch) and stop > start:
        return _columns_items(batch, start, stop)
    if isinstance(batch, DenseBatch) and stop > start:
        json = json_items(batch, start, stop)  # JSON records (`pipeline.split.json_encoding`)
        if json is not None:
            return json
        shape = _VERBATIM_ROWS.get(batch.parse_row)
        if shape is not None:
            return _dense_items(batch, start, stop, *shape)
    return orjson.dumps(batch.items(start, stop))[1:-1]


def _dense_items(batch: DenseBatch, start: int, stop: int, kind: str, line_end: bytes) -> bytes:
    """Rows [start, stop) of `batch`, proved plain → `[line,"bucket","key"]` items.

    A dense CSV row is `bucket,key` with exactly one comma; a dense URI row is
    `s3://B/K` with B one of `buckets` (no bucket name holds a `/`, `%` or newline, so the
    prefix `s3://B/` after a newline can only be a row's start). None holds a quote,
    backslash or control byte inside its strings, so the JSON strings are the row's own bytes.
    The rows become one `%`-format template with a `%d` where each line number goes, filled by
    a single format call (1.5x faster than formatting item by item); a `%` is doubled first.
    """
    block = batch.joined_rows(start, stop).replace(b"%", b"%%")
    if line_end:
        block = block.replace(line_end, b"")  # a CR only ever ends a row of such a batch
    if kind == _URI:
        block = b"\n" + block  # every row, the first too, now starts newline + `s3://B/`
        for bucket in batch.buckets:
            block = block.replace(b"\ns3://%b/" % bucket, b'\n"%b","' % bucket)
        template = b"[%d," + block[1:].replace(b"\n", b'"],[%d,') + b'"]'
    else:
        fields = block.replace(b",", b'","')
        template = b'[%d,"' + fields.replace(b"\n", b'"],[%d,"') + b'"]'
    first = batch.first_line
    return template % tuple(range(first + start, first + stop))


def _columns_items(batch: ColumnsBatch, start: int, stop: int) -> bytes:
    """Rows [start, stop) of a header-CSV or Inventory batch → `[line,"bucket","key"]` items.

    `json_rows` gives each row's `"B","K"` as orjson writes it, a newline between rows; the
    newlines become the item breaks of one `%`-format template (a `%` doubled first), filled
    with the line numbers by a single format call, as `_dense_items` does.
    """
    rows = batch.json_rows(start, stop).replace(b"%", b"%%")
    template = b"[%d," + rows.replace(b"\n", b"],[%d,") + b"]"
    first = batch.first_line
    return template % tuple(range(first + start, first + stop))
