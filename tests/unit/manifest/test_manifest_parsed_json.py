"""JSON Lines objects of any shape, read whole by one orjson call, exactly as line by line.

`pipeline.manifest.parsed_json` reads a block whose every line is one flat-braced object by
parsing the lines joined into one array. Held here to the reference parser (`orjson.loads` of
each line + `parse_json_value`) on objects drawn from every field the contracts read (`bucket`,
`key`, `uri`, the three version names) and others (`size`, `label`, nested values), in every
spelling (orjson, `json.dumps` with and without `ensure_ascii`, pandas' `\\/`, field names
escaped), mixed with lines that must not be read this way (blank, arrays, strings, two objects
on a line, a string that swallows the next line's brace). A block the reader accepts gives
the reference's records, items and item sizes; a whole manifest reads and cuts into chunks
exactly what it reads with the path switched off.
"""

from __future__ import annotations

import io
import json
from itertools import chain
from unittest import mock

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.failures import ManifestReadError
from pipeline.manifest import stream
from pipeline.manifest.dense import DenseShape
from pipeline.manifest.dense_columns import SummedBatch
from pipeline.manifest.parse import ManifestRecord, parse_json_value
from pipeline.manifest.parsed_json import ParsedBatch, objects_batch
from pipeline.manifest.reader import ManifestFormat, RecordReader
from tests.unit.manifest.test_manifest_dense_array import _items as array_items
from tests.unit.manifest.test_manifest_dense_array import _read as array_read
from tests.unit.manifest_helpers import (
    as_tuple,
    assert_batches_are_the_element_reader,
    assert_spans_are_the_chunks,
    flatten_batches,
)

PROPS = settings(max_examples=300, deadline=None)
text = st.text(st.sampled_from(list('ab/{}:,"\\ é\u2028\x00\x7f😀')), max_size=8)
good_key = st.text(st.sampled_from(list("ab/{}:, é\u2028%+")), min_size=1, max_size=8)
bucket = st.sampled_from(["bk", "images-bucket", "Legacy_Bucket", "no such bucket", "", "x"])
version = st.one_of(
    st.none(),
    st.just(""),
    st.text(st.sampled_from(list('abc.+_"\\é\x01')), max_size=6),
    st.integers(0, 9),
)
scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(-1, 1), text
)
other = st.one_of(scalar, st.lists(scalar, max_size=2), st.dictionaries(text, scalar, max_size=1))


@st.composite
def objects(draw, *, good: bool, uri: bool = False) -> dict:
    """One JSON Lines object: a `bucket`/`key` or `uri` record, maybe a version, other fields.

    `good` draws only records the reference reads, `uri` ones or `bucket`/`key` ones (a block
    mixing the two goes line by line); else anything.
    """
    if good:
        fields = (
            {"uri": f"s3://{draw(st.sampled_from(['bk', 'bk.b']))}/{draw(good_key)}"}
            if uri
            else {"bucket": draw(st.sampled_from(["bk", "bk-b"])), "key": draw(good_key)}
        )
        extra = st.dictionaries(st.sampled_from(["size", "label", "etag"]), scalar, max_size=2)
    else:
        fields = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "bucket": st.one_of(bucket, st.integers(0, 9)),
                    "key": st.one_of(text, good_key, st.none()),
                    "uri": st.one_of(
                        st.builds("s3://{}/{}".format, bucket, good_key),
                        st.sampled_from(["s3://bk", "http://bk/k", "s3:/bk/k"]),
                        st.none(),
                        st.integers(0, 9),
                    ),
                },
            )
        )
        extra = st.dictionaries(st.sampled_from(["size", "label", "meta"]), other, max_size=2)
    fields |= draw(extra)
    names = st.sampled_from(["version_id", "versionId", "VersionId"])
    fields |= draw(st.dictionaries(names, version, max_size=2))
    order = draw(st.permutations(list(fields)))
    return {name: fields[name] for name in order}


def spelled(obj: dict, how: int) -> bytes:
    """The object as orjson, `json.dumps` (spaces; ASCII-only), pandas (`\\/`) or escaped."""
    if how == 0:
        return orjson.dumps(obj)
    if how == 1:
        return json.dumps(obj, ensure_ascii=False).encode()
    if how == 2:
        return json.dumps(obj).encode()
    if how == 3:
        return orjson.dumps(obj).replace(b"/", b"\\/")
    escaped = orjson.dumps(obj).replace(b'"uri"', b'"\\u0075ri"')
    return escaped.replace(b'"version_id"', b'"v\\u0065rsion_id"')


NOT_ONE_OBJECT = [
    b"",
    b"   ",
    b"[]",
    b'"s3://bk/k"',
    b'{"bucket":"bk","key":"k1"},{"bucket":"bk","key":"k2"}',
    b'{"bucket":"bk","key":"}',  # with the next: `{"bucket":"bk","key":"},{"}` if joined
    b'{"}',
    b'{"bucket":"bk","key":"k"}\r',
    b' {"bucket":"bk","key":"k"}',
    b'{"bucket":"bk","key":"k"',
    b"{}",
]


@st.composite
def lines(draw, *, good: bool) -> list[bytes]:
    """Records in any spelling; unless `good`, with a defect or two among them.

    A defect is any object at all, or a line that is no one object: mostly alone among good
    records, so that it alone decides whether the block may be read at once.
    """
    line = st.builds(spelled, objects(good=True, uri=draw(st.booleans())), st.integers(0, 4))
    raws = draw(st.lists(line, min_size=1, max_size=30))
    if good:
        return raws
    defect = st.one_of(
        st.builds(spelled, objects(good=False), st.integers(0, 4)),
        st.sampled_from(NOT_ONE_OBJECT),
    )
    for _ in range(draw(st.integers(0, 2))):
        raws.insert(draw(st.integers(0, len(raws))), draw(defect))
    return raws


def _reference(raws: list[bytes], first_line: int) -> list[tuple]:
    """Each line through orjson and `parse_json_value`, as tuples; None for unparsable lines."""
    out = []
    for n, raw in enumerate(raws, first_line):
        try:
            out.append(as_tuple(parse_json_value(orjson.loads(raw), n)))
        except orjson.JSONDecodeError:
            out.append(None)
    return out


def _item(record: ManifestRecord) -> list[object]:
    version = [] if record.version_id is None else [record.version_id]
    return [record.line, record.bucket, record.key, *version]


def _assert_is_the_reference(batch: ParsedBatch, raws: list[bytes], shape: DenseShape) -> None:
    records = batch.records(0, len(batch))
    assert [as_tuple(r) for r in records] == _reference(raws, shape.first_line)
    assert batch.items(0, len(batch)) == [_item(r) for r in records]
    sizes = [len(orjson.dumps(_item(r))) for r in records]
    assert batch.item_sizes(0, len(batch)) == sizes
    for start in range(len(batch)):
        assert batch.item_bytes(start, len(batch)) == sum(sizes[start:])
    ends = [shape.start_offset + sum(len(r) + 1 for r in raws[: i + 1]) for i in range(len(raws))]
    assert [batch.resume_after(i) for i in range(len(batch))] == [
        (shape.first_line + i + 1, end) for i, end in enumerate(ends)
    ]
    assert (batch.end_line, batch.end_offset) == (shape.first_line + len(raws), ends[-1])


@PROPS
@given(raws=lines(good=False), limit=st.sampled_from([40, 10**6]))
def test_a_block_is_read_whole_only_when_every_line_is_the_record_the_reference_reads(raws, limit):
    # GIVEN newline-terminated lines: objects of any fields and spellings, and lines that
    # are no one object (blank, two objects, a string swallowing the next line's brace)
    shape = DenseShape(7, 100, [b"bk"], limit)
    # WHEN the block is read whole
    batch = objects_batch(b"".join(r + b"\n" for r in raws), shape)
    # THEN it is read only if every line is a record, and then exactly as line by line
    if batch is not None:
        assert all(len(r) <= limit for r in raws)
        _assert_is_the_reference(batch, raws, shape)


@PROPS
@given(raws=lines(good=True))
def test_blocks_of_records_with_any_fields_and_spelling_are_read_whole(raws):
    # GIVEN records a user's tools write: extra fields, versions, any order and spelling
    shape = DenseShape(1, 0, [b"bk"], 10**6)
    # WHEN the block is read whole
    batch = objects_batch(b"".join(r + b"\n" for r in raws), shape)
    # THEN it is taken, and reads as the reference does
    assert batch is not None
    _assert_is_the_reference(batch, raws, shape)


def test_a_string_that_swallows_the_next_lines_brace_is_not_read_whole():
    # GIVEN three lines none of which is an object alone, though joined they parse as three
    # records: a key swallows the next line, the third line holds two
    raws = [
        b'{"bucket":"bk","key":"}',
        b'{"}',
        b'{"bucket":"bk","key":"1"},{"bucket":"bk","key":"2"}',
    ]
    joined = orjson.loads(b"[" + b",".join(raws) + b"]")
    assert [parse_json_value(v, 1).key for v in joined] == ["},{", "1", "2"]
    # WHEN read whole THEN refused: the reference makes each line a failure
    assert objects_batch(b"".join(r + b"\n" for r in raws), DenseShape(1, 0, [], 10**6)) is None
    assert _reference(raws, 1) == [None, None, None]


@settings(max_examples=80, deadline=None)
@given(
    raws=st.lists(lines(good=False), min_size=1, max_size=8).map(lambda ls: list(chain(*ls))),
    block=st.integers(64, 4096),
    chunk_items=st.integers(1, 40),
)
def test_manifests_read_and_cut_exactly_what_they_do_without_the_path(raws, block, chunk_items):
    # GIVEN a JSON Lines manifest of any objects and lines, read in small blocks
    data = b"".join(r + b"\n" for r in raws)

    def read() -> list:
        reader = RecordReader(io.BytesIO(data), ManifestFormat.JSON_LINES, block_bytes=block)
        return list(reader.iter_batches())

    # WHEN read with the whole-block path and without it
    batches = read()
    with mock.patch.object(stream, "objects_batch", return_value=None):
        without = read()
    # THEN the records and failures are the same, line for line
    assert flatten_batches(batches) == flatten_batches(without)
    # AND the chunks are cut, encoded and sized as the record-by-record path does it
    records = [r for b in without for r in b.records(0, len(b))]
    assert_spans_are_the_chunks(batches, records, chunk_items=chunk_items, cap=5000)


def test_common_object_shapes_are_read_whole_and_sent_as_items():
    # GIVEN JSON Lines as listing exports write them: a size, a version, a label, escapes
    keys = [f"photos/{i:05d} {{x}},y:é.jpg" for i in range(5000)]
    shapes = [
        lambda i, k: orjson.dumps({"bucket": "images-bucket", "key": k, "size": i}),
        lambda i, k: orjson.dumps({"key": k, "version_id": f"v{i}", "bucket": "images-bucket"}),
        lambda i, k: json.dumps({"uri": f"s3://images-bucket/{k}", "label": i % 7}).encode(),
        lambda i, k: orjson.dumps({"uri": f"s3://images-bucket/{k}"}).replace(b"/", b"\\/"),
    ]
    for shape in shapes:
        data = b"".join(shape(i, k) + b"\n" for i, k in enumerate(keys))
        # WHEN read in 4 KiB blocks
        reader = RecordReader(io.BytesIO(data), ManifestFormat.JSON_LINES, block_bytes=4096)
        batches = list(reader.iter_batches())
        # THEN all but each block's first (straddling) line are read whole, as the parser does
        # (a column at a time, or proved laid out like the block's first line)
        whole = sum(len(b) for b in batches if isinstance(b, ParsedBatch | SummedBatch))
        assert whole > 0.95 * len(keys)
        expected = [_reference([shape(i, k)], i + 1)[0] for i, k in enumerate(keys)]
        assert flatten_batches(batches) == expected
        # AND the chunks are cut, encoded and sized as the record-by-record path does it
        records = [r for b in batches for r in b.records(0, len(b))]
        assert_spans_are_the_chunks(batches, records, chunk_items=97, cap=20_000)


def test_iterating_record_by_record_keeps_the_restart_point_after_each():
    # GIVEN objects with extra fields, read item by item (not by batches)
    raws = [orjson.dumps({"key": f"k{i}", "bucket": "bk", "n": i}) for i in range(300)]
    data = b"".join(r + b"\n" for r in raws)
    reader = RecordReader(io.BytesIO(data), ManifestFormat.JSON_LINES, block_bytes=1024)
    # WHEN each item is taken THEN position is right after its line
    end = 0
    for i, item in enumerate(reader):
        end += len(raws[i]) + 1
        assert as_tuple(item) == ("ok", i + 1, "bk", f"k{i}", None)
        assert (reader.position.line, reader.position.offset) == (i + 2, end)


def test_a_line_of_the_length_limit_is_read_and_one_byte_longer_is_not():
    # GIVEN records of exactly 40 bytes, and one of 41
    fits = b'{"bucket":"bk","key":"%s"}' % (b"k" * 16)
    assert len(fits) == 40
    shape = DenseShape(1, 0, [b"bk"], 40)
    # WHEN read at once with a 40-byte limit THEN the first block is taken, the second not
    assert objects_batch(fits + b"\n" + fits + b"\n", shape) is not None
    assert objects_batch(fits + b"\n" + fits[:-2] + b'k"}\n', shape) is None


def test_a_uri_wins_over_bucket_and_key_and_an_escaped_version_name_is_a_version():
    # GIVEN records where a later one has a `uri` beside `bucket` and `key`, and one whose
    # version field's name is written with an escape (so the block's bytes hold no "ersion")
    raws = [
        b'{"bucket":"bk","key":"a"}',
        b'{"bucket":"bk","key":"b","uri":"s3://bk.b/c"}',
        b'{"bucket":"bk","key":"d","v\\u0065rsion_id":"v1"}',
    ]
    shape = DenseShape(1, 0, [b"bk"], 10**6)
    # WHEN read at once THEN as the reference reads them, the uri and the version included
    batch = objects_batch(b"".join(r + b"\n" for r in raws), shape)
    expected = [
        ("ok", 1, "bk", "a", None),
        ("ok", 2, "bk.b", "c", None),
        ("ok", 3, "bk", "d", "v1"),
    ]
    assert _reference(raws, 1) == expected
    assert batch is None or [as_tuple(r) for r in batch.records(0, 3)] == expected
    # AND without the mixed record, the block is read at once, its escaped version kept
    batch = objects_batch(raws[0] + b"\n" + raws[2] + b"\n", shape)
    assert batch is not None
    assert [as_tuple(r) for r in batch.records(0, 2)] == [expected[0], ("ok", 2, "bk", "d", "v1")]


@st.composite
def arrays(draw) -> tuple[bytes, list[bytes], int]:
    """(array bytes, its elements, read size): objects or URIs, as one line, a line each or
    indented (`json.dumps(indent=2)`), with a defect or two (`lines`)."""
    elements = draw(lines(good=False))
    if draw(st.booleans()):  # URI strings in place of the records
        elements = [
            orjson.dumps(f"s3://bk/{k}") for k in draw(st.lists(good_key, min_size=1))
        ] + draw(st.lists(st.sampled_from([b'"s3://bk"', b'"http://x/y"', b"5"]), max_size=1))
    if draw(st.booleans()):
        elements = [
            json.dumps(orjson.loads(e), indent=2).encode()
            if e.strip().startswith(b"{") and _is_json(e)
            else e
            for e in elements
        ]
    sep = draw(st.sampled_from([",", ",\n", ", ", "\n,  "]))
    body = sep.encode().join(e.strip() or b"0" for e in elements)
    return b"[" + body + b"]", elements, draw(st.integers(16, 600))


def _is_json(raw: bytes) -> bool:
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return True


@settings(max_examples=150, deadline=None)
@given(case=arrays(), chunk_items=st.integers(1, 9))
def test_arrays_read_restart_and_cut_exactly_as_element_by_element(case, chunk_items):
    # GIVEN an array of objects of any shape, or URIs, in any layout, through small buffers
    data, _, block = case
    # WHEN read in batches, and element by element (iteration never reads spans at once)
    try:
        items = array_items(data, block)
    except ManifestReadError:  # a defect broke the array itself: both readers refuse it
        with pytest.raises(ManifestReadError):
            array_read(data, block)
        return
    batches, _ = array_read(data, block)
    # THEN the records, failures, restart points and item sizes are the element reader's
    assert flatten_batches(batches) == sorted(
        (as_tuple(item) for item, _ in items), key=lambda t: t[1]
    )
    # AND the chunks are cut, encoded and sized as the element-by-element path does it
    assert_batches_are_the_element_reader(batches, items, chunk_items=chunk_items)


@pytest.mark.parametrize(
    "dump",
    [
        lambda v: json.dumps(v).encode(),  # `json.dump(list, f)`: one line
        lambda v: json.dumps(v, indent=2).encode(),
        lambda v: b"[" + b",\n".join(map(orjson.dumps, v)) + b"]",
    ],
    ids=["one line", "indented", "a line each"],
)
def test_arrays_as_python_writes_them_are_read_at_once(dump):
    # GIVEN arrays of objects with a size, and of URIs, as Python's json module writes them
    keys = [f"photos/{i:05d} (1),é.jpg" for i in range(5000)]
    for values in (
        [{"bucket": "bkt-1", "key": k, "size": i} for i, k in enumerate(keys)],
        [f"s3://bkt-1/{k}" for k in keys],
    ):
        # WHEN read through 64 KiB buffers
        batches, _ = array_read(dump(values), 1 << 16)
        # THEN all but each buffer's first element are read at once, exactly (a column at a
        # time, or proved laid out like the span's first element)
        whole = sum(len(b) for b in batches if isinstance(b, ParsedBatch | SummedBatch))
        assert whole > 0.95 * len(keys)
        assert flatten_batches(batches) == [
            ("ok", n, "bkt-1", k, None) for n, k in enumerate(keys, 1)
        ]


def test_an_array_mixing_objects_and_a_string_with_braces_reads_as_element_by_element():
    # GIVEN a span whose braces pair up and count its elements, one of which is a string
    data = b'[{"bucket":"bk","key":"a"}, {"bucket":"bk","key":"b"}, "s3://bk/{", '
    data += b'{"bucket":"bk","key":"}"}]'
    # WHEN read in batches THEN exactly as element by element: the string a record too
    batches, _ = array_read(data, 1 << 16)
    items = array_items(data, 1 << 16)
    assert flatten_batches(batches) == [as_tuple(item) for item, _ in items]
    assert [t[3] for t in flatten_batches(batches)] == ["a", "b", "{", "}"]
