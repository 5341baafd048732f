"""The resume seam: after any item, `position` restarts a reader right after that item."""

from __future__ import annotations

import io

import pytest

from pipeline.manifest.reader import ManifestFormat, ManifestReader, RecordReader, sniff_format
from pipeline.manifest.source import open_decoded
from tests.unit.manifest_helpers import as_tuple, write

LINE_CASES = {
    "batch_csv": (
        ManifestFormat.CSV,
        b"\xef\xbb\xbfbkt,a.jpg\r\n\nbkt," + b"x" * 300 + b"\nbkt,b%20c.jpg\nbad\nbkt,d.jpg",
    ),
    "header_csv": (ManifestFormat.CSV, b"bucket,key\nbkt,a.jpg\n\nbkt,b.jpg\nbkt\nbkt,c.jpg\n"),
    "uri_csv": (ManifestFormat.CSV, b"s3://bkt/a\ns3://bkt/b\n\nnope\ns3://bkt/c\n"),
    "json_array": (
        ManifestFormat.JSON_ARRAY,
        b'\xef\xbb\xbf [ "s3://bkt/a", 7,\n{"uri": "s3://bkt/b", "n": {"x": "]"}}, {oops}, '
        b'"s3://bkt/' + b"x" * 300 + b'", "s3://bkt/c" ]\n',
    ),
    "json_lines": (
        ManifestFormat.JSON_LINES,
        b'{"uri":"s3://bkt/a"}\n\n{oops}\n{"bucket":"bkt","key":"b"}\n{"uri":"s3://bkt/c"}',
    ),
}


@pytest.mark.parametrize("case", list(LINE_CASES), ids=list(LINE_CASES))
def test_resuming_at_any_position_yields_exactly_the_rest(case):
    # GIVEN a decompressed manifest and everything a full read yields, with positions
    fmt, data = LINE_CASES[case]
    reader = RecordReader(io.BytesIO(data), fmt, max_line_bytes=200)
    full, positions = [], []
    for item in reader:
        full.append(as_tuple(item))
        positions.append(reader.position)
    assert full
    for i, pos in enumerate(positions):
        # WHEN a new reader starts at the position recorded after item i
        resumed = RecordReader(
            io.BytesIO(data[pos.offset :]),
            fmt,
            first_line=pos.line,
            start_offset=pos.offset,
            layout=pos.layout,
            max_line_bytes=200,
        )
        # THEN it yields exactly the items after item i: nothing lost, nothing twice
        assert [as_tuple(x) for x in resumed] == full[i + 1 :]


def test_position_offset_is_the_end_of_the_items_line():
    data = b"bkt,a\n\nbkt,bb\r\nbkt,c"
    reader = RecordReader(io.BytesIO(data), ManifestFormat.CSV)
    ends = [(reader.position.line, reader.position.offset) for _ in reader]
    assert ends == [(2, 6), (4, 15), (5, 20)]
    assert reader.lines_read == 4
    assert reader.uncompressed_bytes == len(data)


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"bkt,key\n", ManifestFormat.CSV),
        (b"\xef\xbb\xbf  [1]", ManifestFormat.JSON_ARRAY),
        (b'{"uri": "s3://b/k"}\n', ManifestFormat.JSON_LINES),
        (b'{"fileSchema": "Bucket, Key", "files": []}', ManifestFormat.INVENTORY),
        (b'{\n  "sourceBucket": "b",\n  "fileSchema": "Bucket, Key",', ManifestFormat.INVENTORY),
        (b"{\n  broken", ManifestFormat.JSON_LINES),
        (b"", ManifestFormat.CSV),
    ],
)
def test_sniff_format_from_first_bytes(head, fmt):
    assert sniff_format(head) is fmt


def test_manifest_reader_reports_counters_and_gzip_offsets(tmp_path):
    data = b"".join(b"bkt,k%d\n" % i for i in range(1000))
    path = write(tmp_path, "m.csv", data, is_gzip=True)
    reader = ManifestReader(str(path))
    items = list(reader)
    assert len(items) == 1000
    assert reader.format is ManifestFormat.CSV
    assert reader.lines_read == 1000
    assert reader.uncompressed_bytes == len(data)
    assert reader.compressed_bytes == path.stat().st_size
    assert reader.size_bytes() == path.stat().st_size
    assert reader.position.line == 1001
    assert reader.position.offset == len(data)


def test_inventory_is_not_a_stream_format():
    with pytest.raises(ValueError, match="Inventory"):
        RecordReader(io.BytesIO(b""), ManifestFormat.INVENTORY)


def test_resume_on_a_gzip_stream_seeked_to_the_checkpoint_offset(tmp_path):
    # GIVEN a gzip header CSV read to some record, with its position kept (a Split checkpoint)
    data = b"bucket,key\n" + b"".join(b"bkt,k%d\n" % i for i in range(5000))
    path = write(tmp_path, "m.csv", data, is_gzip=True)
    reader = ManifestReader(str(path))
    items = iter(reader)
    first = [as_tuple(next(items)) for _ in range(1234)]
    pos = reader.position
    reader.close()
    # WHEN a new pass decompresses afresh, skips to the offset (as a zran seek would), resumes
    stream = open_decoded(str(path))
    skipped = 0
    while skipped < pos.offset:
        skipped += len(stream.read(min(65536, pos.offset - skipped)))
    rest = RecordReader(
        stream, ManifestFormat.CSV, first_line=pos.line, start_offset=pos.offset, layout=pos.layout
    )
    # THEN the two passes together yield every record once, in order
    lines = [t[1] for t in first] + [as_tuple(x)[1] for x in rest]
    assert lines == list(range(2, 5002))
