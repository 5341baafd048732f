r"""Encode a chunk span straight into its WorkQueue message bytes, without building records.

Split sends every line of the manifest, so building one `ManifestRecord` and one item list a
line just to serialize them costs more than decompressing (~3 µs a line against ~0.2). Writing
v1's `[line,"bucket","key"]` items from the rows without records still cost half of a Split
pass (BENCHMARKS.md, "Split's v2 message"): a line number and a few multi-byte replaces a row.
So Split writes the v2 message (`pipeline.split.span_message`): each piece of the span is its
first line number and its rows as a whole-block rewrite of the bytes the dense proof holds:

- verbatim `bucket,key` and URI rows (`pipeline.manifest.dense`: no quote, backslash or control
  byte but the line ends; UTF-8) are one JSON string: their CRs dropped, newlines written `\n`;
- dense JSON records (`{"bucket":"B","key":"K"}`, key first or `{"uri":"s3://B/K"}`, in
  either spelling, a key holding no JSON escape but pandas' `\/`; array elements laid out
  like their span's first, `dense_array_template`, and lines like their block's first,
  `dense_template`) are JSON already: their lines become the `objects` of the piece as they
  are, one newline to one comma (a JSON array's elements keep their own separators).
  Rewriting them into `keys` or `pairs` cost a multi-byte replace a record, a third of a
  Split pass; sending array elements as `raw_elements` text, every quote escaped, cost more
  than proving them (JSON Lines are the other way round: Split sends them `raw_lines`);
- header-CSV, Inventory and quoted or versioned Batch rows (`ColumnsBatch`, and a header CSV
  whose first column is the URI, `UriColumnBatch`) go as they are, with the layout that reads
  them: quoted rows (every field `"F"`, no quote, backslash or control byte inside) are JSON
  arrays of strings already, so one newline-to-`],[` replace makes them `csv_fields`; bare
  rows are one `csv_rows` string, newlines written `\n`. Cutting the bucket and key out of
  every row (a numpy compress over the block) cost more than that replace;
- records read a column at a time (`ParsedBatch`: JSON with other fields, arrays, quoted URI
  lines, other column orders) go as their columns' slices, `keys` of one bucket or `buckets`,
  `keys` and `versions`: one `orjson.dumps` a column, not one list a record;
- lines Split did not parse (`RawLinesBatch`: shapes no frame proof takes) go as one JSON
  string, `raw_lines`, with the CSV layout that reads them, and JSON array elements likewise
  (`RawElementsBatch`, `raw_elements`): their worker parses them;
- any other piece (batches read line by line) is v1 items.

A span of nothing but items, or whose v2 message would pass `max_bytes`, is sent as v1, which
the chunk cut (made by v1 sizes, `ChunkSpan.message_bytes`) keeps within it. A v2 message may
be larger than v1 (an `objects` record holds its field names); it is still bounded by the
limit SQS enforces. A span holding raw lines has no v1 form: the cut bounds their bytes
(`pipeline.manifest.raw_lines`), so only its pieces' few header bytes can pass `max_bytes`,
inside the 64 KiB that `chunk_max_bytes` must leave under SQS's limit
(`config.CHUNK_MAX_BYTES_LIMIT`). Either reads back to exactly
`span.to_chunk()` (a property test holds it to that). Pure: knows nothing of SQS.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import orjson

from pipeline.manifest.batch import DenseBatch, RecordBatch, UnparsedBatch
from pipeline.manifest.dense import (
    _csv_crlf_row,
    _csv_encoded_row,
    _csv_row,
    _uri_crlf_row,
    _uri_row,
)
from pipeline.manifest.dense_array import _array_row
from pipeline.manifest.dense_array_template import ElementsBatch
from pipeline.manifest.dense_columns import ColumnsBatch
from pipeline.manifest.dense_json import ROW_FORMS
from pipeline.manifest.dense_template import _template_row
from pipeline.manifest.dense_uri_columns import UriColumnBatch
from pipeline.manifest.parse import CsvLayout, layout_to_dict
from pipeline.manifest.parsed_json import ParsedBatch
from pipeline.manifest.raw_elements import RawElementsBatch
from pipeline.manifest.raw_lines import RawLinesBatch
from pipeline.split.span_message import (
    CSV,
    CSV_FIELDS,
    CSV_ROWS,
    CSV_URL,
    LAYOUT,
    OBJECTS,
    PIECES,
    RAW_ELEMENTS,
    RAW_LINES,
    SPAN_MESSAGE_VERSION,
    URIS,
)

if TYPE_CHECKING:
    from collections.abc import Buffer

    from pipeline.split.chunking import ChunkSpan

_ROW_STRINGS = {
    _csv_row: (CSV.encode(), False),
    _csv_crlf_row: (CSV.encode(), True),
    _csv_encoded_row: (CSV_URL.encode(), True),
    _uri_row: (URIS.encode(), False),
    _uri_crlf_row: (URIS.encode(), True),
}
"""Row parsers whose rows are sent as they are: (piece field, whether a CR may end a row).

Private names of `pipeline.manifest.dense`, imported on purpose: this encoding is only valid
for rows those proofs take, and a renamed parser must fail the import, not fall back quietly."""
_OBJECTS_OPEN = b'"%b":[' % OBJECTS.encode()


def encode_span(span: ChunkSpan, *, max_bytes: int) -> bytes:
    """The message of `span`: v2 (`pipeline.split.span_message`) unless it would pass `max_bytes`.

    `max_bytes` is the limit the span was cut by (`chunk_max_bytes`), so v1 always fits it.
    """
    pieces = [_piece(batch, start, stop) for batch, start, stop in span.pieces]
    if all(piece is None for piece in pieces):
        return orjson.dumps(span.to_message())
    envelope = orjson.dumps(
        {"v": SPAN_MESSAGE_VERSION, "run": span.run, "chunk": span.number, PIECES: []}
    )
    parts: list[Buffer] = [envelope[:-2]]
    for (batch, start, stop), piece in zip(span.pieces, pieces, strict=True):
        if len(parts) > 1:
            parts.append(b",")
        parts += piece or (b'{"items":', orjson.dumps(batch.items(start, stop)), b"}")
    parts.append(b"]}")
    body = b"".join(parts)
    if len(body) > max_bytes and not any(isinstance(b, UnparsedBatch) for b, _, _ in span.pieces):
        return orjson.dumps(span.to_message())
    return body


def _piece(batch: RecordBatch, start: int, stop: int) -> list[Buffer] | None:  # noqa: PLR0911
    """Records [start, stop) of `batch` as a v2 piece, or None where it takes v1 items."""
    if stop <= start or not isinstance(batch, DenseBatch | ParsedBatch | UnparsedBatch):
        return None
    head = b'{"line":%d,' % (batch.first_line + start)
    if isinstance(batch, RawElementsBatch):
        text = orjson.dumps(batch.text(start, stop))
        return [head, b'"%b":' % RAW_ELEMENTS.encode(), text, b"}"]
    if isinstance(batch, RawLinesBatch):
        layout = b"" if batch.layout is None else _layout_field(batch.layout)
        text = orjson.dumps(batch.text(start, stop))
        return [head, layout, b'"%b":' % RAW_LINES.encode(), text, b"}"]
    if isinstance(batch, ParsedBatch):
        return _columns_read(head, batch, start, stop)
    if isinstance(batch, ColumnsBatch | UriColumnBatch) and batch.layout is not None:
        return _columns(head, batch, start, stop)
    row_strings = _ROW_STRINGS.get(batch.parse_row)
    if row_strings is not None:
        field, has_cr = row_strings
        rows = batch.joined_rows(start, stop)
        rows = _without_crs(rows) if has_cr else rows
        return [head, b'"%b":"' % field, rows.replace(b"\n", b"\\n"), b'"}']
    return _objects(head, batch, start, stop)


def _objects(head: bytes, batch: DenseBatch, start: int, stop: int) -> list[Buffer] | None:
    """Rows [start, stop) that are JSON values already, as `objects`; None for other rows."""
    if batch.data is None or batch.given_rows is not None:
        return None
    block = batch.data[batch.starts[start] : batch.starts[stop]]
    if batch.parse_row in ROW_FORMS or batch.parse_row is _template_row:  # a line each
        return [head, _OBJECTS_OPEN, _without_crs(block[:-1]).replace(b"\n", b","), b"]}"]
    if batch.parse_row is _array_row:  # SEP `{"bucket":"B","key":"K"}`, each
        separator = batch.data[: batch.data.find(b"{")]  # the same before every element
        return [head, _OBJECTS_OPEN, block[len(separator) :], b"]}"]
    if isinstance(batch, ElementsBatch):  # SEP and an element laid out like the first, each
        return [head, _OBJECTS_OPEN, block[len(batch.separator) :], b"]}"]
    return None


def _columns(
    head: bytes, batch: ColumnsBatch | UriColumnBatch, start: int, stop: int
) -> list[Buffer]:
    """Rows [start, stop) as they are: `csv_fields` when quoted, else `csv_rows`, and a layout."""
    rows = _without_crs(batch.data[batch.starts[start] : batch.starts[stop] - 1])  # type: ignore[index]
    layout = _layout_field(batch.layout)
    if batch.is_quoted:
        return [head, layout, b'"%b":[[' % CSV_FIELDS.encode(), rows.replace(b"\n", b"],["), b"]]}"]
    return [head, layout, b'"%b":"' % CSV_ROWS.encode(), rows.replace(b"\n", b"\\n"), b'"}']


def _without_crs(rows: bytes) -> bytes:
    """`rows` with their CRs dropped: a CR only ever ends a row of a proved batch."""
    return rows.replace(b"\r", b"") if b"\r" in rows else rows


def _columns_read(head: bytes, batch: ParsedBatch, start: int, stop: int) -> list[Buffer]:
    """Records [start, stop) of a batch read a column at a time, as its columns' slices.

    One bucket and no versions: `{"bucket":B,"keys":[…]}`; else `buckets`, `keys` and, with
    versions, `versions` (`""`: none). One `orjson.dumps` a column, not a list a record.
    """
    keys = orjson.dumps(batch.keys[start:stop])
    if batch.versions is None and len(batch.bucket_names) == 1:
        bucket = orjson.dumps(next(iter(batch.bucket_names)))
        return [head, b'"bucket":', bucket, b',"keys":', keys, b"}"]
    parts = [head, b'"buckets":', orjson.dumps(batch.buckets[start:stop]), b',"keys":', keys]
    if batch.versions is not None:
        versions = [v or "" for v in batch.versions[start:stop]]
        parts += [b',"versions":', orjson.dumps(versions)]
    parts.append(b"}")
    return parts


@lru_cache(maxsize=32)
def _layout_field(layout: CsvLayout) -> bytes:
    """`"layout":{…},` of a piece: once a layout (`asdict` a chunk cost 10 % of a pass)."""
    return b'"%b":%b,' % (LAYOUT.encode(), orjson.dumps(layout_to_dict(layout)))
