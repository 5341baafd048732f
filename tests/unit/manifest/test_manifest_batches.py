"""The batch fast path yields exactly what the line-by-line reference parser yields.

`RecordReader.iter_batches` (dense blocks proved by byte operations, the rest parsed line by
line) and `iter_chunk_spans` (chunk sizes by arithmetic) are checked against an independent
reference built here from `str.split` and the per-line parser, on generated manifests that mix
plain rows with every irregularity the dense checks must refuse, over tiny read blocks so lines
straddle blocks everywhere.
"""

from __future__ import annotations

import gzip
import io
import json
from urllib.parse import quote_plus

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.cli.scan import EXAMPLES_PER_ERROR, SCAN_RUN_ID, scan_manifest
from pipeline.config import Settings
from pipeline.failures import ManifestLineError, ManifestReadError
from pipeline.manifest import stream
from pipeline.manifest.batch import DenseBatch, ListedBatch, digit_count_sum
from pipeline.manifest.dense_columns import SummedBatch
from pipeline.manifest.guard import NOT_A_MANIFEST, refuse_binary
from pipeline.manifest.parse import (
    CsvKind,
    detect_csv_layout,
    parse_csv_row,
    parse_json_value,
)
from pipeline.manifest.parsed_json import ParsedBatch
from pipeline.manifest.raw_lines import RawLinesBatch
from pipeline.manifest.reader import (
    ManifestFormat,
    ManifestReader,
    ManifestRecord,
    RecordReader,
    iter_manifest,
)
from pipeline.manifest.source import DecodedStream
from pipeline.observe.cost import sqs_units
from pipeline.split.chunk_encoding import encode_span
from pipeline.split.chunking import Chunk, iter_chunk_spans, iter_chunks
from tests.unit.manifest_helpers import as_tuple, count_taken, flatten_batches

PROPS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
LIMIT = 120
BUCKETS = [f"bkt-{i}" for i in range(10)]  # more than the dense checks try (8)

plain_key = st.text(
    st.characters(
        blacklist_categories=("Cs", "Cc"), blacklist_characters=',%+"\\{}:\r\n\x7f\u2028\u2029'
    ),
    min_size=1,
    max_size=30,
)
any_key = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=30)
bucket = st.sampled_from(BUCKETS[:3]) | st.sampled_from(BUCKETS)

CSV_ODD = [
    b"",
    b"  ",
    b"\r",
    b'"bkt-1","a,b"',
    b"bkt-1,a%20b",
    b"bkt-1,a+b",
    b"bkt-1,%ff",
    b"bkt-1,",
    b",k",
    b"bkt-1,k,v1",
    b"bkt-1,k,",
    b"bkt-1,k\r",
    b"bkt-1,k,v,x",
    b"bad",
    b"\xff\xfe,k",
    b"bkt-1,\xc3(",
    b"b!d,k",
    b" bkt-1,k",
    b"!bkt-1,k",
    b"xbkt-1,k",
    b"bkt-1,tab\tkey",
    b"bkt-1," + b"x" * 200,
    b"s3://bkt-1/k",
    b"bkt-1,a%2",
    b"bkt-1,%%41",
    b"bkt-1,a%0Ab",
    b"bkt-1,a%22b",
    b"bkt-1,a%5cb",
    b"bkt-1,a%7Fb",
    b"bkt-1,%C3%A9",
    b"bkt-1,%C3",
    b"bkt-1,%e2%82",
    b"bkt-1,a+b%2Bc%2f%20",
    b"bkt-1,k\rx",
    b"bkt-1,\r",
    b"bkt-1,\xc3\xa9+%41",
]
URI_ODD = [
    b"",
    b" ",
    b"\r",
    b"s3://bkt-1/",
    b"s3://bkt-1/\r",
    b"s3://bkt-1",
    b"s3:/bkt-1/k",
    b"S3://bkt-1/k",
    b" s3://bkt-1/k",
    b"s3://bkt-1/k ",
    b"s3://bkt-1/a,b",
    b"s3://bkt-1/a%20b+c%ff%",
    b'"s3://bkt-1/quoted"',
    b'"s3://bkt-1/a,b",x',
    b'"s3://bkt-1/open',
    b's3://bkt-1/a"b',
    b"s3://bkt-1/a\\b",
    b"s3://bkt-1/tab\tkey",
    b"s3://bkt-1/k\rx",
    b"s3://bkt-1/k\x7f",
    b"s3://bkt-1/\xc3\xa9\xe4\xb8\xad",
    b"s3://bkt-1/\xff",
    b"s3://bkt-1/\xc3(",
    b"s3://b!d/k",
    b"s3://x/k",
    b"s3://bkt-1x/k",
    b"s3://bkt-9/k",
    b"s3://bkt-1//",
    b"s3:///k",
    b"s3://bkt-1/" + b"x" * 200,
    b"bkt-1,k",
    b'{"uri":"s3://bkt-1/k"}',
]
JSONL_ODD = [
    b"",
    b" ",
    b'{"uri":"s3://bkt-1/x"}',
    b"{oops}",
    b"[1]",
    b'"s3://bkt-1/y"',
    b'{"bucket":"bkt-1","key":""}',
    b' {"bucket":"bkt-1","key":"a"}',
    b'{"bucket":"bkt-1","key":"a"} ',
    b'{"bucket":"bkt-1","key":"a"}x',
    b'x{"bucket":"bkt-1","key":"a"}',
    b'{"bucket":"bkt-1","key":"a" }',
    b'{"bucket":"!bkt-1","key":"a"}',
    b'{"bucket":"bkt-1","key":"a","version_id":"v"}',
    b'{"key":"a","bucket":"bkt-1"}',
    b'{"bucket":"bkt-1","key":"a\\u0041"}',
    b'{"bucket":"b!d","key":"a"}',
    b'{"bucket":"bkt-1","kez":"a"}',
    b'{"bucket":"bkt-1","key":"\xff"}',
    b'{"bucket":"bkt-1","key":"' + b"y" * 200 + b'"}',
    b'{"bucket":"bkt-1","key":"a"}\r',
]


JSONL_KEY_FIRST_ODD = [
    *JSONL_ODD,
    b'{"key":"","bucket":"bkt-1"}',
    b'{"key":"a","bucket":"bkt-9"}',
    b'{"key":"a","bucket":"b!d"}',
    b'{"key":"a","bucket":"bkt-1","x":1}',
    b'{"key":"a","key":"b","bucket":"bkt-1"}',
    b'{"key":"a}","bucket":"bkt-1"}',
    b'{"key":"a","bucket":"bkt-1"} ',
    b'{"key":"a","bucket":"bkt-1"}x',
    b'{"key":"a\\u0041","bucket":"bkt-1"}',
    b'{"key":"a","bucket":"bkt-1x"}',
    b'{"key":"a","bucket":"bkt-1"',
    b'{"key" :"a","bucket":"bkt-1"}',
    b'{"key":"\xc3(","bucket":"bkt-1"}',
]


def _csv_plain(b: str, k: str) -> bytes:
    return f"{b},{k}".encode()


def _csv_encoded(b: str, k: str) -> bytes:
    return f"{b},{quote_plus(k, safe='/')}".encode()


def _uri_plain(b: str, k: str) -> bytes:
    return f"s3://{b}/{k}".encode()


def _jsonl_plain(b: str, k: str) -> bytes:
    return orjson.dumps({"bucket": b, "key": k})


def _jsonl_key_first(b: str, k: str) -> bytes:
    return orjson.dumps({"key": k, "bucket": b})


def _json_line(raw: bytes, n: int) -> tuple:
    try:
        return as_tuple(parse_json_value(orjson.loads(raw), n))
    except orjson.JSONDecodeError:
        try:
            raw.decode()
        except UnicodeDecodeError:
            return ("err", n, "NotUtf8")
        return ("err", n, "BadJson")


def _reference(data: bytes, fmt: ManifestFormat, limit: int) -> list[tuple]:
    """Items of a whole manifest, one line at a time, with no block or dense logic at all."""
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    if not lines[-1]:
        lines.pop()
    out, layout = [], None
    for n, raw in enumerate(lines, 1):
        if len(raw) > limit:
            out.append(("err", n, "LineTooLong"))
        elif not raw or raw.isspace():
            continue
        elif fmt is ManifestFormat.JSON_LINES:
            out.append(_json_line(raw, n))
        else:
            try:
                text = raw.decode().removesuffix("\r")
            except UnicodeDecodeError:
                out.append(("err", n, "NotUtf8"))
                continue
            if layout is None:
                layout = detect_csv_layout(text, n)
                assert not isinstance(layout, ManifestLineError)
                if layout.kind is CsvKind.HEADER:  # the header: no record
                    continue
            out.append(as_tuple(parse_csv_row(text, n, layout)))
    return out


SHAPES = {  # shape: (format, plain row, irregular rows)
    "csv": (ManifestFormat.CSV, _csv_plain, CSV_ODD),
    "uri": (ManifestFormat.CSV, _uri_plain, URI_ODD),
    "jsonl": (ManifestFormat.JSON_LINES, _jsonl_plain, JSONL_ODD),
    "jsonl-key-first": (ManifestFormat.JSON_LINES, _jsonl_key_first, JSONL_KEY_FIRST_ODD),
}


def _manifest(draw, shape: str) -> bytes:
    _, plain, odd = SHAPES[shape]
    rows = [plain("bkt-1", "first")]
    for _ in range(draw(st.integers(0, 60))):
        kind = draw(st.integers(0, 9))
        if kind < 7:  # mostly plain rows, so whole blocks can be dense
            rows.append(plain(draw(bucket), draw(plain_key)))
        elif kind < 9:
            encoded = shape == "csv" and draw(st.booleans())
            rows.append((_csv_encoded if encoded else plain)(draw(bucket), draw(any_key)))
        else:
            rows.append(draw(st.sampled_from(odd)))
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    eol = b"\r\n" if draw(st.booleans()) else b"\n"
    return bom + eol.join(rows) + (eol if draw(st.booleans()) else b"")


@st.composite
def manifests(draw):
    shape = draw(st.sampled_from(sorted(SHAPES)))
    return SHAPES[shape][0], _manifest(draw, shape), draw(st.integers(8, 400))


def _batches(data: bytes, fmt: ManifestFormat, block: int) -> tuple[list, RecordReader]:
    reader = RecordReader(io.BytesIO(data), fmt, max_line_bytes=LIMIT, block_bytes=block)
    return list(reader.iter_batches()), reader


def _assert_exact_sizes(batches) -> None:
    for batch in batches:
        items = batch.items(0, len(batch))
        sizes = [len(orjson.dumps(item)) for item in items]
        assert batch.item_sizes(0, len(batch)) == sizes
        assert batch.item_bytes(0, len(batch)) == sum(sizes)
        assert [batch.item_bytes(i, i + 1) for i in range(len(batch))] == sizes


@PROPS
@given(case=manifests())
def test_batches_and_items_equal_the_line_by_line_reference(case):
    # GIVEN a manifest mixing plain rows and irregular ones, read in tiny blocks
    fmt, data, block = case
    # WHEN read as batches, and as items
    batches, reader = _batches(data, fmt, block)
    items = [as_tuple(i) for i in RecordReader(io.BytesIO(data), fmt, max_line_bytes=LIMIT)]
    # THEN both equal the reference, and the batch reader ends where the item reader does
    expected = _reference(data, fmt, LIMIT)
    assert items == expected
    assert flatten_batches(batches) == expected
    full = RecordReader(io.BytesIO(data), fmt, max_line_bytes=LIMIT, block_bytes=block)
    list(full)
    assert (reader.position, reader.lines_read) == (full.position, full.lines_read)


@PROPS
@given(case=manifests())
def test_batch_restart_points_and_item_sizes_match_the_item_reader(case):
    # GIVEN the restart point the item reader reports after each record
    fmt, data, block = case
    item_reader = RecordReader(io.BytesIO(data), fmt, max_line_bytes=LIMIT, block_bytes=block)
    expected = [
        (
            (item.line, item.bucket, item.key),
            (item_reader.position.line, item_reader.position.offset),
        )
        for item in item_reader
        if isinstance(item, ManifestRecord)
    ]
    # WHEN the same records come in batches
    got, sizes = [], []
    for batch in _batches(data, fmt, block)[0]:
        for i, record in enumerate(batch.records(0, len(batch))):
            got.append(((record.line, record.bucket, record.key), batch.resume_after(i)))
        sizes += [
            (batch.item_sizes(i, i + 1)[0], batch.item_bytes(i, i + 1), len(orjson.dumps(item)))
            for i, item in enumerate(batch.items(0, len(batch)))
        ]
        assert batch.item_bytes(0, len(batch)) == sum(batch.item_sizes(0, len(batch)))
    # THEN every record restarts at the same point, and every size is the serialized size
    assert got == expected
    assert all(a == b == c for a, b, c in sizes)


@PROPS
@given(case=manifests(), chunk_items=st.integers(1, 12), cap=st.integers(40, 700))
def test_chunk_spans_cut_exactly_what_iter_chunks_cuts(case, chunk_items, cap):
    # GIVEN the records of a manifest, as items and as batches
    fmt, data, block = case
    records = [
        i
        for i in RecordReader(io.BytesIO(data), fmt, max_line_bytes=LIMIT)
        if isinstance(i, ManifestRecord)
    ]
    limits = {"run": "run-1", "chunk_items": chunk_items, "chunk_max_bytes": cap}
    # WHEN both are cut into chunks
    try:
        expected = list(iter_chunks(records, **limits, first_chunk=3))
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc).split(" alone")[0]):
            list(iter_chunk_spans(_batches(data, fmt, block)[0], **limits, first_chunk=3))
        return
    spans = list(iter_chunk_spans(_batches(data, fmt, block)[0], **limits, first_chunk=3))
    # THEN the cuts, the records, the messages and their sizes agree exactly
    assert [s.to_chunk() for s in spans] == expected
    for span, chunk in zip(spans, expected, strict=True):
        message = chunk.to_message()
        assert span.to_message() == message
        assert span.message_bytes == len(orjson.dumps(message))
        assert span.count == len(chunk.items)


ODD_CASES = [
    *[("csv", odd, eol) for odd in CSV_ODD for eol in (b"\n", b"\r\n")],
    *[("uri", odd, eol) for odd in URI_ODD for eol in (b"\n", b"\r\n")],
    *[("jsonl", odd, b"\n") for odd in JSONL_ODD],
    *[("jsonl-key-first", odd, b"\n") for odd in JSONL_KEY_FIRST_ODD],
]


@pytest.mark.parametrize(
    ("shape", "odd", "eol"), ODD_CASES, ids=[f"{s}-{o + e!r}"[:44] for s, o, e in ODD_CASES]
)
def test_one_irregular_line_among_plain_ones_reads_as_the_reference_says(shape, odd, eol):
    # GIVEN plain (CSV: URL-encoded) rows around one irregular line, all in one read block
    fmt, plain, _ = SHAPES[shape]
    plain = _csv_encoded if shape == "csv" else plain
    sep = "." if fmt is ManifestFormat.JSON_LINES else ":"  # a `:` keeps JSON from dense
    rows = [plain("bkt-1", f"dir/k {i}{sep}x") for i in range(6)]
    data = eol.join([*rows[:3], odd, *rows[3:]]) + eol
    # WHEN read as batches
    batches = _batches(data, fmt, 1 << 20)[0]
    # THEN exactly the reference items and item sizes, whether the block went dense or not
    assert flatten_batches(batches) == _reference(data, fmt, LIMIT)
    _assert_exact_sizes(batches)


@PROPS
@given(case=manifests(), narrowest=st.sampled_from([8, 40, 150]), block=st.integers(64, 3000))
def test_blocks_halved_around_refused_lines_read_as_the_reference_says(
    case, narrowest, block, monkeypatch
):
    # GIVEN mostly plain manifests whose irregular lines make the frame proofs refuse a block,
    # read in blocks big enough to be halved around them (a few lines a piece at the least)
    monkeypatch.setattr(stream, "NARROWEST_RUN", narrowest)
    monkeypatch.setattr(stream, "NARROWEST_PROOF", narrowest)  # and cut around empty lines
    fmt, data, _ = case
    line_ends = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")] + [len(data)]
    # WHEN read as batches, and as items
    batches, reader = _batches(data, fmt, block)
    item_reader = RecordReader(io.BytesIO(data), fmt, max_line_bytes=LIMIT, block_bytes=block)
    items = [(as_tuple(i), item_reader.position) for i in item_reader]
    # THEN both give the reference's items and item sizes; each record restarts right after
    # its line (counted here from the bytes); both end where reading line by line ends
    expected = _reference(data, fmt, LIMIT)
    assert [i for i, _ in items] == expected
    assert flatten_batches(batches) == expected
    _assert_exact_sizes(batches)
    restarts = [(r.line + 1, line_ends[r.line - 1]) for b in batches for r in b.records(0, len(b))]
    assert [b.resume_after(i) for b in batches for i in range(len(b.records(0, len(b))))] == (
        restarts
    )
    records = [(p.line, p.offset) for i, p in items if i[0] == "ok"]
    assert records == restarts
    assert (reader.position, reader.lines_read) == (item_reader.position, item_reader.lines_read)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_bad_line_among_plain_ones_costs_line_by_line_reading_around_it_only(shape):
    # GIVEN 40,000 plain lines with one malformed line, read in 256 KiB blocks
    fmt, plain, _ = SHAPES[shape]
    rows = [plain("bkt-1", f"photos/{i:06d}.jpg") for i in range(40_000)]
    rows[31_111] = b"{oops}" if fmt is ManifestFormat.JSON_LINES else b"s3:/bkt-1/oops"
    data = b"\n".join(rows) + b"\n"
    block = 1 << 18
    # WHEN scan reads it in batches, and Split does (`raw_lines`)
    batches, _ = _batches(data, fmt, block)
    split = list(
        RecordReader(
            io.BytesIO(data), fmt, max_line_bytes=LIMIT, raw_lines=True, block_bytes=block
        ).iter_batches()
    )
    # THEN scan reads line by line only the few kilobytes the proofs refused around the bad
    # line (and the line straddling each two reads), the rest of its block proved in halves;
    # Split sends the refused block unparsed, whole
    assert flatten_batches(batches) == _reference(data, fmt, LIMIT)
    slow = [len(b) for b in batches if not isinstance(b, DenseBatch)]
    lines_a_piece = stream.NARROWEST_RUN // len(rows[0]) + 1
    assert sum(slow) <= 2 * lines_a_piece + len(data) // block + 1, slow
    assert max(len(b) for b in split if isinstance(b, RawLinesBatch)) > block // len(rows[0]) // 2


def _frame_proof_calls(monkeypatch, fmt: ManifestFormat) -> list[bool]:
    """Whether each frame proof `stream` tries takes its lines, in order."""
    proof = "_proved_jsonl" if fmt is ManifestFormat.JSON_LINES else "_proved_csv"
    return count_taken(monkeypatch, proof)


def _assert_read_as_the_reference(data: bytes, fmt: ManifestFormat, batches, expected) -> None:
    """Records, exact item sizes, and a restart right after each record's line."""
    line_ends = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    assert flatten_batches(batches) == expected
    _assert_exact_sizes(batches)
    records = [r for b in batches for r in b.records(0, len(b))]
    restarts = [b.resume_after(i) for b in batches for i in range(len(b.records(0, len(b))))]
    assert restarts == [(r.line + 1, line_ends[r.line - 1]) for r in records]


def _split_records(batches) -> list[tuple]:
    """What Split's chunk messages of `batches` read back to (the worker's view), in order."""
    spans = iter_chunk_spans(batches, run="r" * 20, chunk_items=97, chunk_max_bytes=256_000)
    chunks = [Chunk.from_message(orjson.loads(encode_span(s, max_bytes=256_000))) for s in spans]
    return [as_tuple(item) for chunk in chunks for item in (*chunk.items, *chunk.parse_failures)]


@pytest.mark.parametrize("blank", [b"", b"  ", b" \t"], ids=["empty", "spaces", "space-tab"])
@pytest.mark.parametrize("eol", [b"\n", b"\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_blank_lines_among_plain_ones_are_cut_out_and_the_lines_between_proved(
    shape, eol, blank, monkeypatch
):
    # GIVEN 20,000 plain lines with a blank line after every 500th (and two at the end)
    fmt, plain, _ = SHAPES[shape]
    rows = [plain("bkt-1", f"photos/{i:06d}.jpg") for i in range(20_000)]
    gap = blank + eol
    lines = [row + eol + (gap if i % 500 == 499 else b"") for i, row in enumerate(rows)]
    data = b"".join(lines) + gap
    expected = _reference(data, fmt, LIMIT)
    reads = len(data) // (1 << 18) + 1
    # WHEN scan reads it in batches, and Split does (`raw_lines`)
    for raw in (False, True):
        proofs = _frame_proof_calls(monkeypatch, fmt)
        reader = RecordReader(
            io.BytesIO(data), fmt, max_line_bytes=LIMIT, raw_lines=raw, block_bytes=1 << 18
        )
        batches = list(reader.iter_batches())
        # THEN the reference's records, sizes and restarts, every line counted, and Split's
        # messages read back to them; read line by line only the line straddling each two
        # reads and, at a read's edges, lines too few to prove alone; a read's lines between
        # blank ones proved together, not a proof a piece (some 20 pieces a read)
        _assert_read_as_the_reference(data, fmt, batches, expected)
        assert _split_records(batches) == expected
        assert reader.lines_read == len(rows) + len(rows) // 500 + 1
        slow = sum(len(b) for b in batches if isinstance(b, ListedBatch | ParsedBatch))
        assert slow <= reads * (1 + 2 * (stream.NARROWEST_PROOF // len(rows[0]) + 1)), slow
        assert len(proofs) <= 3 * reads, proofs


_OF_MANY_SIZES = {  # rows of many lengths, escapes a row as many: (format, header, row)
    "header": (ManifestFormat.CSV, b"bucket,key,size\n", b"bkt-1,photos/%d.jpg,%d"),
    "uri-label": (ManifestFormat.CSV, b"uri,label\n", b"s3://bkt-1/photos/%d.jpg,%d"),
    "quoted": (ManifestFormat.CSV, b"Bucket,Key\n", b'"bkt-1","photos/%d.jpg%s"'),
    "url-encoded": (ManifestFormat.CSV, b"", b"bkt-1,photos/%d%s.jpg"),
    "pandas-json": (ManifestFormat.JSON_LINES, b"", b'{"bucket":"bkt-1","key":"a\\/%d%s"}'),
}


def _of_many_sizes(row: bytes, i: int) -> bytes:
    """Row i of a `_OF_MANY_SIZES` case: its second field a number, or 0-3 escapes."""
    if row.endswith(b"%d"):
        return row % (i, i * 7 % 1000)
    escape = b"\\/x" if row.startswith(b"{") else b"%20x"
    return row % (i, escape * (i % 4))


@pytest.mark.parametrize("case", sorted(_OF_MANY_SIZES))
def test_blank_lines_among_rows_of_many_sizes_are_cut_out_and_the_rows_between_proved(
    case, monkeypatch
):
    # GIVEN 20,000 rows of many lengths (item sums, escapes), an empty line after every 500th
    fmt, header, row = _OF_MANY_SIZES[case]
    rows = [_of_many_sizes(row, i) for i in range(20_000)]
    lines = [r + b"\n" + (b"\n" if i % 500 == 499 else b"") for i, r in enumerate(rows)]
    data = header + b"".join(lines)
    expected = _reference(data, fmt, LIMIT)
    proofs = _frame_proof_calls(monkeypatch, fmt)
    # WHEN scan reads it in 256 KiB blocks
    batches, _ = _batches(data, fmt, 1 << 18)
    # THEN the reference's records, sizes and restarts, and Split's messages read back to
    # them; the rows between the empty lines of a read proved together
    _assert_read_as_the_reference(data, fmt, batches, expected)
    assert _split_records(batches) == expected
    assert sum(len(b) for b in batches if isinstance(b, DenseBatch)) > 19_000
    assert len(proofs) <= 3 * (len(data) // (1 << 18) + 1), proofs


class _LineByLine(RecordReader):
    """The reader with every proof switched off: each line read on its own (the oracle)."""

    def _shape(self, run: object) -> None:
        return None


def test_lines_proved_together_around_a_row_that_leaves_its_quote_open(monkeypatch):
    # GIVEN quoted rows where, between two empty lines, one row leaves its quote open (the
    # empty line after it ends that record, a BadCsv line); the rows around prove together
    rows = [b'"bkt-1","photos/%06d.jpg"\n' % i for i in range(3000)]
    opens = b'\n"bkt-1","opens\n\n'
    data = b"".join(rows[:100]) + opens + b"".join(rows[100:200]) + b"\n" + b"".join(rows[200:])
    oracle = list(_LineByLine(io.BytesIO(data), ManifestFormat.CSV).iter_batches())
    proofs = _frame_proof_calls(monkeypatch, ManifestFormat.CSV)
    # WHEN read in 256 KiB blocks
    batches, _ = _batches(data, ManifestFormat.CSV, 1 << 18)
    # THEN what the oracle reads: the open row one failure, the rows after it records
    assert flatten_batches(batches) == flatten_batches(oracle)
    assert any(proofs)


def test_a_read_is_cut_around_blank_lines_once_at_most(monkeypatch):
    # GIVEN URI lines with two empty lines in the first 16 KiB read, none after; a bad line in
    # the second read
    rows = [_uri_plain("bkt-1", f"photos/{i:06d}.jpg") for i in range(3000)]
    rows[700] = b"s3:/bkt-1/oops"
    parts = [rows[:100], rows[100:200], rows[200:]]
    data = b"\n\n".join(b"\n".join(part) for part in parts) + b"\n"
    cuts = count_taken(monkeypatch, "around_blank_lines")
    # WHEN read in 16 KiB blocks
    batches, _ = _batches(data, ManifestFormat.CSV, 1 << 14)
    # THEN the first read is cut once its proof refused it, the next before its proof (it had
    # no empty line: refused by the proof, it is halved, not cut again), and none after
    assert flatten_batches(batches) == _reference(data, ManifestFormat.CSV, LIMIT)
    assert cuts == [True, False]
    assert sum(len(b) for b in batches if isinstance(b, DenseBatch)) > 0.95 * len(rows)


def test_blocks_a_slower_proof_takes_are_never_searched_for_empty_lines(monkeypatch):
    # GIVEN JSON Lines with a size beside bucket and key: no frame proof takes them, a slower
    # proof does (scan), or they go unparsed (Split)
    rows = [b'{"bucket":"bkt-1","key":"k%d","size":%d}' % (i, i) for i in range(3000)]
    data = b"\n".join(rows) + b"\n"
    cuts = count_taken(monkeypatch, "around_blank_lines")
    # WHEN scan and Split read them in 16 KiB blocks
    for raw in (False, True):
        reader = RecordReader(
            io.BytesIO(data), ManifestFormat.JSON_LINES, raw_lines=raw, block_bytes=1 << 14
        )
        batches = list(reader.iter_batches())
        # THEN no block is searched for empty lines: only one every path refused would be
        assert flatten_batches(batches) == _reference(data, ManifestFormat.JSON_LINES, LIMIT)
    assert cuts == []


def test_a_first_block_no_frame_proof_takes_is_not_halved(monkeypatch):
    # GIVEN JSON Lines with a size beside bucket and key: no frame proof takes them
    rows = [b'{"bucket":"bkt-1","key":"k%d","size":%d}' % (i, i) for i in range(3000)]
    data = b"\n".join(rows) + b"\n"
    tried = count_taken(monkeypatch, "_proved_jsonl")
    # WHEN read in 16 KiB blocks
    batches, _ = _batches(data, ManifestFormat.JSON_LINES, 1 << 14)
    # THEN each block is offered to the frame proof once, never halved (it proved nothing)
    assert flatten_batches(batches) == _reference(data, ManifestFormat.JSON_LINES, LIMIT)
    assert not any(tried)
    assert len(tried) <= len(data) // (1 << 14) + 1


@pytest.mark.parametrize("shape", ["csv", "uri", "jsonl", "jsonl-key-first"])
def test_rows_of_40_buckets_are_read_dense_and_a_bucket_never_seen_as_the_reference_says(shape):
    # GIVEN 20,000 rows over 40 buckets (more than a proof tries one at a time), in which
    # one row names a 41st bucket
    fmt, plain, _ = SHAPES[shape]
    buckets = [f"bucket-{i:02d}.example-data" for i in range(40)]
    rows = [plain(buckets[i * 7 % 40], f"photos/{i:06d}.jpg") for i in range(20_000)]
    rows[15_000] = plain("bucket-99.example-data", "photos/new.jpg")
    data = b"\n".join(rows) + b"\n"
    # WHEN read in 64 KiB blocks
    batches, _ = _batches(data, fmt, 1 << 16)
    # THEN the reference's items, and once the first blocks named every bucket, all dense
    # but the pieces around the row naming the new one
    assert flatten_batches(batches) == _reference(data, fmt, LIMIT)
    dense = sum(len(b) for b in batches if isinstance(b, DenseBatch))
    assert dense > 0.9 * len(rows)


def test_blocks_of_bad_lines_everywhere_are_not_halved_again_and_again(monkeypatch):
    # GIVEN plain URI lines, then lines with a malformed one every 5, over many read blocks
    plain = [_uri_plain("bkt-1", f"k{i}") for i in range(1, 2000)]
    bad = [_uri_plain("bkt-1", f"k{i}") if i % 5 else b"bad line" for i in range(1, 6000)]
    data = b"\n".join(plain + bad) + b"\n"
    monkeypatch.setattr(stream, "NARROWEST_RUN", 256)
    tried = count_taken(monkeypatch, "_proved_csv")
    # WHEN read in 4 KiB blocks
    batches, _ = _batches(data, ManifestFormat.CSV, 4096)
    blocks = -(-len(data) // 4096)
    # THEN the first block of bad lines is halved down to 256 bytes in vain (31 proofs at
    # most), and no block after it is
    assert flatten_batches(batches) == _reference(data, ManifestFormat.CSV, LIMIT)
    assert any(tried)
    assert blocks + 4 < len(tried) < blocks + 2 * 4096 // 256


def test_a_cr_inside_every_line_is_not_taken_for_crlf():
    data = b"bkt-1,first\n" + b"".join(b"bkt-1,k%d\rx\n" % i for i in range(5))
    batches = _batches(data, ManifestFormat.CSV, 1 << 20)[0]
    assert flatten_batches(batches) == _reference(data, ManifestFormat.CSV, LIMIT)
    _assert_exact_sizes(batches)


def test_a_plain_manifest_is_read_in_dense_batches():
    # GIVEN plain and URL-encoded CRLF Batch Operations CSVs, plain JSON Lines (LF or CRLF),
    # URI lines
    rows = [("bkt-1", f"photos/{i:05d}-é.jpg") for i in range(5000)]
    ascii_rows = [("bkt-1", f"photos/{i:05d} (1)+.jpg") for i in range(5000)]
    # URI keys are literal: `%`, `+` and `,` stay as they are; a second bucket now and then
    uri_rows = [(f"bkt-{i % 7 == 0:d}", f"a/{i:05d} %41+,é.jpg") for i in range(5000)]
    cases = [
        (ManifestFormat.CSV, b"".join(_csv_plain(b, k) + b"\n" for b, k in rows), rows),
        (
            ManifestFormat.CSV,
            b"".join(_csv_encoded(b, k) + b"\r\n" for b, k in ascii_rows),
            ascii_rows,
        ),
        (ManifestFormat.JSON_LINES, b"".join(_jsonl_plain(b, k) + b"\n" for b, k in rows), rows),
        (ManifestFormat.CSV, b"".join(_uri_plain(b, k) + b"\n" for b, k in uri_rows), uri_rows),
        (ManifestFormat.CSV, b"".join(_uri_plain(b, k) + b"\r\n" for b, k in rows), rows),
        (ManifestFormat.JSON_LINES, b"".join(_jsonl_key_first(*r) + b"\n" for r in rows), rows),
        (ManifestFormat.JSON_LINES, b"".join(_jsonl_plain(b, k) + b"\r\n" for b, k in rows), rows),
        (
            ManifestFormat.JSON_LINES,
            b"".join(_jsonl_key_first(*r) + b"\r\n" for r in rows),
            rows,
        ),
    ]
    for fmt, data, expected in cases:
        # WHEN read in 4 KiB blocks
        batches, reader = _batches(data, fmt, 4096)
        # THEN all but each block's first (straddling) line come dense (a block naming a
        # bucket not seen yet: read a column at a time), and nothing differs
        dense = sum(len(b) for b in batches if isinstance(b, DenseBatch))
        listed = sum(len(b) for b in batches if isinstance(b, ListedBatch | ParsedBatch))
        assert dense + listed == len(expected)
        assert dense > 0.95 * len(expected)
        assert flatten_batches(batches) == [
            ("ok", n, b, k, None) for n, (b, k) in enumerate(expected, 1)
        ]
        assert reader.position.offset == len(data)


def test_a_broken_gzip_stream_yields_every_batch_before_the_break_then_the_same_error():
    # GIVEN a gzip manifest cut in the middle
    data = b"".join(b"bkt-1,photos/%06d.jpg\n" % i for i in range(200_000))
    packed = gzip.compress(data)
    cut = io.BytesIO(packed[: len(packed) // 2])

    def read(batched: bool) -> tuple[list, ManifestReadError]:
        stream = DecodedStream(io.BytesIO(cut.getvalue()), name="cut")
        reader = RecordReader(stream, ManifestFormat.CSV)
        out = []
        with pytest.raises(ManifestReadError) as info:
            if batched:
                for batch in reader.iter_batches():
                    out += [r.line for r in batch.records(0, len(batch))]
            else:
                out.extend(r.line for r in reader)
        return out, info.value

    # WHEN read as batches and as items / THEN the same lines, then the same located error
    (by_batch, batch_error), (by_item, item_error) = read(True), read(False)
    assert by_batch == by_item == list(range(1, len(by_item) + 1))
    assert len(by_item) > 10_000
    assert (batch_error.error, batch_error.line) == (item_error.error, item_error.line)
    assert item_error.line == len(by_item) + 1


def test_manifest_reader_batches_an_inventory_report_like_its_items(tmp_path):
    # GIVEN an S3 Inventory report with two gzip CSV parts
    (tmp_path / "data").mkdir()
    for i in range(2):
        rows = "".join(f'"bkt-1","k{i}-{n}","1"\n' for n in range(50))
        (tmp_path / "data" / f"p{i}.csv.gz").write_bytes(gzip.compress(rows.encode()))
    doc = {"fileFormat": "CSV", "fileSchema": "Bucket, Key, Size"}
    doc["files"] = [{"key": f"data/p{i}.csv.gz"} for i in range(2)]
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    source = str(tmp_path / "manifest.json")
    # WHEN read both ways / THEN the same records, numbered across the parts, same counters
    with ManifestReader(source) as reader:
        batches = list(reader.iter_batches())
        batched = flatten_batches(batches)
        counters = (reader.lines_read, reader.uncompressed_bytes, reader.position)
    with ManifestReader(source) as reader:
        assert batched == [as_tuple(i) for i in reader]
        assert counters == (reader.lines_read, reader.uncompressed_bytes, reader.position)
    assert [t[1] for t in batched] == list(range(1, 101))
    parts = {(b.part, r.line > 50) for b in batches for r in b.records(0, len(b))}
    assert parts == {(0, False), (1, True)}


def test_a_json_array_of_uris_comes_in_batches_read_at_once_but_its_odd_element():
    data = json.dumps([f"s3://bkt-1/k{i}" for i in range(10_000)] + [7]).encode()
    batches, _ = _batches(data, ManifestFormat.JSON_ARRAY, 4096)
    # read at once: proved laid out like each span's first, or a column at a time
    assert sum(len(b) for b in batches if isinstance(b, ParsedBatch | SummedBatch)) > 9_000
    assert isinstance(batches[-1], ListedBatch)
    assert len(batches) > 1
    flat = flatten_batches(batches)
    assert flat[-1] == ("err", 10_001, "NotAnObject")
    assert [t[3] for t in flat[:-1]] == [f"k{i}" for i in range(10_000)]


@given(lo=st.integers(1, 10**7), width=st.integers(0, 10**4))
def test_digit_count_sum_counts_the_digits_of_a_range(lo, width):
    assert digit_count_sum(lo, lo + width) == sum(len(str(n)) for n in range(lo, lo + width))


@PROPS
@given(case=manifests(), gz=st.booleans())
@example(  # found by hypothesis: a NUL after a byte that is not UTF-8 makes it binary data
    case=(ManifestFormat.CSV, b"s3://bkt-1/first\ns3://bkt-1/\xff\ns3://bkt-0/\x00", 8), gz=False
)
def test_scan_reports_what_the_item_path_and_iter_chunks_give(tmp_path_factory, case, gz):
    # GIVEN a generated manifest file, plain or gzip
    _, data, _ = case
    path = tmp_path_factory.mktemp("scan") / "m"
    path.write_bytes(gzip.compress(data) if gz else data)
    settings_ = Settings.from_env(
        {"LAMBDAFLOW_CHUNK_ITEMS": "7", "LAMBDAFLOW_MAX_LINE_BYTES": "120"}
    )
    # WHEN scanned (the batch fast path)
    report = scan_manifest(str(path), settings=settings_)
    # THEN binary data (a NUL in text that is not UTF-8) is refused, as Split refuses it: the
    # whole generated manifest is scan's first block, the one the guard looks at
    try:
        refuse_binary(data)
    except ManifestReadError as refused:
        assert (report.complete, report.error) == (False, f"{NOT_A_MANIFEST}: {refused.message}")
        return
    # AND otherwise its counts equal the item-by-item read cut by iter_chunks
    items = list(iter_manifest(str(path), max_line_bytes=120))
    records = [i for i in items if isinstance(i, ManifestRecord)]
    chunks = list(
        iter_chunks(
            records, run=SCAN_RUN_ID, chunk_items=7, chunk_max_bytes=settings_.chunk_max_bytes
        )
    )
    assert report.complete
    assert (report.records, report.failed, report.chunks) == (
        len(records),
        len(items) - len(records),
        len(chunks),
    )
    assert report.chunk_sqs_units == sum(
        sqs_units(len(orjson.dumps(c.to_message()))) for c in chunks
    )
    assert report.failure_examples == _first_lines_by_error(items)


def _first_lines_by_error(items) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for item in items:
        if isinstance(item, ManifestLineError):
            lines = out.setdefault(item.error, [])
            if len(lines) < EXAMPLES_PER_ERROR:
                lines.append(item.line)
    return out


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("extra", [-1, 0, 1, 2])
def test_lines_at_the_length_limit_read_as_the_reference_says(shape, extra):
    # GIVEN plain rows and one whose line is `extra` bytes longer than the limit
    fmt, plain, _ = SHAPES[shape]
    base = len(plain("bkt-1", ""))
    rows = [plain("bkt-1", f"k{i}") for i in range(6)]
    rows.insert(3, plain("bkt-1", "z" * (LIMIT + extra - base)))
    data = b"\n".join(rows) + b"\n"
    assert len(rows[3]) == LIMIT + extra
    # WHEN read as batches / THEN a line over the limit is a failure, one at it a record
    batches = _batches(data, fmt, 1 << 20)[0]
    assert flatten_batches(batches) == _reference(data, fmt, LIMIT)
    assert any(isinstance(b, DenseBatch) for b in batches) == (extra <= 0)


@PROPS
@given(case=manifests(), chunk_items=st.integers(1, 9))
def test_a_reader_resumed_after_any_chunk_span_reads_exactly_the_rest(case, chunk_items):
    # GIVEN the chunk spans of a manifest and all its records
    fmt, data, block = case
    batches, reader = _batches(data, fmt, block)
    records = [r for b in batches for r in b.records(0, len(b))]
    spans = iter_chunk_spans(batches, run="r", chunk_items=chunk_items, chunk_max_bytes=10**6)
    done = 0
    for span in spans:
        done += span.count
        # WHEN a new reader starts where the span says
        line, offset, part = span.resume_after()
        resumed = RecordReader(
            io.BytesIO(data[offset:]),
            fmt,
            first_line=line,
            start_offset=offset,
            layout=reader.position.layout,
            max_line_bytes=LIMIT,
        )
        # THEN it yields exactly the records after the span's last one
        assert part == 0
        assert [r for r in resumed if isinstance(r, ManifestRecord)] == records[done:]
