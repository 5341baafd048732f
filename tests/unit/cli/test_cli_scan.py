"""`lambdaflow scan`: counts, JSON keys and exit codes."""

from __future__ import annotations

import functools
import gzip
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from pipeline import allocator
from pipeline.allocator import HeapTrim, keep_freed_buffers
from pipeline.cli import app, scan
from pipeline.cli.scan import _scan_with_progress, scan_manifest
from pipeline.config import Settings
from pipeline.split import passes

runner = CliRunner()
LAMBDAFLOW = str(Path(sys.executable).parent / "lambdaflow")

MANIFEST = b"bkt,a.jpg\n\nnot-a-row\nbkt,b%20c.jpg\n,x\nbkt,d.jpg\nbkt,e.jpg,v1\n"


def _scan(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["scan", *args], env=env)


def test_scan_json_reports_counts_failures_and_chunks(tmp_path):
    # GIVEN a gzip manifest with 4 records, 2 bad lines and a blank line
    path = tmp_path / "m.csv.gz"
    path.write_bytes(gzip.compress(MANIFEST))
    # WHEN scanned with 2 items a chunk
    result = _scan(str(path), "--json", env={"LAMBDAFLOW_CHUNK_ITEMS": "2"})
    # THEN it exits 0 and says so in JSON
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["format"] == "csv"
    assert report["lines"] == 7
    assert report["records"] == 4
    assert report["failed"] == 2
    assert report["failures_by_error"] == {"BadFieldCount": 1, "BadBucket": 1}
    assert report["failure_examples"] == {"BadFieldCount": [3], "BadBucket": [5]}
    assert report["complete"] is True
    assert report["error"] is None
    assert report["chunks"] == 2
    assert report["bytes"] == {"compressed": path.stat().st_size, "uncompressed": len(MANIFEST)}
    assert report["lines_per_s"] > 0
    assert report["peak_rss_mb"] > 0
    assert report["est_cost_usd"]["total_usd"] > 0


def test_scan_of_a_truncated_manifest_exits_1_with_one_line_on_stderr(tmp_path):
    blob = gzip.compress(b"".join(b"bkt,k%d.jpg\n" % i for i in range(50_000)))
    path = tmp_path / "m.csv.gz"
    path.write_bytes(blob[: len(blob) // 2])
    result = _scan(str(path), "--json")
    assert result.exit_code == 1
    report = orjson.loads(result.stdout)
    assert report["complete"] is False
    assert 0 < report["records"] < 50_000
    assert "truncated" in report["error"]
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")


@pytest.mark.parametrize("as_json", [True, False])
def test_scan_of_a_missing_manifest_exits_1(tmp_path, as_json):
    result = _scan(str(tmp_path / "missing.csv"), *(["--json"] if as_json else []))
    assert result.exit_code == 1
    assert "cannot open manifest" in result.stderr


def _lambdaflow_reading_a_pipe(*args: str) -> subprocess.CompletedProcess:
    """`echo LINE | lambdaflow ARGS`: the command's stdin is a pipe holding one manifest line."""
    return subprocess.run(
        [LAMBDAFLOW, *args],
        input="s3://my-bucket/a.jpg\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("as_json", [True, False])
def test_scan_of_a_pipe_is_refused_in_one_line_not_read_as_empty(as_json):
    # a pipe has no size and no ranges: it used to scan as 0 lines, complete, exit 0
    done = _lambdaflow_reading_a_pipe("scan", "/dev/stdin", *(["--json"] if as_json else []))
    assert done.returncode == 1
    line = "/dev/stdin is a pipe: a manifest must be a regular file or an s3:// object"
    assert done.stderr == f"error: {line}\n"
    if as_json:
        report = orjson.loads(done.stdout)
        assert (report["complete"], report["error"], report["lines"]) == (False, line, 0)


def test_run_of_a_pipe_is_refused_in_one_line_before_any_stack():
    # it said "/dev/stdin: no such file"
    done = _lambdaflow_reading_a_pipe("run", "/dev/stdin")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "error: /dev/stdin is a pipe: a manifest must be a regular file or an s3:// object\n"
    )


@pytest.mark.parametrize("command", ["scan", "run"])
def test_a_device_is_not_a_manifest_either(command):
    # /dev/null scanned as an empty manifest (exit 0), while `run` said "no such file"
    result = runner.invoke(app, [command, "/dev/null"])
    assert result.exit_code == 1
    assert result.stderr == (
        "error: /dev/null is a character device: a manifest must be a regular file or an "
        "s3:// object\n"
    )


@pytest.mark.parametrize("as_json", [True, False])
def test_scan_of_a_directory_says_so_in_one_line_as_for_any_unreadable_manifest(tmp_path, as_json):
    # it was "unexpected IsADirectoryError: ... (run with --debug ...)"
    result = _scan(str(tmp_path), *(["--json"] if as_json else []))
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path} is a directory, not a manifest\n"
    if as_json:  # the report, as for a missing manifest
        report = orjson.loads(result.stdout)
        assert (report["complete"], report["error"]) == (
            False,
            f"{tmp_path} is a directory, not a manifest",
        )
    else:
        assert result.stdout == ""


def test_run_of_a_directory_says_so_before_any_stack(tmp_path):
    # it was "no such file"
    result = runner.invoke(app, ["run", str(tmp_path)])
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"error: {tmp_path} is a directory, not a manifest\n"


@pytest.mark.parametrize("command", ["scan", "run"])
@pytest.mark.parametrize("uri", ["s3://", "s3://bucketonly", "s3://bucket/", "s3:///key"])
def test_an_s3_uri_without_bucket_or_key_is_a_usage_error_as_in_classify(command, uri):
    # scan said botocore's "Parameter validation failed: Invalid bucket name ..." (exit 1)
    result = runner.invoke(app, [command, uri])
    assert result.exit_code == 2
    hint = f"(see `lambdaflow {command} --help`)"
    assert result.stderr == f"error: Invalid value: {uri!r} is not s3://BUCKET/KEY {hint}\n"


def test_an_empty_regular_file_still_scans_as_an_empty_manifest(tmp_path):
    path = tmp_path / "empty.csv"
    path.touch()
    result = _scan(str(path), "--json")
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["complete"] is True


def test_scan_human_output_lists_error_codes(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(MANIFEST)
    result = _scan(str(path))
    assert result.exit_code == 0
    assert "BadFieldCount" in result.stdout
    rows = dict(line.split(None, 1) for line in result.stdout.splitlines()[1:6])
    assert rows == {
        "lines": "7",
        "records": "4",
        "failed": "2",
        "chunks": "1",
        "bytes": f"{len(MANIFEST)} read, {len(MANIFEST)} decompressed",
    }
    assert "\x1b" not in result.stdout  # no styling where the output is not a terminal


def test_scan_human_output_groups_thousands(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b"".join(b"bkt,k%d.jpg\n" % i for i in range(12_345)))
    result = _scan(str(path))
    assert result.exit_code == 0
    assert "  lines        12,345\n" in result.stdout
    assert re.search(r"\n  speed        [\d,]+ lines/s\n", result.stdout)
    assert re.search(r"\n  peak memory  [\d.]+ MB \(RSS\)\n", result.stdout)


def test_scan_with_bad_settings_is_a_usage_error(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(MANIFEST)
    result = _scan(str(path), env={"LAMBDAFLOW_CHUNK_ITEMS": "zero"})
    assert result.exit_code == 2
    assert "LAMBDAFLOW_CHUNK_ITEMS" in result.stderr


def test_progress_scan_ticks_and_matches_plain_scan(tmp_path, monkeypatch):
    monkeypatch.setattr(scan, "BAR_AFTER_S", 0.0)  # drawn from the first tick
    path = tmp_path / "m.csv.gz"
    path.write_bytes(gzip.compress(b"".join(b"bkt,k%d\n" % i for i in range(100))))
    settings = Settings.from_env({}, chunk_items=2)
    with_bar = _scan_with_progress(str(path), settings)
    plain = scan_manifest(str(path), settings=settings)
    assert (with_bar.records, with_bar.chunks, with_bar.complete) == (100, 50, True)
    assert (plain.records, plain.chunks, plain.lines) == (100, 50, 100)


def test_the_progress_bar_is_drawn_only_from_the_first_tick_after_its_delay(tmp_path, monkeypatch):
    # GIVEN a scan on a terminal, its bar due after a delay that has not passed yet
    path = tmp_path / "m.csv.gz"
    path.write_bytes(gzip.compress(b"bkt,k.jpg\n" * 100))
    bar = scan._LateBar(str(path), None)
    bar.tick(10)
    assert bar._progress is None  # a short scan draws nothing
    # WHEN the delay has passed
    monkeypatch.setattr(scan, "BAR_AFTER_S", 0.0)
    bar.tick(20)
    # THEN the next tick draws the bar, its total the file's size
    task = bar._progress.tasks[0]
    assert (task.completed, task.total) == (20, path.stat().st_size)
    bar.close()
    assert not bar._progress.live.is_started


def test_scan_of_a_file_that_is_not_a_manifest_stops_early_and_exits_1(tmp_path):
    # GIVEN a TSV report of 30,000 lines, not one of them an image reference
    path = tmp_path / "report.csv.gz"
    path.write_bytes(gzip.compress(b"".join(b"2026-11-26\tx\t%d\n" % i for i in range(30_000))))
    # WHEN scanned
    result = _scan(str(path), "--json")
    # THEN it stops after about the first 10,000 lines and says why
    assert result.exit_code == 1
    report = orjson.loads(result.stdout)
    assert report["records"] == 0 and report["complete"] is False
    assert 10_000 <= report["failed"] == report["lines"] < 30_000
    assert "not a manifest" in result.stderr.strip().splitlines()[-1]


def _uri_manifest(tmp_path):
    """A gzip manifest of 200,000 `s3://` URI lines (7.0 MB inflated): its path and its bytes."""
    path = tmp_path / "uris.gz"
    rows = b"".join(b"s3://images-bucket/p/%09d.jpg\n" % i for i in range(200_000))
    path.write_bytes(gzip.compress(rows, compresslevel=1))
    return path, rows


def test_a_scan_with_glibc_keeping_freed_buffers_counts_the_same(tmp_path):
    # The page faults it saves are measured in BENCHMARKS.md (a fault count in a unit test
    # swung with the inflating thread's timing); here: the setting changes no count.
    path, _ = _uri_manifest(tmp_path)
    before = scan_manifest(str(path), settings=Settings.from_env({}))
    keep_freed_buffers()  # as `lambdaflow`'s entry point does
    after = scan_manifest(str(path), settings=Settings.from_env({}))
    assert (after.records, after.chunks, after.complete) == (200_000, before.chunks, True)
    assert before.records == 200_000


def test_a_long_scan_gives_free_pages_back_as_it_reads(tmp_path, monkeypatch):
    # Every GiB in the product (`pipeline.allocator.HeapTrim`); every MiB here. Split's passes
    # run the same loop (`pipeline.split.passes._cut`).
    path, rows = _uri_manifest(tmp_path)
    given_back: list[int] = []
    monkeypatch.setattr(passes, "HeapTrim", functools.partial(HeapTrim, every_bytes=1 << 20))
    monkeypatch.setattr(allocator, "give_back_free_pages", lambda: given_back.append(1) or True)

    report = scan_manifest(str(path), settings=Settings.from_env({}))

    assert (report.records, report.complete) == (200_000, True)
    assert len(given_back) == len(rows) >> 20  # 7.0 MB read: once each MiB passed
