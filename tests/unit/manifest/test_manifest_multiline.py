"""CSV records whose quoted key holds a newline: one record, numbered by its first line.

The CSVs are written the way pandas (`DataFrame.to_csv(index=False)`: csv module, QUOTE_MINIMAL,
`\\n` line ends) and pyarrow (`pyarrow.csv.write_csv`: header names always quoted, strings
quoted when needed, `\\n` line ends) write them, with the stdlib csv module and by hand; neither
library is a dependency.
"""

from __future__ import annotations

import csv
import gzip
import io

import pytest

from pipeline.cli.scan import scan_manifest
from pipeline.config import Settings
from pipeline.manifest.quoted import ends_inside_quotes
from pipeline.manifest.reader import ManifestReader
from pipeline.manifest.stream import ManifestFormat, RecordReader
from tests.unit.manifest_helpers import as_tuple, read_all

KEYS = [
    "plain.jpg",
    "new\nline.jpg",
    "comma,key.jpg",
    'quote"key.jpg',
    "two\n\nblank.jpg",
    "crlf\r\nkey.jpg",
    "last.jpg",
]


def _pandas_csv(rows: list[tuple[str, str]], *, quoting: int = csv.QUOTE_MINIMAL) -> bytes:
    """What `pd.DataFrame(rows, columns=["bucket", "key"]).to_csv(index=False)` writes."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=quoting, lineterminator="\n")
    writer.writerow(["bucket", "key"])
    writer.writerows(rows)
    return out.getvalue().encode()


def _pyarrow_csv(rows: list[tuple[str, str]]) -> bytes:
    """What `pyarrow.csv.write_csv` writes: quoted header names, strings quoted when needed."""
    out = io.StringIO()
    out.write('"bucket","key"\n')
    csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def _expected(rows: list[tuple[str, str]], first_line: int = 2) -> list[tuple]:
    """Records numbered by their first physical line (the header is line 1)."""
    out, line = [], first_line
    for bucket, key in rows:
        out.append(("ok", line, bucket, key, None))
        line += key.count("\n") + 1
    return out


ROWS = [("bkt", key) for key in KEYS]


@pytest.mark.parametrize(
    "writer",
    [_pandas_csv, _pyarrow_csv, lambda rows: _pandas_csv(rows, quoting=csv.QUOTE_ALL)],
    ids=["pandas", "pyarrow", "quote_all"],
)
@pytest.mark.parametrize("is_gzip", [True, False])
def test_a_quoted_key_holding_a_newline_is_one_record(tmp_path, writer, is_gzip):
    data = writer(ROWS)
    path = tmp_path / "m.csv"
    path.write_bytes(gzip.compress(data) if is_gzip else data)
    assert data.count(b"\n") > len(ROWS) + 1  # really spans physical lines
    assert read_all(path) == _expected(ROWS)


def test_batches_and_items_agree_when_records_straddle_read_blocks():
    # GIVEN many multi-line records read in blocks of a few bytes
    rows = [("bkt", f"k{i}\nsecond {i}.jpg" if i % 3 else f"k{i}.jpg") for i in range(200)]
    data = _pandas_csv(rows)
    for block in (7, 64, 1000):
        items = list(RecordReader(io.BytesIO(data), ManifestFormat.CSV, block_bytes=block))
        reader = RecordReader(io.BytesIO(data), ManifestFormat.CSV, block_bytes=block)
        batched = [
            as_tuple(r)
            for batch in reader.iter_batches()
            for r in [*batch.records(0, len(batch)), *batch.failures]
        ]
        assert [as_tuple(i) for i in items] == _expected(rows)
        assert sorted(batched, key=lambda t: t[1]) == _expected(rows)


def test_position_after_a_multi_line_record_is_past_its_last_line():
    data = _pandas_csv([("bkt", "a\nb.jpg"), ("bkt", "c.jpg")])
    reader = RecordReader(io.BytesIO(data), ManifestFormat.CSV)
    first = next(iter(reader))
    assert (first.line, first.key) == (2, "a\nb.jpg")
    end = data.index(b"c.jpg") - len(b"bkt,")
    assert (reader.position.line, reader.position.offset) == (4, end)


def test_a_stray_quote_never_swallows_the_good_lines_after_it(tmp_path):
    # GIVEN an unclosed quote on line 2 and 2,000 good lines after it
    rows = b"".join(b"bkt,k%d.jpg\n" % i for i in range(2_000))
    path = tmp_path / "m.csv"
    path.write_bytes(b'bkt,a.jpg\nbkt,"never closed.jpg\n' + rows)
    # THEN line 2 is the one failure and every line after it a record
    items = read_all(path)
    assert items[:2] == [("ok", 1, "bkt", "a.jpg", None), ("err", 2, "BadCsv")]
    assert items[2:] == [("ok", 3 + i, "bkt", f"k{i}.jpg", None) for i in range(2_000)]


def test_a_joined_row_that_is_no_valid_row_is_read_line_by_line(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b'bkt,"open\nbkt,"b.jpg"\nbkt,c.jpg\n')
    assert read_all(path) == [
        ("err", 1, "BadCsv"),
        ("ok", 2, "bkt", "b.jpg", None),
        ("ok", 3, "bkt", "c.jpg", None),
    ]


def test_scan_counts_multi_line_records_once(tmp_path):
    path = tmp_path / "m.csv.gz"
    path.write_bytes(gzip.compress(_pyarrow_csv(ROWS)))
    report = scan_manifest(str(path), settings=Settings.from_env({}, chunk_items=3))
    assert (report.records, report.failed, report.chunks, report.complete) == (7, 0, 3, True)
    assert report.lines == _pyarrow_csv(ROWS).count(b"\n")


def test_an_inventory_part_with_a_newline_in_a_key(tmp_path):
    # S3 Inventory quotes every field and URL-encodes keys, so its rows never span lines; a
    # quoted raw newline is still read as one record.
    part = tmp_path / "data" / "p.csv.gz"
    part.parent.mkdir()
    part.write_bytes(gzip.compress(b'"bkt","a%0Ab.jpg"\n"bkt","c\nd.jpg"\n"bkt","e.jpg"\n'))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        '{"fileFormat": "CSV", "fileSchema": "Bucket, Key", "files": [{"key": "data/p.csv.gz"}]}'
    )
    got = [as_tuple(i) for i in ManifestReader(str(manifest))]
    assert got == [
        ("ok", 1, "bkt", "a\nb.jpg", None),
        ("ok", 2, "bkt", "c\nd.jpg", None),
        ("ok", 4, "bkt", "e.jpg", None),
    ]


@pytest.mark.parametrize(
    ("text", "is_open"),
    [
        ('bkt,"a', True),
        ('bkt,"a""', True),
        ('bkt,"a"""', False),
        ('bkt,a"b', False),
        ('"bkt","k', True),
        ('"bkt","k",""', False),
        ('bkt,"a"x,"', True),
        ("bkt,k", False),
    ],
)
def test_ends_inside_quotes_reads_quoting_as_the_csv_module_does(text, is_open):
    assert ends_inside_quotes(text) is is_open
