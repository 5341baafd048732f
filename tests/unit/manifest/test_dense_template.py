"""JSON Lines laid out like their first line: a batch only when the reference reads each alike."""

from __future__ import annotations

import io

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.manifest.dense import DenseShape
from pipeline.manifest.dense_columns import SummedBatch
from pipeline.manifest.dense_template import _equal_mask, dense_template_batch
from pipeline.manifest.parse import parse_json_line
from pipeline.manifest.reader import ManifestFormat, RecordReader
from tests.unit.manifest_helpers import (
    assert_block_batch_is_the_reference,
    assert_spans_are_the_chunks,
    share_sent_as,
)

BUCKETS = [b"bkt-a", b"bkt-b"]
SHAPE = DenseShape(1, 0, BUCKETS, 10**6)


def _assert_is_the_reference(data: bytes) -> bool:
    """When the proof takes `data`, it is what the reference parser reads; True if taken."""
    batch = dense_template_batch(data, SHAPE)
    if batch is None:
        return False
    lines = data.split(b"\n")[:-1]
    reference = [parse_json_line(line, n) for n, line in enumerate(lines, 1)]
    assert_block_batch_is_the_reference(batch, data, reference)
    return True


def _line(fields: list[tuple[str, bytes]], spaced: bool) -> bytes:
    colon, comma = (b": ", b", ") if spaced else (b":", b",")
    body = comma.join(orjson.dumps(name) + colon + value for name, value in fields)
    return b"{" + body + b"}"


def _string(text: str) -> bytes:
    return orjson.dumps(text)


GOOD_SIZE = st.integers(0, 10**17).map(lambda n: str(n).encode())
ODD_SIZE = st.sampled_from(
    [b"0123", b"-5", b"1.5", b"true", b"null", b"1e3", b"1234567890123456789"]
)
GOOD_KEY = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12
)
ODD_KEY = st.sampled_from(["", 'q"q', "b\\s", "tab\t", "{,}:[]", "é/ü.png"])
GOOD_BUCKET = st.sampled_from(["bkt-a", "bkt-b"])
ODD_BUCKET = st.sampled_from(["bkt-c", "Bad_Bucket", ""])
VERSION = st.sampled_from(["", "v1", "3HL4kqtJvjVBH40Nrjfkd"])


def _mostly(draw, good, odd, clean):
    """A good value, or one time in ten in a block not `clean`, an odd one (which the proof
    must refuse, or read as the reference does)."""
    return draw(odd if not clean and draw(st.integers(0, 9)) == 0 else good)


@st.composite
def blocks(draw) -> bytes:
    """Lines of one field layout (which the proof may take), some of them another."""
    uri = draw(st.booleans())
    names = ["uri"] if uri else ["bucket", "key"]
    names += draw(st.lists(st.sampled_from(["size", "label", "version_id", "etag"]), unique=True))
    if draw(st.booleans()):
        names.append(draw(st.sampled_from(["bucket", "key", "versionId", "uri"])))
    order = draw(st.permutations(names))
    spaced = draw(st.booleans())
    clean = draw(st.booleans())

    def value(name: str) -> bytes:
        if name == "uri":
            good, odd = st.sampled_from(["s3://bkt-a/", "s3://bkt-b/"]), st.just("s3:/bkt-a/")
            text = _mostly(draw, good, odd, clean)
            return _string(text + _mostly(draw, GOOD_KEY, ODD_KEY, clean))
        if name == "bucket":
            return _string(_mostly(draw, GOOD_BUCKET, ODD_BUCKET, clean))
        if name in ("size", "label"):
            return _mostly(draw, GOOD_SIZE, ODD_SIZE, clean)
        if name in ("version_id", "versionId"):
            return _string(draw(VERSION))
        return _string(_mostly(draw, GOOD_KEY, ODD_KEY, clean))

    lines = []
    for _ in range(draw(st.integers(1, 12))):
        fields = [(name, value(name)) for name in order]
        if draw(st.integers(0, 19)) == 0:  # now and then a line laid out otherwise
            fields = draw(st.permutations(fields))[: max(1, len(fields) - draw(st.integers(0, 1)))]
        lines.append(_line(fields, spaced if draw(st.integers(0, 19)) else not spaced))
    return b"".join(line + b"\n" for line in lines)


@settings(max_examples=400, deadline=None)
@given(data=blocks())
def test_a_block_taken_is_read_exactly_as_line_by_line(data):
    _assert_is_the_reference(data)


@pytest.mark.parametrize(
    "line",
    [
        b'{"bucket":"bkt-a","key":"photos/%d.jpg","size":%d}',
        b'{"bucket": "bkt-a", "key": "photos/%d.jpg", "version_id": "v%d"}',
        b'{"uri": "s3://bkt-b/photos/%d.jpg", "label": %d}',
        b'{"label":%d,"uri":"s3://bkt-a/p/%d.jpg","etag":"x"}',
    ],
)
def test_the_common_layouts_are_taken(line):
    data = b"".join(line % (n, n * 37) + b"\n" for n in range(200))
    assert _assert_is_the_reference(data)


@pytest.mark.parametrize(
    "odd",
    [
        b'{"bucket":"bkt-a","key":"k","size":07}',  # a leading zero: no JSON
        b'{"bucket":"bkt-a","key":"k","size":1.5}',  # a float
        b'{"bucket":"bkt-a","key":"","size":1}',  # an empty key: NoKey
        b'{"bucket":"bkt-c","key":"k","size":1}',  # a bucket the proof does not know
        b'{"bucket":"bkt-a","key":"k","size":"1"}',  # another layout
        b'{"bucket":"bkt-a","key":"k\\"q","size":1}',  # an escape
        b'{"bucket":"bkt-a","key":"k","size":1,}',  # no JSON
        b'{"bucket":"bkt-a","key":"k","sise":1}',  # another field name
        b'{"bucket":"bkt-a","key":x"k","size":1}',  # a byte between a name and its value
    ],
)
def test_a_block_holding_one_odd_line_is_not_taken(odd):
    good = b'{"bucket":"bkt-a","key":"k%d","size":%d}\n'
    data = b"".join(good % (n, n) for n in range(20)) + odd + b"\n"
    assert dense_template_batch(data, SHAPE) is None


def test_a_run_naming_many_buckets_reads_its_blocks_as_before():
    # a gather a byte a bucket: past 32 known buckets the proof would cost more than it saves
    data = b'{"bucket":"bkt-a","key":"k","size":1}\n' * 10
    many = DenseShape(1, 0, [*(b"bkt-%d" % i for i in range(32)), b"bkt-a"], 10**6)
    assert dense_template_batch(data, SHAPE) is not None
    assert dense_template_batch(data, many) is None


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=40).map(lambda b: bytes(97 + x % 2 for x in b)),
    piece=st.binary(min_size=1, max_size=20).map(lambda b: bytes(97 + x % 2 for x in b)),
    at=st.lists(st.integers(0, 39), max_size=6),
)
def test_pieces_are_compared_as_words_exactly_up_to_the_block_end(data, piece, at):
    # two letters only: many matches, and words read across every offset and the block's end
    offsets = np.array(sorted(min(a, len(data) - 1) for a in at), np.intp)
    got = _equal_mask(np.frombuffer(data, np.uint8), offsets, piece)
    assert list(got) == [data[a : a + len(piece)] == piece for a in offsets]


def test_blocks_laid_out_alike_are_read_and_encoded_as_objects():
    # GIVEN JSON Lines with a size and a version, read in 4 KiB blocks
    line = b'{"bucket":"bkt-a","key":"p/%d,{x}.jpg","size":%d,"version_id":"v%d"}\n'
    data = b"".join(line % (n, n * 7919, n % 3) for n in range(3000))

    def read(*, raw_lines: bool) -> list:
        reader = RecordReader(
            io.BytesIO(data), ManifestFormat.JSON_LINES, block_bytes=4096, raw_lines=raw_lines
        )
        return list(reader.iter_batches())

    batches = read(raw_lines=False)
    # THEN all but each block's first (straddling) line are proved, and read exactly
    assert sum(len(b) for b in batches if isinstance(b, SummedBatch)) > 0.9 * 3000
    records = [parse_json_line(row, n) for n, row in enumerate(data.splitlines(), 1)]
    assert [r for b in batches for r in b.records(0, len(b))] == records
    # AND such batches encode as `objects`, as they are, each chunk reading back exactly
    assert_spans_are_the_chunks(batches, records, chunk_items=97, cap=10**6)
    assert share_sent_as(batches, "objects") > 0.9
    # AND Split sends such lines unparsed instead: the text costs less than the proof
    assert share_sent_as(read(raw_lines=True), "raw_lines") > 0.9
