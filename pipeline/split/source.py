"""The manifest as one Split pass reads it: items from a checkpoint on, across Inventory parts.

A pass opens the manifest through the resumable reader (`pipeline/gzip/checkpoint.py`) at the
checkpoint, restarts `RecordReader` at the checkpoint's line, offset and CSV layout, and for an
S3 Inventory report walks its parts from the checkpoint's part on, numbering lines on across
parts. Format, layout and part are decided once, on the first pass, and travel in the
checkpoint's `extra`: re-sniffing on a later pass would re-read the object's first bytes.
Knows nothing of chunks, sinks or Lambda.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.aws.errors import S3_SERVICE_ERROR_CODES
from pipeline.failures import ManifestReadError
from pipeline.gzip.checkpoint import Checkpoint, ResumableStream, open_resumable
from pipeline.gzip.index_store import IndexStore
from pipeline.gzip.ranged import ObjectReader
from pipeline.manifest.batch import RecordBatch
from pipeline.manifest.guard import refuse_binary
from pipeline.manifest.inventory import (
    InventoryManifest,
    parse_inventory,
    part_source,
    read_bounded,
)
from pipeline.manifest.parse import layout_from_dict
from pipeline.manifest.stream import (
    SNIFF_BYTES,
    ManifestFormat,
    Position,
    RecordReader,
    sniff_format,
)

_BIG_READ = 1024 * 1024

OpenReader = Callable[[str], ObjectReader]
"""Opens the object at a location (`s3://bucket/key` or a local path) for ranged reads."""


@dataclass(frozen=True, slots=True)
class ReaderKnobs:
    """The resumable reader's sizes (`open_resumable`); the defaults are the measured ones."""

    spacing_bytes: int = 4 * 1024 * 1024
    """Decompressed bytes between seek points: a resume re-inflates at most this (~15 ms). The
    one-inflate reader lays a point per spacing, each a few calls into zlib from its thread (a
    GIL hand-over from the parser each): 4 MiB, one per read-ahead block, kept JSON Lines
    passes from losing 6-13 % to 1 MiB's four (BENCHMARKS.md "Split inflates once")."""
    block_bytes: int = 1024 * 1024
    cache_bytes: int = 32 * 1024 * 1024
    read_buffer_bytes: int | None = 16 * 1024 * 1024
    """The buffered reader's size (`open_resumable` would take 16 spacings: 64 MiB)."""
    checkpoints: bool = True
    """False only for a pass that never checkpoints (`scan`): ISA-L inflates a first pass."""
    read_ahead_blocks: int = 2
    """The gzip reader inflates on its own thread, this many blocks ahead of the parser (0:
    inline)."""
    read_ahead_block_bytes: int = 4 * 1024 * 1024
    """The read-ahead's read size. Measured with zran, which restarted its inflate at the seek
    point before each read: 8 MiB ran 2-9 % faster on 184 MB manifests, not over 21 GB, where a
    pass grew 113 -> 133 MB (BENCHMARKS.md)."""
    readbuf_bytes: int | None = None
    """The compressed read; None: one fetch block (`block_bytes`). A quarter block (the
    reader's own default) took ~2.4x the refills through Python, each a GIL hand-over from the
    parser, and ~8 % more pass time on a 184 MB manifest (BENCHMARKS.md "Split's tail"), for
    less than a block fetched past a pass's last line, beside the read-ahead's ~4 blocks."""

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `open_resumable`."""
        return asdict(self) | {"readbuf_bytes": self.readbuf_bytes or self.block_bytes}


class ManifestCursor:
    """Iterate one pass's record batches; `position` and `stream` belong to the current part.

    Args:
        source: `s3://bucket/key` or a local path of the manifest (or Inventory manifest.json).
        checkpoint: Where the previous pass stopped; None on the first pass.
        open_reader: Opens a location for ranged reads (S3 or local file).
        index_store: Where gzip checkpoints keep their seek points.
        knobs: Sizes for the resumable reader.
        max_line_bytes: Longer lines become `LineTooLong` failures.
        raw_lines: Hand on blocks no frame proof takes unparsed (`RawLinesBatch`), for a
            worker to parse: Split's batches, not `scan`'s.
    """

    def __init__(
        self,
        source: str,
        checkpoint: Checkpoint | None,
        *,
        open_reader: OpenReader,
        index_store: IndexStore,
        knobs: ReaderKnobs,
        max_line_bytes: int,
        raw_lines: bool = False,
    ) -> None:
        self._source = source
        self._raw_lines = raw_lines
        self._checkpoint = checkpoint
        self._open_reader = open_reader
        self._index_store = index_store
        self._knobs = knobs
        self._max_line_bytes = max_line_bytes
        extra = checkpoint.extra if checkpoint is not None else {}
        self.format: ManifestFormat | None = (
            ManifestFormat(extra["format"]) if "format" in extra else None
        )
        self._readers: list[ObjectReader] = []
        self.stream: ResumableStream | None = None
        self.reader: RecordReader | None = None
        self._decoded_done = 0
        self._counted: RecordReader | None = None
        self._end: Position = Position(
            checkpoint.next_line if checkpoint else 1,
            checkpoint.uncompressed_offset if checkpoint else 0,
            int(extra.get("part", 0)),
            layout_from_dict(extra.get("layout")),
        )

    @property
    def position(self) -> Position:
        """The restart point just past the last item yielded (in the current part)."""
        return self.reader.position if self.reader is not None else self._end

    @property
    def lines_read(self) -> int:
        """Physical lines read so far, over every part (blank and header lines included)."""
        if self.reader is None:
            return self._end.line - 1
        return self.reader.next_line_read - 1

    @property
    def uncompressed_bytes(self) -> int:
        """Decompressed bytes parsed by this pass so far, over every part."""
        reader = self.reader
        current = (
            reader.uncompressed_bytes if reader is not None and reader is not self._counted else 0
        )
        return self._decoded_done + current

    @property
    def bytes_fetched(self) -> int:
        """Compressed bytes fetched by this pass so far, over every object it opened."""
        return sum(getattr(r, "bytes_fetched", 0) for r in self._readers)

    def __iter__(self) -> Iterator[RecordBatch]:
        if self.format is ManifestFormat.INVENTORY:
            yield from self._iter_inventory(self._read_inventory(None))
            return
        stream = self._open(self._source, self._checkpoint)
        head = b""
        if self.format is None:
            head = stream.read_head(SNIFF_BYTES)
            refuse_binary(head)  # the wrong file, named, in the first block
            self.format = sniff_format(head)
            if self.format is ManifestFormat.INVENTORY:
                yield from self._iter_inventory(self._read_inventory(head))
                return
        yield from self._iter_part(stream, self._end, head)

    def _open(
        self, location: str, checkpoint: Checkpoint | None, part: int | None = None
    ) -> OneReadStream:
        reader = self._open_reader(location)
        self._readers.append(reader)
        store = self._index_store if part is None else _PartIndexStore(self._index_store, part)
        self.stream = open_resumable(
            reader, checkpoint, index_store=store, **self._knobs.as_kwargs()
        )
        return OneReadStream(self.stream)

    def _iter_part(
        self, stream: OneReadStream, start: Position, head: bytes
    ) -> Iterator[RecordBatch]:
        assert self.format is not None  # sniffed or restored before any part is read
        fmt = ManifestFormat.CSV if self.format is ManifestFormat.INVENTORY else self.format
        self.reader = RecordReader(
            stream,
            fmt,
            first_line=start.line,
            start_offset=start.offset,
            layout=start.layout,
            max_line_bytes=self._max_line_bytes,
            part=start.part,
            head=head,
            raw_lines=self._raw_lines,
        )
        yield from self.reader.iter_batches()
        self._decoded_done += self.reader.uncompressed_bytes
        self._counted = self.reader

    def _read_inventory(self, head: bytes | None) -> InventoryManifest:
        """manifest.json is small and read whole on every pass (its parts are not)."""
        if head is None:
            head = b""
            stream = self._open(self._source, None)
        else:
            assert self.stream is not None  # the stream the head was sniffed from
            stream = OneReadStream(self.stream)
        inventory = parse_inventory(read_bounded(head, stream.read))
        self.format = ManifestFormat.INVENTORY
        return inventory

    def _iter_inventory(self, inventory: InventoryManifest) -> Iterator[RecordBatch]:
        start = self._end
        if start.layout is None:
            start = Position(start.line, start.offset, start.part, inventory.layout)
        is_resumed = self._checkpoint is not None and "format" in self._checkpoint.extra
        resume_part = start.part if is_resumed else -1
        for part in range(start.part, len(inventory.part_keys)):
            location = part_source(self._source, inventory, inventory.part_keys[part])
            checkpoint = self._checkpoint if part == resume_part else None
            if checkpoint is None:
                start = Position(start.line, 0, part, inventory.layout)
            self._close_stream()  # manifest.json's, or the previous part's
            yield from self._iter_part(self._open(location, checkpoint, part), start, b"")
            assert self.reader is not None  # set by _iter_part
            start = Position(start.line + self.reader.lines_read, 0, part + 1, inventory.layout)
        self._end = start

    def _close_stream(self) -> None:
        """Close the current stream (its fetched bytes stay counted by its reader)."""
        if self.stream is not None:
            self.stream.close()

    def close(self) -> None:
        """Close every stream and reader this pass opened."""
        self._close_stream()
        for reader in self._readers:
            close = getattr(reader, "close", None)
            if close is not None:
                close()


TRANSIENT_READ_ERRORS = frozenset(
    {"ReadInterrupted"}
    | S3_SERVICE_ERROR_CODES
    | {"500", "502", "503", "504"}  # HEAD answers a bare status code
)
"""Read errors a retried pass can get past: they fail the pass instead of ending the split.

S3's own 5xx answers are among them: ending the split there would leave the rest of the
manifest unsplit for trouble that was S3's."""


class OneReadStream:
    """Reads that return what one raw read gave, so a break never swallows the bytes before it.

    `BufferedReader.read(n)` loops raw reads and, when a later one raises (the gzip trailer
    check of a truncated manifest), drops what the earlier ones returned: the lines just before
    the break would be lost. `read1` makes at most one raw read, so every byte decompressed
    before the break reaches the parser first and the error comes on the next read.
    """

    def __init__(self, stream: ResumableStream) -> None:
        self._stream = stream
        self._error: ManifestReadError | None = None

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (fewer is not the end; b"" is)."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self._stream.read1(size if size >= 0 else _BIG_READ)

    def read_head(self, size: int) -> bytes:
        """Up to `size` bytes for sniffing; a break inside them is raised on the next read.

        A transient read error is raised at once: the retried pass must read the same head,
        or its first run of lines would end elsewhere and be cut into other chunks.
        """
        parts: list[bytes] = []
        got = 0
        while got < size:
            try:
                data = self.read(size - got)
            except ManifestReadError as exc:
                if exc.error in TRANSIENT_READ_ERRORS:
                    raise  # see the docstring: the retry must read the same head
                self._error = exc
                break
            if not data:
                break
            parts.append(data)
            got += len(data)
        return b"".join(parts)


class _PartIndexStore:
    """Index names prefixed by the Inventory part: offsets repeat from one part to the next."""

    def __init__(self, store: IndexStore, part: int) -> None:
        self._store = store
        self._prefix = f"part-{part:06d}-"

    def put_index(self, name: str, data: bytes) -> str:
        """Store under the part's own name."""
        return self._store.put_index(self._prefix + name, data)

    def get_index(self, ref: str) -> bytes:
        """References are already the full name."""
        return self._store.get_index(ref)
