"""Memory stays flat while streaming a gzip manifest far larger than every limit.

The manifest (~100 MB uncompressed, with one 64 MB line) is generated and gzip-compressed on the
fly, so neither the test nor the reader ever holds it; RSS is sampled while reading.
"""

from __future__ import annotations

import zlib

import psutil

from pipeline.failures import ManifestLineError
from pipeline.manifest.reader import ManifestFormat, RecordReader
from pipeline.manifest.source import DecodedStream

LINES = 1_200_000
LONG_LINE_AT = 600_000
LONG_LINE_BYTES = 64 * 1024 * 1024
BLOCK_LINES = 20_000
MAX_GROWTH_MB = 20


class GeneratedGzip:
    """A read()-able gzip stream of a Batch Operations CSV, produced as it is read."""

    def __init__(self) -> None:
        self._compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
        self._plain = self._plain_blocks()
        self._buf = b""
        self.plain_bytes = 0

    def _plain_blocks(self):
        for start in range(0, LINES, BLOCK_LINES):
            lines = range(start + 1, start + BLOCK_LINES + 1)
            yield b"".join(b"bkt,images/2026/%09d.jpg\n" % n for n in lines)
            if start + BLOCK_LINES == LONG_LINE_AT:
                yield b"bkt,"
                for _ in range(LONG_LINE_BYTES // (1 << 20)):
                    yield b"x" * (1 << 20)
                yield b"\n"

    def read(self, size: int = -1) -> bytes:
        while len(self._buf) < max(size, 1) and self._compressor is not None:
            block = next(self._plain, None)
            if block is None:
                self._buf += self._compressor.flush()
                self._compressor = None
                break
            self.plain_bytes += len(block)
            self._buf += self._compressor.compress(block)
        data, self._buf = self._buf[:size], self._buf[size:]
        return data

    def close(self) -> None:
        pass


def test_rss_stays_flat_streaming_a_manifest_much_larger_than_the_limits():
    # GIVEN a generated 100 MB gzip manifest with a 64 MB line, and a 64 KiB line limit
    source = GeneratedGzip()
    reader = RecordReader(DecodedStream(source, name="generated"), ManifestFormat.CSV)
    process = psutil.Process()
    baseline = peak = 0
    records = failures = 0
    # WHEN it is streamed to the end, sampling RSS
    for n, item in enumerate(reader):
        if isinstance(item, ManifestLineError):
            failures += 1
            assert item.error == "LineTooLong"
        else:
            records += 1
        if n == 50_000:
            baseline = process.memory_info().rss
        elif n % 50_000 == 0 and n:
            peak = max(peak, process.memory_info().rss)
    # THEN every line was seen, the long one as a failure, and memory did not grow
    assert records == LINES
    assert failures == 1
    assert source.plain_bytes > 100_000_000
    assert reader.uncompressed_bytes == source.plain_bytes
    growth_mb = (peak - baseline) / 2**20
    assert growth_mb < MAX_GROWTH_MB, f"RSS grew {growth_mb:.1f} MB"
