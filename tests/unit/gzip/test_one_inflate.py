"""The one-inflate reader: zran's bytes and seek points from one inflate; zran for any oddity."""

from __future__ import annotations

import gzip
import io
import random
import struct
import zlib
from pathlib import Path

import pytest

from pipeline.failures import ManifestReadError
from pipeline.gzip import checkpoint as checkpoint_module
from pipeline.gzip.checkpoint import open_resumable
from pipeline.gzip.index import ZranIndex
from pipeline.gzip.index_store import LocalIndexStore
from pipeline.gzip.one_inflate import OneInflateRaw
from pipeline.gzip.ranged import LocalFileReader, RangedRawFile
from pipeline.gzip.zran import ZranRaw
from tests.checkpoint_chain import bgzf_like, gzip_members, gzip_single, pigz_like

SPACING = 64 * 1024
_rng = random.Random(7)
TEXT = b"".join(
    b"s3://bucket/photos/%d/%06d.jpg\n" % (_rng.randrange(10**9), i) for i in range(60_000)
)


def _every_header_field(data: bytes) -> bytes:
    """One member with FEXTRA, FNAME, FCOMMENT and FHCRC set (gzip.compress sets none)."""
    body = gzip.compress(data)[10:]  # deflate data and trailer after the 10-byte header
    header = b"\x1f\x8b\x08\x1e" + bytes(6) + struct.pack("<H", 4) + b"ab\x00\x01"
    header += b"name\x00" + b"comment\x00"
    return header + struct.pack("<H", zlib.crc32(header) & 0xFFFF) + body


PLAIN = {
    "gzip-6": gzip_single,
    "members": gzip_members,
    "bgzf": bgzf_like,
    "pigz": pigz_like,
    "every-header-field": _every_header_field,
}


def _source(path: Path) -> RangedRawFile:
    return RangedRawFile(LocalFileReader(path), block_bytes=64 * 1024, cache_bytes=1 << 20)


def _zran(source: RangedRawFile, index: ZranIndex | None, offset: int) -> ZranRaw:
    return ZranRaw.open(source, spacing_bytes=SPACING, index=index, offset=offset)


def _one_inflate(path: Path, index: ZranIndex | None = None, offset: int = 0) -> OneInflateRaw:
    source = _source(path)
    return OneInflateRaw.open(
        source,
        index=index,
        offset=offset,
        spacing_bytes=SPACING,
        keep_behind_bytes=4 * SPACING,
        read_bytes=16 * 1024,
        hand_over=lambda start, at: _zran(source, start, at),
    )


def _read(raw: io.RawIOBase, size: int = 48 * 1024) -> tuple[bytes, Exception | None]:
    """Everything ``raw`` serves, and the error it ends with (None at a clean end)."""
    served, buffer = bytearray(), bytearray(size)
    try:
        while n := raw.readinto(buffer):
            served += buffer[:n]
    except ManifestReadError as exc:
        return bytes(served), exc
    return bytes(served), None


@pytest.mark.parametrize("encoding", sorted(PLAIN))
def test_a_plain_gzip_is_read_whole_without_zran(tmp_path, encoding):
    path = tmp_path / "m.gz"
    path.write_bytes(PLAIN[encoding](TEXT))
    raw = _one_inflate(path)
    assert _read(raw) == (TEXT, None)
    assert raw.handed_over is None


@pytest.mark.parametrize("encoding", sorted(PLAIN))
def test_its_seek_points_are_zran_s_and_zran_s_are_its(tmp_path, encoding):
    # GIVEN checkpoints every ~200 KB of a first pass, by this reader and by zran
    path = tmp_path / "m.gz"
    path.write_bytes(PLAIN[encoding](TEXT))
    ours, theirs = _one_inflate(path), _zran(_source(path), None, 0)
    buffer = bytearray(200_000)
    pairs: list[tuple[int, ZranIndex, ZranIndex]] = []
    at = 0
    while n := ours.readinto(buffer):
        at += n
        while theirs.tell() < at:
            assert theirs.readinto(bytearray(at - theirs.tell()))
        line_end = TEXT.rfind(b"\n", 0, at) + 1
        pairs.append((line_end, ours.trimmed_index(line_end), theirs.trimmed_index(line_end)))
    assert len(pairs) > 10
    # WHEN a later pass resumes from each, with the other reader
    for line_end, our_index, zran_index in pairs:
        # THEN both read exactly the rest of the manifest
        assert _read(_zran(_source(path), our_index, line_end))[0] == TEXT[line_end:]
        rest, error = _read(_one_inflate(path, zran_index, line_end))
        assert (rest, error) == (TEXT[line_end:], None)


@pytest.mark.parametrize(
    "damage",
    ["trailing-garbage", "nul-padding", "cut-in-trailer", "cut-mid-member"],
)
def test_what_is_not_plain_ends_as_zran_alone_ends_it(tmp_path, damage):
    # GIVEN a gzip damaged the way gzip users meet it
    blob = gzip.compress(TEXT)
    blob = {
        "trailing-garbage": blob + b"not gzip\n",
        "nul-padding": blob + bytes(512),
        "cut-in-trailer": blob[:-3],
        "cut-mid-member": blob[: len(blob) * 2 // 3],
    }[damage]
    path = tmp_path / "m.gz"
    path.write_bytes(blob)
    # WHEN read by this reader, and by zran alone
    raw = _one_inflate(path)
    served, error = _read(raw)
    zran_served, zran_error = _read(_zran(_source(path), None, 0))
    # THEN the same bytes and the same verdict, zran's: this reader handed over
    assert raw.handed_over is not None
    assert served == zran_served
    assert str(error) == str(zran_error)


def test_a_member_whose_crc_disagrees_is_served_then_refused(tmp_path):
    # GIVEN a gzip whose trailer CRC is wrong while its data and ISIZE are right
    blob = bytearray(gzip.compress(TEXT))
    blob[-8] ^= 0x01
    path = tmp_path / "m.gz"
    path.write_bytes(bytes(blob))
    # WHEN read from its start
    served, error = _read(_one_inflate(path))
    # THEN every byte is served (a line-aligned reader keeps its lines), then the file refused
    assert served == TEXT
    assert isinstance(error, ManifestReadError)
    assert error.error == "CorruptManifest"
    assert "CRC-32" in str(error)


@pytest.mark.parametrize("members", [1, 2])
def test_a_member_whose_length_disagrees_is_served_then_refused(tmp_path, members):
    # GIVEN a gzip whose first member's trailer ISIZE is wrong while its data and CRC are right,
    # alone or followed by another member (zran, which checks only the last member's trailer,
    # read such a first member through, and the manifest as whole)
    first = gzip.compress(TEXT)
    first = first[:-4] + struct.pack("<I", len(TEXT) + 1)
    path = tmp_path / "m.gz"
    path.write_bytes(first + (gzip.compress(TEXT) if members == 2 else b""))
    # WHEN read from its start
    served, error = _read(_one_inflate(path))
    # THEN the first member is served, then the file refused
    assert served == TEXT
    assert isinstance(error, ManifestReadError)
    assert error.error == "CorruptManifest"
    assert "ISIZE" in str(error)


def test_without_libz_split_reads_through_zran(tmp_path, monkeypatch):
    path = tmp_path / "m.gz"
    path.write_bytes(gzip.compress(TEXT))
    store = LocalIndexStore(tmp_path / "idx")
    monkeypatch.setattr(checkpoint_module, "zlib_available", lambda: False)
    stream = open_resumable(LocalFileReader(path), None, index_store=store)
    assert isinstance(stream.raw, ZranRaw)
    assert stream.read() == TEXT


def test_a_flipped_byte_zran_reads_through_is_caught_by_the_crc(tmp_path):
    # GIVEN a byte flipped late in a member, where it changes bytes but neither the length nor
    # the deflate structure (zran alone serves it to the end and calls it whole)
    blob = bytearray(gzip.compress(TEXT))
    blob[len(blob) * 7 // 10] ^= 0xFF
    path = tmp_path / "m.gz"
    path.write_bytes(bytes(blob))
    zran_served, zran_error = _read(_zran(_source(path), None, 0))
    assert (len(zran_served), zran_error) == (len(TEXT), None)
    assert zran_served != TEXT
    # WHEN read by this reader from the member's start
    served, error = _read(_one_inflate(path))
    # THEN the same bytes, and the CRC-32 refuses the file
    assert served == zran_served
    assert isinstance(error, ManifestReadError)
    assert error.error == "CorruptManifest"
