"""`FirstPassRaw` serves exactly the bytes of a plain gzip, and signals anything else.

A pass that never checkpoints (`scan`) reads gzip through ISA-L; it must yield byte for byte
what zran yields for plain members, and raise `NotPlainGzip` (so the caller reads through zran)
at every irregularity instead of guessing.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.failures import NotPlainGzip
from pipeline.gzip.checkpoint import open_resumable, take_checkpoint
from pipeline.gzip.first_pass import FirstPassRaw
from pipeline.gzip.ranged import LocalFileReader, RangedRawFile
from pipeline.manifest.lines import BLOCK_BYTES


def _read_all(path: Path, size: int) -> bytes:
    raw = FirstPassRaw(RangedRawFile(LocalFileReader(path), block_bytes=4096))
    out, buffer = [], bytearray(size)
    while n := raw.readinto(buffer):
        out.append(bytes(buffer[:n]))
    assert raw.readinto(buffer) == 0  # stays at its end
    return b"".join(out)


@settings(max_examples=40, deadline=None)
@given(
    pieces=st.lists(st.binary(max_size=3000), min_size=1, max_size=5),
    level=st.integers(0, 9),
    size=st.sampled_from([1, 7, 4096, 1 << 20]),
)
def test_plain_members_read_as_their_concatenation(tmp_path_factory, pieces, level, size):
    # GIVEN one or more gzip members, some empty, some incompressible, at any level
    pieces = [p + os.urandom(len(p) % 97) for p in pieces]
    path = tmp_path_factory.mktemp("fp") / "m.gz"
    path.write_bytes(b"".join(gzip.compress(p, compresslevel=level) for p in pieces))
    # WHEN read in reads of any size / THEN exactly the concatenated data
    assert _read_all(path, size) == b"".join(pieces)


def _variants() -> dict[str, bytes]:
    blob = gzip.compress(b"bkt,k.jpg\n" * 5000)
    middle = len(blob) // 2
    return {
        "truncated": blob[:middle],
        "cut-in-trailer": blob[:-3],
        "flipped-crc": blob[:-8] + bytes([blob[-8] ^ 1]) + blob[-7:],
        "flipped-data": blob[:middle] + bytes([blob[middle] ^ 0xFF]) + blob[middle + 1 :],
        "nul-padding": blob + b"\0" * 64,
        "garbage": blob + b"garbage",
        "lone-1f": blob + b"\x1f",
        "bad-second-header": blob + b"\x1f\x8b\x09" + b"\0" * 20,
    }


@pytest.mark.parametrize("name", sorted(_variants()))
def test_anything_but_plain_members_raises_not_plain(tmp_path, name):
    path = tmp_path / "m.gz"
    path.write_bytes(_variants()[name])
    with pytest.raises(NotPlainGzip):
        _read_all(path, 1 << 16)


def test_a_stream_without_checkpoints_refuses_to_take_one(tmp_path):
    path = tmp_path / "m.gz"
    path.write_bytes(gzip.compress(b"bkt,k\n" * 100))
    stream = open_resumable(LocalFileReader(path), None, index_store=None, checkpoints=False)
    assert isinstance(stream.raw, FirstPassRaw)
    assert stream.read() == b"bkt,k\n" * 100
    with pytest.raises(ValueError, match="checkpoints=False"):
        take_checkpoint(stream, next_line=101, uncompressed_offset=600, next_chunk=1)


def test_closing_mid_stream_stops_the_inflating_thread(tmp_path):
    # GIVEN a gzip far bigger than the blocks the inflating thread may hold ready
    path = tmp_path / "m.gz"
    path.write_bytes(gzip.compress(os.urandom(1 << 16).hex().encode() * 200, compresslevel=1))
    raw = FirstPassRaw(RangedRawFile(LocalFileReader(path)))
    buffer = bytearray(1 << 16)
    assert raw.readinto(buffer) > 0
    # WHEN the reader closes after one read
    raw.close()
    # THEN the thread, blocked on a full queue, has ended
    assert not raw._thread.is_alive()
    assert raw.closed


def test_every_byte_before_a_break_comes_before_the_error(tmp_path):
    # GIVEN a gzip cut in the middle of many blocks of output
    data = b"".join(b"bkt,photos/%09d.jpg\n" % i for i in range(400_000))
    blob = gzip.compress(data)
    path = tmp_path / "m.gz"
    path.write_bytes(blob[: len(blob) // 2])
    raw = FirstPassRaw(RangedRawFile(LocalFileReader(path)))
    got, buffer = bytearray(), bytearray(1 << 16)
    # WHEN read until it raises
    with pytest.raises(NotPlainGzip):
        while n := raw.readinto(buffer):
            got += buffer[:n]
    # THEN what came first is the data's own beginning, several blocks of it, in order
    assert len(got) > 2 * (1 << 20)
    assert data.startswith(got)
    # AND a read after the error raises it again, never a clean end
    with pytest.raises(NotPlainGzip):
        raw.readinto(buffer)


def test_reads_of_the_record_readers_size_come_as_whole_blocks(tmp_path):
    # GIVEN a gzip of many MiB whose inflate calls each give ~1.2 MB (a 256 KiB feed)
    data = b"".join(b"bkt,photos/%09d.jpg\n" % i for i in range(400_000))
    path = tmp_path / "m.gz"
    path.write_bytes(gzip.compress(data, compresslevel=3))
    raw = FirstPassRaw(RangedRawFile(LocalFileReader(path)))
    buffer = bytearray(BLOCK_BYTES)
    # WHEN read in reads of the record reader's size
    sizes = []
    while n := raw.readinto(buffer):
        sizes.append(n)
    # THEN every read but the last is a whole block of that size (no ~0.2 MB rests between)
    assert sizes[:-1] == [BLOCK_BYTES] * (len(sizes) - 1)
    assert sum(sizes) == len(data)


@settings(max_examples=30, deadline=None)
@given(
    reads=st.lists(st.tuples(st.sampled_from(["read1", "read", "peek"]), st.integers(0, 1 << 21)))
)
def test_read1_hands_blocks_over_and_mixes_with_buffered_reads(tmp_path_factory, reads):
    # GIVEN a first-pass stream of a few MiB (several ISA-L blocks)
    data = b"".join(b"bkt,photos/%09d.jpg\n" % i for i in range(150_000))
    path = tmp_path_factory.mktemp("fp") / "m.gz"
    path.write_bytes(gzip.compress(data, compresslevel=1))
    stream = open_resumable(LocalFileReader(path), None, index_store=None, checkpoints=False)
    # WHEN read1 (whole blocks taken as they are), read and peek (through the buffer) mix
    got = bytearray()
    for method, size in reads:
        if method == "peek":
            stream.peek(size)
        else:
            got += getattr(stream, method)(size)
        assert stream.tell() == len(got)
    got += stream.read()
    # THEN the bytes come in order, none lost or repeated
    assert got == data
    stream.close()


def test_read1_of_the_block_size_takes_the_queued_blocks_themselves(tmp_path):
    # GIVEN a first-pass stream whose queued blocks are recorded as the reader takes them
    data = b"".join(b"bkt,photos/%09d.jpg\n" % i for i in range(150_000))
    path = tmp_path / "m.gz"
    path.write_bytes(gzip.compress(data, compresslevel=1))
    stream = open_resumable(LocalFileReader(path), None, index_store=None, checkpoints=False)
    queued = []
    took = stream.raw._took_block
    stream.raw._took_block = lambda block: (queued.append(block), took(block))[1]
    # WHEN read1 asks for the record reader's read size
    blocks = []
    while block := stream.read1(BLOCK_BYTES):
        blocks.append(block)
    # THEN each read is a queued block itself, not a copy of it
    assert b"".join(blocks) == data
    assert len(blocks) == len(queued) > 1
    assert all(b is q for b, q in zip(blocks, queued, strict=True))
    stream.close()
