"""Gzip by magic bytes: multi-member streams read fully; broken streams fail loudly and late."""

from __future__ import annotations

import gzip
import io
import zlib

import pytest
from isal import igzip

from pipeline.failures import ManifestReadError
from pipeline.manifest.reader import ManifestRecord, iter_manifest
from pipeline.manifest.source import smart_open_lib
from tests.unit.manifest_helpers import as_tuple, read_all

LINES = [b"bkt,img/%06d.jpg\n" % i for i in range(20_000)]
DATA = b"".join(LINES)


def _records_before_error(path) -> tuple[list[tuple], ManifestReadError]:
    got = []
    with pytest.raises(ManifestReadError) as info:
        for item in iter_manifest(str(path)):
            got.append(as_tuple(item))
    return got, info.value


def test_multi_member_gzip_split_mid_line_reads_every_line(tmp_path):
    # GIVEN three gzip members (as pigz/bgzip/cat write them), one boundary inside a line
    cut1, cut2 = 1000, len(DATA) // 2 + 7
    parts = [DATA[:cut1], DATA[cut1:cut2], DATA[cut2:]]
    path = tmp_path / "m.csv.gz"
    path.write_bytes(b"".join(gzip.compress(p) for p in parts) + gzip.compress(b""))
    # WHEN read / THEN every line comes back once, in order
    items = read_all(path)
    assert len(items) == len(LINES)
    assert items[0] == ("ok", 1, "bkt", "img/000000.jpg", None)
    assert items[-1] == ("ok", 20_000, "bkt", "img/019999.jpg", None)


def test_gzip_is_detected_by_magic_not_name(tmp_path):
    path = tmp_path / "plain-name.csv"
    path.write_bytes(gzip.compress(b"bkt,a.jpg\n"))
    (tmp_path / "fake.csv.gz").write_bytes(b"bkt,b.jpg\n")
    assert read_all(path) == [("ok", 1, "bkt", "a.jpg", None)]
    assert read_all(tmp_path / "fake.csv.gz") == [("ok", 1, "bkt", "b.jpg", None)]


def test_truncated_gzip_yields_every_line_before_then_says_where(tmp_path):
    # GIVEN a gzip cut in half
    blob = gzip.compress(DATA)
    path = tmp_path / "m.csv.gz"
    path.write_bytes(blob[: len(blob) // 2])
    # WHEN read
    got, error = _records_before_error(path)
    # THEN every complete line before the cut was yielded, in order, then a typed error
    assert got, "lines before the break must be yielded"
    assert [g[1] for g in got] == list(range(1, len(got) + 1))
    assert all(g[0] == "ok" for g in got)
    assert DATA.startswith(b"".join(LINES[: len(got)]))
    assert error.error == "TruncatedManifest"
    assert error.line == len(got) + 1
    assert error.compressed_offset == len(blob) // 2
    assert f"line {len(got) + 1}" in str(error)
    assert f"compressed byte {len(blob) // 2}" in str(error)


def test_corrupt_gzip_raises_a_read_error_with_offset(tmp_path):
    blob = bytearray(gzip.compress(DATA))
    blob[-6] ^= 0xFF  # the CRC32 trailer
    path = tmp_path / "m.csv.gz"
    path.write_bytes(bytes(blob))
    got, error = _records_before_error(path)
    assert error.error == "CorruptManifest"
    assert error.compressed_offset is not None
    assert 0 < error.compressed_offset <= len(blob)
    assert error.line == len(got) + 1


def test_garbage_deflate_data_raises_read_error(tmp_path):
    header = gzip.compress(b"")[:10]
    path = tmp_path / "m.gz"
    path.write_bytes(header + b"\xff" * 100)
    with pytest.raises(ManifestReadError) as info:
        read_all(path)
    assert info.value.line == 1


def test_truncated_gzip_json_array_raises_after_complete_elements(tmp_path):
    body = b"[" + b",".join(b'"s3://bkt/k%d"' % i for i in range(5000)) + b"]"
    blob = gzip.compress(body)
    path = tmp_path / "m.json.gz"
    path.write_bytes(blob[: len(blob) - 40])
    got, error = _records_before_error(path)
    assert [g[1] for g in got] == list(range(1, len(got) + 1))
    assert error.line == len(got) + 1


def test_missing_file_is_a_read_error(tmp_path):
    with pytest.raises(ManifestReadError) as info:
        read_all(tmp_path / "nope.csv")
    assert info.value.error == "NoSuchKey"


def test_zlib_raw_stream_is_not_mistaken_for_gzip(tmp_path):
    # A zlib stream starts 78 9c, not 1f 8b: never decompressed, it is binary data, refused as
    # not a manifest in its first block (it used to be read as hundreds of bad CSV lines).
    path = tmp_path / "m.csv"
    path.write_bytes(zlib.compress(b"bkt,a.jpg\n" * 50))
    assert b"\x00" in path.read_bytes()
    with pytest.raises(ManifestReadError) as caught:
        read_all(path)
    assert caught.value.message == "binary data (NUL bytes), not a manifest"


def test_records_are_plain_values():
    assert ManifestRecord(1, "b", "k") == ManifestRecord(1, "b", "k", None)
    with pytest.raises(AttributeError):
        ManifestRecord(1, "b", "k").key = "x"  # type: ignore[misc]
    assert not hasattr(io, "nothing")


def test_smart_open_reads_gz_by_name_with_isal(tmp_path):
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(gzip.compress(b"hello\n"))
    with smart_open_lib().open(str(path), "rb") as f:
        assert isinstance(f, igzip.IGzipFile)
        assert f.read() == b"hello\n"
