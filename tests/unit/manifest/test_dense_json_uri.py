"""JSON Lines of `{"uri":"s3://B/K"}` objects are dense exactly when the definition says so.

`pipeline.manifest.dense_json.dense_jsonl_uri_lines` proves such blocks plain from frame
pieces gathered at the line starts and ends plus whole-block counts. Held here, both ways, to
a regular expression written from the definition — every line exactly `{"uri":"s3://B/K"}`,
B one of the known buckets, K one or more bytes that are not `"`, backslash, a control byte or
DEL, the whole UTF-8 — on plain records mixed with near misses; accepted blocks give the
reference parser's records, and their chunks read back to exactly those records.
"""

from __future__ import annotations

import io
import re

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.manifest.batch import DenseBatch
from pipeline.manifest.dense import DenseShape
from pipeline.manifest.dense_json import dense_jsonl_uri_lines
from pipeline.manifest.reader import ManifestFormat, ManifestRecord, RecordReader
from tests.unit.manifest.test_dense_json import (
    BUCKETS,
    KEY_BYTES,
    SPECIAL,
    _is_utf8,
    _mutate,
    _reference,
    key,
    plain_key,
)
from tests.unit.manifest_helpers import as_tuple, assert_spans_are_the_chunks, flatten_batches

PROPS = settings(max_examples=400, deadline=None)


def _record(bucket: bytes, k: bytes) -> bytes:
    return b'{"uri":"s3://%b/%b"}' % (bucket, k)


@st.composite
def records(draw, known: list[bytes]) -> list[bytes]:
    """Plain records of known buckets, mostly with one defect somewhere."""
    n = draw(st.integers(1, 10))
    fields = [(draw(st.sampled_from(known)), draw(plain_key)) for _ in range(n)]
    out = [_record(b, k) for b, k in fields]
    i, defect = draw(st.integers(0, n - 1)), draw(st.integers(0, 6))
    bucket, k = fields[i]
    if defect in (1, 6):  # one more byte in a key: one JSON treats specially, or any
        at, more = draw(st.integers(0, len(k))), draw(SPECIAL if defect == 1 else KEY_BYTES)
        out[i] = _record(bucket, k[:at] + more + k[at:])
    elif defect == 2:
        out[i] = _record(bucket, draw(st.just(b"") | key))
    elif defect == 3:
        at, how = draw(st.integers(0, 200)), draw(st.integers(0, 3))
        out[i] = _mutate(out[i], at, how, draw(KEY_BYTES))
    elif defect == 4:
        other = draw(st.sampled_from([*BUCKETS, b"bk9", b"b", b""]))
        spelled = draw(
            st.sampled_from(
                [
                    _record(other, k),
                    b'{"uri": "s3://%b/%b"}' % (bucket, k),
                    b'{"uri":"s3:/%b/%b"}' % (bucket, k),
                    b'{"uri":"s3://%b"}' % bucket,
                    b'{"uri":"s3://%b/%b","version_id":"v"}' % (bucket, k),
                    b'{"key":"%b","bucket":"%b"}' % (k, bucket),
                ]
            )
        )
        out[i] = spelled
    elif defect == 5:
        for j in draw(st.lists(st.integers(0, n - 1), max_size=3)):
            out[j] = _record(draw(st.sampled_from(BUCKETS)), draw(key))
    return out


def _plain_re(buckets: list[bytes]) -> re.Pattern[bytes]:
    bucket = b"(?:" + b"|".join(map(re.escape, buckets)) + b")"
    return re.compile(b'(?:\\{"uri":"s3://' + bucket + b'/[^"\\\\\\x00-\\x1f\\x7f]+"\\}\\n)+')


@PROPS
@given(
    data=st.data(), known=st.lists(st.sampled_from(BUCKETS), min_size=1, max_size=5, unique=True)
)
def test_uri_blocks_are_dense_exactly_when_every_line_is_plain(data, known):
    # GIVEN newline-terminated lines: plain records, near misses, other spellings
    lines = [line.replace(b"\n", b"") for line in data.draw(records(known))]
    block = b"".join(line + b"\n" for line in lines)
    # WHEN the block is offered to the dense check
    batch = dense_jsonl_uri_lines(block, DenseShape(7, 100, known, 10_000))
    # THEN it is taken exactly when the definition calls every line plain
    plain = _plain_re(known).fullmatch(block) is not None and _is_utf8(block)
    assert (batch is not None) == plain
    if batch is not None:  # and then its records and item sizes are the reference's
        expected = _reference(lines, 7)
        assert batch.records(0, len(batch)) == expected
        assert batch.resume_after(len(lines) - 1) == (7 + len(lines), 100 + len(block))
        items = batch.items(0, len(batch))
        assert batch.item_sizes(0, len(batch)) == [len(orjson.dumps(i)) for i in items]


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(plain_key, min_size=1, max_size=300),
    buckets=st.sampled_from([[b"bk"], [b"bk", b"bk.b", b"bk-b"]]),
    chunk_items=st.integers(1, 40),
    cap=st.integers(60, 5000),
    block=st.integers(64, 2048),
)
def test_uri_manifests_read_and_cut_exactly_what_the_line_parser_does(
    keys, buckets, chunk_items, cap, block
):
    # GIVEN a JSON Lines manifest of uri objects, one bucket or mixed, read in small blocks
    lines = [_record(buckets[i % len(buckets)], k) for i, k in enumerate(keys)]
    data = b"\n".join(lines) + b"\n"
    reader = RecordReader(io.BytesIO(data), ManifestFormat.JSON_LINES, block_bytes=block)
    batches = list(reader.iter_batches())
    # THEN the records are the reference parser's, line by line
    expected = _reference(lines, 1)
    assert flatten_batches(batches) == [as_tuple(r) for r in expected]
    assert all(isinstance(r, ManifestRecord) for r in expected)
    # AND the chunks are cut, encoded and sized as the record-by-record path does it
    assert_spans_are_the_chunks(batches, expected, chunk_items=chunk_items, cap=cap)


def test_a_plain_uri_manifest_is_read_dense():
    lines = [_record(b"images-bucket", b"photos/%05d {x},y.jpg" % i) for i in range(5000)]
    data = b"\n".join(lines) + b"\n"
    batches = list(
        RecordReader(io.BytesIO(data), ManifestFormat.JSON_LINES, block_bytes=4096).iter_batches()
    )
    dense = sum(len(b) for b in batches if isinstance(b, DenseBatch))
    assert dense > 0.95 * len(lines)
    assert flatten_batches(batches) == [as_tuple(r) for r in _reference(lines, 1)]
