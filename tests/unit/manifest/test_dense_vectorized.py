"""The vectorized block checks answer exactly what the byte-search checks they replace answer.

`pipeline.manifest.dense` proves blocks from the newline positions (numpy) instead of a
`bytes` object a line; each vectorized helper is held here to the plain `bytes` method it
stands for, on blocks built to sit on every boundary: lines shorter and longer than the
prefixes, prefixes shorter and longer than a word, CRs anywhere, every special byte.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pipeline.manifest import dense
from pipeline.manifest.batch import LOOPED_BUCKETS, line_starts
from pipeline.manifest.dense import (
    _URI_ORDINARY,
    DenseShape,
    _all_start_with_a_bucket,
    _csv_line_starts,
    _Form,
    _lines_start_with_a_bucket,
    _ordinary,
    _uri_line_starts,
    dense_uri_batch,
)

PROPS = settings(max_examples=300, deadline=None)
BUCKETS = [b"b", b"bkt-1", b"images-bucket", b"a-much-longer-bucket-name-here"]
FORMATS = [b"%b,", b"s3://%b/", b'{"bucket":"%b","key":"']

line_body = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"x"))
line = st.one_of(
    line_body,
    st.tuples(st.sampled_from(BUCKETS), st.sampled_from(FORMATS), line_body).map(
        lambda t: t[1] % t[0] + t[2]
    ),
)

near_miss = st.tuples(st.sampled_from(BUCKETS), st.sampled_from(FORMATS)).map(
    lambda t: bytearray(t[1] % t[0])
)


def _flip(prefix: bytearray, at: int) -> bytes:
    if prefix:
        prefix[at % len(prefix)] ^= 0x20
    return bytes(prefix)


long_line = st.one_of(
    line,
    st.tuples(near_miss, st.integers(0, 60)).map(lambda t: _flip(*t)),
).map(lambda b: b + b"y" * 64)  # every line longer than any prefix: the gathered path


@PROPS
@given(
    lines=st.lists(long_line, min_size=1, max_size=30),
    buckets=st.lists(st.sampled_from(BUCKETS), min_size=1, max_size=3, unique=True),
    fmt=st.sampled_from(FORMATS),
)
def test_the_gathered_prefix_check_equals_the_search_on_long_lines(lines, buckets, fmt):
    data = b"\n".join(lines) + b"\n"
    expected = _all_start_with_a_bucket(data, len(lines), buckets, fmt)
    assert _lines_start_with_a_bucket(data, line_starts(data), buckets, fmt) == expected


@PROPS
@given(
    lines=st.lists(line, min_size=1, max_size=30),
    buckets=st.lists(st.sampled_from(BUCKETS), min_size=1, max_size=3, unique=True),
    fmt=st.sampled_from(FORMATS),
)
def test_the_gathered_prefix_check_equals_the_search(lines, buckets, fmt):
    data = b"\n".join(lines) + b"\n"
    starts = line_starts(data)
    expected = _all_start_with_a_bucket(data, len(lines), buckets, fmt)
    assert _lines_start_with_a_bucket(data, starts, buckets, fmt) == expected


@PROPS
@given(
    lines=st.lists(
        st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), min_size=1, max_size=20
    ),
    crlf=st.booleans(),
)
def test_the_special_byte_check_equals_the_translate_proof(lines, crlf):
    end = b"\r\n" if crlf else b"\n"
    data = end.join(lines) + end
    is_crlf = b"\r" in data
    n = data.count(b"\n")
    skeleton = b"\r\n" if is_crlf else b"\n"
    left = data.translate(None, _URI_ORDINARY)
    expected = left == skeleton * n and (not is_crlf or data.count(b"\r\n") == n)
    starts = _uri_line_starts(data, is_crlf)
    assert (starts is not None) == expected
    if starts is not None:
        assert starts.tolist() == line_starts(data).tolist()


csv_body = st.lists(
    st.sampled_from([b"a", b"k/1.jpg", b",", b"\r", b'"', b"\\", b"\x7f", b"\x01", b"\xc3\xa9"]),
    max_size=12,
).map(b"".join)
csv_line = st.one_of(
    csv_body,
    st.tuples(st.sampled_from(BUCKETS), csv_body).map(lambda t: b"%b,%b" % t),
    st.tuples(st.sampled_from(BUCKETS), csv_body).map(lambda t: b"%b,k%b" % t),
    st.tuples(st.sampled_from(BUCKETS), st.sampled_from([b"k", b"a/b.jpg", b"x y\r"])).map(
        lambda t: b"%b,%b" % t
    ),
)


@PROPS
@given(
    lines=st.lists(csv_line, min_size=1, max_size=20),
    buckets=st.lists(st.sampled_from(BUCKETS), min_size=1, max_size=3, unique=True),
    crlf=st.booleans(),
)
def test_the_csv_comma_count_check_equals_the_translate_proof(lines, buckets, crlf):
    # the proof `dense_csv_batch` ran before: translate, the skeleton, then the prefixes
    end = b"\r\n" if crlf else b"\n"
    data = end.join(lines) + end
    is_crlf = b"\r" in data
    n = data.count(b"\n")
    left = data.translate(None, _ordinary(b","))
    skeleton = b",\r\n" if is_crlf else b",\n"
    starts = line_starts(data)
    expected = (
        left == skeleton * n
        and (not is_crlf or data.count(b"\r\n") == n)
        and _lines_start_with_a_bucket(data, starts, buckets, b"%b,")
    )
    found = _csv_line_starts(data, is_crlf)
    proved = found is not None and _lines_start_with_a_bucket(data, found, buckets, b"%b,")
    assert proved == expected
    if found is not None:
        assert found.tolist() == starts.tolist()


def test_a_block_of_many_buckets_passes_and_one_flipped_byte_fails_it():
    rows = [b"s3://%b/k%d.jpg-padding-padding-padding" % (BUCKETS[i % 3], i) for i in range(50)]
    data = b"\n".join(rows) + b"\n"
    fmt = FORMATS[1]
    assert _lines_start_with_a_bucket(data, line_starts(data), BUCKETS[:3], fmt)
    assert not _lines_start_with_a_bucket(data, line_starts(data), BUCKETS[:2], fmt)
    for at in range(len(fmt % BUCKETS[2])):
        bad = bytearray(data)
        bad[len(rows[0]) + 1 + len(rows[1]) + 1 + at] ^= 0x01  # line 3: bucket 2
        starts = line_starts(bytes(bad))
        assert not _lines_start_with_a_bucket(bytes(bad), starts, BUCKETS[:3], fmt)


MANY_BUCKETS = [
    b"abc",
    b"bkt-1",
    b"bkt-10",
    b"bucket-0",
    b"bucket-00",
    b"images-bucket-0",
    b"images-bucket-00",
    b"images-bucket-001",
    b"bucket-00.example-data",
    b"bucket-01.example-data",
    b"bucket-00.example-datb",
    b"bucket-00.examplf-data",
    b"a" * 40,
    b"a" * 39 + b"b",
    b"x" * 63,
]
"""More than `LOOPED_BUCKETS`, so the line-start check looks them up in its table: every length
from 3 to 63, and names alike but for a byte at the start, middle or end of a word."""


def _near(bucket: bytes, how: int) -> bytes:
    """A name one step from `bucket`: a byte flipped, one more or one less byte."""
    if how == 0:
        return bucket + b"0"
    if how == 1:
        return bucket[:-1]
    flipped = bytearray(bucket)
    flipped[how % len(bucket)] ^= 0x01
    return bytes(flipped)


many_line = st.one_of(
    line_body,
    st.tuples(st.sampled_from(MANY_BUCKETS), st.sampled_from(FORMATS), line_body).map(
        lambda t: t[1] % t[0] + t[2]
    ),
    st.tuples(
        st.sampled_from(MANY_BUCKETS), st.integers(0, 70), st.sampled_from(FORMATS), line_body
    ).map(lambda t: t[2] % _near(t[0], t[1]) + t[3]),
)


@PROPS
@given(
    lines=st.lists(many_line.map(lambda b: b + b"y" * 64), min_size=1, max_size=30),
    fmt=st.sampled_from(FORMATS),
    known=st.integers(len(MANY_BUCKETS) - 6, len(MANY_BUCKETS)),
)
def test_the_bucket_table_equals_the_search_with_many_buckets(lines, fmt, known):
    # GIVEN more known buckets than are tried one at a time, lines naming them, near misses
    buckets = MANY_BUCKETS[:known]
    assert len(buckets) > LOOPED_BUCKETS
    data = b"\n".join(lines) + b"\n"
    # WHEN each line's bucket is looked up in the table / THEN it answers as the search does
    expected = _all_start_with_a_bucket(data, len(lines), buckets, fmt)
    assert _lines_start_with_a_bucket(data, line_starts(data), buckets, fmt) == expected


@PROPS
@given(lines=st.lists(many_line, min_size=1, max_size=30), fmt=st.sampled_from(FORMATS))
def test_the_bucket_table_never_takes_a_line_the_search_refuses(lines, fmt):
    # GIVEN lines of any length: where the table cannot read a whole word, it may refuse more
    data = b"\n".join(lines) + b"\n"
    expected = _all_start_with_a_bucket(data, len(lines), MANY_BUCKETS, fmt)
    got = _lines_start_with_a_bucket(data, line_starts(data), MANY_BUCKETS, fmt)
    assert expected or not got


def test_a_block_of_40_buckets_passes_and_one_flipped_byte_in_any_bucket_fails_it():
    buckets = [b"bucket-%02d.example-data" % i for i in range(40)]
    rows = [b"s3://%b/photos/%06d.jpg" % (buckets[i * 7 % 40], i) for i in range(400)]
    data = b"\n".join(rows) + b"\n"
    starts = line_starts(data)
    assert _lines_start_with_a_bucket(data, starts, buckets, FORMATS[1])
    assert not _lines_start_with_a_bucket(data, starts, buckets[1:], FORMATS[1])
    for at in range(len(b"s3://" + buckets[0] + b"/")):
        bad = bytearray(data)
        bad[starts[123] + at] ^= 0x80  # no bucket name holds the byte it makes
        assert not _lines_start_with_a_bucket(bytes(bad), starts, buckets, FORMATS[1])


def test_the_bucket_table_is_exact_even_when_every_hash_collides(monkeypatch):
    # GIVEN a hash that sends every bucket to one row of the table, and a line naming
    # `a` * 10, unknown: its words are those of the known `a` * 9, its length that of `b` * 10
    monkeypatch.setattr(dense, "_mixed", lambda lengths, columns: np.zeros(len(lengths), np.uint64))
    dense._bucket_table.cache_clear()
    buckets = [b"a" * 9, b"b" * 10, *(b"filler-%d" % i for i in range(LOOPED_BUCKETS))]
    known = b"s3://%b/key-with-some-padding\n" % buckets[0]
    unknown = b"s3://%b/key-with-some-padding\n" % (b"a" * 10)
    # WHEN the lines are looked up / THEN the known one passes, the unknown one does not
    for data, expected in ((known * 3, True), (known + unknown + known, False)):
        assert _all_start_with_a_bucket(data, 3, buckets, FORMATS[1]) == expected
        assert _lines_start_with_a_bucket(data, line_starts(data), buckets, FORMATS[1]) == expected
    dense._bucket_table.cache_clear()


def test_line_starts_are_the_offsets_after_each_newline():
    data = b"a\n\nbc\r\ndef\n"
    assert line_starts(data).tolist() == [0, 2, 3, 7, 11]
    assert line_starts(data).dtype == np.int64


uri_key = st.text(
    st.characters(codec="ascii", min_codepoint=0x20, blacklist_characters='"\\\x7f'), max_size=30
)


@PROPS
@given(
    rows=st.lists(st.tuples(st.sampled_from(BUCKETS[:3]), uri_key), min_size=1, max_size=40),
    crlf=st.booleans(),
    first_line=st.integers(1, 10**6),
)
def test_a_batch_from_line_starts_equals_one_from_rows_a_check_built(rows, crlf, first_line):
    # GIVEN a block of URI lines proved dense (lazy rows, measured from the line starts)
    end = b"\r\n" if crlf else b"\n"
    data = b"".join(b"s3://%b/%b%b" % (b, k.encode(), end) for b, k in rows)
    shape = DenseShape(first_line, 1000, BUCKETS[:3], 200)
    lazy = dense_uri_batch(data, shape)
    # (a block refused, e.g. for a key that may be empty, goes line by line: nothing to compare)
    assume(lazy is not None)
    # WHEN the same block is batched from rows built by splitting it (the other way in)
    built = data.split(b"\n")[:-1]
    form = _Form(lazy.item_delta, lazy.parse_row, 1, 6 + crlf, b"/" + end)
    eager = shape.batch(data, built, form)
    # THEN both measure, cut, resume and encode alike
    assert eager is not None
    n = len(rows)
    assert len(lazy) == len(eager) == n
    assert lazy.rows == eager.rows == built
    assert lazy.lengths == eager.lengths
    assert lazy.item_sizes(0, n) == eager.item_sizes(0, n)
    for start, stop in ((0, n), (0, n // 2), (n // 3, n)):
        assert lazy.item_bytes(start, stop) == eager.item_bytes(start, stop)
        assert lazy.joined_rows(start, stop) == eager.joined_rows(start, stop)
        assert lazy.items(start, stop) == eager.items(start, stop)
    assert [lazy.resume_after(i) for i in range(n)] == [eager.resume_after(i) for i in range(n)]
    assert all(type(x) is int for x in (*lazy.resume_after(n - 1), lazy.item_bytes(0, n)))
