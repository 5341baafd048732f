"""JSON array elements Split sends unparsed read, in their worker, exactly as the reader reads them.

The contract (`pipeline.manifest.raw_elements`): a span goes raw only where the worker, finding
the elements in its text again, parses each to the record or failure the reader makes of it.
"""

from __future__ import annotations

import io
import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.manifest.dense import DenseShape
from pipeline.manifest.raw_elements import RawElementsBatch, raw_elements_batch, read_raw_elements
from pipeline.manifest.stream import ManifestFormat, RecordReader
from pipeline.split.chunk_encoding import encode_span
from pipeline.split.chunking import Chunk, iter_chunk_spans
from tests.unit.manifest_helpers import as_tuple

SHAPE = DenseShape(first_line=4, start_offset=50, buckets=(), max_line_bytes=200)


class _Trickle(io.BytesIO):
    """Short reads, so a small array is offered to the span checks many times."""

    def read(self, size: int = -1) -> bytes:
        return super().read(min(size if size >= 0 else 1 << 30, 300))


def _items(data: bytes, *, raw: bool) -> tuple[list[tuple], int]:
    """Every record and failure; with `raw`, raw elements read as a worker would. And how many
    raw batches there were."""
    reader = RecordReader(_Trickle(data), ManifestFormat.JSON_ARRAY, raw_lines=raw)
    if not raw:
        return [as_tuple(item) for item in reader], 0
    items, raws = [], 0
    for batch in reader.iter_batches():
        if isinstance(batch, RawElementsBatch):
            raws += 1
            records, failures = batch.parsed(0, len(batch))
            items += [as_tuple(r) for r in [*records, *failures]]
        else:
            items += [as_tuple(r) for r in batch.records(0, len(batch))]
            items += [as_tuple(f) for f in batch.failures]
    return sorted(items, key=lambda t: t[1]), raws


@pytest.mark.parametrize(
    "span",
    [
        b', {"bucket":"bkt","key":"a}, {b"}',  # a brace inside a string
        b', {"bucket":"bkt","key":"a\\"b"}',  # an escaped quote
        b', {"bucket":"bkt","key":"a","tags":[1]}',  # an array inside an element
        b', {"bucket":"bkt","key":"a"},, {"bucket":"bkt","key":"b"}',  # two commas
        b', {"bucket":"bkt","key":"a"} {"bucket":"bkt","key":"b"}',  # no comma
        b', {"bucket":"bkt","key":"a"}, 7, {"bucket":"bkt","key":"b"}',  # a number between
        b', {"bucket":"bkt","key":"\xff"}',  # not UTF-8
        b', {"bucket":"bkt","key":"' + b"k" * 300 + b'"}',  # over the length limit
        b', "s3://bkt/a", {"bucket":"bkt","key":"b"}',  # a string among objects
    ],
)
def test_a_span_the_splitter_could_split_otherwise_is_not_sent_raw(span):
    assert raw_elements_batch(span, SHAPE) is None


def test_elements_on_one_line_or_indented_are_sent_raw_with_their_numbers():
    span = b',\n  {\n    "bucket": "bkt",\n    "key": "a, [b].jpg"\n  },\n  {"oops": 1}, {"uri":"s3://bkt/c"}'
    batch = raw_elements_batch(span, SHAPE)
    assert batch is not None
    assert (len(batch), batch.first_line, batch.end_line, batch.end_offset) == (
        3,
        4,
        7,
        50 + len(span),
    )
    records, failures = batch.parsed(0, 3)
    assert [(r.line, r.key) for r in records] == [(4, "a, [b].jpg"), (6, "c")]
    assert [(f.line, f.error) for f in failures] == [(5, "MissingField")]
    first_end = span.index(b"}") + 1
    assert batch.resume_after(0) == (5, 50 + first_end)
    assert len(orjson.dumps(batch.text(0, 3))) <= batch.item_bytes(0, 3)


def test_a_text_that_does_not_split_again_is_poison():
    assert read_raw_elements('{"bucket":"bkt","key":"a"}, {"b":"}"}', 1) is None
    assert read_raw_elements('"s3://bkt/a", "s3://bkt/b"', 9)[0][1].line == 10


_KEY = st.text(st.characters(codec="utf-8", exclude_characters='\\"'), min_size=1, max_size=8)
_ELEMENT = st.one_of(
    st.builds(lambda k, n: {"bucket": "bkt", "key": k, "size": n}, _KEY, st.integers(0, 9)),
    st.builds(lambda k: {"key": k, "bucket": "bkt"}, _KEY),
    st.builds(lambda k: {"uri": f"s3://bkt/{k}", "label": "x"}, _KEY),
    st.builds(lambda k: {"bucket": "bkt", "key": k, "tags": [1, 2]}, _KEY),
    st.sampled_from([{"bucket": "bkt"}, {"bucket": "Bad_Bucket", "key": "k"}, {}, 7, None]),
)
_URI = st.one_of(st.builds(lambda k: f"s3://bkt/{k}", _KEY), st.sampled_from(["nope", "s3://x"]))


@settings(max_examples=120, deadline=None)
@given(st.lists(_ELEMENT, min_size=1, max_size=80), st.sampled_from([None, 2]))
def test_object_arrays_sent_raw_read_as_the_reader_reads_them(elements, indent):
    data = json.dumps(
        [{"bucket": "bkt", "key": "first"}, *elements], indent=indent, ensure_ascii=False
    ).encode()
    raw, _ = _items(data, raw=True)
    assert raw == _items(data, raw=False)[0]


@settings(max_examples=80, deadline=None)
@given(st.lists(_URI, min_size=1, max_size=80))
def test_uri_arrays_sent_raw_read_as_the_reader_reads_them(uris):
    data = json.dumps(["s3://bkt/first", *uris], ensure_ascii=False).encode()
    raw, _ = _items(data, raw=True)
    assert raw == _items(data, raw=False)[0]


def test_raw_elements_go_in_messages_that_read_back_to_the_chunks_within_the_cut():
    # GIVEN an indented array of objects with other fields, every 7th no record
    elements = [
        {"bucket": "bkt", "key": f"k{i} é, [x]", "size": i} if i % 7 else {"bucket": "bkt"}
        for i in range(1, 300)
    ]
    data = json.dumps(
        [{"bucket": "bkt", "key": "first"}, *elements], indent=2, ensure_ascii=False
    ).encode()
    assert _items(data, raw=True)[1] > 0
    reader = RecordReader(_Trickle(data), ManifestFormat.JSON_ARRAY, raw_lines=True)
    batches = list(reader.iter_batches())
    cap = 3000
    # WHEN cut into chunks by a small byte cap and encoded
    spans = list(iter_chunk_spans(batches, run="r", chunk_items=40, chunk_max_bytes=cap))
    # THEN each message reads back to its chunk, within the cap, and every element is once in
    # a chunk or among the failures Split found (where it parsed the elements)
    seen = [f.line for batch in batches for f in batch.failures]
    for span in spans:
        body = encode_span(span, max_bytes=cap)
        chunk = Chunk.from_message(orjson.loads(body))
        assert chunk == span.to_chunk()
        assert len(body) <= cap
        seen += [r.line for r in chunk.items] + [f.line for f in chunk.parse_failures]
    assert sorted(seen) == list(range(1, 301))


def test_malformed_elements_sent_raw_fail_as_the_reader_fails_them():
    # GIVEN a hand-written array: spaces before commas, elements that are no JSON at all
    elements = [
        '{"a" 1}' if i % 5 == 0 else f'{{"bucket":"bkt", "key":"k{i}"}}' for i in range(1, 200)
    ]
    data = '[{"bucket":"bkt","key":"first"}' + "".join(f" ,\n {e}" for e in elements) + "]"
    # THEN sent raw and read by the worker, they are the reader's records and failures
    raw, raws = _items(data.encode(), raw=True)
    assert raws > 0
    assert raw == _items(data.encode(), raw=False)[0]
    assert sum(1 for item in raw if item[0] == "err") == 39
