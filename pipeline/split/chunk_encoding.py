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

Measured (BENCHMARKS.md, "Split at decompression speed"): on `bucket,key` and URI rows this
encoding was half of a Split pass's Python time. What costs is per row, not per byte: a
multi-byte `bytes.replace` (~90 ns a match in CPython 3.11, against ~17 for a one-byte one) and
a `%d` (~65 ns: an int object, then its text) against ~20 for a `%b` of ready bytes. So URI rows
take one multi-byte replace a bucket (the newline merged into it), `bucket,key` rows only
one-byte replaces, and line numbers are written as their thousands (in the replacement text)
and a `%b` of the last three digits from a table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import orjson

from pipeline.manifest.batch import DenseBatch, RecordBatch
from pipeline.manifest.dense import _csv_crlf_row, _csv_row, _uri_crlf_row, _uri_row
from pipeline.manifest.dense_columns import ColumnsBatch
from pipeline.split.chunking import MESSAGE_VERSION, ChunkSpan
from pipeline.split.json_encoding import json_items

if TYPE_CHECKING:
    from collections.abc import Buffer

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
    parts: list[Buffer] = [envelope[:-2]]
    for batch, start, stop in span.pieces:
        if len(parts) > 1:
            parts.append(b",")
        parts += _items(batch, start, stop)
    parts.append(b"]}")
    return b"".join(parts)


def _items(batch: RecordBatch, start: int, stop: int) -> list[Buffer]:
    """Items [start, stop) of `batch`, comma-separated, without the enclosing brackets."""
    if isinstance(batch, ColumnsBatch) and stop > start:
        return [_columns_items(batch, start, stop)]
    if isinstance(batch, DenseBatch) and stop > start:
        json = json_items(batch, start, stop)  # JSON records (`pipeline.split.json_encoding`)
        if json is not None:
            return [json]
        shape = _VERBATIM_ROWS.get(batch.parse_row)
        if shape is not None:
            return _numbered_rows(batch, start, stop, *shape)
    return [orjson.dumps(batch.items(start, stop))[1:-1]]


_LOW_DIGITS = (
    tuple(b"%d" % n for n in range(1000)),
    tuple(b"%03d" % n for n in range(1000)),
)
"""The last three digits of a line number: as they are below 1000, zero-padded above."""
_LOW_DIGITS_OPEN = tuple(tuple(b'%b,"' % low for low in lows) for lows in _LOW_DIGITS)
"""The same, each followed by the `,"` that opens the bucket string (URI rows)."""


def _numbered_rows(
    batch: DenseBatch, start: int, stop: int, kind: str, line_end: bytes
) -> list[Buffer]:
    r"""Rows [start, stop) of a `bucket,key` or URI batch → `[line,"bucket","key"]` items.

    A dense CSV row is `bucket,key` with exactly one comma; a dense URI row is `s3://B/K` with
    B one of `batch.buckets` (no bucket name holds a `/`, `%` or newline, so `\ns3://B/` can
    only be a row's start). Neither holds a quote, backslash or control byte, so the JSON
    strings are the row's own bytes. Each row, with the newline before it, becomes
    `"],[T%b,"B","K` where T is the thousands of the line numbers of the run of rows being
    rewritten (so runs end where the thousands change: one or two a chunk), and one format
    call fills every `%b` from the table of the last three digits (a `%` is doubled first).
    A URI row's `\ns3://B/` becomes `%b%bB","` instead, as long as it (a multi-byte replace
    costs ~35 % less when it keeps the length): the thousands and the last digits come as two
    arguments. The first item opens with `[`, so its leading `"],` is cut (a view, not a copy).
    """
    first = batch.first_line
    parts: list[Buffer] = []
    for a, b in _thousands(first, start, stop):
        high, low = divmod(first + a, 1000)
        rows = _rows_after_newline(batch, a, b)
        if b"%" in rows:
            rows = rows.replace(b"%", b"%%")
        if line_end:
            rows = rows.replace(line_end, b"")  # a CR only ever ends a row of such a batch
        if kind == _URI:
            for bucket in batch.buckets:
                rows = rows.replace(b"\ns3://%b/" % bucket, b'%%b%%b%b","' % bucket)
            args = [b'"],[%d' % high if high else b'"],['] * (2 * (b - a))
            args[1::2] = _LOW_DIGITS_OPEN[high > 0][low : low + b - a]
            parts.append(rows % tuple(args))
        else:
            head = b'"],[%d%%b,"' % high if high else b'"],[%b,"'
            rows = rows.replace(b",", b'","').replace(b"\n", head)
            parts.append(rows % _LOW_DIGITS[high > 0][low : low + b - a])
    parts[0] = memoryview(parts[0])[3:]
    parts.append(b'"]')
    return parts


def _thousands(first: int, start: int, stop: int) -> Iterator[tuple[int, int]]:
    """Rows [start, stop) of a batch whose row 0 is line `first`, cut where line // 1000 changes."""
    while start < stop:
        end = min(stop, start + 1000 - (first + start) % 1000)
        yield start, end
        start = end


def _rows_after_newline(batch: DenseBatch, start: int, stop: int) -> bytes:
    r"""`b"\n"` + rows [start, stop) as `joined_rows` gives them, copied once.

    Inside a batch read from `data`, the newline before row `start` is the data's own.
    """
    if start and batch.data is not None and batch.given_rows is None:
        starts = batch.starts
        return batch.data[int(starts[start]) - 1 : int(starts[stop]) - 1]
    return b"\n" + batch.joined_rows(start, stop)


def _columns_items(batch: ColumnsBatch, start: int, stop: int) -> bytes:
    """Rows [start, stop) of a header-CSV or Inventory batch → `[line,"bucket","key"]` items.

    `json_rows` gives each row's `"B","K"` as orjson writes it, a newline between rows; the
    newlines become the item breaks of one `%`-format template (a `%` doubled first), filled
    with the line numbers by a single format call.
    """
    rows = batch.json_rows(start, stop).replace(b"%", b"%%")
    template = b"[%d," + rows.replace(b"\n", b"],[%d,") + b"]"
    first = batch.first_line
    return template % tuple(range(first + start, first + stop))
