"""`encode_span`'s message reads back to exactly the chunk, within the cut's limit, on every path.

The contract (`pipeline.split.span_message`): `Chunk.from_message` of what Split sends is
`span.to_chunk()`, and the message is no larger than the limit the chunk was cut by.
"""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import quote, quote_plus

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.manifest.batch import DenseBatch
from pipeline.manifest.dense_columns import ColumnsBatch
from pipeline.manifest.parse import BATCH_LAYOUT, CsvKind, CsvLayout, layout_from_names
from pipeline.manifest.stream import ManifestFormat, RecordReader
from pipeline.split.chunk_encoding import encode_span
from pipeline.split.chunking import Chunk, ChunkSpan, iter_chunk_spans

_PLAIN = st.text(st.sampled_from("abcXYZ019/._-~!*'()é中"), min_size=1, max_size=12)
_ENCODED = st.lists(st.sampled_from(["a", "%20", "+", "%2F", "%C3%A9", "b/c"]), min_size=1).map(
    "".join
)
_ANY = st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), min_size=1, max_size=12)
_FIRST_LINE = st.one_of(st.just(1), st.integers(1, 10**12))
_CAP = 10**6


class _Trickle(io.BytesIO):
    """Short reads, so a small manifest spans many read blocks (and dense batches)."""

    def read(self, size: int = -1) -> bytes:
        return super().read(min(size if size >= 0 else 1 << 30, 700))


def _spans(
    data: bytes,
    fmt: ManifestFormat,
    chunk_items: int,
    layout: CsvLayout | None = None,
    *,
    first_line: int = 1,
):
    reader = RecordReader(_Trickle(data), fmt, layout=layout, first_line=first_line)
    return iter_chunk_spans(
        reader.iter_batches(), run="r", chunk_items=chunk_items, chunk_max_bytes=_CAP
    )


def _assert_reads_back(span: ChunkSpan, cap: int = _CAP) -> dict:
    """`span`'s message reads back to its chunk, within the limit it was cut by."""
    body = encode_span(span, max_bytes=cap)
    message = orjson.loads(body)
    chunk = span.to_chunk()
    assert Chunk.from_message(message) == chunk
    assert span.message_bytes == len(orjson.dumps(chunk.to_message()))
    assert len(body) <= cap
    return message


def _assert_all_read_back(
    data: bytes,
    fmt: ManifestFormat,
    chunk_items: int,
    layout: CsvLayout | None = None,
    *,
    first_line: int = 1,
) -> int:
    """Every span reads back exactly; returns how many pieces went as v2 rows (not items)."""
    rows = 0
    for span in _spans(data, fmt, chunk_items, layout, first_line=first_line):
        message = _assert_reads_back(span)
        if message["v"] == 2:
            rows += sum("items" not in piece for piece in message["pieces"])
    return rows


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.one_of(_PLAIN, _ENCODED, _ANY), min_size=1, max_size=300),
    chunk_items=st.integers(1, 50),
    line_end=st.sampled_from([b"\n", b"\r\n"]),
    first_line=_FIRST_LINE,
)
def test_csv_spans_encode_exactly(keys, chunk_items, line_end, first_line):
    rows = [f"bkt-{i % 3},{key}".encode() for i, key in enumerate(keys)]
    data = line_end.join(rows) + line_end
    # The layout given: a first key that is a column's name ("KEY") would read as a header
    layout = BATCH_LAYOUT
    _assert_all_read_back(data, ManifestFormat.CSV, chunk_items, layout, first_line=first_line)


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.one_of(_PLAIN, _ANY), min_size=1, max_size=300),
    chunk_items=st.integers(1, 50),
)
def test_jsonl_spans_encode_exactly(keys, chunk_items):
    rows = [
        json.dumps(
            {"bucket": f"bkt-{i % 2}", "key": key}, ensure_ascii=False, separators=(",", ":")
        ).encode()
        for i, key in enumerate(keys)
    ]
    _assert_all_read_back(b"\n".join(rows) + b"\n", ManifestFormat.JSON_LINES, chunk_items)


_JSON_KEY = st.one_of(
    _PLAIN,
    _ANY,
    st.text(st.sampled_from('ab%{}:,"\\/ \x7f\t\u2028é'), min_size=1, max_size=8),
)
"""Keys a dense JSON check takes (`{}:,%`, non-ASCII) and ones it must refuse (escapes)."""
_JSON_BUCKETS = st.sampled_from([["bkt"], ["bk", "bk.b", "bk-b"], [f"b{i}" for i in range(10)]])
"""Buckets that prefix one another, and more of them than a dense check tries (8)."""


def _json_record(bucket: str, key: str, *, key_first: bool) -> bytes:
    record = {"key": key, "bucket": bucket} if key_first else {"bucket": bucket, "key": key}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


@settings(max_examples=80, deadline=None)
@given(
    keys=st.lists(_JSON_KEY, min_size=1, max_size=300),
    chunk_items=st.integers(1, 50),
    buckets=_JSON_BUCKETS,
    key_first=st.booleans(),
    mixed=st.booleans(),
)
def test_jsonl_spans_of_either_key_order_encode_exactly(
    keys, chunk_items, buckets, key_first, mixed
):
    # runs of one bucket, or a bucket a record (the key-first rewrite needs one per chunk)
    rows = [
        _json_record(
            buckets[i % len(buckets) if mixed else i // 97 % len(buckets)], key, key_first=key_first
        )
        for i, key in enumerate(keys)
    ]
    _assert_all_read_back(b"\n".join(rows) + b"\n", ManifestFormat.JSON_LINES, chunk_items)


@settings(max_examples=80, deadline=None)
@given(
    keys=st.lists(_JSON_KEY, min_size=1, max_size=300),
    chunk_items=st.integers(1, 50),
    buckets=_JSON_BUCKETS,
    sep=st.sampled_from([",", "\n,", ",\n", ", ", " ,\r\n  ", ",\t"]),
)
def test_json_array_spans_encode_exactly(keys, chunk_items, buckets, sep):
    elements = [
        _json_record(buckets[i % len(buckets)], key, key_first=False) for i, key in enumerate(keys)
    ]
    data = b"[" + sep.encode().join(elements) + b"]"
    _assert_all_read_back(data, ManifestFormat.JSON_ARRAY, chunk_items)


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.one_of(_PLAIN, _ENCODED, _ANY), min_size=1, max_size=300),
    chunk_items=st.integers(1, 50),
    line_end=st.sampled_from([b"\n", b"\r\n"]),
    buckets=st.sampled_from([["bkt"], ["a", "a.b", "a-b"], [f"b{i}" for i in range(10)]]),
    first_line=_FIRST_LINE,
)
def test_uri_spans_encode_exactly(keys, chunk_items, line_end, buckets, first_line):
    # buckets that prefix one another, and more of them than a dense check tries (8)
    rows = [f"s3://{buckets[i % len(buckets)]}/{key}".encode() for i, key in enumerate(keys)]
    data = line_end.join(rows) + line_end
    _assert_all_read_back(data, ManifestFormat.CSV, chunk_items, first_line=first_line)


def test_plain_manifests_take_the_dense_path():
    # GIVEN many plain rows (the shape of a real Batch Operations manifest)
    csv = b"".join(b"bkt-%d,images/%07d.jpg\n" % (i % 4, i) for i in range(3_000))
    crlf = csv.replace(b"\n", b"\r\n")
    jsonl = b"".join(b'{"bucket":"bkt","key":"k/%07d%%.jpg"}\n' % i for i in range(3_000))
    key_first = b"".join(b'{"key":"k/%07d%%{}:,.jpg","bucket":"bkt"}\n' % i for i in range(3_000))
    array = b"[" + jsonl.replace(b"}\n{", b"},\n{").rstrip() + b"]"
    uris = b"".join(b"s3://bkt-%d/i/%07d%%41+,.jpg\n" % (i % 3, i) for i in range(3_000))
    # WHEN encoded THEN each reads back exactly, most of them through v2 rows
    assert _assert_all_read_back(csv, ManifestFormat.CSV, 97) > 20
    assert _assert_all_read_back(crlf, ManifestFormat.CSV, 97) > 20
    assert _assert_all_read_back(jsonl, ManifestFormat.JSON_LINES, 97) > 20
    assert _assert_all_read_back(key_first, ManifestFormat.JSON_LINES, 97) > 20
    assert _assert_all_read_back(array, ManifestFormat.JSON_ARRAY, 97) > 20
    assert _assert_all_read_back(uris, ManifestFormat.CSV, 97) > 20
    crlf_uris = uris.replace(b"\n", b"\r\n")
    assert _assert_all_read_back(crlf_uris, ManifestFormat.CSV, 97) > 20


_FIELD = st.lists(
    st.sampled_from(["7", "x", "%41", "%2F", "%", "+", " ", "é", '"', ","]), max_size=4
).map("".join)


def _columns_manifest(keys, rest, *, quoted, inventory, line_end) -> tuple[bytes, CsvLayout | None]:
    """A header CSV (its header row first) or an Inventory part (its layout from the schema)."""
    names = ["Bucket", "Key", *(f"c{i}" for i in range(len(rest)))]
    out = io.StringIO()
    style = csv.QUOTE_ALL if quoted else csv.QUOTE_MINIMAL
    writer = csv.writer(out, quoting=style, lineterminator=line_end.decode())
    if not inventory:
        writer.writerow(names)
    for i, key in enumerate(keys):
        if inventory:
            key = quote_plus(key, safe="/") if i % 3 else quote(key, safe="")  # noqa: PLW2901
        writer.writerow([f"bkt-{i % 3}", key, *rest])
    layout = None
    if inventory:
        layout = layout_from_names(names, kind=CsvKind.SCHEMA, is_key_encoded=True)
    return out.getvalue().encode(), layout


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.one_of(_PLAIN, _ENCODED, _ANY), min_size=1, max_size=300),
    rest=st.lists(_FIELD, max_size=2),
    chunk_items=st.integers(1, 50),
    quoted=st.booleans(),
    inventory=st.booleans(),
    line_end=st.sampled_from([b"\n", b"\r\n"]),
)
def test_header_csv_and_inventory_spans_encode_exactly(  # noqa: PLR0917 - hypothesis draws
    keys, rest, chunk_items, quoted, inventory, line_end
):
    # GIVEN a header CSV or an Inventory part (URL-encoded keys), quoted or bare, 2-4 columns
    data, layout = _columns_manifest(
        keys, rest, quoted=quoted, inventory=inventory, line_end=line_end
    )
    # WHEN its spans are encoded / THEN byte for byte what orjson writes
    _assert_all_read_back(data, ManifestFormat.CSV, chunk_items, layout)


@pytest.mark.parametrize("quoted", [True, False])
@pytest.mark.parametrize("inventory", [True, False])
@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"])
@pytest.mark.parametrize("rest", [[], ["12"], ["%41x+", "%2F"]])
def test_plain_header_csv_and_inventory_take_the_columns_path(quoted, inventory, line_end, rest):
    # GIVEN many plain rows, keys with `+`, `%` and (Inventory) every plain escape class
    keys = [f"photos/{i:05d} a+b%{chr(32 + i % 95)}é.jpg" for i in range(2_000)]
    if inventory:  # non-ASCII escapes take the line parser: keep those keys ASCII
        keys = [k.replace("é", "e") for k in keys]
    data, layout = _columns_manifest(
        keys, rest, quoted=quoted, inventory=inventory, line_end=line_end
    )
    # WHEN encoded THEN each reads back exactly, through ColumnsBatch spans sent as the rows
    # they are: quoted rows as their fields, bare rows as text
    spans = list(_spans(data, ManifestFormat.CSV, 97, layout))
    form = "csv_fields" if quoted else "csv_rows"
    rows = 0
    for span in spans:
        message = _assert_reads_back(span)
        rows += message["v"] == 2 and any(form in p for p in message["pieces"])
    columns = sum(isinstance(b, ColumnsBatch) for s in spans for b, _, _ in s.pieces)
    assert columns > len(spans) // 2
    assert rows > len(spans) // 2


@settings(max_examples=80, deadline=None)
@given(
    keys=st.lists(_JSON_KEY, min_size=1, max_size=200),
    shape=st.sampled_from(["jsonl", "key-first", "array"]),
    buckets=st.sampled_from([["bkt"], ["bk", "bk.b", "bk-b"]]),
    run=st.integers(1, 40),
    cuts=st.lists(st.integers(0, 200), max_size=6),
    eol=st.sampled_from([b"\n", b"\r\n"]),
)
def test_dense_json_batches_go_as_their_own_objects_and_read_back(  # noqa: PLR0917
    keys, shape, buckets, run, cuts, eol
):
    # GIVEN dense JSON batches, buckets changing every `run` records, JSON Lines ended by a
    # newline or CRLF
    named = [buckets[i // run % len(buckets)] for i in range(len(keys))]
    rows = [
        _json_record(b, k, key_first=shape == "key-first") for b, k in zip(named, keys, strict=True)
    ]
    if shape == "array":
        data, fmt = b"[" + b",\n".join(rows) + b"]", ManifestFormat.JSON_ARRAY
    else:
        data, fmt = eol.join(rows) + eol, ManifestFormat.JSON_LINES
    for batch in RecordReader(_Trickle(data), fmt).iter_batches():
        if not isinstance(batch, DenseBatch):
            continue
        # WHEN any range of it is one span's piece
        n = len(batch)
        for start, stop in [
            (0, n),
            *((min(c, n), n) for c in cuts if min(c, n) < n),
            *((0, min(c, n)) for c in cuts if min(c, n) > 0),
        ]:
            items = batch.items(start, stop)
            v1 = len(orjson.dumps({"v": 1, "run": "r", "chunk": 7, "items": items}))
            span = ChunkSpan("r", 7, stop - start, v1, ((batch, start, stop),))
            message = _assert_reads_back(span)
            assert b"\r" not in encode_span(span, max_bytes=_CAP)
            # THEN it reads back exactly, its records sent as the manifest wrote them (less
            # the CRs), in either key order and with any mix of buckets
            assert message["v"] == 2
            assert message["pieces"][0]["objects"] == [
                json.loads(row)
                for row in rows[batch.first_line - 1 + start : batch.first_line - 1 + stop]
            ]


@settings(max_examples=40, deadline=None)
@given(
    first_line=st.one_of(
        st.integers(1, 3_000), st.integers(995, 1_005), st.integers(1, 10**12), st.just(999_990)
    ),
    rows=st.integers(300, 2_600),
    chunk_items=st.sampled_from([1, 7, 500, 1_000, 1_001, 2_500]),
    uri=st.booleans(),
    line_end=st.sampled_from([b"\n", b"\r\n"]),
)
def test_line_numbers_across_thousands_encode_exactly(first_line, rows, chunk_items, uri, line_end):
    # GIVEN plain rows numbered from anywhere (up to 10**12): chunks cross 1000s and 10**k
    form = b"s3://bkt-%d/k/%d%%.jpg" if uri else b"bkt-%d,k/%d.jpg"  # a CSV key is URL-encoded
    data = line_end.join(form % (i % 2, i) for i in range(rows)) + line_end
    # WHEN cut and encoded THEN each reads back exactly, through v2 rows (a chunk of one line
    # too: v2 is sent whenever it fits the limit)
    rows_pieces = _assert_all_read_back(
        data, ManifestFormat.CSV, chunk_items, first_line=first_line
    )
    assert rows_pieces > 0
