"""`scan` counts what Split sends — lines, records, failures, chunks — truncated manifests included.

Split here is the state machine's way: many short passes, each from a checkpoint through its JSON
form (`tests/split_chain.py`). scan is one dry-run pass of the same code. A truncated manifest
is where they used to differ: scan counted only the chunks finished before the break (a file cut
after 386 good lines reported 0 records) while Split sends the records before the break.
"""

from __future__ import annotations

import gzip
import json
import random
import zlib
from collections import Counter

import pytest

from pipeline.cli.scan import scan_manifest
from pipeline.config import Settings
from pipeline.gzip.index_store import LocalIndexStore
from pipeline.gzip.ranged import LocalFileReader
from pipeline.split.passes import SplitOptions
from tests.split_chain import SMALL_KNOBS, run_chain, tick_clock
from tests.unit.manifest_helpers import count_taken

CHUNK = 97


def _rows(n: int, seed: int = 7) -> bytes:
    """CSV rows with a bad line now and then, a blank line, and URL-encoded keys."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.03:
            out.append(b"not-a-row\n")
        elif roll < 0.05:
            out.append(b"\n")
        else:
            out.append(b"bkt,dir/k%06d-%d%%20x.jpg\n" % (i, rng.randrange(10**6)))
    return b"".join(out)


def _compare(source: str, tmp_path, *, min_passes: int = 2) -> tuple[object, object]:
    """Scan and a many-pass Split of `source`; assert they agree, return both."""
    report = scan_manifest(source, settings=Settings.from_env({}, chunk_items=CHUNK))
    options = SplitOptions(CHUNK, budget_s=3, knobs=SMALL_KNOBS)
    store = LocalIndexStore(tmp_path / f"idx-{random.random()}")
    chain = run_chain(source, LocalFileReader, store, options, clock=tick_clock())
    last = chain.outcomes[-1]
    split_failures = sum(len(part) for part in chain.failures.parts.values())
    assert split_failures == sum(last.parse_failures.values())
    # Split sends some lines unparsed (each counted in `records`), their workers find the
    # failures among them; scan parses every line, so its chunks never hold a failure
    worker_failures = [error for part in chain.chunk_failures.values() for _, error in part]
    assert report.records == len(chain.lines) == last.records - len(worker_failures)
    assert report.chunks <= last.chunks_sent == len(chain.chunks)
    assert report.failed == split_failures + len(worker_failures) == len(chain.failed)
    assert report.failures_by_error == Counter(last.parse_failures) + Counter(worker_failures)
    assert report.records + report.failed == last.lines
    assert report.complete is (last.reason is None)
    assert report.error == last.reason
    assert len(chain.outcomes) >= min_passes  # Split really resumed
    return report, chain


@pytest.mark.parametrize("cut", [0.1, 0.37, 0.5, 0.83, 0.999])
def test_scan_equals_split_on_a_truncated_gzip(tmp_path, cut):
    blob = gzip.compress(_rows(20_000), compresslevel=6)
    path = tmp_path / "m.csv.gz"
    path.write_bytes(blob[: int(len(blob) * cut)])
    report, _ = _compare(str(path), tmp_path)
    assert report.complete is False
    assert "Truncated" in report.error or "Corrupt" in report.error
    assert report.records > 0


def _cut_after_lines(blob: bytes, rows: bytes, lines: int) -> bytes:
    """The shortest prefix of `blob` whose decodable bytes hold `lines` whole lines."""
    want = sum(len(r) + 1 for r in rows.split(b"\n")[:lines])
    for size in range(len(blob)):
        if len(zlib.decompressobj(31).decompress(blob[:size])) >= want:
            return blob[:size]
    raise AssertionError("the data never held that many lines")


def test_a_manifest_cut_after_386_good_lines_reports_386_records(tmp_path):
    # GIVEN a gzip of 1,000 good lines, cut just after its 386th line
    rows = b"".join(b"bkt,k%d.jpg\n" % i for i in range(1_000))
    path = tmp_path / "m.csv.gz"
    path.write_bytes(_cut_after_lines(gzip.compress(rows), rows, 386))
    # WHEN scanned with Split's default chunk size (500: not one full chunk)
    report = scan_manifest(str(path), settings=Settings.from_env({}))
    # THEN the 386 records Split would send are counted, in the one chunk it would send
    assert (report.records, report.chunks, report.complete) == (386, 1, False)
    assert report.lines == 386


def test_scan_equals_split_on_a_whole_gzip_and_a_plain_file(tmp_path):
    rows = _rows(20_000, seed=3)
    (tmp_path / "m.csv.gz").write_bytes(gzip.compress(rows))
    (tmp_path / "m.csv").write_bytes(rows)
    for name in ("m.csv.gz", "m.csv"):
        report, _ = _compare(str(tmp_path / name), tmp_path)
        assert report.complete is True
        assert report.lines == rows.count(b"\n")
        assert report.uncompressed_bytes == len(rows)


def test_scan_equals_split_on_an_inventory_with_a_truncated_part(tmp_path):
    # GIVEN an Inventory report whose second of three parts is cut short
    keys = []
    for i, seed in enumerate((1, 2, 3)):
        body = _rows(6_000, seed=seed).replace(b"bkt,", b'"bkt","').replace(b".jpg\n", b'.jpg"\n')
        blob = gzip.compress(body)
        key = f"inv/src/cfg/data/part-{i}.csv.gz"
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(blob[: len(blob) // 2] if i == 1 else blob)
        keys.append(key)
    doc = {"fileFormat": "CSV", "fileSchema": "Bucket, Key", "files": [{"key": k} for k in keys]}
    manifest = tmp_path / "inv/src/cfg/2026-12-03T01-00Z/manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps(doc))
    # THEN scan and Split agree, and both stop at the break in part 1
    report, _ = _compare(str(manifest), tmp_path)
    assert report.format == "inventory"
    assert report.complete is False
    assert 6_000 * 0.9 < report.records < 12_000


@pytest.mark.parametrize("cut", [1, 4, 8])
def test_a_gzip_cut_inside_its_trailer_keeps_every_line(tmp_path, cut):
    # zran drops the read in which the stream breaks; the reader decodes small objects again
    rows = b"".join(b"bkt,k%d.jpg\n" % i for i in range(386))
    path = tmp_path / "m.csv.gz"
    path.write_bytes(gzip.compress(rows)[:-cut])
    report, _ = _compare(str(path), tmp_path, min_passes=1)
    assert (report.records, report.chunks, report.complete) == (386, 4, False)
    assert report.error.startswith("TruncatedManifest")


def _members(rows: bytes, parts: int) -> bytes:
    step = len(rows) // parts + 1
    return b"".join(gzip.compress(rows[i : i + step]) for i in range(0, len(rows), step))


@pytest.mark.parametrize(
    "shape",
    [
        "members",
        "nul-padded",
        "trailing-garbage",
        "flipped-byte",
        "lone-1f",
    ],
)
def test_scan_equals_split_on_gzips_that_are_not_one_plain_member(tmp_path, shape):
    # GIVEN a gzip that scan's ISA-L reading serves itself (members) or hands to zran (others)
    rows = _rows(20_000, seed=5)
    blob = _members(rows, 3) if shape == "members" else gzip.compress(rows)
    if shape == "nul-padded":
        blob += b"\0" * 1000
    elif shape == "trailing-garbage":
        blob += b"not gzip at all\n"
    elif shape == "flipped-byte":
        middle = len(blob) // 2
        blob = blob[:middle] + bytes([blob[middle] ^ 0xFF]) + blob[middle + 1 :]
    elif shape == "lone-1f":
        blob += b"\x1f"
    path = tmp_path / "m.csv.gz"
    path.write_bytes(blob)
    # WHEN scanned, and split in many passes / THEN the same counts, error and warnings' effect
    report, _ = _compare(str(path), tmp_path)
    if shape in ("members", "nul-padded", "trailing-garbage"):
        assert report.complete is True
        assert report.lines == rows.count(b"\n")
    elif shape == "flipped-byte":
        # one pass and a chain both inflate once to the end, where the trailer disagrees (zran
        # once broke mid-stream in one pass and read to the end in a chain: 9,993 against 9,997)
        assert report.complete is False
        assert report.error.startswith(("TruncatedManifest", "CorruptManifest"))
        assert report.records > 9_000


def _flipped_keeping_length(blob: bytes, rows: bytes, from_share: float) -> tuple[bytes, bytes]:
    """`blob` with the first byte from `from_share` on flipped that still inflates to as many
    bytes (other ones), and what it inflates to: only the member's CRC-32 tells it apart."""
    body = blob[10:-8]
    for at in range(int(len(body) * from_share), len(body)):
        flipped = body[:at] + bytes([body[at] ^ 0xFF]) + body[at + 1 :]
        try:
            out = zlib.decompressobj(-15).decompress(flipped)
        except zlib.error:
            continue
        if len(out) == len(rows) and out != rows:
            return blob[:10] + flipped + blob[-8:], out
    raise AssertionError("no flip keeps the length")


def test_a_flip_in_a_later_pass_of_one_member_ends_split_as_scan_ends(tmp_path):
    # GIVEN one gzip member, a byte flipped late in it that inflates to the same length
    rows = _rows(20_000, seed=11)
    path = tmp_path / "m.csv.gz"
    blob, inflated = _flipped_keeping_length(gzip.compress(rows), rows, 0.8)
    path.write_bytes(blob)
    # WHEN scanned, and split in passes (the first of them holds the member's start only)
    report, _ = _compare(str(path), tmp_path, min_passes=3)
    # THEN both read every line, then refuse the file by the CRC-32 the passes carried
    assert report.error.startswith("CorruptManifest")
    assert report.lines == inflated.count(b"\n")


def test_scan_equals_split_on_json_lines_with_other_fields(tmp_path, monkeypatch):
    # GIVEN JSON Lines with a size and a version beside bucket and key, and two bad lines
    rng = random.Random(13)
    lines = [
        b'{"bucket":"bkt","key":"dir/k%06d.jpg","size":%d,"version_id":"%b"}'
        % (i, rng.randrange(10**9), b"" if rng.random() < 0.5 else b"v%d" % i)
        for i in range(20_000)
    ]
    lines[19_000] = b'{"bucket":"bkt","key":"","size":1,"version_id":"v"}'  # NoKey
    lines[19_500] = b'{"bucket":"bkt","key":"k","size":01,"version_id":"v"}'  # BadJson
    path = tmp_path / "m.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    taken = count_taken(monkeypatch, "dense_template_batch")
    # WHEN scanned (blocks laid out like their first line proved) and split in passes (raw)
    report, _ = _compare(str(path), tmp_path)
    # THEN the same counts, scan's first blocks (before the bad lines) from the proof
    assert report.failures_by_error == {"NoKey": 1, "BadJson": 1}
    assert report.records == 19_998
    assert taken[0] and not all(taken)


@pytest.mark.parametrize("shape", ["key,bucket", "quoted URIs"])
def test_scan_equals_split_on_csv_laid_out_otherwise(tmp_path, monkeypatch, shape):
    # GIVEN rows with the record's columns where no frame proof looks, and two bad lines
    rng = random.Random(17)
    if shape == "key,bucket":
        rows = [b"dir/k%06d.jpg,bkt,%d" % (i, rng.randrange(10**9)) for i in range(20_000)]
        rows[19_000], rows[19_500] = b",bkt,1", b"k,bad bucket,1"
        head, errors = b"key,bucket,size\n", {"NoKey": 1, "BadBucket": 1}
    else:
        rows = [b'"s3://bkt/dir/k%06d,%d.jpg"' % (i, rng.randrange(10**9)) for i in range(20_000)]
        rows[19_000], rows[19_500] = b'"s3://bkt/"', b'"s3:/bkt/k"'
        head, errors = b"", {"NoKey": 1, "BadUri": 1}
    path = tmp_path / "m.csv.gz"
    path.write_bytes(gzip.compress(head + b"\n".join(rows) + b"\n"))
    taken = count_taken(monkeypatch, "dense_csv_template_batch")
    # WHEN scanned (blocks laid out like their first row proved) and split in passes (raw)
    report, _ = _compare(str(path), tmp_path)
    # THEN the same counts, scan's first blocks (before the bad lines) from the proof
    assert report.failures_by_error == errors
    assert report.records == 19_998
    assert taken[0] and not all(taken)


@pytest.mark.parametrize("indent", [None, 2])
def test_scan_equals_split_on_json_arrays_as_python_writes_them(tmp_path, monkeypatch, indent):
    # GIVEN an array as `json.dump` writes it, objects with a size, two bad elements (no key)
    # and a float size (a record still, in a span the proof leaves to the other paths)
    rng = random.Random(19)
    values = [
        {"bucket": "bkt", "key": f"dir/k{i:06d}.jpg", "size": rng.randrange(10**9)}
        for i in range(20_000)
    ]
    values[19_000]["key"], values[19_500]["size"] = "", 1.5
    values[19_600] = {"bucket": "bkt", "key": ""}
    path = tmp_path / "m.json.gz"
    path.write_bytes(gzip.compress(json.dumps(values, indent=indent).encode()))
    taken = count_taken(monkeypatch, "dense_array_template_batch")
    # WHEN scanned and split in passes (spans laid out like their first element proved)
    report, _ = _compare(str(path), tmp_path)
    # THEN the same counts, scan's first spans (before the bad elements) from the proof
    assert report.failures_by_error == {"NoKey": 2}
    assert report.records == 19_998
    assert taken[0] and not all(taken)
