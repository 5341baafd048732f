"""A truncated or corrupt gzip manifest: every complete line before the break, then the break."""

from __future__ import annotations

import gzip
import io
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.failures import ManifestReadError
from pipeline.gzip.members import DECODE_ERRORS, GzipMembers
from pipeline.manifest.reader import ManifestRecord, iter_manifest

LINES = [f"s3://bkt-1/photos/k{i}.jpg" for i in range(60)]


def _read_records(tmp_path, data: bytes) -> tuple[list[ManifestRecord], ManifestReadError | None]:
    path = tmp_path / "m.csv.gz"
    path.write_bytes(data)
    records: list[ManifestRecord] = []
    try:
        records.extend(iter_manifest(str(path)))  # type: ignore[arg-type]
    except ManifestReadError as exc:
        return records, exc
    return records, None


def test_a_60_line_manifest_cut_at_two_thirds_yields_the_lines_before_the_cut(tmp_path):
    whole = gzip.compress(("\n".join(LINES) + "\n").encode())
    records, error = _read_records(tmp_path, whole[: len(whole) * 2 // 3])
    assert error is not None and error.error == "TruncatedManifest"
    assert len(records) > 20  # was 0: the last decoded block was thrown away with the error
    assert [r.key for r in records] == [u.split("/", 3)[3] for u in LINES[: len(records)]]


@settings(max_examples=60, deadline=None)
@given(cut=st.floats(0.0, 1.0), level=st.sampled_from([1, 6, 9]))
def test_any_cut_yields_an_exact_prefix_and_then_the_break(tmp_path_factory, cut, level):
    whole = gzip.compress(("\n".join(LINES) + "\n").encode(), compresslevel=level)
    data = whole[: max(2, int(len(whole) * cut))]
    records, error = _read_records(tmp_path_factory.mktemp("cut"), data)
    assert [(r.line, r.key) for r in records] == [
        (n, u.split("/", 3)[3]) for n, u in enumerate(LINES[: len(records)], 1)
    ]
    assert (error is None) == (data == whole)


def test_concatenated_members_and_zero_padding_read_as_one_stream():
    data = gzip.compress(b"abc\n") + gzip.compress(b"") + gzip.compress(b"def\n") + b"\0" * 9
    assert GzipMembers(io.BytesIO(data)).read() == b"abc\ndef\n"


def test_reads_are_bounded_by_size_and_hand_over_data_before_the_error():
    whole = gzip.compress(b"x" * 100_000)
    stream = GzipMembers(io.BytesIO(whole[: len(whole) // 2]), raw_block_bytes=16)
    first = stream.read(1000)
    assert first == b"x" * 1000
    got = first
    with pytest.raises(EOFError):
        while True:
            piece = stream.read(4096)
            assert len(piece) <= 4096
            got += piece
    assert got == b"x" * len(got) and len(got) > 1000


def test_corrupt_data_after_good_data_is_an_error_after_the_good_data():
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    good = compressor.compress(b"line\n" * 20_000) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream = GzipMembers(io.BytesIO(good + b"\xff" * 64 + b"garbage" * 100))
    assert stream.read(50_000) == (b"line\n" * 20_000)[:50_000]
    with pytest.raises(DECODE_ERRORS):
        while stream.read(50_000):
            pass
