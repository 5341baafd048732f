"""A header CSV whose first column is the URI reads dense and exactly as the line parser reads it.

pandas `to_csv` of a one-column frame writes `uri` and then one `s3://bucket/key` a line; of a
listing, `uri,label` and `s3://bucket/key,cat`. Blocks with no comma are proved as URI lines
are, blocks of rows with the header's comma count by `dense_uri_columns`; both must give
exactly what the per-line parser gives with the header's layout, which splits a row at its
commas. Held here to the reference on generated manifests mixing plain rows with
every irregularity, in tiny read blocks, and through the chunk cut and encoding.
"""

from __future__ import annotations

import io

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.manifest.batch import DenseBatch
from pipeline.manifest.dense_uri_columns import UriColumnBatch
from pipeline.manifest.reader import ManifestFormat, ManifestRecord
from tests.unit.manifest.test_manifest_dense_columns import (
    LIMIT,
    _LineByLine,
    _reader,
    _reference,
    _split_reference,
)
from tests.unit.manifest_helpers import (
    as_tuple,
    assert_spans_are_the_chunks,
    flatten_batches,
    share_sent_as,
)

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADERS = [
    b"uri",
    b'"uri"',
    b"URI",
    b"s3_uri",
    b"uri,size",
    b"uri,label,split",
    b"uri,version_id",
    b"url,etag,version_id",
]
FIELD = st.sampled_from("7x é/%+:.-_")
plain_key = st.text(st.sampled_from("ab/ é中+%~!*'()"), min_size=1, max_size=20)
ODD = [
    b"",
    b"s3://bkt-1/",
    b"s3://bkt-9/k",
    b"s3:/bkt-1/k",
    b"s3://bkt-1/a,b",
    b"s3://bkt-1/k,123",
    b'"s3://bkt-1/k"',
    b's3://bkt-1/a"b',
    b"s3://bkt-1/a\\b",
    b"s3://bkt-1/a\tb",
    b"s3://bkt-1/a\rb",
    b"s3://bkt-1/\xff",
    b" s3://bkt-1/k",
    b"s3://b!d/k",
    b"s3://bkt-1/" + b"x" * 200,
    b"s3://bkt-1/k/,x",
    b"s3://bkt-1/,x",
    b"s3://bkt-1/k,x,y,z",
    b's3://bkt-1/k,"x"',
    b"s3://bkt-1/k,",
    b",s3://bkt-1/k",
]


@st.composite
def manifests(draw):
    """(data, block size): a URI-first header, then mostly plain rows of its column count."""
    header = draw(st.sampled_from(HEADERS))
    rows = [header]
    extra = header.count(b",") if draw(st.integers(0, 3)) else 0  # or URIs alone, all the same
    for _ in range(draw(st.integers(0, 60))):
        if draw(st.integers(0, 9)) < 8:  # mostly plain rows
            bucket = draw(st.sampled_from(["bkt-1", "bkt-2", "bucket-long-name"]))
            cells = [draw(st.text(FIELD, max_size=4)) for _ in range(extra)]
            rows.append(",".join([f"s3://{bucket}/{draw(plain_key)}", *cells]).encode())
        else:
            rows.append(draw(st.sampled_from(ODD)))
    eol = b"\r\n" if draw(st.booleans()) else b"\n"
    return eol.join(rows) + (eol if draw(st.booleans()) else b""), draw(st.integers(8, 400))


@PROPS
@given(case=manifests())
def test_uri_header_csv_batches_equal_the_line_by_line_reference(case):
    data, block = case
    reader = _reader(data, None, block)
    batches = list(reader.iter_batches())
    expected = _reference(data, None)
    assert flatten_batches(batches) == expected
    assert expected == _split_reference(data, None)  # the reference is not circular
    full = _LineByLine(io.BytesIO(data), ManifestFormat.CSV, layout=None, max_line_bytes=LIMIT)
    assert [as_tuple(i) for i in full] == expected
    assert (reader.position, reader.lines_read) == (full.position, full.lines_read)


@PROPS
@given(case=manifests(), chunk_items=st.integers(1, 9))
def test_uri_header_csv_chunks_are_cut_and_encoded_as_the_records_are(case, chunk_items):
    data, block = case
    records = [
        i
        for i in _LineByLine(io.BytesIO(data), ManifestFormat.CSV, max_line_bytes=LIMIT)
        if isinstance(i, ManifestRecord)
    ]
    batches = list(_reader(data, None, block).iter_batches())
    assert_spans_are_the_chunks(batches, records, chunk_items=chunk_items, cap=400)


@pytest.mark.parametrize("odd", ODD)
@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_one_irregular_line_among_uri_and_size_rows_reads_as_the_reference_says(odd, eol):
    rows = [b"s3://bkt-1/dir/k%d,%d" % (i, i) for i in range(6)]
    data = eol.join([b"uri,size", *rows[:3], odd, *rows[3:]]) + eol
    batches = list(_reader(data, None, 1 << 20).iter_batches())
    assert flatten_batches(batches) == _reference(data, None)
    for batch in batches:
        sizes = [len(orjson.dumps(item)) for item in batch.items(0, len(batch))]
        assert batch.item_sizes(0, len(batch)) == sizes
        assert batch.item_bytes(0, len(batch)) == sum(sizes)


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_a_uri_and_label_listing_is_read_dense_and_sent_as_its_rows(eol):
    # GIVEN `uri,label` rows as pandas writes a training-set listing
    keys = [f"photos/{i:05d} é+%41.jpg" for i in range(5000)]
    rows = [f"s3://bkt-1/{k},{i % 7}".encode() for i, k in enumerate(keys)]
    data = eol.join([b"uri,label", *rows]) + eol
    # WHEN read in 4 KiB blocks
    batches = list(_reader(data, None, 4096).iter_batches())
    # THEN nearly every row comes dense, as the line parser reads it
    dense = [b for b in batches if isinstance(b, DenseBatch)]
    assert all(isinstance(b, UriColumnBatch) for b in dense)
    assert sum(map(len, dense)) > 0.95 * len(rows)
    assert flatten_batches(batches) == [("ok", n, "bkt-1", k, None) for n, k in enumerate(keys, 2)]
    # AND Split sends the rows as they are, which read back to the same records
    assert share_sent_as(batches, "csv_rows") > 0.9


def test_a_pandas_written_uri_list_is_read_dense():
    rows = [f"s3://bkt-1/photos/{i:05d} é+%41.jpg".encode() for i in range(5000)]
    data = b"uri\n" + b"\n".join(rows) + b"\n"
    batches = list(_reader(data, None, 4096).iter_batches())
    assert sum(len(b) for b in batches if isinstance(b, DenseBatch)) > 0.95 * len(rows)
    assert flatten_batches(batches) == [
        ("ok", n, "bkt-1", f"photos/{i:05d} é+%41.jpg", None) for i, n in enumerate(range(2, 5002))
    ]
