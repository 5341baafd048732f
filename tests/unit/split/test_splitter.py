"""The resumable Split: many small passes give exactly what one pass gives, in every format."""

from __future__ import annotations

import gzip
import itertools
import json
import random

import pytest

from pipeline.failures import ManifestReadError
from pipeline.gzip.index_store import LocalIndexStore
from pipeline.gzip.ranged import LocalFileReader
from pipeline.split.failure_backlog import GROUP_RECORDS
from pipeline.split.passes import SplitOptions, split_pass
from pipeline.split.sinks import ChunkMessage, CountingSink, MemoryParseFailureWriter
from tests.split_chain import SMALL_KNOBS, RecordingSink, run_chain, tick_clock

N_LINES = 3000
BAD_LINES = {7, 401, 402, 1999, N_LINES}  # malformed rows, the last line among them


def _key(i: int, rng: random.Random) -> str:
    return f"images/{i:06d}/{rng.getrandbits(48):x}.jpg"


def _csv_lines(n: int, *, header: bool = False) -> list[bytes]:
    rng = random.Random(n)
    rows = [b"bucket,key"] if header else []
    for i in range(1, n + 1 - len(rows)):
        rows.append(
            b"bad row"
            if i + len(rows) in BAD_LINES
            else b"bkt-%d,%s" % (i % 3, _key(i, rng).encode())
        )
    return rows


def _jsonl_lines(n: int) -> list[bytes]:
    rng = random.Random(n)
    return [
        b'{"uri": 12}'
        if i in BAD_LINES
        else json.dumps({"bucket": "bkt", "key": _key(i, rng)}).encode()
        for i in range(1, n + 1)
    ]


def _json_array(n: int) -> bytes:
    rng = random.Random(n)
    elements = [
        {"nope": i} if i in BAD_LINES else {"uri": f"s3://bkt/{_key(i, rng)}"}
        for i in range(1, n + 1)
    ]
    return json.dumps(elements, indent=1).encode()


def _write_inventory(tmp_path, parts: list[bytes]):
    keys = []
    for i, body in enumerate(parts):
        key = f"inv/data/part-{i}.csv.gz"
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(gzip.compress(body))
        keys.append(key)
    doc = {
        "sourceBucket": "src",
        "destinationBucket": "arn:aws:s3:::dest",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size",
        "files": [{"key": k} for k in keys],
    }
    manifest = tmp_path / "inv" / "manifest.json"
    manifest.write_text(json.dumps(doc, indent=2))
    return manifest


def _inventory(tmp_path):
    rng = random.Random(3)
    rows = [b'"src","%s","10"' % _key(i, rng).encode() for i in range(1, N_LINES + 1)]
    rows[400] = b'"src"'
    parts = [b"\n".join(rows[a:b]) + b"\n" for a, b in ((0, 1200), (1200, 1201), (1201, N_LINES))]
    return _write_inventory(tmp_path, parts)


def _manifest(tmp_path, kind: str):
    """Write a manifest of `kind`; return its path."""
    if kind == "inventory":
        return _inventory(tmp_path)
    builders = {
        "csv.gz": lambda: b"\n".join(_csv_lines(N_LINES)) + b"\n",
        "csv": lambda: b"\n".join(_csv_lines(N_LINES)) + b"\n",
        "header.csv.gz": lambda: b"\r\n".join(_csv_lines(N_LINES, header=True)),
        "jsonl.gz": lambda: b"\n".join(_jsonl_lines(N_LINES)) + b"\n\n",
        "json.gz": lambda: _json_array(N_LINES),
        "json": lambda: _json_array(N_LINES),
    }
    data = builders[kind]()
    path = tmp_path / f"manifest.{kind}"
    path.write_bytes(gzip.compress(data, mtime=0) if kind.endswith(".gz") else data)
    return path


FORMATS = ["csv.gz", "csv", "header.csv.gz", "jsonl.gz", "json.gz", "json", "inventory"]


@pytest.mark.parametrize("kind", FORMATS)
def test_many_tiny_passes_equal_one_pass_in_every_format(tmp_path, kind):
    # GIVEN a multi-chunk manifest with malformed lines
    source = str(_manifest(tmp_path, kind))
    store = LocalIndexStore(tmp_path / "idx")
    # WHEN it is split in one pass, and in passes whose budget is spent at once
    one = run_chain(source, LocalFileReader, store, SplitOptions(chunk_items=97, knobs=SMALL_KNOBS))
    tiny = SplitOptions(chunk_items=97, budget_s=0.0, knobs=SMALL_KNOBS)
    many = run_chain(source, LocalFileReader, store, tiny)
    # THEN the chunks (numbers and lines) and the parse parts are the same (a malformed line
    # can be cut otherwise by another pass start: see the test after the next)
    assert len(one.outcomes) == 1
    assert len(many.outcomes) == len(one.chunks) >= 20
    assert many.chunks == one.chunks
    assert many.parse_parts == one.parse_parts
    assert many.chunk_failures == one.chunk_failures
    # AND every line is a record or a parse failure (Split's or its chunk's), exactly once
    failed = one.failed
    assert sorted(one.lines + failed) == sorted(set(one.lines + failed))
    header = 1 if kind.startswith("header") else 0
    assert set(one.lines) | set(failed) == set(range(1 + header, N_LINES + 1))
    last, last_many = one.outcomes[-1], many.outcomes[-1]
    assert (last_many.lines, last_many.records, last_many.parse_failures) == (
        last.lines,
        last.records,
        last.parse_failures,
    )
    assert last.lines == N_LINES - header
    assert last_many.chunks_sent == len(one.chunks)
    assert last_many.passes == len(many.outcomes)


def test_a_pass_killed_mid_way_is_retried_without_loss_or_doubles(tmp_path):
    # GIVEN passes of ~4 chunks each (a clock that ticks per read), and pass 3 dies after 2 sends
    source = str(_manifest(tmp_path, "csv.gz"))
    store = LocalIndexStore(tmp_path / "idx")
    options = SplitOptions(chunk_items=97, budget_s=4.0, knobs=SMALL_KNOBS)
    clean = run_chain(source, LocalFileReader, store, options, clock=tick_clock())
    # WHEN the same split runs with that kill
    killed = run_chain(source, LocalFileReader, store, options, clock=tick_clock(), kill={3: 2})
    # THEN the retry re-sent the dead pass's chunks with the same lines (`chunks` checks it)
    assert killed.deaths == 1
    assert len(killed.sent) == len(clean.sent) + 2
    assert killed.chunks == clean.chunks
    assert killed.parse_parts == clean.parse_parts
    assert killed.chunk_failures == clean.chunk_failures
    assert sorted(killed.lines + killed.failed) == list(range(1, N_LINES + 1))
    assert killed.outcomes[-1].lines == clean.outcomes[-1].lines == N_LINES


def test_chunks_cut_short_by_their_byte_cap_still_resume_exactly(tmp_path):
    # GIVEN long keys, so most chunks end before `chunk_items` and leave records behind them
    rng = random.Random(5)
    rows = [b"bk,k%06d-%s" % (i, b"x" * rng.randrange(50, 400)) for i in range(1, 1501)]
    path = tmp_path / "long.csv.gz"
    path.write_bytes(gzip.compress(b"\n".join(rows)))
    store = LocalIndexStore(tmp_path / "idx")
    cap = 20 * 1024
    # WHEN split in one pass and in tiny passes
    one = run_chain(str(path), LocalFileReader, store, SplitOptions(100, cap, knobs=SMALL_KNOBS))
    tiny = SplitOptions(100, cap, budget_s=0.0, knobs=SMALL_KNOBS)
    many = run_chain(str(path), LocalFileReader, store, tiny)
    # THEN the chunks are the same, and there were more passes than one
    assert min(len(lines) for lines in one.chunks.values()) < 100
    assert many.chunks == one.chunks
    assert 1 < len(many.outcomes) <= len(one.chunks)
    assert one.lines == list(range(1, 1501))


def test_lines_sent_unparsed_or_parsed_by_where_a_pass_reads_are_each_once_and_retried_alike(
    tmp_path,
):
    # GIVEN `bucket,key` rows with malformed lines (2 %) and blank lines (0.05 %): a block with
    # a blank line is parsed by Split, one without goes unparsed (its malformed lines then in
    # the chunk for the worker), so where a pass's reads fall decides each malformed line's way
    rng = random.Random(1)
    rows = []
    for i in range(1, 8_001):
        roll = rng.random()
        if roll < 0.02:
            rows.append(b"bad row %d" % i)
        elif roll < 0.0205:
            rows.append(b"")
        else:
            rows.append(b"bkt-%d,k/%08d.jpg" % (i % 3, rng.getrandbits(30)))
    source = _gzip_rows(tmp_path / "m.csv.gz", rows)
    store = LocalIndexStore(tmp_path / "idx")
    one = run_chain(source, LocalFileReader, store, SplitOptions(97, knobs=SMALL_KNOBS))
    tiny = SplitOptions(97, budget_s=0.0, knobs=SMALL_KNOBS)
    many = run_chain(source, LocalFileReader, store, tiny)
    killed = run_chain(source, LocalFileReader, store, tiny, kill={5: 0, 30: 0, 60: 0})
    # THEN each split holds every non-blank line exactly once, records or parse failures
    expected = [i for i, row in enumerate(rows, 1) if row]
    for chain in (one, many, killed):
        assert sorted(chain.lines + chain.failed) == expected
        assert chain.chunk_failures  # some malformed lines went to their chunk unparsed
    # AND killed passes were retried from their checkpoints into exactly the same chunks
    # (`Chain.read_chunks` asserts every re-sent chunk equal to the first send)
    assert killed.deaths == 3
    assert killed.chunks == many.chunks
    assert killed.chunk_failures == many.chunk_failures
    assert killed.parse_parts == many.parse_parts
    # AND one pass cut other chunks than many passes did: the reads fell elsewhere
    assert one.chunks != many.chunks


def test_a_truncated_gzip_ends_the_split_after_everything_before_the_break(tmp_path):
    # GIVEN a gzip manifest cut short
    whole = gzip.compress(b"\n".join(_csv_lines(N_LINES)) + b"\n")
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    store = LocalIndexStore(tmp_path / "idx")
    # WHEN it is split in one pass and in tiny passes
    one = run_chain(str(path), LocalFileReader, store, SplitOptions(97, knobs=SMALL_KNOBS))
    many = run_chain(
        str(path), LocalFileReader, store, SplitOptions(97, budget_s=0.0, knobs=SMALL_KNOBS)
    )
    # THEN both are done, partial with the reason, with the same gap-free prefix of lines
    for chain in (one, many):
        last = chain.outcomes[-1]
        assert last.is_done
        assert last.reason is not None
        assert "Truncated" in last.reason or "Corrupt" in last.reason
    assert many.chunks == one.chunks
    seen = sorted(set(one.lines) | set(one.failed))
    assert seen == list(range(1, len(seen) + 1))
    assert N_LINES // 3 < len(seen) < N_LINES


@pytest.mark.parametrize("code", ["InternalError", "ServiceUnavailable", "503", "ReadInterrupted"])
def test_a_read_that_fails_on_s3_s_side_fails_the_pass_for_a_retry_not_the_split(tmp_path, code):
    # GIVEN a manifest whose first ranged read fails as S3 answers a 5xx past the SDK retries
    source = str(_manifest(tmp_path, "csv.gz"))
    reads = itertools.count()

    class Failing(LocalFileReader):
        def read_range(self, start: int, end: int) -> bytes:
            if next(reads) == 0:
                raise ManifestReadError(f"cannot read {source}: {code}", error=code)
            return super().read_range(start, end)

    options = SplitOptions(97, knobs=SMALL_KNOBS)
    store = LocalIndexStore(tmp_path / "idx")
    # WHEN a pass meets it, THEN the pass fails, not the split: Step Functions retries it from
    # its checkpoint (`run_chain` retries only the transient codes, and raises on any other)
    chain = run_chain(source, Failing, store, options)
    assert chain.deaths == 1
    # AND the retry, whose reads go through, splits every line
    assert chain.outcomes[-1].reason is None
    assert sorted(chain.lines + chain.failed) == list(range(1, N_LINES + 1))


def test_a_manifest_s3_refuses_to_read_still_ends_the_split_with_the_reason(tmp_path):
    # GIVEN a manifest whose first ranged read is refused (AccessDenied: no retry helps)
    source = str(_manifest(tmp_path, "csv.gz"))

    class Refused(LocalFileReader):
        def read_range(self, start: int, end: int) -> bytes:
            raise ManifestReadError(f"cannot read {source}: AccessDenied", error="AccessDenied")

    # WHEN it is split, THEN the split ends at once, with the reason
    chain = run_chain(source, Refused, LocalIndexStore(tmp_path / "idx"), SplitOptions(97))
    assert chain.outcomes[-1].is_done
    assert chain.outcomes[-1].reason == f"AccessDenied: cannot read {source}: AccessDenied"


def _gzip_rows(path, rows: list[bytes]) -> str:
    path.write_bytes(gzip.compress(b"\n".join(rows) + b"\n", mtime=0))
    return str(path)


def test_a_long_run_of_malformed_lines_goes_to_the_chunk_after_it_in_any_passes(tmp_path):
    # GIVEN 30,000 lines that are not even UTF-8 (so Split reads them, it cannot send them
    # unparsed) between good rows, and 3,000 more at the very end
    good = [b"bkt,images/%06d.jpg" % i for i in range(400)]
    bad = [b"images\xffkey-%06d.jpg\twhatever" % i for i in range(33_000)]
    source = _gzip_rows(
        tmp_path / "m.csv.gz", good[:200] + bad[:30_000] + good[200:] + bad[30_000:]
    )
    store = LocalIndexStore(tmp_path / "idx")
    # WHEN split in one pass, in tiny passes, and in passes of which one dies mid-way
    one = run_chain(source, LocalFileReader, store, SplitOptions(97, knobs=SMALL_KNOBS))
    tiny = SplitOptions(97, budget_s=0.0, knobs=SMALL_KNOBS)
    many = run_chain(source, LocalFileReader, store, tiny)
    killed = run_chain(source, LocalFileReader, store, tiny, kill={2: 0})
    # THEN all three give the same chunks and parse parts, every line exactly once
    assert many.chunks == one.chunks == killed.chunks
    assert many.parse_parts == one.parse_parts == killed.parse_parts
    failed = [line for part in one.parse_parts.values() for line, _ in part]
    assert sorted(one.lines + failed) == list(range(1, 33_401))
    assert sorted(len(part) for part in one.parse_parts.values())[-2:] == [3_000, 30_000]
    assert one.outcomes[-1].lines == killed.outcomes[-1].lines == 33_400
    assert one.outcomes[-1].reason is None
    # AND they reached their part in bounded groups (streamed, never one 30,000-record list)
    assert one.failures.largest_append <= GROUP_RECORDS


def test_an_object_that_is_not_a_manifest_ends_the_split_early(tmp_path):
    # GIVEN a TSV report: 50,000 lines, none of them an image reference
    rows = [b"2026-11-26\treport\t%06d" % i for i in range(50_000)]
    source = _gzip_rows(tmp_path / "report.csv.gz", rows)
    store = LocalIndexStore(tmp_path / "idx")
    # WHEN it is split
    chain = run_chain(source, LocalFileReader, store, SplitOptions(97, knobs=SMALL_KNOBS))
    # THEN the split is done early and says why; what was read is recorded, nothing sent
    last = chain.outcomes[-1]
    assert last.is_done and last.reason.startswith("NotAManifest")
    assert chain.sent == []
    failed = [line for part in chain.parse_parts.values() for line, _ in part]
    assert failed == list(range(1, last.lines + 1))
    assert 10_000 <= last.lines < 50_000


def test_a_blank_line_bomb_is_refused_after_a_million_lines(tmp_path):
    # GIVEN 3 million newlines (3 KB of gzip) before one good row
    path = tmp_path / "bomb.csv.gz"
    path.write_bytes(gzip.compress(b"\n" * 3_000_000 + b"bkt,k.jpg\n"))
    # WHEN split
    chain = run_chain(str(path), LocalFileReader, LocalIndexStore(tmp_path / "idx"), SplitOptions())
    # THEN it is refused without reading it all: nothing sent, nothing failed, the reason kept
    last = chain.outcomes[-1]
    assert last.is_done and last.reason.startswith("NotAManifest: none of the first")
    assert (chain.sent, last.lines) == ([], 0)
    assert 1_000_000 <= int(last.reason.split()[5].replace(",", "")) < 3_000_000


def test_a_long_blank_stretch_between_records_keeps_every_line_number(tmp_path):
    # GIVEN 300 rows, 2 million blank lines (many whole blocks of them, CRLF ones too), 300 rows
    rows = [b"bkt,k%d.jpg" % i for i in range(600)]
    body = b"\n".join(rows[:300]) + b"\n" + b"\n" * 1_000_000 + b"\r\n" * 1_000_000
    source = _gzip_rows(tmp_path / "m.csv.gz", [body + b"\n".join(rows[300:])])
    store = LocalIndexStore(tmp_path / "idx")
    # WHEN split in one pass and in tiny passes
    one = run_chain(source, LocalFileReader, store, SplitOptions(97, knobs=SMALL_KNOBS))
    tiny = SplitOptions(97, budget_s=0.0, knobs=SMALL_KNOBS)
    many = run_chain(source, LocalFileReader, store, tiny)
    # THEN the rows after the stretch keep their true line numbers, in both
    expected = [*range(1, 301), *range(2_000_301, 2_000_601)]
    assert one.lines == many.lines == expected
    assert many.chunks == one.chunks


def test_malformed_lines_before_the_first_good_one_below_the_limit_are_only_failures(tmp_path):
    rows = [b"junk\t%d" % i for i in range(9_000)] + [b"bkt,k%d.jpg" % i for i in range(500)]
    source = _gzip_rows(tmp_path / "m.csv.gz", rows)
    chain = run_chain(source, LocalFileReader, LocalIndexStore(tmp_path / "idx"), SplitOptions(97))
    last = chain.outcomes[-1]
    assert (last.reason, last.lines, last.records) == (None, 9_500, 500)


def test_a_missing_manifest_is_done_with_its_reason(tmp_path):
    # GIVEN no file (an Inventory part or a manifest deleted before the split)
    store = LocalIndexStore(tmp_path / "idx")
    inventory = _write_inventory(tmp_path, [b'"src","a.jpg","1"\n'])
    (tmp_path / "inv/data/part-0.csv.gz").unlink()
    # WHEN split
    chain = run_chain(str(inventory), LocalFileReader, store, SplitOptions(10))
    # THEN it ends at once, nothing sent, the reason kept
    assert chain.sent == []
    assert chain.outcomes[-1].is_done
    assert "NoSuchKey" in chain.outcomes[-1].reason


def test_a_done_checkpoint_splits_nothing_more(tmp_path):
    # GIVEN a finished split
    source = str(_manifest(tmp_path, "csv"))
    store = LocalIndexStore(tmp_path / "idx")
    done = run_chain(source, LocalFileReader, store, SplitOptions(500)).outcomes[-1]
    # WHEN Step Functions runs Split once more with the done checkpoint
    sink = RecordingSink([])
    again = split_pass(
        source,
        done.checkpoint,
        run="run-1",
        options=SplitOptions(500),
        open_reader=LocalFileReader,
        sink=sink,
        failures=MemoryParseFailureWriter(),
        index_store=store,
    )
    # THEN nothing is read or sent, and the totals stand
    assert again.is_done
    assert (sink.chunks, again.bytes_fetched, again.pass_chunks) == (0, 0, 0)
    assert (again.lines, again.chunks_sent) == (done.lines, done.chunks_sent) == (N_LINES, 6)


def test_counting_sink_counts_messages_items_and_bytes():
    # GIVEN a counting sink WHEN two messages pass THEN it counts them, their items and bytes
    sink = CountingSink()
    sink.send(ChunkMessage(0, b"x" * 10, 3, last_line=3))
    sink.send(ChunkMessage(1, b"y" * 5, 1, last_line=4))
    sink.flush()
    assert (sink.chunks, sink.items, sink.message_bytes) == (2, 4, 15)
