"""gzip edge cases, settled against what `gzip -d` does, in both readers and in Split's passes.

- trailing garbage after the last member: gzip -d gives every byte and exits 2 ("trailing
  garbage ignored"); lambdaflow keeps every line, complete, with a warning.
- NUL padding after the last member: gzip exits 0; every line, complete.
- a second member cut inside its header: gzip gives every byte before it and exits 1
  ("unexpected end of file"); every line, and the manifest is truncated.
- a gzip cut inside its 8-byte trailer: gzip gives every byte and exits 1; every line (zran
  drops the read it breaks in, so objects up to 16 MiB are decoded again by zlib), truncated.
- a single 0x1f byte, the magic alone, a cut header: gzip gives nothing and exits 1;
  truncated, never read as a text manifest.

Split hands a stream with bytes after its last trailer to zran, which cannot check CRCs as it
streams, so it accepts trailing garbage only when the last member's CRC, recomputed, proves the
member whole (members up to 64 MiB); a bigger last member followed by garbage is refused as
truncated rather than risk taking a cut stream for a whole one.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess

import pytest

from pipeline.cli.scan import scan_manifest
from pipeline.config import Settings
from pipeline.failures import ManifestReadError
from pipeline.gzip.index_store import LocalIndexStore
from pipeline.gzip.ranged import LocalFileReader, RangedRawFile
from pipeline.gzip.zran import _CRC_CHECK_MAX_BYTES, ZranRaw
from pipeline.split.passes import SplitOptions
from tests.split_chain import SMALL_KNOBS, run_chain
from tests.unit.manifest_helpers import read_all

ROWS = b"".join(b"bkt,k%05d.jpg\n" % i for i in range(3_000))
GOOD = gzip.compress(ROWS)

# name → (bytes, gzip -d exit code, is every row decoded, lambdaflow reads it complete)
CASES = {
    "trailing_garbage": (GOOD + b"GARBAGE, not gzip\n", 2, True, True),
    "nul_padding": (GOOD + b"\0" * 512, 0, True, True),
    "cut_second_member": (GOOD + b"\x1f\x8b\x08", 1, True, False),
    "single_1f": (b"\x1f", 1, False, False),
    "magic_only": (b"\x1f\x8b", 1, False, False),
    "cut_header": (GOOD[:5], 1, False, False),
    "cut_in_trailer": (GOOD[:-4], 1, True, False),
}


def _write(tmp_path, name: str) -> str:
    path = tmp_path / f"{name}.csv.gz"
    path.write_bytes(CASES[name][0])
    return str(path)


@pytest.mark.skipif(shutil.which("gzip") is None, reason="the gzip tool is not installed")
@pytest.mark.parametrize("name", sorted(CASES))
def test_the_table_is_what_the_gzip_tool_does(tmp_path, name):
    data, code, is_whole, _ = CASES[name]
    done = subprocess.run(["gzip", "-dc"], input=data, capture_output=True, check=False)
    assert done.returncode == code, done.stderr
    assert (done.stdout == ROWS) is is_whole


@pytest.mark.parametrize("name", sorted(CASES))
def test_scan_reads_each_case_as_the_table_says(tmp_path, name):
    _, _, is_whole, is_complete = CASES[name]
    report = scan_manifest(_write(tmp_path, name), settings=Settings.from_env({}))
    assert report.complete is is_complete, report.error
    assert report.records == (3_000 if is_whole else 0)
    if not is_complete:
        assert report.error.startswith("TruncatedManifest")
    assert bool(report.warnings) is (name == "trailing_garbage")


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_streaming_reader_agrees(tmp_path, name):
    is_complete = CASES[name][3]
    source = _write(tmp_path, name)
    if is_complete:
        assert len(read_all(source)) == 3_000
        return
    with pytest.raises(ManifestReadError) as info:
        read_all(source)
    assert info.value.error == "TruncatedManifest"


def test_split_in_many_passes_keeps_every_line_before_trailing_garbage(tmp_path):
    rows = b"".join(b"bkt,k%07d.jpg\n" % i for i in range(60_000))
    path = tmp_path / "m.csv.gz"
    path.write_bytes(gzip.compress(rows) + b"trailing garbage")
    options = SplitOptions(500, budget_s=0.0, knobs=SMALL_KNOBS)
    chain = run_chain(str(path), LocalFileReader, LocalIndexStore(tmp_path / "idx"), options)
    last = chain.outcomes[-1]
    assert len(chain.outcomes) > 10
    assert (last.records, last.reason) == (60_000, None)


def test_a_last_member_too_big_to_prove_is_refused_when_garbage_follows(tmp_path):
    # GIVEN one member just over the size whose CRC Split's reader recomputes, then garbage
    row = b"bkt,k.jpg\n"
    rows = row * (_CRC_CHECK_MAX_BYTES // len(row) + 1)
    path = tmp_path / "m.csv.gz"
    path.write_bytes(gzip.compress(rows, compresslevel=1) + b"garbage")
    # THEN scan (Split's reader) keeps every line but calls the stream truncated
    report = scan_manifest(str(path), settings=Settings.from_env({}, chunk_items=10_000))
    assert report.records == len(rows) // len(row)
    assert report.complete is False
    assert report.error.startswith("TruncatedManifest")


def test_one_pass_over_a_corrupt_stream_keeps_the_lines_before_the_break(tmp_path):
    # GIVEN a gzip with one byte flipped in its middle (zran fails on the read that holds it)
    rows = b"".join(b"bkt,dir/k%07d-%d.jpg\n" % (i, i * 7919 % 10**6) for i in range(20_000))
    blob = bytearray(gzip.compress(rows))
    blob[len(blob) // 2] ^= 0xFF
    path = tmp_path / "m.csv.gz"
    path.write_bytes(bytes(blob))
    # WHEN scanned in one pass
    report = scan_manifest(str(path), settings=Settings.from_env({}))
    # THEN it refuses the file, yet counts what zlib decodes before the break, less at most
    # one 64 KiB recovery step (it used to lose the whole 1 MiB read: 0 records)
    assert report.complete is False
    assert report.error.startswith(("CorruptManifest", "TruncatedManifest"))
    kept_bytes = len(b"".join(rows.splitlines(keepends=True)[: report.records]))
    assert kept_bytes > len(rows) // 2 - 64 * 1024 - 1_000


@pytest.mark.timeout(60)
def test_zran_breaking_after_a_whole_member_ends_the_pass_instead_of_hanging_it(tmp_path):
    # GIVEN two members, the second corrupt in its middle, read by zran as Split reads it
    rows = b"".join(b"bkt,dir/k%07d-%d.jpg\n" % (i, i * 7919 % 10**6) for i in range(20_000))
    second = bytearray(gzip.compress(rows))
    second[len(second) // 2] ^= 0xFF
    path = tmp_path / "m.csv.gz"
    path.write_bytes(gzip.compress(rows) + bytes(second))
    source = RangedRawFile(LocalFileReader(path), block_bytes=64 * 1024, cache_bytes=1 << 20)
    raw = ZranRaw.open(source, spacing_bytes=64 * 1024, index=None, offset=0, readbuf_bytes=16384)
    # WHEN zran breaks and the object (under 16 MiB) is decoded again to recover what it dropped
    served = bytearray()
    buffer = bytearray(1 << 20)
    with pytest.raises(ManifestReadError, match="corrupt"):
        while n := raw.readinto(buffer):
            served += buffer[:n]
    # THEN the recovery walked on past the first member's end (zlib keeps the next member in
    # `unconsumed_tail` after an end: the loop once spun on it forever) and served it whole
    assert served.startswith(rows + rows[:1000])
