"""Shared helpers for the resumable-reading tests: manifest builders and a multi-pass driver.

The driver plays the Split: it reads whole lines for a budget of lines, then checkpoints at the
counted end of the last line it processed (never at a reader's tell()), as the real one must.
"""

from __future__ import annotations

import gzip
import random
import struct
import zlib
from dataclasses import dataclass, field

from pipeline.gzip.checkpoint import Checkpoint, open_resumable, take_checkpoint
from pipeline.gzip.index_store import IndexStore
from pipeline.gzip.ranged import ObjectReader

SMALL = {
    "spacing_bytes": 64 * 1024,
    "block_bytes": 64 * 1024,
    "read_buffer_bytes": 128 * 1024,
    "cache_bytes": 1024 * 1024,
}
"""Small knobs so a ~1 MB test file spans many seek points, blocks and passes."""
SMALL_AHEAD = {**SMALL, "read_ahead_blocks": 2, "read_ahead_block_bytes": 48 * 1024}
"""The same, with zran inflating on its own thread a few blocks ahead (as Split reads)."""


def manifest_text(n_lines: int, seed: int = 7) -> bytes:
    """CSV lines `bucket,key` with random parts, so gzip cannot shrink them to nothing."""
    rng = random.Random(seed)
    return b"".join(
        f"bucket-{i % 7},images/{i:09d}/{rng.getrandbits(40):x}.jpg\n".encode()
        for i in range(n_lines)
    )


def gzip_single(data: bytes) -> bytes:
    """One gzip member, `gzip -6` style."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def gzip_members(data: bytes, member_bytes: int = 200_000) -> bytes:
    """Concatenated gzip members, as `cat a.gz b.gz` or a parallel writer produces."""
    return b"".join(
        gzip.compress(data[i : i + member_bytes], mtime=0)
        for i in range(0, len(data), member_bytes)
    )


def bgzf_like(data: bytes, block: int = 65280) -> bytes:
    """BGZF-shaped members: <= 64 KiB each, with the `BC` extra subfield holding BSIZE - 1."""
    out = []
    for i in range(0, len(data), block):
        piece = data[i : i + block]
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = comp.compress(piece) + comp.flush()
        bsize = 18 + 6 + len(body)
        header = b"\x1f\x8b\x08\x04" + b"\0" * 4 + b"\0\xff" + struct.pack("<H", 6)
        extra = b"BC" + struct.pack("<HH", 2, bsize - 1)
        trailer = struct.pack("<II", zlib.crc32(piece), len(piece) & 0xFFFFFFFF)
        out.append(header + extra + body + trailer)
    out.append(gzip_single(b""))  # BGZF's empty end-of-file member
    return b"".join(out)


def pigz_like(data: bytes, block: int = 128 * 1024) -> bytes:
    """One member with a sync flush (`00 00 ff ff`) every block, as pigz writes."""
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    parts = []
    for i in range(0, len(data), block):
        parts.append(comp.compress(data[i : i + block]))
        parts.append(comp.flush(zlib.Z_SYNC_FLUSH))
    parts.append(comp.flush())
    return b"".join(parts)


@dataclass
class ChainResult:
    """What a multi-pass read produced: every (line number, line), and each pass's checkpoint."""

    lines: list[tuple[int, bytes]] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)

    @property
    def passes(self) -> int:
        return len(self.checkpoints)


def run_chain(
    open_reader: callable,
    store: IndexStore,
    *,
    lines_per_pass: int,
    knobs: dict[str, int] = SMALL,
    max_passes: int = 1000,
) -> ChainResult:
    """Read the whole manifest in passes of ``lines_per_pass`` lines, each from a fresh reader.

    ``open_reader(pass_no)`` returns the `ObjectReader` for one pass (tests keep them to count
    fetched bytes). Each checkpoint goes through its JSON form, as Step Functions would.
    """
    result = ChainResult()
    checkpoint: Checkpoint | None = None
    for pass_no in range(max_passes):
        reader: ObjectReader = open_reader(pass_no)
        stream = open_resumable(reader, checkpoint, index_store=store, **knobs)
        line_no = checkpoint.next_line if checkpoint else 1
        offset = checkpoint.uncompressed_offset if checkpoint else 0
        at_end = True
        for line in stream:
            result.lines.append((line_no, line))
            line_no += 1
            offset += len(line)
            if line_no - (checkpoint.next_line if checkpoint else 1) >= lines_per_pass:
                at_end = False
                break
        new = take_checkpoint(
            stream, next_line=line_no, uncompressed_offset=offset, next_chunk=pass_no + 1
        )
        stream.close()
        checkpoint = Checkpoint.from_dict(new.to_dict())
        result.checkpoints.append(checkpoint)
        if at_end:
            return result
    raise AssertionError(f"no end after {max_passes} passes")
