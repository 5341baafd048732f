"""`encode_span` writes exactly the bytes orjson writes for the same chunk, on every path."""

from __future__ import annotations

import io
import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.manifest.batch import DenseBatch
from pipeline.manifest.stream import ManifestFormat, RecordReader
from pipeline.split.chunk_encoding import encode_span
from pipeline.split.chunking import iter_chunk_spans

_PLAIN = st.text(st.sampled_from("abcXYZ019/._-~!*'()é中"), min_size=1, max_size=12)
_ENCODED = st.lists(st.sampled_from(["a", "%20", "+", "%2F", "%C3%A9", "b/c"]), min_size=1).map(
    "".join
)
_ANY = st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), min_size=1, max_size=12)


class _Trickle(io.BytesIO):
    """Short reads, so a small manifest spans many read blocks (and dense batches)."""

    def read(self, size: int = -1) -> bytes:
        return super().read(min(size if size >= 0 else 1 << 30, 700))


def _spans(data: bytes, fmt: ManifestFormat, chunk_items: int, first_line: int = 1):
    reader = RecordReader(_Trickle(data), fmt, first_line=first_line)
    return iter_chunk_spans(
        reader.iter_batches(), run="r", chunk_items=chunk_items, chunk_max_bytes=10**6
    )


def _assert_encoded_like_orjson(
    data: bytes, fmt: ManifestFormat, chunk_items: int, first_line: int = 1
) -> int:
    dense = 0
    for span in _spans(data, fmt, chunk_items, first_line):
        assert encode_span(span) == orjson.dumps(span.to_chunk().to_message())
        dense += sum(isinstance(batch, DenseBatch) for batch, _, _ in span.pieces)
    return dense


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.one_of(_PLAIN, _ENCODED, _ANY), min_size=1, max_size=300),
    chunk_items=st.integers(1, 50),
    line_end=st.sampled_from([b"\n", b"\r\n"]),
)
def test_csv_spans_encode_exactly(keys, chunk_items, line_end):
    rows = [f"bkt-{i % 3},{key}".encode() for i, key in enumerate(keys)]
    _assert_encoded_like_orjson(line_end.join(rows) + line_end, ManifestFormat.CSV, chunk_items)


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
    _assert_encoded_like_orjson(b"\n".join(rows) + b"\n", ManifestFormat.JSON_LINES, chunk_items)


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.one_of(_PLAIN, _ENCODED, _ANY), min_size=1, max_size=300),
    chunk_items=st.integers(1, 50),
    line_end=st.sampled_from([b"\n", b"\r\n"]),
    buckets=st.sampled_from([["bkt"], ["a", "a.b", "a-b"], [f"b{i}" for i in range(10)]]),
)
def test_uri_spans_encode_exactly(keys, chunk_items, line_end, buckets):
    # buckets that prefix one another, and more of them than a dense check tries (8)
    rows = [f"s3://{buckets[i % len(buckets)]}/{key}".encode() for i, key in enumerate(keys)]
    _assert_encoded_like_orjson(line_end.join(rows) + line_end, ManifestFormat.CSV, chunk_items)


def test_plain_manifests_take_the_dense_path():
    # GIVEN many plain rows (the shape of a real Batch Operations manifest)
    csv = b"".join(b"bkt-%d,images/%07d.jpg\n" % (i % 4, i) for i in range(3_000))
    crlf = csv.replace(b"\n", b"\r\n")
    jsonl = b"".join(b'{"bucket":"bkt","key":"k/%07d%%.jpg"}\n' % i for i in range(3_000))
    uris = b"".join(b"s3://bkt-%d/i/%07d%%41+,.jpg\n" % (i % 3, i) for i in range(3_000))
    # WHEN encoded THEN identical to orjson, and through dense batches
    assert _assert_encoded_like_orjson(csv, ManifestFormat.CSV, 97) > 0
    assert _assert_encoded_like_orjson(crlf, ManifestFormat.CSV, 97) > 0
    assert _assert_encoded_like_orjson(jsonl, ManifestFormat.JSON_LINES, 97) > 0
    assert _assert_encoded_like_orjson(uris, ManifestFormat.CSV, 97) > 0
    crlf_uris = uris.replace(b"\n", b"\r\n")
    assert _assert_encoded_like_orjson(crlf_uris, ManifestFormat.CSV, 97) > 0


@settings(max_examples=40, deadline=None)
@given(
    first_line=st.one_of(
        st.integers(1, 3_000), st.integers(995, 1_005), st.integers(1, 10**12), st.just(999_990)
    ),
    rows=st.integers(50, 2_600),
    chunk_items=st.sampled_from([1, 7, 500, 1_000, 1_001, 2_500]),
    uri=st.booleans(),
    line_end=st.sampled_from([b"\n", b"\r\n"]),
)
def test_line_numbers_across_thousands_encode_exactly(first_line, rows, chunk_items, uri, line_end):
    # GIVEN plain rows numbered from anywhere: runs of a chunk cross 1000s, 10**k and 0-padding
    form = b"s3://bkt-%d/k/%d%%.jpg" if uri else b"bkt-%d,k/%d.jpg"  # a CSV key is URL-encoded
    data = line_end.join(form % (i % 2, i) for i in range(rows)) + line_end
    # WHEN cut and encoded THEN identical to orjson, through dense batches
    assert _assert_encoded_like_orjson(data, ManifestFormat.CSV, chunk_items, first_line) > 0
