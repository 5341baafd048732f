"""A real run on the embedded stack leaves X-Ray traces that `lambdaflow traces` breaks down.

The functions send their segments to the stack's X-Ray daemon stand-in (UDP on 127.0.0.1), which
forwards them to the emulator's X-Ray API; the CLI reads them back from there.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import orjson
import pytest
from typer.testing import CliRunner

from pipeline.classify.model import Classifier
from pipeline.classify.worker import ChunkWorker, fetch_client_config
from pipeline.cli import app
from pipeline.config import DEFAULT_MODEL_PATH, Settings
from pipeline.ledger.table import RunLedger
from pipeline.manifest.reader import ManifestRecord
from pipeline.observe import tracing
from pipeline.observe.trace_search import load_run_traces
from pipeline.observe.tracing import xray_tracer
from pipeline.split.chunking import Chunk
from tests.e2e.test_flow import (
    PHOTOS,
    drop_manifest,
    photos,  # noqa: F401  # the fixture
    wait_for_summary,
)
from tests.wait import wait_until

pytestmark = pytest.mark.e2e

XRAY_DOCUMENT_LIMIT_BYTES = 64 * 1024


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
        lambda: (t := _traces(run)) and len(t.chunks) == 3 and ("split",) in t.run_level.stages,
        30,
        interval_s=0.5,
        what="a trace for each chunk and for the split",
    )
    result = _traces(run)
    # THEN the split's span carries what it split
    split = result.run_level.stages[("split",)]
    assert (split.metadata["lines"], split.metadata["chunks"]) == (9, 3)
    # AND each chunk's span carries run + chunk, its stages, and per-image busy time
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


@pytest.fixture
def traced_worker(local_stack):
    """The real ChunkWorker on the stack's resources, tracing to the stack's X-Ray relay."""
    previous = tracing._active  # the in-process handlers installed theirs
    address = local_stack.relay.address
    tracing.configure(xray_tracer(is_enabled=True, daemon_address=address))
    settings = Settings.from_env(local_stack.function("ClassifyFunction").env, fetch_concurrency=4)
    with ThreadPoolExecutor(settings.fetch_concurrency) as pool:
        yield ChunkWorker(
            s3=boto3.client("s3", config=fetch_client_config(settings)),
            sqs=boto3.client("sqs"),
            ledger=RunLedger(boto3.client("dynamodb"), settings.runs_table),
            classifier=Classifier.load(DEFAULT_MODEL_PATH),
            settings=settings,
            pool=pool,
        )
    tracing.configure(previous)


def test_a_thousand_item_chunk_traces_under_the_segment_size_limit(local_stack, traced_worker):
    # GIVEN a 1,000-line chunk: 20 photos, 80 missing keys, 900 off the allowlist (980
    # failure records: 98 traced SQS batches on top of the chunk's own spans)
    s3 = boto3.client("s3")
    bucket, prefix = local_stack.outputs["ImagesBucketName"], f"big-{uuid.uuid4().hex[:8]}"
    names = [p.name for p in sorted(PHOTOS.glob("*.jpg"))]
    for path in sorted(PHOTOS.glob("*.jpg")):
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{path.name}", Body=path.read_bytes())
    items = [ManifestRecord(n, bucket, f"{prefix}/{names[n % len(names)]}") for n in range(20)]
    items += [ManifestRecord(n, bucket, f"{prefix}/missing-{n}.jpg") for n in range(20, 100)]
    items += [ManifestRecord(n, "not-allowed", "x.jpg") for n in range(100, 1000)]
    run = f"big-{uuid.uuid4().hex[:8]}"
    traced_worker.ledger.start_run(run, manifest="s3://in/big.csv")
    # WHEN the worker processes it inside one invocation segment
    with tracing.invocation("lambdaflow-classify"):
        report = traced_worker.process(Chunk(run, 0, tuple(items)))
    assert (report.ok, len(report.failures)) == (20, 980)
    result = wait_until(
        lambda: (t := _traces(run)) and 0 in t.chunks and t, 30, what="the chunk's trace"
    )
    # THEN every stored document is under X-Ray's 64 KB limit, and the sums are all there
    (trace_id,) = result.trace_ids
    (trace,) = boto3.client("xray").batch_get_traces(TraceIds=[trace_id])["Traces"]
    sizes = [len(segment["Document"].encode()) for segment in trace["Segments"]]
    assert max(sizes) < XRAY_DOCUMENT_LIMIT_BYTES
    assert local_stack.relay.stats.malformed == local_stack.relay.stats.dropped == 0
    chunk = result.chunks[0]
    assert chunk.busy["fetch"]["n"] == 100  # the off-allowlist lines are never fetched
    assert chunk.busy["decode"]["n"] == chunk.busy["classify"]["n"] == 20
    assert chunk.stages[("chunk", "send_failures")].metadata["records"] == 980
