"""A gzip member longer than a pass has its CRC-32 checked across the passes that read it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipeline.failures import ManifestReadError
from pipeline.gzip.checkpoint import Checkpoint, open_resumable
from pipeline.gzip.index_store import LocalIndexStore
from pipeline.gzip.one_inflate import MemberCrc
from pipeline.gzip.ranged import LocalFileReader
from tests.checkpoint_chain import (
    SMALL,
    SMALL_AHEAD,
    gzip_members,
    gzip_single,
    manifest_text,
    pigz_like,
    run_chain,
)

TEXT = manifest_text(40_000)
LINES_PER_PASS = 6_000
ENCODINGS = {"gzip-6": gzip_single, "members": gzip_members, "pigz": pigz_like}


def _chain(tmp_path, blob: bytes):
    path = tmp_path / "m.gz"
    path.write_bytes(blob)
    store = LocalIndexStore(tmp_path / "idx")
    return path, store, lambda _: LocalFileReader(path)


@pytest.mark.parametrize("knobs", [SMALL, SMALL_AHEAD], ids=["inline", "read-ahead"])
@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_every_checkpoint_carries_its_member_s_crc_and_the_chain_reads_clean(
    tmp_path, encoding, knobs
):
    _, store, opener = _chain(tmp_path, ENCODINGS[encoding](TEXT))
    chain = run_chain(opener, store, lines_per_pass=LINES_PER_PASS, knobs=knobs)
    assert b"".join(line for _, line in chain.lines) == TEXT
    assert chain.passes > 5
    mid = [c for c in chain.checkpoints if c.index_ref is not None]
    assert mid and all(c.member_crc is not None for c in mid)


def test_a_byte_flipped_in_a_later_pass_of_one_member_is_refused_at_its_trailer(tmp_path):
    # GIVEN one member, read in passes, with a byte flipped late in it that inflates to the same
    # length: no pass but the first reads the member from its start
    blob = bytearray(gzip_single(TEXT))
    blob[len(blob) * 8 // 10] ^= 0xFF
    _, store, opener = _chain(tmp_path, bytes(blob))
    # WHEN the chain reads it to the end
    with pytest.raises(ManifestReadError) as caught:
        run_chain(opener, store, lines_per_pass=LINES_PER_PASS)
    # THEN the CRC carried from the first pass refuses it (zran alone called it whole)
    assert caught.value.error == "CorruptManifest"
    assert "CRC-32" in str(caught.value)


def _mid_checkpoint(tmp_path) -> tuple[Path, LocalIndexStore, Checkpoint]:
    """A clean single-member file, and the checkpoint its third pass took."""
    path, store, opener = _chain(tmp_path, gzip_single(TEXT))
    mid = run_chain(opener, store, lines_per_pass=LINES_PER_PASS).checkpoints[2]
    assert mid.member_crc is not None and mid.index_ref is not None
    return path, store, mid


def _rest(
    path: Path, store: LocalIndexStore, checkpoint: Checkpoint
) -> tuple[bytes, Exception | None]:
    stream = open_resumable(LocalFileReader(path), checkpoint, index_store=store, **SMALL)
    served = bytearray()
    try:
        while chunk := stream.read1(1 << 16):
            served += chunk
    except ManifestReadError as exc:
        return bytes(served), exc
    return bytes(served), None


def test_the_carried_crc_is_the_one_checked(tmp_path):
    # GIVEN a clean file's mid-chain checkpoint, its carried CRC off by one
    path, store, checkpoint = _mid_checkpoint(tmp_path)
    crc = checkpoint.member_crc
    wrong = dataclasses.replace(checkpoint, member_crc=MemberCrc(crc.at, crc.crc32 ^ 1))
    # WHEN the next pass reads to the end with it, and with the right one
    rest, error = _rest(path, store, wrong)
    right_rest, right_error = _rest(path, store, checkpoint)
    # THEN every byte is served either way; only the wrong CRC is refused
    assert rest == right_rest == TEXT[checkpoint.uncompressed_offset :]
    assert right_error is None
    assert isinstance(error, ManifestReadError) and error.error == "CorruptManifest"


def test_a_checkpoint_without_a_crc_still_resumes(tmp_path):
    # GIVEN a checkpoint as state written before checkpoints carried a CRC holds it
    path, store, checkpoint = _mid_checkpoint(tmp_path)
    state = checkpoint.to_dict()
    del state["member_crc32"]
    old = Checkpoint.from_dict(state)
    assert old.member_crc is None
    # WHEN resumed THEN the rest is read, its member's CRC unchecked (only its ISIZE)
    assert _rest(path, store, old) == (TEXT[checkpoint.uncompressed_offset :], None)
