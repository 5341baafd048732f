"""Rows with a version column read dense give exactly what the line-by-line parser gives.

S3 Batch Operations rows `bucket,key,version` (bare or quoted, keys URL-encoded), header CSVs
with a `VersionId` column and Inventory reports listing versions are proved plain by
`pipeline.manifest.dense_columns` and sent as the rows they are. These tests hold their
batches (records, versions, failures, restart points, item sizes) and their chunk messages to
the per-line reference parser, on generated manifests mixing plain rows with irregular ones.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.manifest.batch import DenseBatch
from pipeline.manifest.dense_columns import ColumnsBatch, columns_check
from pipeline.manifest.parse import BATCH_LAYOUT, CsvKind, layout_from_names
from pipeline.split.chunk_encoding import encode_span
from pipeline.split.chunking import Chunk, iter_chunk_spans
from pipeline.split.span_message import read_pieces
from tests.unit.manifest.test_manifest_dense_columns import (
    BUCKETS,
    ODD,
    _reader,
    _row,
    assert_batches_equal_the_reference,
    assert_restart_points_and_item_sizes,
    assert_spans_cut_and_encode_as_records_do,
    bucket,
    nasty_key,
    plain_field,
    plain_key,
)
from tests.unit.manifest_helpers import as_tuple, flatten_batches

PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VERSION_ID = "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo"
"""A version id as S3 writes them: `+` and `/` are kept verbatim, never URL-decoded."""
plain_version = st.sampled_from(["", "null", VERSION_ID, "a/b+c", "v%41", "é1", "7"])
nasty_version = st.sampled_from(['a"b', "a,b", "a\\b", "a\tb", "%", "%zz", "\x7f", ""])
VERSION_ODD = [
    b"bkt-1,k,v,x",
    b'"bkt-1","k","v","x"',
    b"bkt-1,k",
    b'"bkt-1","k"',
    b'"bkt-1","k",v',
    b"bkt-1,k,v\r",
    b'"bkt-1","k","v""w"',
    b'"bkt-1","k","v,w"',
    b"bkt-1,,v",
]


@st.composite
def versioned_manifests(draw):
    """(data, layout or None, block size): Batch rows, a header CSV or an Inventory part."""
    kind = draw(st.sampled_from(["batch", "header", "inventory"]))
    quoted = draw(st.booleans())
    encoded = kind != "header"
    if kind == "batch":
        width, column, layout, rows = 1, 2, None, []
    else:
        extra = [f"c{i}" for i in range(draw(st.integers(0, 2)))]
        column = 2 + draw(st.integers(0, len(extra)))
        names = ["Bucket", "Key", *extra]
        names.insert(column, "VersionId")
        width = len(names) - 2
        schema = CsvKind.SCHEMA if kind == "inventory" else CsvKind.HEADER
        layout = layout_from_names(names, kind=schema, is_key_encoded=encoded)
        header = ",".join(f'"{n}"' if quoted else n for n in names).encode()
        rows = [] if kind == "inventory" else [header]
        layout = layout if kind == "inventory" else None

    def rest(version: str, fields: st.SearchStrategy[str]) -> list[str]:
        cells = [draw(fields) for _ in range(width - 1)]
        cells.insert(column - 2, version)
        return cells

    rows.append(_row("bkt-1", "first", rest(VERSION_ID, plain_field), quoted=quoted, encoded=True))
    for _ in range(draw(st.integers(0, 50))):
        pick = draw(st.integers(0, 9))
        if pick < 7:  # mostly plain rows, so whole blocks can be dense
            cells = rest(draw(plain_version), plain_field)
            rows.append(_row(draw(bucket), draw(plain_key), cells, quoted=quoted, encoded=encoded))
        elif pick < 9:
            cells = rest(draw(nasty_version | plain_version), st.text(max_size=3))
            rows.append(_row(draw(bucket), draw(nasty_key), cells, quoted=quoted, encoded=False))
        else:
            rows.append(draw(st.sampled_from(ODD + VERSION_ODD)))
    eol = b"\r\n" if draw(st.booleans()) else b"\n"
    data = eol.join(rows) + (eol if draw(st.booleans()) else b"")
    return data, layout, draw(st.integers(8, 400))


@PROPS
@given(case=versioned_manifests())
def test_versioned_batches_equal_the_line_by_line_reference(case):
    assert_batches_equal_the_reference(case)


@PROPS
@given(case=versioned_manifests())
def test_versioned_restart_points_and_item_sizes_equal_the_item_reader(case):
    assert_restart_points_and_item_sizes(case)


@PROPS
@given(case=versioned_manifests(), chunk_items=st.integers(1, 9), cap=st.integers(60, 500))
def test_versioned_chunk_spans_cut_and_encode_what_iter_chunks_does(case, chunk_items, cap):
    assert_spans_cut_and_encode_as_records_do(case, chunk_items, cap)


def _versions(i: int) -> str:
    return "" if i % 7 == 0 else f"{VERSION_ID[: 4 + i % 24]}{i}"


LAYOUTS = {
    "batch": (b"", "{b},{e},{v}", None),
    "batch, quoted": (b"", '"{b}","{e}","{v}"', None),
    "header": (b"bucket,key,versionid,size", "{b},{k},{v},{i}", None),
    "header, quoted, size first": (
        b'"Bucket","Key","Size","VersionId"',
        '"{b}","{k}","{i}","{v}"',
        None,
    ),
    "inventory": (
        b"",
        '"{b}","{e}","{v}","true","false","{i}"',
        layout_from_names(
            ["Bucket", "Key", "VersionId", "IsLatest", "IsDeleteMarker", "Size"],
            kind=CsvKind.SCHEMA,
            is_key_encoded=True,
        ),
    ),
}


@pytest.mark.parametrize("name", list(LAYOUTS))
@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_plain_versioned_manifests_are_read_dense_and_sent_with_their_versions(name, eol):
    # GIVEN 5,000 rows of two buckets, every 7th with an empty version (no version: what an
    # all-versions Inventory report writes for a null version; S3 Batch Operations wants a
    # version in every row or none, and rows of both kinds in one block go line by line)
    header, row, layout = LAYOUTS[name]
    keys = [
        (BUCKETS[10] if i % 9 == 0 else "bkt-1", f"photos/{i:05d} (1)+.jpg") for i in range(5000)
    ]
    lines = [
        row.format(b=b, k=k, e=k.replace(" ", "+").replace("+.", "%2B."), v=_versions(i), i=i)
        for i, (b, k) in enumerate(keys)
    ]
    data = (header + eol if header else b"") + eol.join(x.encode() for x in lines) + eol
    # WHEN read in 4 KiB blocks
    reader = _reader(data, layout, 4096)
    batches = list(reader.iter_batches())
    # THEN all but each block's first (straddling) line come dense, and nothing differs
    first = 1 + bool(header)
    expected = [
        ("ok", n, b, k, _versions(i) or None)
        for i, (n, (b, k)) in enumerate(enumerate(keys, first))
    ]
    assert flatten_batches(batches) == expected
    dense = [b for b in batches if isinstance(b, DenseBatch)]
    assert all(isinstance(b, ColumnsBatch) and b.has_versions for b in dense)
    assert sum(map(len, dense)) > 0.95 * len(keys)
    assert reader.position.offset == len(data)
    # AND the chunks Split sends carry every version, in the rows they send as they are
    pieces, records = 0, []
    for span in iter_chunk_spans(batches, run="r", chunk_items=97, chunk_max_bytes=10**6):
        body = encode_span(span, max_bytes=10**6)
        message = orjson.loads(body)
        assert Chunk.from_message(message) == span.to_chunk()
        assert len(body) <= 10**6
        pieces += sum(
            p.get("layout", {}).get("version_col") is not None for p in message.get("pieces", [])
        )
        records += Chunk.from_message(message).items
    assert [as_tuple(r) for r in records] == expected
    assert pieces > len(dense)


def test_batch_rows_of_four_fields_are_left_to_the_line_parser():
    data = b"".join(b"bkt-1,k%d,v,x\n" % i for i in range(50))
    batches = list(_reader(data, BATCH_LAYOUT, 1 << 20).iter_batches())
    assert not any(isinstance(b, DenseBatch) for b in batches)
    assert {t[2] for t in flatten_batches(batches)} == {"BadFieldCount"}


def test_a_version_column_before_the_key_is_left_to_the_line_parser():
    layout = layout_from_names(
        ["VersionId", "Bucket", "Key"], kind=CsvKind.HEADER, is_key_encoded=False
    )
    assert columns_check(layout) is None


def test_version_pairs_read_an_empty_version_as_none_and_refuse_a_missing_one():
    piece = {"line": 5, "version_pairs": ["b", "k1", "b", "k2"], "versions": ["v1", ""]}
    records, failures = read_pieces([piece])
    assert failures == []
    assert [(r.line, r.key, r.version_id) for r in records] == [(5, "k1", "v1"), (6, "k2", None)]
    with pytest.raises(ValueError, match="version"):
        read_pieces([{**piece, "versions": ["v1"]}])
    with pytest.raises(ValueError, match="malformed"):
        read_pieces([{"line": 5, "version_pairs": ["b", "k1"]}])
