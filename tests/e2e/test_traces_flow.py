"""A real run on the embedded stack leaves X-Ray traces that `lambdaflow traces` breaks down.

The functions send their segments to the stack's X-Ray daemon stand-in (UDP on 127.0.0.1), which
forwards them to the emulator's X-Ray API; the CLI reads them back from there.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import boto3
import orjson
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.traces import load_run_traces
from tests.e2e.test_flow import (
    PHOTOS,
    drop_manifest,
    photos,  # noqa: F401  # the fixture
    wait_for_summary,
)
from tests.wait import wait_until

pytestmark = pytest.mark.e2e


def _traces(run: str):
    now = datetime.now(UTC)
    return load_run_traces(
        boto3.client("xray"),
        run,
        start=now - timedelta(hours=1),
        end=now + timedelta(minutes=5),
        is_server_filtered=False,
    )


def test_a_run_leaves_a_trace_per_chunk_with_its_stages(local_stack):
    # GIVEN a manifest of 8 photos and a missing key: 3 chunks of at most 4 lines
    s3 = boto3.client("s3")
    bucket, prefix = local_stack.outputs["ImagesBucketName"], f"traces-{uuid.uuid4().hex[:8]}"
    for path in sorted(PHOTOS.glob("*.jpg")):
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{path.name}", Body=path.read_bytes())
    good = [f"s3://{bucket}/{prefix}/{p.name}" for p in sorted(PHOTOS.glob("*.jpg"))]
    run = drop_manifest(local_stack, [*good, *good, f"s3://{bucket}/{prefix}/missing.jpg"])
    summary = wait_for_summary(local_stack, run)
    assert summary["chunks"] == 3
    # WHEN its traces are read back from the emulator's X-Ray
    result = wait_until(
        lambda: (t := _traces(run)) and len(t.chunks) == 3 and t,
        30,
        interval_s=0.5,
        what="a trace for each chunk",
    )
    # THEN each chunk's span carries run + chunk, its stages, and per-image busy time
    stages = {("chunk",), ("chunk", "write_results"), ("chunk", "ledger")}
    for number in (0, 1):  # four photos each
        chunk = result.chunks[number]
        assert stages <= set(chunk.stages), number
        assert ("chunk", "write_results", "s3") in chunk.stages  # boto3 patched: the PUTs
        assert chunk.stages[("chunk",)].metadata["items"] == 4
        assert chunk.busy["fetch"]["n"] == chunk.busy["decode"]["n"] == 4
        assert chunk.busy["classify"]["n"] == 4 and chunk.busy["classify"]["s"] > 0
    missing = result.chunks[2]  # one missing key: fetched (and failed), never decoded
    assert missing.busy["fetch"]["n"] == 1
    assert "decode" not in missing.busy and "classify" not in missing.busy
    assert ("chunk", "send_failures") in missing.stages  # the missing key's record
    overall = result.overall()
    assert overall.stages[("chunk",)].metadata["ok"] == summary["ok"] == 8
    # AND the CLI prints the same breakdown
    cli = CliRunner().invoke(app, ["traces", run, "--json", "--since-hours", "1"])
    assert cli.exit_code == 0, cli.output
    assert [c["chunk"] for c in orjson.loads(cli.stdout)["chunks"]] == [0, 1, 2]
