"""A pass that S3 broke mid-read is retried over the same blocks, so it cuts the same chunks.

Where Split's lines land depends on the runs of lines it reads: a run either goes to workers
unparsed or is parsed by Split as a whole (one quoted row makes Split parse its run, and the
malformed lines in it go to Split's parse part instead of the worker's failures). A read that
S3 broke used to be served short — the bytes inflated before the break — and raised on the next
read: the dead attempt's last run ended early, its retry read the whole block, and chunks it had
sent under the same numbers came out with other lines. Workers keep the first copy of a chunk,
so one line was in `failures/` twice and another in no part.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import pipeline.gzip.checkpoint as checkpoint_module
from pipeline.failures import ManifestReadError
from pipeline.gzip.index_store import LocalIndexStore
from pipeline.gzip.ranged import LocalFileReader
from pipeline.split.passes import SplitOptions
from tests.split_chain import SMALL_KNOBS, Chain, run_chain

BROKEN_AT = 2 * SMALL_KNOBS.block_bytes
"""The compressed offset of the one ranged GET that breaks: inside a read-ahead block."""
LINES = 14_000


class BreaksOnce(LocalFileReader):
    """A local object whose ranged GET at `BROKEN_AT` breaks the first time (a reset)."""

    broken = False

    def read_range(self, start: int, end: int) -> bytes:
        if start == BROKEN_AT and not BreaksOnce.broken:
            BreaksOnce.broken = True
            raise ManifestReadError("connection reset by peer", error="ReadInterrupted")
        return super().read_range(start, end)


def _rows(bad: int, quoted: int) -> list[bytes]:
    rows = [b"bkt-0,k/%08d.jpg" % line for line in range(1, LINES + 1)]
    rows[bad - 1] = b"bad row %d" % bad  # no record: its worker's or Split's, by its run
    rows[quoted - 1] = b'"bkt-0","k/%08d.jpg"' % quoted  # Split parses any run holding it
    return rows


def _line_at(rows: list[bytes], offset: int) -> int:
    end = 0
    for line, row in enumerate(rows, 1):
        end += len(row) + 1
        if end > offset:
            return line
    raise AssertionError(offset)


def _manifest(path: Path) -> Path:
    """A stored (level 0) gzip: compressed and decompressed offsets nearly agree, so the break
    falls at a known line — a malformed line just after 96 KiB, a quoted row just after it."""
    probe = _rows(2, 3)
    stored = gzip.compress(b"\n".join(probe) + b"\n", compresslevel=0, mtime=0)
    broken_at = len(zlib.decompressobj(31).decompress(stored[:BROKEN_AT]))
    bad, quoted = _line_at(probe, 96 * 1024 + 200), _line_at(probe, broken_at + 400)
    rows = _rows(bad, quoted)
    path.write_bytes(gzip.compress(b"\n".join(rows) + b"\n", compresslevel=0, mtime=0))
    return path


def _split_through_one_break(path: Path, tmp_path: Path) -> Chain:
    """Split `path` to its end through `BreaksOnce`, retrying a broken pass as Step Functions
    does; check that the read broke once, that every chunk sent again held what it held the
    first time (reading `chain.chunks` asserts it), and that every line is in exactly one place:
    a chunk's record, a chunk's raw line or Split's parse part."""
    store, options = LocalIndexStore(tmp_path / "idx"), SplitOptions(10, knobs=SMALL_KNOBS)
    chain = run_chain(str(path), BreaksOnce, store, options)
    assert BreaksOnce.broken and chain.deaths == 1
    assert chain.chunks
    assert sorted(chain.lines + chain.failed) == list(range(1, LINES + 1))
    return chain


def test_a_pass_whose_read_broke_is_retried_into_the_same_chunks(tmp_path):
    # GIVEN a manifest whose one ranged GET breaks mid-block during the first pass
    BreaksOnce.broken = False
    path = _manifest(tmp_path / "m.csv.gz")
    # WHEN it is split, the broken pass retried from its checkpoint
    # THEN every chunk sent again held what it held the first time, every line once
    _split_through_one_break(path, tmp_path)


def test_a_first_pass_whose_read_broke_inside_the_head_is_retried_into_the_same_chunks(
    tmp_path, monkeypatch
):
    # GIVEN a manifest whose ranged GET breaks inside the first pass's 64 KiB sniffed head,
    # a malformed line early in the head and a quoted row late in it
    monkeypatch.setattr(BreaksOnce, "broken", False)
    monkeypatch.setattr(f"{__name__}.BROKEN_AT", SMALL_KNOBS.block_bytes)
    probe = _rows(2, 3)
    path = tmp_path / "m.csv.gz"
    bad, quoted = _line_at(probe, 20 * 1024), _line_at(probe, 62 * 1024)
    path.write_bytes(gzip.compress(b"\n".join(_rows(bad, quoted)) + b"\n", compresslevel=0))
    # WHEN it is split, the broken pass retried THEN as above: the same chunks, every line once
    _split_through_one_break(path, tmp_path)


def test_a_read_broken_on_the_zran_path_fails_the_pass_instead_of_truncating_the_split(
    tmp_path, monkeypatch
):
    # GIVEN zran serving the stream (as after a hand-over, or with no libz to load), and a
    # healthy manifest whose one ranged GET breaks mid-block
    monkeypatch.setattr(checkpoint_module, "zlib_available", lambda: False)
    monkeypatch.setattr(BreaksOnce, "broken", False)
    rows = b"".join(b"bkt-0,k/%08d.jpg\n" % line for line in range(1, LINES + 1))
    path = tmp_path / "m.csv.gz"
    path.write_bytes(gzip.compress(rows, compresslevel=0, mtime=0))
    # WHEN it is split
    chain = _split_through_one_break(path, tmp_path)
    # THEN the pass failed and was retried, and the split ended at the manifest's end: the
    # break was S3's, not a truncated manifest's (it used to end the run PARTIAL for good)
    assert chain.outcomes[-1].reason is None
