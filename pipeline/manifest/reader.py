"""Open a manifest (local path or `s3://`) and stream its records lazily, in constant memory.

The public face of manifest reading; the work is split by job:
`manifest_source` (bytes from a path or S3, gzip by magic bytes), `manifest_stream` (a
decompressed stream → items, from any restart point: the seam a resumable reader plugs into),
`manifest_lines` / `manifest_json_array` (lines / array elements with exact byte offsets),
`manifest_parse` (one line → a record or an error) and `manifest_inventory` (S3 Inventory
manifest.json → its parts). The format is sniffed from the first decompressed bytes, never
trusted from the name (`manifest_format`).

Two ways to read, same records: iterate (one `ManifestRecord`/`ManifestLineError` at a time,
`position` after each), or `iter_batches()` (a read block at a time: `manifest_batch`,
`manifest_dense`), the fast path Split (and so `scan`) uses with `chunking.iter_chunk_spans`;
Split reads through `pipeline/split/source.py`, which drives the same `RecordReader`.

A bad line is yielded as a `ManifestLineError` and the stream goes on; a stream that breaks
(truncated or corrupt gzip) raises `ManifestReadError` after every record before the break.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from pipeline.failures import ManifestLineError, ManifestReadError
from pipeline.manifest.batch import RecordBatch
from pipeline.manifest.guard import refuse_binary
from pipeline.manifest.inventory import parse_inventory, part_source, read_bounded
from pipeline.manifest.parse import CsvLayout, ManifestRecord
from pipeline.manifest.source import DecodedStream, open_decoded, source_size
from pipeline.manifest.stream import (
    DEFAULT_MAX_LINE_BYTES,
    SNIFF_BYTES,
    Item,
    ManifestFormat,
    Position,
    RecordReader,
    iter_records_from_stream,
    sniff_format,
)
from pipeline.s3_uri import S3_SCHEME

_S3_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})
"""`standard` retries ride out S3's 503 SlowDown; `legacy` does not."""

if TYPE_CHECKING:
    from types import TracebackType

    from mypy_boto3_s3 import S3Client

__all__ = [
    "CsvLayout",
    "Item",
    "ManifestFormat",
    "ManifestLineError",
    "ManifestReadError",
    "ManifestReader",
    "ManifestRecord",
    "Position",
    "RecordBatch",
    "RecordReader",
    "iter_manifest",
    "iter_records_from_stream",
    "sniff_format",
]


class ManifestReader:
    """Stream one manifest, with the counters a progress display and `scan` need.

    Iterate it once, by items or by `iter_batches()`. `position` after any item (or batch) is
    where a resumed reader starts; `compressed_bytes`/`uncompressed_bytes`/`lines_read` grow as
    it reads.
    """

    def __init__(
        self,
        source: str,
        *,
        client: S3Client | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        if client is None and source.startswith(S3_SCHEME):
            client = boto3.client("s3", config=_S3_CONFIG)
        self.source = source
        self._client = client
        self._max_line_bytes = max_line_bytes
        self.format: ManifestFormat | None = None
        self._stream: DecodedStream | None = None
        self._reader: RecordReader | None = None
        self._done_compressed = self._done_uncompressed = self._done_lines = 0
        self._resume_at = Position(line=1, offset=0)

    def size_bytes(self) -> int | None:
        """Raw size of the source object (for a progress bar), when it can be known."""
        return source_size(self.source, client=self._client)

    @property
    def compressed_bytes(self) -> int:
        """Raw bytes read so far, over every part."""
        current = self._stream.compressed_bytes if self._stream else 0
        return self._done_compressed + current

    @property
    def uncompressed_bytes(self) -> int:
        """Decompressed bytes parsed so far, over every part."""
        current = self._reader.uncompressed_bytes if self._reader else 0
        return self._done_uncompressed + current

    @property
    def lines_read(self) -> int:
        """Lines (elements) read so far, blank and header lines included."""
        return self._done_lines + (self._reader.lines_read if self._reader else 0)

    @property
    def position(self) -> Position:
        """The restart point just past the last item yielded."""
        if self._reader is None:
            return self._resume_at
        return self._reader.position

    def __iter__(self) -> Iterator[Item]:
        return self._iterate(iter)

    def iter_batches(self) -> Iterator[RecordBatch]:
        """Yield the same records and line errors as iteration, a read block at a time.

        See `RecordReader.iter_batches`; feed them to `pipeline.split.chunking.iter_chunk_spans`.
        """
        return self._iterate(RecordReader.iter_batches)

    def _iterate(self, each: Callable[[RecordReader], Iterator[Any]]) -> Iterator[Any]:
        """Open, sniff and read every part with `each` (items, or batches of them)."""
        self._stream = open_decoded(self.source, client=self._client)
        head = _read_head(self._stream)
        refuse_binary(head)  # the wrong file, named, in the first block
        self.format = sniff_format(head)
        if self.format is ManifestFormat.INVENTORY:
            yield from self._iter_inventory(head, each)
            return
        self._reader = RecordReader(
            self._stream, self.format, head=head, max_line_bytes=self._max_line_bytes
        )
        yield from each(self._reader)

    def _iter_inventory(
        self, head: bytes, each: Callable[[RecordReader], Iterator[Any]]
    ) -> Iterator[Any]:
        assert self._stream is not None  # set by __iter__
        inventory = parse_inventory(read_bounded(head, self._stream.read))
        self._finish_part()
        for part, key in enumerate(inventory.part_keys):
            self._stream = open_decoded(
                part_source(self.source, inventory, key), client=self._client
            )
            self._reader = RecordReader(
                self._stream,
                ManifestFormat.CSV,
                first_line=self._done_lines + 1,
                layout=inventory.layout,
                max_line_bytes=self._max_line_bytes,
                part=part,
            )
            yield from each(self._reader)
            self._finish_part()

    def _finish_part(self) -> None:
        """Fold the finished part's counters into the totals and close it."""
        if self._stream is not None:
            self._done_compressed += self._stream.compressed_bytes
            self._stream.close()
        if self._reader is not None:
            self._done_uncompressed += self._reader.uncompressed_bytes
            self._done_lines += self._reader.lines_read
            done = self._reader.position
            self._resume_at = Position(self._done_lines + 1, 0, done.part + 1, done.layout)
        self._stream, self._reader = None, None

    def close(self) -> None:
        """Release the open source, if any."""
        if self._stream is not None:
            self._stream.close()

    def __enter__(self) -> ManifestReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _read_head(stream: DecodedStream) -> bytes:
    """Read the bytes to sniff; a stream broken already there broke at line 1."""
    try:
        return stream.read(SNIFF_BYTES)
    except ManifestReadError as exc:
        raise ManifestReadError(
            f"{exc.message} while reading line 1",
            error=exc.error,
            line=1,
            compressed_offset=exc.compressed_offset,
        ) from exc


def iter_manifest(
    source: str,
    *,
    client: Any = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[ManifestRecord | ManifestLineError]:
    """Yield every record and line error of `source`, in line order.

    Raises:
        ManifestReadError: the source cannot be opened, or its stream broke (after yielding
            everything before the break).
    """
    with ManifestReader(source, client=client, max_line_bytes=max_line_bytes) as reader:
        yield from reader
