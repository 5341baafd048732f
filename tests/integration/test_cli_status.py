"""`lambdaflow status` against the ledger in DynamoDB on the moto server."""

from __future__ import annotations

import os
import uuid

import boto3
import orjson
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.ledger.items import table_definition
from pipeline.ledger.runs import RunStatus
from pipeline.ledger.table import RunLedger
from pipeline.local.state import StackInfo, write_state
from tests.ledger_counts import count_chunk

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture
def ledger(emulator):
    client = boto3.client("dynamodb", endpoint_url=emulator.endpoint_url)
    table = f"runs-{uuid.uuid4().hex[:10]}"
    client.create_table(**table_definition(table))
    return RunLedger(client, table)


def _status(ledger, *args):
    return runner.invoke(app, ["status", *args, "--table", ledger._table], env={"COLUMNS": "200"})


def test_status_json_shows_each_run_with_progress_and_cost(ledger):
    # GIVEN one run mid-split (2 of its chunks counted, one delivered twice) and one finished
    ledger.start_run("run-a", manifest="s3://in/a.csv.gz")
    ledger.record_split_progress("run-a", lines_split=1500, chunks_sent=3, is_done=False)
    assert count_chunk(ledger, "run-a", 0, ok=499, missing=1)
    assert count_chunk(ledger, "run-a", 1, ok=500)
    assert not count_chunk(ledger, "run-a", 1, ok=500)
    ledger.start_run("run-b", manifest="s3://in/b.csv.gz")
    ledger.record_split_progress("run-b", lines_split=10, chunks_sent=1, is_done=True)
    assert count_chunk(ledger, "run-b", 0, ok=10)
    ledger.mark_finished("run-b", RunStatus.SUCCEEDED)
    # WHEN status lists every run as JSON
    result = _status(ledger, "--json")
    # THEN both are there, newest first, with the ledger's counts (the duplicate counted once)
    assert result.exit_code == 0, result.output
    rows = orjson.loads(result.stdout)
    assert [r["run"] for r in rows] == ["run-b", "run-a"]
    a = rows[1]
    assert a["manifest"] == "s3://in/a.csv.gz"
    assert (a["status"], a["lines_split"], a["is_split_done"]) == ("RUNNING", 1500, False)
    assert (a["chunks_done"], a["chunks_sent"], a["ok"], a["failed"]) == (2, 3, 999, 1)
    assert a["pending"] == 500
    assert a["eta_s"] is None  # unknowable until the split is done
    assert a["images_per_s"] > 0
    assert a["cost_usd"] > 0
    assert rows[0]["status"] == "SUCCEEDED"


def test_status_of_one_run_and_of_an_unknown_one(ledger):
    # GIVEN a run whose split is done and half counted
    ledger.start_run("run-c", manifest="s3://in/c.csv.gz")
    ledger.record_split_progress("run-c", lines_split=1000, chunks_sent=2, is_done=True)
    count_chunk(ledger, "run-c", 0, ok=500)
    # WHEN asked for it, and for a run that does not exist
    one = _status(ledger, "run-c", "--json")
    unknown = _status(ledger, "nope")
    # THEN the first has an ETA, the second exits 1 saying how to list runs
    assert one.exit_code == 0, one.output
    row = orjson.loads(one.stdout)
    assert row["run"] == "run-c"
    assert row["eta_s"] is not None and row["eta_s"] >= 0
    assert unknown.exit_code == 1
    assert "lambdaflow status" in unknown.stderr


def test_status_table_and_watch_of_finished_runs_render_and_return(ledger):
    # GIVEN a finished run
    ledger.start_run("run-d", manifest="s3://in/d.csv.gz")
    ledger.record_split_progress("run-d", lines_split=5, chunks_sent=1, is_done=True)
    count_chunk(ledger, "run-d", 0, ok=4, missing=1)
    ledger.mark_finished("run-d", RunStatus.PARTIAL, reason="stalled: 1 chunk never counted")
    # WHEN shown as a table, and watched
    table = _status(ledger)
    watched = _status(ledger, "--watch", "--interval", "0.01")
    # THEN both show it and return (nothing left running to watch)
    for result in (table, watched):
        assert result.exit_code == 0, result.output
        assert "run-d" in result.stdout
        assert "PARTIAL" in result.stdout
        assert "run-d: stalled: 1 chunk never counted" in result.stdout  # why, under the table


def test_status_without_a_table_says_how_to_find_one(emulator, monkeypatch):
    # GIVEN no running local stack and no table configured
    monkeypatch.delenv("LAMBDAFLOW_RUNS_TABLE", raising=False)
    # WHEN status runs THEN it exits 1 with the hint
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1
    assert "--table" in result.stderr


def test_status_finds_the_ledger_of_the_stack_running_here(ledger, emulator, tmp_path, monkeypatch):
    # GIVEN a `lambdaflow up` in this directory that published its stack (endpoint, outputs)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LAMBDAFLOW_RUNS_TABLE", raising=False)
    write_state(
        StackInfo(
            name="lf",
            outputs={
                "InputBucketName": "in",
                "ResultsBucketName": "out",
                "RunsTableName": ledger._table,
            },
            endpoint_url=emulator.endpoint_url,
            pid=os.getpid(),
        )
    )
    ledger.start_run("run-e", manifest="s3://in/e.csv.gz")
    # WHEN status runs with no --table
    result = runner.invoke(app, ["status", "--json"])
    # THEN it read that stack's ledger
    assert result.exit_code == 0, result.output
    assert [row["run"] for row in orjson.loads(result.stdout)] == ["run-e"]
