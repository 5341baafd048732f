"""Resumable manifest reading on local files: N passes with checkpoints == one pass, and no
resumed pass fetches the compressed bytes before its seek point."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pytest

from pipeline.failures import ManifestReadError
from pipeline.gzip.checkpoint import Checkpoint, StreamKind, open_resumable, take_checkpoint
from pipeline.gzip.index import ZranIndex
from pipeline.gzip.index_store import LocalIndexStore
from pipeline.gzip.ranged import LocalFileReader
from tests.checkpoint_chain import (
    SMALL,
    SMALL_AHEAD,
    bgzf_like,
    gzip_members,
    gzip_single,
    manifest_text,
    pigz_like,
    run_chain,
)

TEXT = manifest_text(120_000)  # ~5 MB of text, ~1.3 MB gzip: many points, blocks, passes

ENCODINGS = {
    "gzip-6": gzip_single,
    "multi-member": gzip_members,
    "bgzf": bgzf_like,
    "pigz": pigz_like,
    "plain": lambda data: data,
}


class RecordingReader(LocalFileReader):
    """A local reader that also remembers every range it fetched."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.ranges: list[tuple[int, int]] = []

    def read_range(self, start: int, end: int) -> bytes:
        self.ranges.append((start, end))
        return super().read_range(start, end)


def _write(tmp_path: Path, encoding: str, text: bytes = TEXT) -> Path:
    path = tmp_path / f"manifest-{encoding}.csv.gz"
    path.write_bytes(ENCODINGS[encoding](text))
    return path


def _one_pass_lines(text: bytes) -> list[tuple[int, bytes]]:
    return list(enumerate(text.splitlines(keepends=True), start=1))


@pytest.mark.parametrize("knobs", [SMALL, SMALL_AHEAD], ids=["inline", "read-ahead"])
@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_chained_passes_yield_exactly_the_lines_of_one_pass(tmp_path, encoding, knobs):
    # GIVEN a manifest and a chain of passes of 25,000 lines each, every pass a fresh reader
    path = _write(tmp_path, encoding)
    readers: list[RecordingReader] = []

    def open_reader(_pass_no: int) -> RecordingReader:
        readers.append(RecordingReader(path))
        return readers[-1]

    # WHEN the whole manifest is read through checkpoints
    store = LocalIndexStore(tmp_path / "idx")
    chain = run_chain(open_reader, store, lines_per_pass=25_000, knobs=knobs)

    # THEN every line arrives once, in order, with its 1-based number
    assert chain.lines == _one_pass_lines(TEXT)
    assert chain.passes >= 5
    assert chain.checkpoints[-1].next_line == TEXT.count(b"\n") + 1
    # AND a pass resumed from the final checkpoint finds nothing left
    last = open_resumable(RecordingReader(path), chain.checkpoints[-1], index_store=store, **knobs)
    assert last.read() == b""
    # AND the whole chain fetched the object about once: per pass, the block holding the seek
    # point (fetched by both passes) and zran's read-ahead past the last line (a quarter block
    # of compressed input, up to a spacing of index expansion, the decompressed read buffer)
    size = path.stat().st_size
    fetched = sum(r.bytes_fetched for r in readers)
    assert fetched <= size * 1.05 + chain.passes * 2 * SMALL["block_bytes"]


@pytest.mark.parametrize("knobs", [SMALL, SMALL_AHEAD], ids=["inline", "read-ahead"])
@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_resumed_pass_never_fetches_before_its_seek_point(tmp_path, encoding, knobs):
    # GIVEN a chain whose readers record every range they fetched
    path = _write(tmp_path, encoding)
    readers: list[RecordingReader] = []

    def open_reader(_pass_no: int) -> RecordingReader:
        readers.append(RecordingReader(path))
        return readers[-1]

    chain = run_chain(
        open_reader, LocalIndexStore(tmp_path / "idx"), lines_per_pass=20_000, knobs=knobs
    )

    # THEN each resumed pass's first fetched byte is in the block holding its seek point (the
    # bit-aligned point may need the byte before it), never earlier
    block = SMALL["block_bytes"]
    for checkpoint, reader in zip(chain.checkpoints, readers[1:], strict=False):
        first = min((start for start, _ in reader.ranges), default=path.stat().st_size)
        assert first >= (max(0, checkpoint.compressed_offset - 1) // block) * block
    # AND the seek points advance with the passes: a later pass starts later in the object
    offsets = [c.compressed_offset for c in chain.checkpoints]
    assert offsets == sorted(offsets)
    assert offsets[-2] > path.stat().st_size // 2


@pytest.mark.parametrize("knobs", [SMALL, SMALL_AHEAD], ids=["inline", "read-ahead"])
def test_gzip_checkpoint_stores_a_trimmed_index_of_point_zero_and_one_seek_point(tmp_path, knobs):
    # GIVEN a single-member gzip read for a while
    path = _write(tmp_path, "gzip-6")
    store = LocalIndexStore(tmp_path / "idx")
    stream = open_resumable(LocalFileReader(path), None, index_store=store, **knobs)
    consumed = len(stream.read(700_000))

    # WHEN a checkpoint is taken at the end of what was consumed
    checkpoint = take_checkpoint(stream, next_line=9, uncompressed_offset=consumed, next_chunk=3)

    # THEN the stored index is small: point 0 plus the last point at or before the offset
    index = ZranIndex.parse(zlib.decompress(Path(checkpoint.index_ref).read_bytes()))
    assert index.points[0].uncompressed_offset == 0
    assert len(index.points) == 2
    assert 0 < index.points[-1].uncompressed_offset <= consumed
    assert consumed - index.points[-1].uncompressed_offset <= 2 * SMALL["spacing_bytes"]
    assert checkpoint.compressed_offset == index.points[-1].compressed_offset
    assert len(Path(checkpoint.index_ref).read_bytes()) < 40_000
    assert checkpoint.kind is StreamKind.GZIP


def test_long_pass_sheds_seek_points_so_memory_stays_flat(tmp_path):
    # GIVEN a manifest of ~13 MB of text: ~200 seek points at 64 KiB spacing if all were kept
    text = manifest_text(300_000)
    path = tmp_path / "big.csv.gz"
    path.write_bytes(gzip_single(text))
    stream = open_resumable(LocalFileReader(path), None, index_store=None, **SMALL)

    # WHEN it is read to the end in one pass
    assert stream.read() == text

    # THEN zran holds only the recent points (and their 32 KiB windows), not one per spacing
    held = len(stream.raw.export_index().points)
    assert held < 100 < len(text) // SMALL["spacing_bytes"]


def test_plain_manifest_resumes_at_its_byte_offset_without_an_index(tmp_path):
    # GIVEN a plain-text manifest and a checkpoint in its middle
    path = _write(tmp_path, "plain")
    first = open_resumable(LocalFileReader(path), None, index_store=None, **SMALL)
    head = b"".join(first.readline() for _ in range(1000))
    checkpoint = take_checkpoint(first, next_line=1001, uncompressed_offset=len(head), next_chunk=1)

    # WHEN the next pass opens at it
    reader = LocalFileReader(path)
    rest = open_resumable(reader, checkpoint, index_store=None, **SMALL).read()

    # THEN it yields exactly the rest, and fetched only the bytes from its block on
    assert checkpoint.kind is StreamKind.PLAIN and checkpoint.index_ref is None
    assert head + rest == TEXT
    block = SMALL["block_bytes"]
    assert reader.bytes_fetched == len(TEXT) - (len(head) // block) * block


def test_checkpoint_round_trips_through_json():
    checkpoint = Checkpoint(
        next_line=1_000_001,
        uncompressed_offset=123_456_789_012,
        next_chunk=1001,
        kind=StreamKind.GZIP,
        compressed_offset=23_456_789_012,
        index_ref="runs/abc/checkpoints/zran-0000123456789012.idx.z",
        extra={"array_depth": 1},
    )
    text = json.dumps(checkpoint.to_dict())
    assert Checkpoint.from_dict(json.loads(text)) == checkpoint
    assert len(text) < 400  # Step Functions state, not a payload


def test_checkpoint_from_dict_rejects_an_unknown_version():
    data = Checkpoint(1, 0, 0, StreamKind.PLAIN, 0).to_dict() | {"v": 2}
    with pytest.raises(ValueError, match="version 2"):
        Checkpoint.from_dict(data)


def test_take_checkpoint_rejects_an_offset_past_what_was_read(tmp_path):
    path = _write(tmp_path, "gzip-6")
    stream = open_resumable(
        LocalFileReader(path), None, index_store=LocalIndexStore(tmp_path), **SMALL
    )
    stream.read(1000)
    with pytest.raises(ValueError, match="end of the last processed line"):
        take_checkpoint(stream, next_line=2, uncompressed_offset=10**9, next_chunk=1)


@pytest.mark.parametrize("cut", ["truncated", "garbled"])
def test_broken_gzip_raises_manifest_read_error_with_the_compressed_offset(tmp_path, cut):
    # GIVEN a gzip manifest cut short, or with bytes overwritten in its middle
    data = bytearray(gzip_single(TEXT))
    middle = len(data) // 2
    if cut == "truncated":
        del data[middle:]
    else:
        data[middle : middle + 64] = bytes(range(64))
    path = tmp_path / "broken.csv.gz"
    path.write_bytes(bytes(data))

    # WHEN it is read to the end, THEN the break is an error, not a quiet short stream
    stream = open_resumable(LocalFileReader(path), None, index_store=None, **SMALL)
    with pytest.raises(ManifestReadError) as caught:
        while stream.read(65536):
            pass
    assert caught.value.error in {"CorruptManifest", "TruncatedManifest"}
    assert caught.value.compressed_offset is not None
    assert caught.value.compressed_offset >= middle - SMALL["block_bytes"]


def test_nul_padding_after_the_last_member_is_accepted_as_gzip_accepts_it(tmp_path):
    path = tmp_path / "padded.csv.gz"
    path.write_bytes(gzip_single(TEXT) + b"\0" * 512)
    assert open_resumable(LocalFileReader(path), None, index_store=None, **SMALL).read() == TEXT


def test_empty_gzip_member_reads_as_empty(tmp_path):
    path = tmp_path / "empty.csv.gz"
    path.write_bytes(gzip.compress(b""))
    assert open_resumable(LocalFileReader(path), None, index_store=None).read() == b""


def test_missing_or_damaged_index_is_a_manifest_read_error(tmp_path):
    # GIVEN a gzip checkpoint whose stored index is then lost or damaged
    path = _write(tmp_path, "gzip-6")
    store = LocalIndexStore(tmp_path / "idx")
    stream = open_resumable(LocalFileReader(path), None, index_store=store, **SMALL)
    consumed = len(stream.read(500_000))
    checkpoint = take_checkpoint(stream, next_line=5, uncompressed_offset=consumed, next_chunk=1)
    index_path = Path(checkpoint.index_ref)

    index_path.write_bytes(b"not an index")
    with pytest.raises(ManifestReadError) as damaged:
        open_resumable(LocalFileReader(path), checkpoint, index_store=store, **SMALL)
    assert damaged.value.error == "CheckpointIndexCorrupt"

    index_path.unlink()
    with pytest.raises(ManifestReadError) as missing:
        open_resumable(LocalFileReader(path), checkpoint, index_store=store, **SMALL)
    assert missing.value.error == "CheckpointIndexMissing"
