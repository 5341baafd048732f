"""Resumable manifest decompression: open a stream at a checkpoint, take the next checkpoint.

gzip cannot be seeked, and one Lambda invocation lasts 15 minutes, so a Split pass must resume
where the previous one stopped without re-reading the compressed bytes before that place. For a
gzip manifest the checkpoint is a zran seek point (indexed_gzip): compressed offset, bit offset
and the 32 KiB window before it, trimmed out of indexed_gzip's export (`pipeline/gzip/index.py`)
and stored through an `IndexStore`; the next pass imports it, seeks to the next line's
uncompressed offset and fetches only from that seek point on. A plain manifest resumes at a byte
offset. BENCHMARKS.md ("Split") has the measurements behind the choices.

The stream is bytes from a given uncompressed offset: line parsing, chunking and the time budget
belong to the caller (`pipeline/manifest/reader.py`, the Split handler). Knows nothing of Lambda.
"""

from __future__ import annotations

import io
import logging
import sys
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pipeline.failures import ManifestReadError
from pipeline.gzip.first_pass import FirstPassRaw
from pipeline.gzip.index import IndexFormatError, ZranIndex
from pipeline.gzip.index_store import IndexStore
from pipeline.gzip.members import GZIP_MAGIC
from pipeline.gzip.one_inflate import MemberCrc, OneInflateRaw
from pipeline.gzip.ranged import (
    DEFAULT_BLOCK_BYTES,
    DEFAULT_CACHE_BYTES,
    ObjectReader,
    RangedRawFile,
)
from pipeline.gzip.read_ahead import DEFAULT_BLOCK_BYTES as READ_AHEAD_BLOCK_BYTES
from pipeline.gzip.read_ahead import ReadAheadRaw
from pipeline.gzip.zlib_blocks import zlib_available
from pipeline.gzip.zran import DEFAULT_SPACING_BYTES, ZranRaw

logger = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1
_FAR_BEHIND_BYTES = 256 * 1024 * 1024


class StreamKind(StrEnum):
    """How the manifest object is encoded, decided once by its magic bytes."""

    GZIP = "gzip"
    PLAIN = "plain"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where the next Split pass starts: small enough for Step Functions state (no index here).

    Attributes:
        next_line: 1-based number of the next line to process.
        uncompressed_offset: Offset of that line's first byte in the decompressed stream: the
            counted end of the last processed line, never a reader's ``tell()`` (readers run
            ahead of the parser).
        next_chunk: Number of the next chunk to send; chunk numbers are deterministic.
        kind: gzip (resume through a seek-point index) or plain (resume at a byte offset).
        compressed_offset: Where the resumed pass starts fetching: the seek point's compressed
            offset (gzip) or the byte offset itself (plain).
        index_ref: Reference of the trimmed zran index in the `IndexStore` (gzip only).
        extra: Opaque state of the format layer (a JSON array's parser position, say).
        member_crc: The CRC-32 of the gzip member's bytes before the seek point the next pass
            resumes from, so the member's CRC is checked at its trailer however many passes
            read it (None: unknown, as from a checkpoint taken by zran; then only its ISIZE).
    """

    next_line: int
    uncompressed_offset: int
    next_chunk: int
    kind: StreamKind
    compressed_offset: int
    index_ref: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    member_crc: MemberCrc | None = None
    v: int = CHECKPOINT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape stored in Step Functions state (`v` first)."""
        return {
            "v": self.v,
            "next_line": self.next_line,
            "uncompressed_offset": self.uncompressed_offset,
            "next_chunk": self.next_chunk,
            "kind": self.kind.value,
            "compressed_offset": self.compressed_offset,
            "index_ref": self.index_ref,
            "extra": dict(self.extra),
            "member_crc32": (
                None
                if self.member_crc is None
                else {"at": self.member_crc.at, "crc32": self.member_crc.crc32}
            ),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        """Read a checkpoint back from Step Functions state; reject an unknown version.

        A checkpoint written before `member_crc` existed reads as one without it.
        """
        version = int(data.get("v", CHECKPOINT_VERSION))
        if version != CHECKPOINT_VERSION:
            raise ValueError(f"checkpoint version {version} is not {CHECKPOINT_VERSION}")
        crc = data.get("member_crc32")
        return cls(
            next_line=int(data["next_line"]),
            uncompressed_offset=int(data["uncompressed_offset"]),
            next_chunk=int(data["next_chunk"]),
            kind=StreamKind(data["kind"]),
            compressed_offset=int(data["compressed_offset"]),
            index_ref=data.get("index_ref"),
            extra=dict(data.get("extra") or {}),
            member_crc=None if crc is None else MemberCrc(int(crc["at"]), int(crc["crc32"])),
        )


class ResumableStream(io.BufferedReader):
    """Decompressed manifest bytes, positioned at a checkpoint; `tell()` is the absolute offset.

    A buffered reader (C ``readline``, iteration) over either the zran raw stream or the ranged
    file itself; `take_checkpoint` reaches the index through it.
    """

    def __init__(
        self,
        raw: io.RawIOBase,
        *,
        kind: StreamKind,
        source: RangedRawFile,
        index_store: IndexStore | None,
        buffer_bytes: int,
    ) -> None:
        super().__init__(raw, buffer_bytes)
        self.kind = kind
        self.source = source
        self.index_store = index_store
        self.start_offset = raw.tell()
        self._read_block = raw.read_block if isinstance(raw, FirstPassRaw) else None

    def read1(self, size: int = -1) -> bytes:
        """At most one raw read, as `BufferedReader.read1`; ISA-L's blocks as they are.

        Over a `FirstPassRaw` with nothing buffered (`tell()` is the raw stream's), a read
        takes the queued block itself instead of copying it into a new bytes object.
        """
        if self._read_block is None or size == 0 or super().tell() != self.raw.tell():
            return super().read1(size)
        return self._read_block(size if size >= 0 else sys.maxsize)


def open_resumable(
    reader: ObjectReader,
    checkpoint: Checkpoint | None,
    *,
    index_store: IndexStore | None,
    spacing_bytes: int = DEFAULT_SPACING_BYTES,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    read_buffer_bytes: int | None = None,
    checkpoints: bool = True,
    read_ahead_blocks: int = 0,
    read_ahead_block_bytes: int = READ_AHEAD_BLOCK_BYTES,
    readbuf_bytes: int | None = None,
) -> ResumableStream:
    """Open the manifest's decompressed bytes at ``checkpoint`` (or at 0 when it is None).

    Never fetches the compressed bytes before the checkpoint's seek point: a gzip checkpoint
    imports its trimmed index and restarts there; a plain one starts at its byte offset.

    Args:
        reader: The object's bytes (S3 or a local file).
        checkpoint: Where the previous pass stopped; None for the first pass.
        index_store: Where gzip seek-point indexes are read and written.
        spacing_bytes: Uncompressed bytes between zran seek points; a resume re-inflates at
            most this much, and each point costs a 32 KiB window until the index is trimmed.
        block_bytes: Size of each ranged fetch.
        cache_bytes: Fetched blocks kept for zran's backward seeks (keep >= ~32 MiB).
        read_buffer_bytes: Decompressed bytes per zran read (each read restarts inflating at
            the last seek point, so bigger reads cost less); at least ``spacing_bytes``.
        checkpoints: False for a pass that reads to the end and never checkpoints (`scan`):
            a gzip from offset 0 is then inflated by ISA-L, raising `NotPlainGzip` if it is
            not plain (`pipeline/gzip/first_pass.py`); `take_checkpoint` refuses the stream.
        read_ahead_blocks: When > 0, zran inflates on a thread of its own, up to this many
            blocks of ``read_ahead_block_bytes`` ahead of the reader
            (`pipeline/gzip/read_ahead.py`).
        read_ahead_block_bytes: Decompressed bytes a read of that thread.
        readbuf_bytes: zran's compressed read size; None: a quarter of ``block_bytes``. Each
            zran read restarts at a seek point and refills it through Python (taking the GIL
            from the parser when zran runs on its read-ahead thread), so a bigger one means
            fewer refills; it is also about what a pass fetches past its last line.

    Raises:
        ManifestReadError: The object or the checkpoint index cannot be read, or is corrupt.
    """
    if not checkpoints and checkpoint is None:
        cache_bytes = 2 * block_bytes  # ISA-L reads forward only: no zran seeks back to serve
    source = RangedRawFile(reader, block_bytes=block_bytes, cache_bytes=cache_bytes)
    buffer_bytes = max(read_buffer_bytes or 16 * spacing_bytes, spacing_bytes)
    kind = checkpoint.kind if checkpoint is not None else _sniff(source)
    offset = checkpoint.uncompressed_offset if checkpoint is not None else 0
    raw: io.RawIOBase
    if kind is StreamKind.PLAIN:
        source.seek(offset)
        raw = source
    elif not checkpoints and not offset:
        raw = FirstPassRaw(source)
    else:
        index = _load_index(checkpoint, index_store)
        reach = (
            ReadAheadRaw.reach_bytes(read_ahead_block_bytes, read_ahead_blocks)
            if read_ahead_blocks
            else 0
        )
        raw = _open_gzip(
            source,
            index=index,
            offset=offset,
            member_crc=checkpoint.member_crc if checkpoint is not None else None,
            spacing_bytes=spacing_bytes,
            readbuf_bytes=readbuf_bytes or max(16 * 1024, block_bytes // 4),
            keep_behind_bytes=2 * buffer_bytes + spacing_bytes + reach,
        )
        if read_ahead_blocks:
            raw = ReadAheadRaw(raw, block_bytes=read_ahead_block_bytes, ahead=read_ahead_blocks)
    return ResumableStream(
        raw, kind=kind, source=source, index_store=index_store, buffer_bytes=buffer_bytes
    )


def _open_gzip(
    source: RangedRawFile,
    *,
    index: ZranIndex | None,
    offset: int,
    member_crc: MemberCrc | None,
    spacing_bytes: int,
    readbuf_bytes: int,
    keep_behind_bytes: int,
) -> OneInflateRaw | ZranRaw:
    """Inflate once where libz loads (`one_inflate.py`), with zran behind it for any oddity."""

    def zran(start: ZranIndex | None, at: int) -> ZranRaw:
        return ZranRaw.open(
            source,
            spacing_bytes=spacing_bytes,
            index=start,
            offset=at,
            readbuf_bytes=readbuf_bytes,
            keep_behind_bytes=keep_behind_bytes,
        )

    if not zlib_available():
        return zran(index, offset)
    return OneInflateRaw.open(
        source,
        index=index,
        offset=offset,
        spacing_bytes=spacing_bytes,
        keep_behind_bytes=keep_behind_bytes,
        read_bytes=readbuf_bytes,
        hand_over=zran,
        member_crc=member_crc,
    )


def take_checkpoint(
    stream: ResumableStream,
    *,
    next_line: int,
    uncompressed_offset: int,
    next_chunk: int,
    extra: Mapping[str, Any] | None = None,
) -> Checkpoint:
    """Record where the next pass starts; for gzip, store the trimmed index it will need.

    ``uncompressed_offset`` must be the counted end of the last processed line (at or after
    where this pass started, and not past what was read). The stored index is point 0 plus
    the last seek point at or before that offset (~33 KB, ~11 KB after zlib), named by the
    offset so a retried pass overwrites the same object.

    Raises:
        ValueError: The offset lies outside what this pass read.
    """
    raw = stream.raw
    upper = raw.tell()
    if not stream.start_offset <= uncompressed_offset <= upper:
        raise ValueError(
            f"checkpoint offset {uncompressed_offset} is outside this pass's bytes "
            f"[{stream.start_offset}, {upper}]: pass the end of the last processed line"
        )
    common = {
        "next_line": next_line,
        "uncompressed_offset": uncompressed_offset,
        "next_chunk": next_chunk,
        "kind": stream.kind,
        "extra": dict(extra or {}),
    }
    if isinstance(raw, FirstPassRaw):
        raise ValueError("this stream was opened with checkpoints=False: it has no seek points")
    if not isinstance(raw, OneInflateRaw | ZranRaw | ReadAheadRaw):
        return Checkpoint(compressed_offset=uncompressed_offset, **common)
    if stream.index_store is None:
        raise ValueError("a gzip checkpoint needs an index_store to keep its seek point in")
    index, member_crc = _trimmed_index(raw, uncompressed_offset)
    if not index.points:
        # zran builds no point on its first read from offset 0, so a pass that read one buffer
        # has none: the next pass restarts from byte 0 and re-inflates at most that buffer.
        return Checkpoint(compressed_offset=0, **common)
    name = f"zran-{uncompressed_offset:016d}.idx.z"
    ref = stream.index_store.put_index(name, zlib.compress(index.to_bytes(), 6))
    point = index.points[-1]
    if uncompressed_offset - point.uncompressed_offset > _FAR_BEHIND_BYTES:
        logger.warning(
            "checkpoint at %d resumes from the seek point at %d: the consumer lagged more than "
            "the kept points, so the next pass re-inflates the gap",
            uncompressed_offset,
            point.uncompressed_offset,
        )
    return Checkpoint(
        compressed_offset=point.compressed_offset,
        index_ref=ref,
        member_crc=member_crc,
        **common,
    )


def _trimmed_index(
    raw: OneInflateRaw | ZranRaw | ReadAheadRaw, uncompressed_offset: int
) -> tuple[ZranIndex, MemberCrc | None]:
    """The seek points and the CRC-32 before the last one, read while no thread inflates.

    Every read may change them.
    """
    if isinstance(raw, ReadAheadRaw):
        with raw.paused() as inner:
            assert isinstance(inner, OneInflateRaw | ZranRaw)  # read ahead only over these
            return _trimmed_index(inner, uncompressed_offset)
    index = raw.trimmed_index(uncompressed_offset)
    if not isinstance(raw, OneInflateRaw) or not index.points:
        return index, None
    return index, raw.member_crc(index.points[-1].uncompressed_offset)


def _sniff(source: RangedRawFile) -> StreamKind:
    """Tell gzip from plain by the magic bytes, never by the object's name."""
    head = source.read(2) or b""
    source.seek(0)
    # A lone 0x1f byte is a gzip cut inside its magic (`gzip -d`: unexpected end of file), not
    # a one-line text manifest: it is read as gzip and fails as truncated.
    is_gzip = head == GZIP_MAGIC or (head == GZIP_MAGIC[:1] and source.size_bytes == 1)
    return StreamKind.GZIP if is_gzip else StreamKind.PLAIN


def _load_index(checkpoint: Checkpoint | None, store: IndexStore | None) -> ZranIndex | None:
    if checkpoint is None or checkpoint.index_ref is None:
        return None
    if store is None:
        raise ValueError("resuming a gzip checkpoint needs the index_store it was written to")
    blob = store.get_index(checkpoint.index_ref)
    try:
        return ZranIndex.parse(zlib.decompress(blob))
    except (zlib.error, IndexFormatError) as exc:
        raise ManifestReadError(
            f"checkpoint index {checkpoint.index_ref} is corrupt ({exc}); restart the split",
            error="CheckpointIndexCorrupt",
            line=checkpoint.next_line,
        ) from exc
