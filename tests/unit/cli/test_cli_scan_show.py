"""`lambdaflow scan SOURCE --show N`: the first records as Split sends them, the first failures.

A header-row CSV names its keys literally (no URL-decoding), so `a%20b.jpg` stays as written.
"""

from __future__ import annotations

import gzip

import orjson
from typer.testing import CliRunner

from pipeline.cli import app

runner = CliRunner()

MANIFEST = (
    b"bucket,key,version_id\n"
    b"bkt,a%20b.jpg,v1\n"
    b"not-a-row\n"
    b'bkt,"new\nline.jpg",\n'
    b",x.jpg,\n"
    b"bkt,c.jpg,\n"
    b"bkt,d.jpg,\n"
)


def _show(tmp_path, *args: str):
    path = tmp_path / "m.csv.gz"
    path.write_bytes(gzip.compress(MANIFEST))
    result = runner.invoke(app, ["scan", str(path), *args])
    return result, [orjson.loads(line) for line in result.stdout.splitlines()]


def test_show_prints_the_first_records_then_the_first_failures_as_json_lines(tmp_path):
    result, rows = _show(tmp_path, "--show", "3")
    assert result.exit_code == 0, result.output
    assert rows == [
        {"line": 2, "bucket": "bkt", "key": "a%20b.jpg", "version": "v1"},
        {"line": 4, "bucket": "bkt", "key": "new\nline.jpg", "version": None},
        {"line": 7, "bucket": "bkt", "key": "c.jpg", "version": None},
        {"line": 3, "error": "BadFieldCount", "message": rows[3]["message"]},
        {"line": 6, "error": "BadBucket", "message": rows[4]["message"]},
    ]
    assert "line 3" in rows[3]["message"]
    # the summary goes to stderr, so stdout stays JSON Lines
    assert "records" in result.stderr


def test_show_with_json_ends_with_the_report(tmp_path):
    result, rows = _show(tmp_path, "--show", "1", "--json")
    assert result.exit_code == 0, result.output
    assert rows[0] == {"line": 2, "bucket": "bkt", "key": "a%20b.jpg", "version": "v1"}
    assert rows[1]["line"] == 3 and rows[1]["error"] == "BadFieldCount"
    assert (rows[-1]["records"], rows[-1]["failed"], rows[-1]["lines"]) == (4, 2, 8)
    assert len(rows) == 3


def test_show_zero_is_the_plain_scan(tmp_path):
    result, rows = _show(tmp_path, "--show", "0", "--json")
    assert result.exit_code == 0
    assert len(rows) == 1 and rows[0]["records"] == 4


def test_show_refuses_a_negative_count(tmp_path):
    result, _ = runner.invoke(app, ["scan", "x.csv", "--show", "-1"]), None
    assert result.exit_code == 2
