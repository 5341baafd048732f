"""The ranged-reader seam: a seekable raw file over byte ranges, counting what it fetched."""

from __future__ import annotations

import io

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from pipeline.failures import ManifestReadError, ThrottledError
from pipeline.gzip.index import IndexFormatError, ZranIndex
from pipeline.gzip.ranged import LocalFileReader, RangedRawFile, S3ObjectReader
from pipeline.gzip.zran import ZranRaw
from tests.checkpoint_chain import gzip_members, manifest_text


@pytest.fixture
def blob_path(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 1000)  # 256,000 bytes
    return path


def test_ranged_raw_file_reads_seeks_and_tells_like_a_file(blob_path):
    data = blob_path.read_bytes()
    raw = RangedRawFile(LocalFileReader(blob_path), block_bytes=1000, cache_bytes=10_000)
    assert raw.read(10) == data[:10]
    assert raw.seek(123_456) == 123_456
    assert raw.read(5000) == data[123_456:128_456]
    assert raw.tell() == 128_456
    assert raw.seek(-10, io.SEEK_END) == len(data) - 10
    assert raw.read(100) == data[-10:]
    assert raw.read(100) == b""
    with pytest.raises(ValueError, match="negative"):
        raw.seek(-1)


def test_ranged_raw_file_serves_backward_seeks_from_its_block_cache(blob_path):
    # GIVEN a reader with a cache of 10 blocks
    reader = LocalFileReader(blob_path)
    raw = RangedRawFile(reader, block_bytes=1000, cache_bytes=10_000)
    raw.seek(50_000)
    raw.read(8000)
    fetched = reader.bytes_fetched
    # WHEN it seeks back within the cached blocks and reads again
    raw.seek(51_000)
    raw.read(6000)
    # THEN nothing more crosses the wire; a seek beyond the cache fetches again
    assert reader.bytes_fetched == fetched == 8000
    raw.seek(0)
    raw.read(1)
    assert reader.bytes_fetched == 9000
    assert reader.requests == 9


def test_local_reader_counts_bytes_and_stops_at_the_end(blob_path):
    reader = LocalFileReader(blob_path)
    assert reader.read_range(255_990, 300_000) == (bytes(range(256)) * 1000)[255_990:]
    assert reader.read_range(300_000, 300_010) == b""
    assert reader.bytes_fetched == 10
    assert reader.size_bytes == 256_000


def test_zran_index_parse_and_serialise_round_trip_an_export(tmp_path):
    # GIVEN indexed_gzip's own export of a multi-member file read to the end
    path = tmp_path / "m.csv.gz"
    text = manifest_text(60_000)
    path.write_bytes(gzip_members(text, member_bytes=500_000))
    source = RangedRawFile(LocalFileReader(path))
    raw = ZranRaw.open(source, spacing_bytes=65536, index=None, offset=0)
    stream = io.BufferedReader(raw, 1 << 20)  # kept: collecting it would close the raw too
    assert stream.read() == text
    out = io.BytesIO()
    raw._igz.export_index(fileobj=out)  # the raw export, untouched by our parser

    # WHEN it is parsed and written back
    index = ZranIndex.parse(out.getvalue())

    # THEN the bytes are identical, member starts are the points without window,
    assert index.to_bytes() == out.getvalue()
    starts = [p.uncompressed_offset for p in index.points if not p.has_window]
    assert starts == list(range(0, len(text), 500_000))
    # AND a trim keeps point 0, the member start before the offset and the last point before it
    trimmed = index.trimmed(1_700_000)
    kept = [p.uncompressed_offset for p in trimmed.points]
    assert kept[:2] == [0, 1_500_000]
    assert len(kept) == 3
    assert kept[-1] <= 1_700_000 < kept[-1] + 2 * 65536
    assert trimmed.windows[2] == index.windows[index.points.index(trimmed.points[2])]
    assert ZranIndex.parse(trimmed.to_bytes()) == trimmed


def test_zran_index_parse_rejects_what_is_not_an_index():
    with pytest.raises(IndexFormatError):
        ZranIndex.parse(b"GZIDX")
    with pytest.raises(IndexFormatError, match="not a zran v1 index"):
        ZranIndex.parse(b"NOTIX" + bytes(40))


class _TrickleBody:
    """A streaming body that hands out at most 1000 bytes per read, like a slow socket."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, size: int) -> bytes:
        part, self._data = self._data[: min(size, 1000)], self._data[min(size, 1000) :]
        return part

    def close(self) -> None:
        self._data = b""


class _FakeS3:
    """The two calls S3ObjectReader makes, over one in-memory object; records every GET."""

    def __init__(self, data: bytes, error: str | None = None) -> None:
        self.data, self.error, self.gets = data, error, []

    def head_object(self, **_kwargs):
        return {"ContentLength": len(self.data), "ETag": '"e1"'}

    def get_object(self, *, Range: str, **kwargs):
        if self.error:
            raise ClientError({"Error": {"Code": self.error}}, "GetObject")
        self.gets.append((Range, kwargs.get("IfMatch")))
        start, _, end = Range.removeprefix("bytes=").partition("-")
        stop = int(end) + 1 if end else len(self.data)
        return {"Body": _TrickleBody(self.data[int(start) : stop])}


@pytest.mark.parametrize("streaming", [False, True])
def test_s3_reader_assembles_short_socket_reads_into_whole_ranges(streaming):
    data = bytes(range(256)) * 100
    client = _FakeS3(data)
    reader = S3ObjectReader(client, "b", "k", streaming=streaming)
    assert reader.read_range(0, 5000) == data[:5000]
    assert reader.read_range(5000, 9000) == data[5000:9000]
    assert reader.read_range(20_000, 99_999) == data[20_000:]
    assert reader.bytes_fetched == 9000 + len(data) - 20_000
    # streaming serves the sequential second range from the first GET; every GET is pinned
    assert len(client.gets) == (2 if streaming else 3)
    assert {if_match for _, if_match in client.gets} == {'"e1"'}


@pytest.mark.parametrize(
    ("code", "error_type", "error"),
    [
        ("SlowDown", ThrottledError, "SlowDown"),
        ("AccessDenied", ManifestReadError, "AccessDenied"),
        ("PreconditionFailed", ManifestReadError, "ManifestChanged"),
    ],
)
def test_s3_reader_turns_client_errors_into_pipeline_errors(code, error_type, error):
    reader = S3ObjectReader(_FakeS3(b"x" * 10, error=code), "b", "k")
    with pytest.raises(error_type) as caught:
        reader.read_range(0, 10)
    assert caught.value.error == error


class _BreaksOnceBody(_TrickleBody):
    """A streaming body whose socket times out once, after handing out part of a read."""

    def __init__(self, data: bytes, breaks: list[int]) -> None:
        super().__init__(data)
        self._breaks = breaks

    def read(self, size: int) -> bytes:
        if self._breaks:
            self._data = self._data[self._breaks.pop() :]  # those bytes were on the wire
            raise ReadTimeoutError(endpoint_url="https://s3")
        return super().read(size)


def test_a_streaming_range_read_again_after_its_body_broke_is_the_same_bytes():
    # GIVEN a streaming reader whose body times out after 5,000 bytes of a range were sent
    data = bytes(range(256)) * 1000
    breaks = [5_000]

    class Breaking(_FakeS3):
        def get_object(self, *, Range: str, **_kwargs):
            start = int(Range.removeprefix("bytes=").partition("-")[0])
            return {"Body": _BreaksOnceBody(self.data[start:], breaks)}

    reader = S3ObjectReader(Breaking(data), "b", "k", streaming=True)
    with pytest.raises(ManifestReadError, match="broke"):
        reader.read_range(100_000, 200_000)
    # WHEN the same range is asked for again (the pass's retry, or zran re-reading)
    # THEN it is that range, from a new GET: not the broken body's bytes 5,000 further on
    assert reader.read_range(100_000, 200_000) == data[100_000:200_000]
