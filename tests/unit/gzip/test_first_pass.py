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
