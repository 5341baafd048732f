"""CSV blocks of any layout, read a column at a time, exactly as line by line.

`pipeline.manifest.parsed_csv` reads a block the dense proofs do not take (a header putting
`key` before `bucket` or the URI after a label or pandas' index column, URI lines in quotes)
by decoding it once and cutting columns; `scan` proves most such blocks laid out like their
first line instead (`pipeline.manifest.dense_csv_template`). Held here to the reading with
both switched off (every line through `parse.parse_csv_row`) on manifests of every layout,
with fields bare or quoted, keys plain or awkward (commas, quotes, `%` escapes, `+`,
non-ASCII), lines ending CRLF, and defects: empty keys, bad buckets, short and long rows, a
quote left open, a quoted field over two lines, blank lines, a long line.
"""

from __future__ import annotations

import csv
import io
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.manifest import stream
from pipeline.manifest.dense_columns import SummedBatch
from pipeline.manifest.parsed_json import ParsedBatch
from pipeline.manifest.reader import ManifestFormat, RecordReader
from tests.unit.manifest_helpers import assert_spans_are_the_chunks, flatten_batches

HEADERS = {  # header row: the fields of a row for (bucket, key, version)
    "key,bucket": lambda b, k, v: [k, b],
    "label,uri": lambda b, k, v: ["7", f"s3://{b}/{k}"],
    ",uri": lambda b, k, v: ["12", f"s3://{b}/{k}"],
    "uri,version_id": lambda b, k, v: [f"s3://{b}/{k}", v],
    "size,key,bucket,version_id": lambda b, k, v: ["5", k, b, v],
    "Bucket,Key,Size": lambda b, k, v: [b, k, "5"],
    "": lambda b, k, v: [f"s3://{b}/{k}"],  # URI lines, no header
    None: lambda b, k, v: [b, k, v] if v else [b, k],  # Batch rows, no header
}
key = st.lists(
    st.sampled_from([*'ab/ ,"%+2é', "%22", "%41", "%e2%80%a8"]), min_size=1, max_size=6
).map("".join)
bucket = st.sampled_from(["bk", "bk.b", "Legacy_Bucket"])
version = st.sampled_from(["", "v1", "3.+_x"])
DEFECTS = [
    "",
    "  ",
    "bk,",
    ",k",
    "no such bucket,k",
    '"open,k',
    "bk,k,v,extra",
    "s3://bk",
    "x\r",
    "s3://bk/a,b",  # a URI line read whole, commas and quotes in its key
    's3://bk/a"b,c',
    'bk,"a\nb"',  # a quoted field across two lines: one record of two lines
    '"s3://bk/a\nb"',
]


def _row(fields: list[str], quoting: int) -> str:
    out = io.StringIO()
    csv.writer(out, quoting=quoting, lineterminator="").writerow(fields)
    return out.getvalue()


@st.composite
def manifests(draw) -> tuple[bytes, int]:
    """(a CSV manifest of one layout, a read size), mostly records, a defect or two."""
    header = draw(st.sampled_from(list(HEADERS)))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    fields = HEADERS[header]
    rows = [
        _row(fields(draw(bucket), draw(key), draw(version)), quoting)
        for _ in range(draw(st.integers(1, 80)))
    ]
    for _ in range(draw(st.integers(0, 2))):
        rows.insert(draw(st.integers(0, len(rows))), draw(st.sampled_from(DEFECTS)))
    if draw(st.integers(0, 9)) == 0:
        rows.insert(draw(st.integers(0, len(rows))), _row(["bk", "k" * 200], quoting))
    head = [] if not header else [header]
    first = [] if header is not None else [_row(["bk", "first"], quoting)]
    end = "\r\n" if draw(st.integers(0, 4)) == 0 else "\n"  # as Windows tools write it
    data = end.join([*head, *first, *rows]) + end
    return data.encode(), draw(st.integers(64, 2048))


def _read(data: bytes, block: int) -> list:
    reader = RecordReader(
        io.BytesIO(data), ManifestFormat.CSV, block_bytes=block, max_line_bytes=120
    )
    return list(reader.iter_batches())


@settings(max_examples=300, deadline=None)
@given(case=manifests(), chunk_items=st.integers(1, 40))
def test_manifests_read_and_cut_exactly_what_they_do_without_the_path(case, chunk_items):
    # GIVEN a CSV manifest of any layout, read in small blocks
    data, block = case
    # WHEN read with the column path and without it
    batches = _read(data, block)
    with (
        mock.patch.object(stream, "parsed_csv_batch", return_value=None),
        mock.patch.object(stream, "dense_csv_template_batch", return_value=None),
    ):
        without = _read(data, block)
    # THEN the records and failures are the same, line for line
    assert flatten_batches(batches) == flatten_batches(without)
    # AND the restart points and item sizes are too, and the chunks are cut the same
    records = [r for b in without for r in b.records(0, len(b))]
    restarts = [b.resume_after(i) for b in without for i in range(len(b))]
    assert [b.resume_after(i) for b in batches for i in range(len(b))] == restarts
    assert_spans_are_the_chunks(batches, records, chunk_items=chunk_items, cap=5000)


def test_layouts_the_proofs_do_not_take_are_read_a_column_at_a_time():
    # GIVEN CSVs as tools write them: a key before its bucket, a URI after a label or
    # pandas' index column, URI lines each quoted
    keys = [f"photos/{i:05d} x,é.jpg" for i in range(3000)]
    for header in ("key,bucket", "label,uri", ",uri", ""):
        rows = [_row(HEADERS[header]("bk", k, ""), csv.QUOTE_MINIMAL) for k in keys]
        if header == "":
            rows = [_row([f"s3://bk/{k}"], csv.QUOTE_ALL) for k in keys]
        data = ("\n".join([header, *rows] if header else rows) + "\n").encode()
        # WHEN read in 4 KiB blocks
        batches = _read(data, 4096)
        # THEN all but each block's first (straddling) line are read at once, exactly
        whole = sum(len(b) for b in batches if isinstance(b, ParsedBatch | SummedBatch))
        assert whole > 0.95 * len(keys)
        first = 1 if header == "" else 2
        assert flatten_batches(batches) == [
            ("ok", n, "bk", k, None) for n, k in enumerate(keys, first)
        ]


def test_a_batch_row_too_wide_and_a_bare_uri_line_among_quoted_ones_read_as_the_reference():
    # GIVEN a Batch manifest with one row of four fields, and quoted URI lines with one bare
    # line whose key holds a quote and a comma (read whole by the reference)
    batch_rows = b"bk,first\n" + b"bk,k\n" * 50 + b"bk,k,v,extra\n" + b"bk,k\n" * 50
    uri_lines = b'"s3://bk/q"\n' * 50 + b's3://bk/a"b,c\n' + b'"s3://bk/q"\n' * 50
    for data in (batch_rows, uri_lines):
        # WHEN read with the column path and without it THEN the same, line for line
        batches = _read(data, 1 << 16)
        with mock.patch.object(stream, "parsed_csv_batch", return_value=None):
            assert flatten_batches(batches) == flatten_batches(_read(data, 1 << 16))
    assert ("err", 52, "BadFieldCount") in flatten_batches(_read(batch_rows, 1 << 16))
    assert ("ok", 51, "bk", 'a"b,c', None) in flatten_batches(_read(uri_lines, 1 << 16))
