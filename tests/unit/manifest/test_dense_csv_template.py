"""CSV rows laid out like their first line: a batch only when the reference reads each alike."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.manifest.dense import DenseShape
from pipeline.manifest.dense_csv_template import dense_csv_template_batch
from pipeline.manifest.parse import (
    BATCH_LAYOUT,
    URI_LAYOUT,
    CsvKind,
    CsvLayout,
    layout_from_names,
    parse_csv_line,
)
from tests.unit.manifest_helpers import assert_block_batch_is_the_reference

BUCKETS = [b"bkt-a", b"bkt-b"]
SHAPE = DenseShape(1, 0, BUCKETS, 10**6)


def _header(*names: str) -> CsvLayout:
    layout = layout_from_names(list(names), kind=CsvKind.HEADER, is_key_encoded=False)
    assert layout is not None
    return layout


def _reference(line: bytes, n: int, layout: CsvLayout) -> object:
    """What the reader makes of line `n`: None for a blank line, else the parser's item."""
    return None if not line or line.isspace() else parse_csv_line(line, n, layout)


def _assert_is_the_reference(data: bytes, layout: CsvLayout) -> bool:
    """When the proof takes `data`, it is what the reference parser reads; True if taken."""
    batch = dense_csv_template_batch(data, SHAPE, layout)
    if batch is None:
        return False
    lines = data.split(b"\n")[:-1]
    reference = [_reference(line, n, layout) for n, line in enumerate(lines, 1)]
    assert_block_batch_is_the_reference(batch, data, reference)
    return True


GOOD_KEY = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters=',"\\'),
    min_size=1,
    max_size=12,
)
ODD_KEY = st.sampled_from(["", 'q"q', "b\\s", "tab\t", "a,b", "cr\r", " ", "é/ü.png", "\x7f"])
GOOD_BUCKET = st.sampled_from(["bkt-a", "bkt-b"])
ODD_BUCKET = st.sampled_from(["bkt-c", "Bad_Bucket", "", " bkt-a"])
OTHER = st.sampled_from(["", "7", "cat", "12.5", " "])
VERSION = st.sampled_from(["", "v1", "3HL4kqtJvjVBH40Nrjfkd"])


def _mostly(draw, good, odd, clean):
    """A good value, or one time in ten in a block not `clean`, an odd one (which the proof
    must refuse, or read as the reference does)."""
    return draw(odd if not clean and draw(st.integers(0, 9)) == 0 else good)


@st.composite
def header_blocks(draw) -> tuple[bytes, CsvLayout]:
    """Rows of one header layout, the record's columns anywhere, some rows odd."""
    names = ["uri"] if draw(st.booleans()) else ["key", "bucket"]
    names += draw(st.lists(st.sampled_from(["", "label", "size", "version_id"]), unique=True))
    names = draw(st.permutations(names))
    clean = draw(st.booleans())

    def value(name: str) -> str:
        if name == "uri":
            head = _mostly(draw, st.sampled_from(["s3://bkt-a/", "s3://bkt-b/"]), ODD_URI, clean)
            return head + _mostly(draw, GOOD_KEY, ODD_KEY, clean)
        if name == "bucket":
            return _mostly(draw, GOOD_BUCKET, ODD_BUCKET, clean)
        if name == "key":
            return _mostly(draw, GOOD_KEY, ODD_KEY, clean)
        if name == "version_id":
            return draw(VERSION)
        return _mostly(draw, OTHER, ODD_KEY, clean)

    rows = []
    for _ in range(draw(st.integers(1, 12))):
        fields = [value(name) for name in names]
        if draw(st.integers(0, 19)) == 0:  # now and then a row of another width
            fields = fields[:-1] if draw(st.booleans()) else [*fields, "x"]
        rows.append(",".join(fields).encode())
    return b"".join(row + b"\n" for row in rows), _header(*names)


ODD_URI = st.sampled_from(["s3:/bkt-a/", "s3://bkt-c/", "s3://bkt-a", "S3://bkt-a/"])


@st.composite
def quoted_uri_blocks(draw) -> bytes:
    """URI lines each in quotes, some odd."""
    clean = draw(st.booleans())
    lines = []
    for _ in range(draw(st.integers(1, 12))):
        uri = _mostly(draw, st.sampled_from(["s3://bkt-a/", "s3://bkt-b/"]), ODD_URI, clean)
        uri += _mostly(draw, GOOD_KEY | st.just("a,b"), ODD_KEY, clean)
        line = f'"{uri}"'
        if not clean and draw(st.integers(0, 19)) == 0:
            line = draw(st.sampled_from([uri, f'"{uri}" ', f' "{uri}"', f'"{uri}",x']))
        lines.append(line.encode())
    return b"".join(line + b"\n" for line in lines)


@settings(max_examples=400, deadline=None)
@given(block=header_blocks())
def test_a_header_block_taken_is_read_exactly_as_line_by_line(block):
    _assert_is_the_reference(*block)


@settings(max_examples=200, deadline=None)
@given(data=quoted_uri_blocks())
def test_a_quoted_uri_block_taken_is_read_exactly_as_line_by_line(data):
    _assert_is_the_reference(data, URI_LAYOUT)


@pytest.mark.parametrize(
    ("header", "row"),
    [
        ("key,bucket", "photos/%d.jpg,bkt-a"),
        (",uri", "%d,s3://bkt-b/photos/%d.jpg"),
        ("label,uri,version_id", "cat%d,s3://bkt-a/p/%d.jpg,v1"),
        ("size,key,etag,bucket,version", "%d,p/%d é.jpg,x,bkt-b,"),
    ],
)
def test_the_common_layouts_are_taken(header, row):
    width = row.count("%d")
    data = "".join(row % ((n,) * width) + "\n" for n in range(200)).encode()
    assert _assert_is_the_reference(data, _header(*header.split(",")))


def test_quoted_uri_lines_are_taken_commas_inside_too():
    data = b"".join(b'"s3://bkt-a/p/%d,x.jpg"\n' % n for n in range(200))
    assert _assert_is_the_reference(data, URI_LAYOUT)


@pytest.mark.parametrize(
    "odd",
    [
        b"k,bkt-c",  # a bucket the proof does not know
        b",bkt-a",  # an empty key: NoKey
        b"k,bkt-a,x",  # another width
        b'"k",bkt-a',  # a quote
        b"k\\x,bkt-a",  # a backslash (JSON would escape it: item sizes change)
        b"k\r,bkt-a",  # a control byte
        b"k\xff,bkt-a",  # not UTF-8
    ],
)
def test_a_block_holding_one_odd_row_is_not_taken(odd):
    data = b"".join(b"k%d,bkt-a\n" % n for n in range(20)) + odd + b"\n"
    assert dense_csv_template_batch(data, SHAPE, _header("key", "bucket")) is None


@pytest.mark.parametrize(
    "odd",
    [b"s3://bkt-a/k", b'"s3://bkt-a/"', b'"s3://bkt-c/k"', b'"s3://bkt-a/k" ', b'"s3://bkt-a/k""'],
)
def test_a_quoted_uri_block_holding_one_odd_line_is_not_taken(odd):
    data = b"".join(b'"s3://bkt-a/k%d"\n' % n for n in range(20)) + odd + b"\n"
    assert dense_csv_template_batch(data, SHAPE, URI_LAYOUT) is None


@pytest.mark.parametrize(
    ("header", "short", "long"),
    [
        # a row short of its comma takes the next line's: its URI would run into that line
        (("uri", "label"), b"s3://bkt-a/k", b"s3://bkt-a/k2,a,b"),
        # a row over by one gives its last comma to the next row, whose URI runs back
        (("label", "uri"), b"s3://bkt-a/k2", b"a,s3://bkt-a/x,s3://bkt-a/k"),
    ],
)
def test_rows_short_of_a_comma_and_over_by_one_are_not_taken(header, short, long):
    # the block holds as many commas as rows of the first width would: only where they
    # lie shows the odd rows
    row = b"s3://bkt-a/k%d,x" if header[0] == "uri" else b"x,s3://bkt-a/k%d"
    rows = [row % n for n in range(20)]
    rows[5:7] = [short, long] if header[0] == "uri" else [long, short]
    data = b"".join(row + b"\n" for row in rows)
    assert dense_csv_template_batch(data, SHAPE, _header(*header)) is None


def test_keys_encoded_or_too_few_fields_are_left_to_the_other_proofs():
    # Batch rows decode their keys (`%20`): the proof measures keys verbatim
    assert dense_csv_template_batch(b"bkt-a,k\n" * 4, SHAPE, BATCH_LAYOUT) is None
    # a row without the key column is a BadFieldCount
    layout = _header("label", "key", "bucket")
    assert dense_csv_template_batch(b"x,k\n" * 4, SHAPE, layout) is None
