"""Lines Split sends unparsed read, in their worker, exactly as the reader reads them.

The contract (`pipeline.manifest.raw_lines`): a block goes raw only where each of its lines,
parsed alone by the worker, gives the record or failure the reader gives it; the chunk message
carries them within the cut's bound and reads back to the same chunk.
"""

from __future__ import annotations

import io
import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.manifest.dense import DenseShape
from pipeline.manifest.parse import detect_csv_layout
from pipeline.manifest.raw_lines import RawLinesBatch, raw_lines_batch, read_raw_lines
from pipeline.manifest.stream import ManifestFormat, RecordReader
from pipeline.split.chunk_encoding import encode_span
from pipeline.split.chunking import Chunk, iter_chunk_spans
from tests.unit.manifest_helpers import as_tuple

SHAPE = DenseShape(first_line=7, start_offset=100, buckets=(), max_line_bytes=200)
KEY_BUCKET = detect_csv_layout("key,bucket", 1)


def _reader_items(data: bytes, fmt: ManifestFormat, *, raw: bool) -> list[tuple]:
    """Every record and failure the reader finds; with `raw`, raw lines read as a worker would."""
    reader = RecordReader(io.BytesIO(data), fmt, block_bytes=256, raw_lines=raw)
    if not raw:
        return [as_tuple(item) for item in reader]
    items = []
    for batch in reader.iter_batches():
        if isinstance(batch, RawLinesBatch):
            records, failures = batch.parsed(0, len(batch))
            items += [as_tuple(r) for r in [*records, *failures]]
        else:
            items += [as_tuple(r) for r in batch.records(0, len(batch))]
            items += [as_tuple(f) for f in batch.failures]
    return sorted(items, key=lambda t: t[1])


def _raw_batches(data: bytes, fmt: ManifestFormat) -> int:
    reader = RecordReader(io.BytesIO(data), fmt, block_bytes=256, raw_lines=True)
    return sum(isinstance(b, RawLinesBatch) for b in reader.iter_batches())


@pytest.mark.parametrize(
    ("block", "layout"),
    [
        (b'{"bucket":"b","key":"k","size":1}\n\n{"bucket":"b","key":"k2"}\n', None),  # blank
        (b'{"bucket":"b","key":"k"}\n  \n', None),  # a line of spaces is blank
        (b' {"bucket":"b","key":"k"}\n', None),  # may be blank: not proved
        (b'{"bucket":"b","key":"k\xff"}\n', None),  # not UTF-8
        (b'{"bucket":"b","key":"k\x01"}\n', None),  # a control byte escapes to 6 bytes
        (b'{"bucket":"b","key":"' + b"k" * 300 + b'"}\n', None),  # over the line limit
        (b'k,"b\n', KEY_BUCKET),  # a quote left open: the reader joins the next line
        (b'"k","b"\n', KEY_BUCKET),  # more than one quoted field
        (b'k"x,b\n', KEY_BUCKET),  # a quote inside a field
        (b'"k"x"\n"\n', KEY_BUCKET),  # two quotes a line on average, three and one
        (b'"k""b"\n"k2"\n', KEY_BUCKET),  # an escaped quote inside the field
    ],
)
def test_a_block_the_reader_could_read_otherwise_is_not_sent_raw(block, layout):
    assert raw_lines_batch(block, SHAPE, layout) is None


def test_a_block_of_records_and_malformed_lines_is_sent_raw_with_its_numbers():
    # GIVEN JSON Lines with other fields, tabs, CRLF ends, non-ASCII, and lines no record
    lines = [
        b'{"bucket":"bkt","key":"a\\tb.jpg","size":3}',
        b'{"key":"\xc3\xa9t\xc3\xa9.jpg","bucket":"bkt"}\r',
        b"not json\t",
        b'{"bucket":"bkt"}',
    ]
    block = b"\n".join(lines) + b"\n"
    # WHEN it is taken raw and read
    batch = raw_lines_batch(block, SHAPE, None)
    # THEN each line keeps its number and offset, and reads as the reader reads it
    assert batch is not None
    assert (len(batch), batch.first_line, batch.end_line) == (4, 7, 11)
    assert batch.resume_after(1) == (9, 100 + len(lines[0]) + len(lines[1]) + 2)
    assert batch.end_offset == 100 + len(block)
    records, failures = batch.parsed(0, 4)
    assert [(r.line, r.key) for r in records] == [(7, "a\tb.jpg"), (8, "été.jpg")]
    assert [(f.line, f.error) for f in failures] == [(9, "BadJson"), (10, "MissingField")]
    # AND its size bound covers the bytes it takes in the message
    text = orjson.dumps(batch.text(0, 4))
    assert len(text) <= batch.item_bytes(0, 4) == sum(batch.item_sizes(0, 4))


def test_quoted_uri_lines_are_sent_raw_and_read_with_their_layout():
    layout = detect_csv_layout('"s3://b/k.jpg"', 1)
    block = b'"s3://bkt/a,1.jpg"\r\n"s3://bkt/c.jpg"\n"no uri"\n'
    batch = raw_lines_batch(block, SHAPE, layout)
    assert batch is not None
    records, failures = batch.parsed(0, 3)
    expected = [(7, "bkt", "a,1.jpg"), (8, "bkt", "c.jpg")]
    assert [(r.line, r.bucket, r.key) for r in records] == expected
    assert [f.line for f in failures] == [9]


def test_a_failure_is_worded_the_same_sent_raw_or_read():
    raw = b'{"bucket":"bkt","key":"\xc3\xa9\xc3\xa9" oops}'
    (record,), _ = read_raw_lines('{"bucket":"bkt","key":"k"}', 3, None)
    _, (from_text,) = read_raw_lines(raw.decode(), 1, None)
    (from_bytes,) = list(RecordReader(io.BytesIO(raw + b"\n"), ManifestFormat.JSON_LINES))
    assert record.line == 3
    assert (from_text.error, from_text.message) == (from_bytes.error, from_bytes.message)


_KEY = st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), min_size=1, max_size=8)
_JSON_LINE = st.one_of(
    st.builds(
        lambda k, extra: json.dumps({"bucket": "bkt", "key": k, "size": extra}),
        _KEY,
        st.integers(0, 9),
    ),
    st.builds(lambda k: json.dumps({"key": k, "label": "x", "bucket": "bkt"}), _KEY),
    st.builds(lambda k: json.dumps({"uri": f"s3://bkt/{k}"}, ensure_ascii=False), _KEY),
    st.sampled_from(['{"bucket":"bkt"}', "[1,2]", "not json", '{"bucket":"Bad_Bucket","key":"k"}']),
    _KEY.filter(lambda k: k.strip()).map(lambda k: k),  # anything at all
)
_CSV_LINE = st.one_of(
    st.builds(lambda k: f"{k},bkt", _KEY.filter(lambda k: "," not in k and '"' not in k)),
    st.sampled_from(["k.jpg", "a,b,c", ",bkt", 'k,"b', "k,bkt\t"]),
    st.sampled_from(['"k,bkt"', '"k"x"', '"', '""', '"k""b"', '"k\tb",bkt', '"k"\r']),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_JSON_LINE, min_size=1, max_size=60), st.booleans())
def test_json_lines_sent_raw_read_as_the_reader_reads_them(lines, crlf):
    end = "\r\n" if crlf else "\n"
    data = (json.dumps({"bucket": "bkt", "key": "first", "n": 1}) + end).encode()
    data += "".join(line + end for line in lines).encode()
    assert _reader_items(data, ManifestFormat.JSON_LINES, raw=True) == _reader_items(
        data, ManifestFormat.JSON_LINES, raw=False
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(_CSV_LINE, min_size=1, max_size=60))
def test_csv_lines_sent_raw_read_as_the_reader_reads_them(lines):
    data = ("key,bucket\nfirst,bkt\n" + "".join(line + "\n" for line in lines)).encode()
    assert _reader_items(data, ManifestFormat.CSV, raw=True) == _reader_items(
        data, ManifestFormat.CSV, raw=False
    )


def test_raw_lines_go_in_a_message_that_reads_back_to_the_chunk_within_the_cut():
    # GIVEN JSON Lines with other fields (no frame proof takes them), a few not records
    rows = [
        json.dumps({"bucket": "bkt", "key": f'k"{i}\\é', "size": i}) if i % 7 else f"oops {i}"
        for i in range(1, 400)
    ]
    data = (json.dumps({"bucket": "bkt", "key": "first"}) + "\n" + "\n".join(rows) + "\n").encode()
    assert _raw_batches(data, ManifestFormat.JSON_LINES) > 0
    reader = RecordReader(io.BytesIO(data), ManifestFormat.JSON_LINES, raw_lines=True)
    cap = 4000
    # WHEN cut into chunks by a small byte cap and encoded
    spans = list(
        iter_chunk_spans(reader.iter_batches(), run="r", chunk_items=50, chunk_max_bytes=cap)
    )
    # THEN each message reads back to its chunk, within the cap, every line once
    seen = []
    for span in spans:
        body = encode_span(span, max_bytes=cap)
        chunk = Chunk.from_message(orjson.loads(body))
        assert chunk == span.to_chunk()
        assert len(body) <= cap
        assert chunk.lines == span.count
        seen += [r.line for r in chunk.items] + [f.line for f in chunk.parse_failures]
    assert sorted(seen) == list(range(1, 401))
    failed = [f.line for s in spans for f in s.to_chunk().parse_failures]
    assert failed == [i + 1 for i in range(1, 400) if i % 7 == 0]


def test_a_chunk_of_raw_lines_has_no_v1_message():
    reader = RecordReader(
        io.BytesIO(b'{"bucket":"bkt","key":"a"}\n{"bucket":"bkt","key":"b","n":1}\nx\n'),
        ManifestFormat.JSON_LINES,
        raw_lines=True,
    )
    (span,) = iter_chunk_spans(reader.iter_batches(), run="r", chunk_items=9, chunk_max_bytes=999)
    with pytest.raises(ValueError, match="no v1 message"):
        span.to_chunk().to_message()
