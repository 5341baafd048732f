"""Header-CSV and Inventory blocks read dense give exactly what the line-by-line parser gives.

`pipeline.manifest.dense_columns` proves whole blocks of `"bucket","key",…` rows (header CSVs,
S3 Inventory parts with URL-encoded keys) plain with byte operations; these tests hold its
batches — records, failures, line numbers, restart points, item sizes, chunk cuts — to an
independent reference built here from `str.split` and the per-line parser, on generated
manifests mixing plain rows with every irregularity it must refuse, over tiny read blocks.
"""

from __future__ import annotations

import io
from urllib.parse import quote, quote_plus

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.failures import ManifestLineError
from pipeline.manifest.batch import DenseBatch
from pipeline.manifest.dense_columns import ColumnsBatch, columns_check
from pipeline.manifest.parse import (
    CsvKind,
    CsvLayout,
    detect_csv_layout,
    layout_from_names,
    parse_csv_row,
)
from pipeline.manifest.quoted import ends_inside_quotes
from pipeline.manifest.reader import ManifestFormat, ManifestRecord, RecordReader
from pipeline.split.chunking import iter_chunk_spans
from tests.unit.manifest_helpers import as_tuple, assert_spans_are_the_chunks, flatten_batches

PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMIT = 120
BUCKETS = [f"bkt-{i}" for i in range(10)] + ["bucket-long-name"]
HEADER = layout_from_names(["Bucket", "Key", "Size"], kind=CsvKind.HEADER, is_key_encoded=False)
SCHEMA = layout_from_names(["Bucket", "Key", "Size"], kind=CsvKind.SCHEMA, is_key_encoded=True)

bucket = st.sampled_from(BUCKETS[:2]) | st.sampled_from(BUCKETS[-2:]) | st.sampled_from(BUCKETS)
ESCAPES = ["%41", "%2F", "%2b", "%20", "%C3%A9", "%0A", "%22", "%5C", "%7F", "%80", "%e2%82", "%"]
nasty_key = st.lists(
    st.sampled_from([*'ab/é中😀 ,"+%\\\r\n\t\x7f\x00', *ESCAPES]), max_size=12
).map("".join)
plain_key = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=',"\\\u2028\u2029'),
    min_size=1,
    max_size=24,
)
plain_field = st.lists(st.sampled_from(["7", "x", "%41", "%2F", "+", " "]), max_size=4).map("".join)
tail = st.lists(st.text("0123456789abc-:. %+", max_size=8), min_size=0, max_size=2)

ODD = [
    b"",
    b" ",
    b"\r",
    b'"bkt-1",""',
    b'"bkt-1","",""',
    b'"bkt-1","k"',
    b'"bkt-1","k","1","x"',
    b'"bkt-1","a,b","1"',
    b'"bkt-1","a""b","1"',
    b'"bkt-1","a"b","1"',
    b'"bkt-1" ,"k","1"',
    b'"bkt-1", "k","1"',
    b'"bkt-1","k" ,"1"',
    b'"bkt-1","k","1" ',
    b' "bkt-1","k","1"',
    b'x"bkt-1","k","1"',
    b'"bkt-1","k","1"x',
    b'"bkt-1","k",1',
    b'bkt-1,"k","1"',
    b"bkt-1,k,1",
    b"bkt-1,k",
    b'"bkt-1","k\\x","1"',
    b'"bkt-1","k\tx","1"',
    b'"bkt-1","k\rx","1"',
    b'"bkt-1","k\r","1"',
    b'"bkt-1","k","1\r"',
    b'"bkt-1","open',
    b'"bkt-1","a%2","1"',
    b'"bkt-1","a%zz","1"',
    b'"bkt-1","%C3%A9","1"',
    b'"bkt-1","%C3","1"',
    b'"bkt-1","a%0Ab","1"',
    b'"bkt-1","a%22b","1"',
    b'"bkt-1","a%5Cb","1"',
    b'"bkt-1","a%7Fb","1"',
    b'"bkt-1","a+b%2B%2f","1"',
    b'"bkt-1","k","50%"',
    b'"bkt-1","\xff","1"',
    b'"bkt-1","\xc3(","1"',
    b'"b!d","k","1"',
    b'"bkt-9","k","1"',
    b'"bkt-1x","k","1"',
    b'"","k","1"',
    b'"Bucket","Key","Size"',
    b'"bkt-1","' + b"x" * 200 + b'","1"',
    b'"s3://bkt-1/k","1"',
]


def _row(b: str, k: str, rest: list[str], *, quoted: bool, encoded: bool) -> bytes:
    fields = [b, quote_plus(k, safe="/") if encoded else k, *rest]
    if quoted:
        return ",".join(f'"{f}"' for f in fields).encode()
    return ",".join(fields).encode()


class _LineByLine(RecordReader):
    """The reference path: the same reader with every dense check switched off."""

    def _shape(self, run):
        return None


def _reference(data: bytes, layout: CsvLayout | None, **kwargs) -> list[tuple]:
    """Items of a whole CSV manifest parsed line by line (quoted records across lines joined)."""
    reader = _LineByLine(io.BytesIO(data), ManifestFormat.CSV, layout=layout, max_line_bytes=LIMIT)
    return [as_tuple(item) for item in reader]


def _split_reference(data: bytes, layout: CsvLayout | None) -> list[tuple]:
    """The same from `str.split` and the per-line parser alone (no line holds a quoted newline)."""
    lines = data.split(b"\n")
    if not lines[-1]:
        lines.pop()
    out = []
    for n, raw in enumerate(lines, 1):
        if len(raw) > LIMIT:
            out.append(("err", n, "LineTooLong"))
            continue
        if not raw or raw.isspace():
            continue
        try:
            text = raw.decode().removesuffix("\r")
        except UnicodeDecodeError:
            out.append(("err", n, "NotUtf8"))
            continue
        if layout is None:
            layout = detect_csv_layout(text, n)
            assert not isinstance(layout, ManifestLineError)
            if layout.kind is CsvKind.HEADER:
                continue
        out.append(as_tuple(parse_csv_row(text, n, layout)))
    return out


@st.composite
def manifests(draw):
    """(data, layout given from outside or None, block size): header CSV or Inventory part."""
    is_inventory = draw(st.booleans())
    quoted = draw(st.booleans()) or (is_inventory and draw(st.booleans()))  # bare ones too
    extra = draw(tail)
    width = len(extra)
    names = ["Bucket", "Key", *(f"c{i}" for i in range(width))]
    rows = [] if is_inventory else [",".join(f'"{n}"' if quoted else n for n in names).encode()]
    rows.append(_row("bkt-1", "first", extra, quoted=quoted, encoded=is_inventory))
    for _ in range(draw(st.integers(0, 50))):
        kind = draw(st.integers(0, 9))
        if kind < 7:  # mostly plain rows, so whole blocks can be dense
            rest = [draw(plain_field) for _ in range(width)]
            rows.append(_row(draw(bucket), draw(plain_key), rest, quoted=quoted, encoded=True))
        elif kind < 9:
            encoded = is_inventory and draw(st.booleans())
            rest = draw(st.lists(st.text(max_size=3), min_size=width, max_size=width))
            rows.append(_row(draw(bucket), draw(nasty_key), rest, quoted=quoted, encoded=encoded))
        else:
            rows.append(draw(st.sampled_from(ODD)))
    eol = b"\r\n" if draw(st.booleans()) else b"\n"
    data = eol.join(rows) + (eol if draw(st.booleans()) else b"")
    layout = None
    if is_inventory:
        names = ["Bucket", "Key", *(f"c{i}" for i in range(width))]
        layout = layout_from_names(names, kind=CsvKind.SCHEMA, is_key_encoded=True)
    return data, layout, draw(st.integers(8, 400))


def _reader(data: bytes, layout: CsvLayout | None, block: int, **kwargs) -> RecordReader:
    return RecordReader(
        io.BytesIO(data),
        ManifestFormat.CSV,
        layout=layout,
        max_line_bytes=LIMIT,
        block_bytes=block,
        **kwargs,
    )


def assert_batches_equal_the_reference(case) -> None:
    """Batches read in tiny blocks are the line-by-line reference's records and failures."""
    # GIVEN a CSV manifest mixing plain and nasty rows, read in tiny blocks
    data, layout, block = case
    # WHEN read as batches
    reader = _reader(data, layout, block)
    batches = list(reader.iter_batches())
    # THEN the records and failures are the reference's, and the reader ends where items do
    expected = _reference(data, layout)
    assert flatten_batches(batches) == expected
    lines = data.decode("utf-8", "replace").split("\n")
    if not any(map(ends_inside_quotes, lines)):
        assert expected == _split_reference(data, layout)  # the reference is not circular
    full = _LineByLine(io.BytesIO(data), ManifestFormat.CSV, layout=layout, max_line_bytes=LIMIT)
    assert [as_tuple(i) for i in full] == expected
    assert (reader.position, reader.lines_read) == (full.position, full.lines_read)


def assert_restart_points_and_item_sizes(case) -> None:
    """Every batch's item sizes and restart points are the item reader's."""
    # GIVEN the restart point the item reader reports after each record
    data, layout, block = case
    item_reader = _LineByLine(
        io.BytesIO(data), ManifestFormat.CSV, layout=layout, max_line_bytes=LIMIT
    )
    expected = [
        (as_tuple(item), (item_reader.position.line, item_reader.position.offset))
        for item in item_reader
        if isinstance(item, ManifestRecord)
    ]
    # WHEN the same records come in batches
    got = []
    for batch in _reader(data, layout, block).iter_batches():
        items = batch.items(0, len(batch))
        sizes = [len(orjson.dumps(item)) for item in items]
        # THEN every size is the serialized size, one by one and by any range
        assert batch.item_sizes(0, len(batch)) == sizes
        assert [batch.item_bytes(i, j) for i in range(len(batch)) for j in (i, i + 1)] == [
            s for size in sizes for s in (0, size)
        ]
        assert batch.item_bytes(0, len(batch)) == sum(sizes)
        recs = batch.records(0, len(batch))
        got += [(as_tuple(r), batch.resume_after(i)) for i, r in enumerate(recs)]
    # AND every record restarts where the item reader says
    assert got == expected


def assert_spans_cut_and_encode_as_records_do(case, chunk_items: int, cap: int) -> None:
    """The batches' chunk spans are cut, encoded and sized as the records' chunks are."""
    # GIVEN the records of a manifest, as items and as batches
    data, layout, block = case
    records = [
        i
        for i in _LineByLine(
            io.BytesIO(data), ManifestFormat.CSV, layout=layout, max_line_bytes=LIMIT
        )
        if isinstance(i, ManifestRecord)
    ]
    batches = list(_reader(data, layout, block).iter_batches())
    # WHEN both are cut into chunks / THEN the cuts, messages and sizes agree exactly
    assert_spans_are_the_chunks(batches, records, chunk_items=chunk_items, cap=cap)


@PROPS
@given(case=manifests())
def test_batches_equal_the_line_by_line_reference(case):
    assert_batches_equal_the_reference(case)


@PROPS
@given(case=manifests())
def test_restart_points_and_item_sizes_equal_the_item_reader(case):
    assert_restart_points_and_item_sizes(case)


@PROPS
@given(case=manifests(), chunk_items=st.integers(1, 9), cap=st.integers(60, 500))
def test_chunk_spans_cut_and_encode_what_iter_chunks_does(case, chunk_items, cap):
    assert_spans_cut_and_encode_as_records_do(case, chunk_items, cap)


@PROPS
@given(case=manifests(), chunk_items=st.integers(1, 9))
def test_a_reader_resumed_after_any_span_reads_exactly_the_rest(case, chunk_items):
    data, layout, block = case
    reader = _reader(data, layout, block)
    batches = list(reader.iter_batches())
    records = [r for b in batches for r in b.records(0, len(b))]
    done = 0
    for span in iter_chunk_spans(batches, run="r", chunk_items=chunk_items, chunk_max_bytes=10**6):
        done += span.count
        line, offset, _ = span.resume_after()
        resumed = RecordReader(
            io.BytesIO(data[offset:]),
            ManifestFormat.CSV,
            first_line=line,
            start_offset=offset,
            layout=reader.position.layout,
            max_line_bytes=LIMIT,
        )
        assert [r for b in resumed.iter_batches() for r in b.records(0, len(b))] == records[done:]


CASES = [(odd, eol, inv) for odd in ODD for eol in (b"\n", b"\r\n") for inv in (False, True)]


@pytest.mark.parametrize(
    ("odd", "eol", "inventory"), CASES, ids=[f"{i:d}-{o + e!r}"[:48] for o, e, i in CASES]
)
def test_one_irregular_line_among_plain_rows_reads_as_the_reference_says(odd, eol, inventory):
    # GIVEN plain quoted rows around one irregular line, all in one read block
    encoded = inventory
    key = "dir/k {}~+" if encoded else "dir/k {}é+"  # an escaped é takes the line parser
    rows = [_row("bkt-1", key.format(i), [str(i)], quoted=True, encoded=encoded) for i in range(6)]
    data = eol.join([*rows[:3], odd, *rows[3:]]) + eol  # a header read already: layout given
    layout = SCHEMA if inventory else HEADER
    # WHEN read as batches
    batches = list(_reader(data, layout, 1 << 20).iter_batches())
    # THEN exactly the reference's items and sizes, whether the block went dense or not
    assert flatten_batches(batches) == _reference(data, layout)
    for batch in batches:
        sizes = [len(orjson.dumps(item)) for item in batch.items(0, len(batch))]
        assert batch.item_sizes(0, len(batch)) == sizes
        assert batch.item_bytes(0, len(batch)) == sum(sizes)


@pytest.mark.parametrize(
    ("header", "row", "layout"),
    [
        (b'"Bucket","Key","Size"', '"{b}","{k}","{i}"', None),
        (b"bucket,key,size,etag", "{b},{k},{i},e{i}", None),
        (b'"bucket","key"', '"{b}","{k}"', None),
        (b"bucket,key", "{b},{k}", None),
        (b"", '"{b}","{e}","{i}","STANDARD"', SCHEMA),
        (
            b"",
            '"{b}","{e}"',
            layout_from_names(["Bucket", "Key"], kind=CsvKind.SCHEMA, is_key_encoded=True),
        ),
    ],
)
@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_plain_header_and_inventory_manifests_are_read_dense(header, row, layout, eol):
    # GIVEN a header CSV or Inventory part of 5,000 rows, two buckets of different lengths
    keys = [
        (BUCKETS[10] if i % 9 == 0 else "bkt-1", f"photos/{i:05d} (1)+é.jpg") for i in range(5000)
    ]
    if layout is not None:  # URL-encoded: escapes of non-ASCII bytes take the line parser
        keys = [(b, k.replace("é", "e%")) for b, k in keys]
    lines = [row.format(b=b, k=k, e=quote_plus(k, safe="/"), i=i) for i, (b, k) in enumerate(keys)]
    data = (header + eol if header else b"") + eol.join(x.encode() for x in lines) + eol
    # WHEN read in 4 KiB blocks
    reader = _reader(data, layout, 4096)
    batches = list(reader.iter_batches())
    # THEN all but each block's first (straddling) line come dense, and nothing differs
    dense = sum(len(b) for b in batches if isinstance(b, DenseBatch))
    assert dense > 0.95 * len(keys)
    first = 1 + bool(header)
    assert flatten_batches(batches) == [
        ("ok", n, b, k, None) for n, (b, k) in enumerate(keys, first)
    ]
    assert reader.position.offset == len(data)
    assert all(isinstance(b, ColumnsBatch) for b in batches if isinstance(b, DenseBatch))
    for batch in batches:
        sizes = [len(orjson.dumps(item)) for item in batch.items(0, len(batch))]
        assert batch.item_sizes(0, len(batch)) == sizes
        assert batch.item_bytes(0, len(batch)) == sum(sizes)


@pytest.mark.parametrize(
    "names",
    [["Key", "Bucket"], ["Bucket", "Size", "Key"], ["uri"]],
)
def test_other_column_orders_are_left_to_the_line_parser(names):
    layout = layout_from_names(names, kind=CsvKind.HEADER, is_key_encoded=False)
    assert columns_check(layout) is None


def test_a_percent_in_a_literal_header_csv_key_stays_literal():
    data = b'"bucket","key","n"\n' + b"".join(b'"bkt-1","a%%41+%d","1"\n' % i for i in range(99))
    batches = list(_reader(data, None, 1024).iter_batches())
    assert any(isinstance(b, ColumnsBatch) for b in batches)
    assert flatten_batches(batches) == _reference(data, None)
    assert flatten_batches(batches)[-1][3] == "a%41+98"


@pytest.mark.parametrize("extra", [-1, 0, 1])
def test_lines_at_the_length_limit_read_as_the_reference_says(extra):
    base = len(b'"bkt-1","","1"')
    rows = [b'"bkt-1","k%d","1"' % i for i in range(6)]
    rows.insert(3, b'"bkt-1","' + b"z" * (LIMIT + extra - base) + b'","1"')
    data = b"\n".join(rows) + b"\n"  # the header read already: its layout is given
    batches = list(_reader(data, HEADER, 1 << 20).iter_batches())
    assert flatten_batches(batches) == _reference(data, HEADER)
    assert any(isinstance(b, DenseBatch) for b in batches) == (extra <= 0)


def test_inventory_keys_encoded_as_s3_writes_them_decode_like_the_reference():
    # `quote` (not `quote_plus`) too: `%20` for a space, `%2B` for a plus, `%2F` for a slash
    keys = [f"a b+c/{i}~!*'()" for i in range(300)]
    data = b"".join(f'"bkt-1","{quote(k, safe="")}","{i}"\n'.encode() for i, k in enumerate(keys))
    batches = list(_reader(data, SCHEMA, 2048).iter_batches())
    assert any(isinstance(b, ColumnsBatch) for b in batches)
    assert [t[3] for t in flatten_batches(batches)] == keys


@pytest.mark.parametrize("quoted", [True, False])
@pytest.mark.parametrize("width", [0, 1, 2])
@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_escapes_are_counted_in_their_own_key_only(quoted, width, eol):
    # GIVEN Inventory rows whose keys start and end with escapes, and whose other fields
    # start and end with escapes too (the fields around a key must not add to its count)
    names = ["Bucket", "Key", *(f"c{i}" for i in range(width))]
    layout = layout_from_names(names, kind=CsvKind.SCHEMA, is_key_encoded=True)
    rest = ["%41x%2F", "%20"][:width]
    keys = [f"%2F{i}a%2B%20" if i % 2 else f"k{i}" for i in range(40)]
    cells = [[BUCKETS[10], k, *rest] for k in keys]  # one bucket: known after line 1
    if quoted:
        data = eol.join(",".join(f'"{c}"' for c in row).encode() for row in cells) + eol
    else:
        data = eol.join(",".join(row).encode() for row in cells) + eol
    # WHEN read dense in one block
    batches = list(_reader(data, layout, 1 << 20).iter_batches())
    # THEN all but the first line (read before the bucket is known) are one ColumnsBatch,
    # whose records and sizes, one by one and over every range, are exactly the reference's
    assert flatten_batches(batches) == _reference(data, layout)
    batch = batches[-1]
    assert isinstance(batch, ColumnsBatch)
    assert len(batch) == len(keys) - 1
    n = len(batch)
    sizes = [len(orjson.dumps(item)) for item in batch.items(0, n)]
    assert batch.item_sizes(0, n) == sizes
    assert [batch.item_bytes(i, j) for i in range(n) for j in range(i, n + 1)] == [
        sum(sizes[i:j]) for i in range(n) for j in range(i, n + 1)
    ]


@pytest.mark.parametrize("odd", ["a%", "a%2", "a%2g", "a%g2", "a%22", "a%5c", "a%7F", "a%1F"])
@pytest.mark.parametrize("quoted", [True, False])
@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_a_percent_that_is_no_plain_escape_at_the_block_end_reads_as_the_reference_says(
    odd, quoted, eol
):
    # GIVEN two-column Inventory rows whose last key (last bytes of the block) is no plain escape
    layout = layout_from_names(["Bucket", "Key"], kind=CsvKind.SCHEMA, is_key_encoded=True)
    keys = [*(f"d%2F{i}" for i in range(20)), odd]
    fmt = '"bkt-1","{}"' if quoted else "bkt-1,{}"
    data = eol.join(fmt.format(k).encode() for k in keys) + eol
    # WHEN read in one block / THEN exactly the reference's items, and sizes where dense
    batches = list(_reader(data, layout, 1 << 20).iter_batches())
    assert flatten_batches(batches) == _reference(data, layout)
    for batch in batches:
        sizes = [len(orjson.dumps(item)) for item in batch.items(0, len(batch))]
        assert batch.item_sizes(0, len(batch)) == sizes
