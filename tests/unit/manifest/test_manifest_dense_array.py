"""JSON array spans read dense give exactly what the element-by-element path gives.

`pipeline.manifest.dense_array` proves runs of `{"bucket":"B","key":"K"}` elements plain with
byte operations; these tests hold its batches — records, failures, element numbers, restart
offsets, item sizes, chunk cuts — to the element-by-element reader (iteration never goes dense)
and to an independent reference (orjson on each generated element), on generated arrays with
every separator style and irregular elements, read through tiny buffers.
"""

from __future__ import annotations

import io
import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.manifest import json_array
from pipeline.manifest.batch import DenseBatch
from pipeline.manifest.dense_array import _array_row
from pipeline.manifest.dense_array_template import ElementsBatch
from pipeline.manifest.parse import parse_json_value
from pipeline.manifest.parsed_json import ParsedBatch
from pipeline.manifest.reader import ManifestFormat, ManifestRecord, RecordReader
from pipeline.split.chunking import iter_chunk_spans
from tests.unit.manifest_helpers import as_tuple, assert_spans_are_the_chunks, flatten_batches

PROPS = settings(max_examples=50, deadline=None)
LIMIT = 120
BUCKETS = [f"bkt-{i}" for i in range(10)] + ["bucket-long-name"]
SEPARATORS = [",", "\n,", ",\n", ", ", " ,\r\n  ", ",\t", ",\n  ", ",\n    "]

bucket = st.sampled_from(BUCKETS[:2]) | st.sampled_from(BUCKETS)
plain_key = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='"\\{}:,\x7f'),
    min_size=1,
    max_size=24,
)
any_key = st.text(st.characters(blacklist_categories=("Cs",)), max_size=16)

ODD = [
    b'{"bucket":"bkt-1","key":""}',
    b'{"bucket":"bkt-1","key":"a\\"b"}',
    b'{"bucket":"bkt-1","key":"a\\u0041"}',
    b'{"bucket":"bkt-1","key":"a\\\\"}',
    b'{"bucket":"bkt-1","key":"a}"}',
    b'{"bucket":"bkt-1","key":"a:b,c{"}',
    b'{"bucket":"bkt-1","key":"a","version_id":"v"}',
    b'{"key":"a","bucket":"bkt-1"}',
    b'{"bucket":"bkt-9","key":"a"}',
    b'{"bucket":"b!d","key":"a"}',
    b'{"bucket":"","key":"a"}',
    b'{"bucket":"bkt-1","kez":"a"}',
    b'{"bucket": "bkt-1", "key": "a"}',
    b'{"bucket":"bkt-1" ,"key":"a"}',
    b'{ "bucket":"bkt-1","key":"a"}',
    b'{"bucket":"bkt-1","key":"a" }',
    b'{"bucket":"bkt-1","key":"tab\there"}',
    b'{"bucket":"bkt-1","key":"a\x7f"}',
    b'{"bucket":"bkt-1","key":"\xff"}',
    b'{"bucket":"bkt-1","key":"\xc3("}',
    b'{"bucket":"bkt-1","key":"\xe2\x80\xa8 \xc3\xa9\xf0\x9f\x98\x80"}',
    b'{"bucket":"bkt-1","key":"' + b"y" * 200 + b'"}',
    b'{"bucket":"bkt-1","key":"' + b"y" * (LIMIT - 25) + b'"}',
    b'{"bucket":"bkt-1","key":"' + b"y" * (LIMIT - 26) + b'"}',
    b'"s3://bkt-1/k"',
    b'{"uri":"s3://bkt-1/u"}',
    b"7",
    b"null",
    b"[1]",
    b"{}",
    b"{oops}",
]


def _element(b: str, k: str, *, indent: int | None = None) -> bytes:
    """As orjson writes it; with `indent`, as `json.dump` does an array's element (`indent=0`:
    on one line, spaced; non-ASCII kept: no `\\u` escapes)."""
    if indent is None:
        return orjson.dumps({"bucket": b, "key": k})
    if not indent:
        return json.dumps({"bucket": b, "key": k}, ensure_ascii=False).encode()
    inner, outer = "\n" + " " * 2 * indent, "\n" + " " * indent
    fields = [
        f"{json.dumps(name)}: {json.dumps(v, ensure_ascii=False)}"
        for name, v in (("bucket", b), ("key", k))
    ]
    return ("{" + inner + ("," + inner).join(fields) + outer + "}").encode()


def _expected(elements: list[bytes]) -> list[tuple]:
    """The reference: each generated element on its own, through orjson and the parser."""
    out = []
    for n, raw in enumerate(elements, 1):
        if len(raw) > LIMIT:
            out.append(("err", n, "LineTooLong"))
            continue
        try:
            out.append(as_tuple(parse_json_value(orjson.loads(raw), n)))
        except orjson.JSONDecodeError:
            try:
                raw.decode()
            except UnicodeDecodeError:
                out.append(("err", n, "NotUtf8"))
            else:
                out.append(("err", n, "BadJson"))
    return out


@st.composite
def arrays(draw):
    """(array bytes, its elements, read size): mostly plain elements, one separator style.

    The elements are compact, or as `json.dump` writes them (on one line, or indented by 2 or
    4), the irregular ones (`ODD`) compact.
    """
    indent = draw(st.sampled_from([None, 0, 2, 4]))
    elements = [_element("bkt-1", "first", indent=indent)]
    for _ in range(draw(st.integers(0, 60))):
        kind = draw(st.integers(0, 9))
        if kind < 7:
            elements.append(_element(draw(bucket), draw(plain_key), indent=indent))
        elif kind < 9:
            elements.append(_element(draw(bucket), draw(any_key), indent=indent))
        else:
            elements.append(draw(st.sampled_from(ODD)))
    sep = draw(st.sampled_from(SEPARATORS))
    odd_sep = st.sampled_from(SEPARATORS)  # now and then another separator
    seps = [draw(odd_sep) if draw(st.integers(0, 19)) == 0 else sep for _ in elements[1:]]
    body = elements[0] + b"".join(s.encode() + e for s, e in zip(seps, elements[1:], strict=True))
    data = draw(st.sampled_from([b"[", b"\xef\xbb\xbf[", b" [\n"])) + body + b"\n]\n"
    return data, elements, draw(st.integers(16, 600))


def _read(data: bytes, block: int, **kwargs):
    """Batches and the reader, with `ArraySplitter` reading `block` bytes at a time."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(json_array, "BLOCK_BYTES", block)
        reader = RecordReader(
            io.BytesIO(data), ManifestFormat.JSON_ARRAY, max_line_bytes=LIMIT, **kwargs
        )
        return list(reader.iter_batches()), reader


def _items(data: bytes, block: int) -> list:
    """The element-by-element reader (iteration never takes the dense path)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(json_array, "BLOCK_BYTES", block)
        reader = RecordReader(io.BytesIO(data), ManifestFormat.JSON_ARRAY, max_line_bytes=LIMIT)
        return [(item, reader.position) for item in reader]


@PROPS
@given(case=arrays())
def test_batches_equal_the_reference_and_the_element_reader(case):
    # GIVEN an array of plain and irregular elements, read through small buffers
    data, elements, block = case
    # WHEN read as batches
    batches, reader = _read(data, block)
    # THEN the records and failures are the reference's, and the element reader's
    expected = _expected(elements)
    assert flatten_batches(batches) == expected
    items = _items(data, block)
    assert [as_tuple(item) for item, _ in items] == expected
    assert (reader.position, reader.lines_read) == (items[-1][1], len(elements))


@PROPS
@given(case=arrays())
def test_restart_points_and_item_sizes_equal_the_element_reader(case):
    data, _, block = case
    expected = [
        (as_tuple(item), (position.line, position.offset))
        for item, position in _items(data, block)
        if isinstance(item, ManifestRecord)
    ]
    got = []
    for batch in _read(data, block)[0]:
        sizes = [len(orjson.dumps(item)) for item in batch.items(0, len(batch))]
        assert batch.item_sizes(0, len(batch)) == sizes
        assert [batch.item_bytes(i, i + 1) for i in range(len(batch))] == sizes
        assert batch.item_bytes(0, len(batch)) == sum(sizes)
        records = batch.records(0, len(batch))
        got += [(as_tuple(r), batch.resume_after(i)) for i, r in enumerate(records)]
    assert got == expected


@PROPS
@given(case=arrays(), chunk_items=st.integers(1, 9), cap=st.integers(60, 500))
def test_chunk_spans_cut_and_encode_what_iter_chunks_does(case, chunk_items, cap):
    data, _, block = case
    records = [i for i, _ in _items(data, block) if isinstance(i, ManifestRecord)]
    batches = _read(data, block)[0]
    assert_spans_are_the_chunks(batches, records, chunk_items=chunk_items, cap=cap)


@PROPS
@given(case=arrays(), chunk_items=st.integers(1, 9))
def test_a_reader_resumed_after_any_span_reads_exactly_the_rest(case, chunk_items):
    data, _, block = case
    batches, _ = _read(data, block)
    records = [r for b in batches for r in b.records(0, len(b))]
    done = 0
    for span in iter_chunk_spans(batches, run="r", chunk_items=chunk_items, chunk_max_bytes=10**6):
        done += span.count
        line, offset, _ = span.resume_after()
        rest, _ = _read(data[offset:], block, first_line=line, start_offset=offset)
        assert [r for b in rest for r in b.records(0, len(b))] == records[done:]


@pytest.mark.parametrize("sep", SEPARATORS)
def test_a_plain_array_is_read_in_dense_batches(sep):
    # GIVEN 20,000 plain elements, one element a line or all on one line
    keys = [f"photos/{i:05d} (1)+%41é.jpg" for i in range(20_000)]
    data = b"[" + sep.encode().join(_element("bkt-1", k) for k in keys) + b"]"
    # WHEN read through 64 KiB buffers
    batches, reader = _read(data, 1 << 16)
    # THEN all but each buffer's first element come dense, nothing differs, the end is exact
    dense = sum(len(b) for b in batches if isinstance(b, DenseBatch))
    assert dense > 0.95 * len(keys)
    assert flatten_batches(batches) == [("ok", n, "bkt-1", k, None) for n, k in enumerate(keys, 1)]
    assert reader.position.offset == len(data) - 1


def test_an_array_as_json_dump_writes_it_on_one_line_is_proved_by_the_frames():
    # GIVEN `json.dump`'s array: one line, `, ` between elements, a space after `:` and `,`
    keys = [f"photos/{i:05d} (1)+%41.jpg" for i in range(20_000)]
    data = json.dumps([{"bucket": "bkt-1", "key": k} for k in keys]).encode()
    # WHEN read through 64 KiB buffers
    batches, reader = _read(data, 1 << 16)
    # THEN the frame proof takes all but each buffer's first element, nothing differs
    framed = sum(len(b) for b in batches if isinstance(b, DenseBatch) and b.parse_row is _array_row)
    assert framed > 0.95 * len(keys)
    assert flatten_batches(batches) == [("ok", n, "bkt-1", k, None) for n, k in enumerate(keys, 1)]
    assert reader.position.offset == len(data) - 1


@pytest.mark.parametrize("indent", [2, 4, "\t"])
def test_an_array_as_json_dump_indents_it_is_proved_by_the_frames(indent):
    # GIVEN `json.dump(…, indent=…)`'s array: an element over four lines
    keys = [f"photos/{i:05d} (1)+%41.jpg" for i in range(20_000)]
    data = json.dumps([{"bucket": "bkt-1", "key": k} for k in keys], indent=indent).encode()
    # WHEN read through 64 KiB buffers
    batches, reader = _read(data, 1 << 16)
    # THEN the frame proof takes all but each buffer's first element, nothing differs
    framed = sum(len(b) for b in batches if isinstance(b, DenseBatch) and b.parse_row is _array_row)
    assert framed > 0.95 * len(keys)
    assert flatten_batches(batches) == [("ok", n, "bkt-1", k, None) for n, k in enumerate(keys, 1)]
    assert reader.position.offset == len(data) - 2  # before the newline and the closing ]


def test_an_array_of_uris_is_not_proved_by_the_frames_but_read_whole():
    data = orjson.dumps([f"s3://bkt-1/k{i}" for i in range(5000)])
    batches, _ = _read(data, 4096)
    # no frame proof: each span proved laid out like its first element (URI strings)
    assert not any(isinstance(b, DenseBatch) and not isinstance(b, ElementsBatch) for b in batches)
    whole = sum(len(b) for b in batches if isinstance(b, ParsedBatch | ElementsBatch))
    assert whole > 0.95 * 5000
    assert [t[3] for t in flatten_batches(batches)] == [f"k{i}" for i in range(5000)]
