"""`lambdaflow traces` end to end: real SDK spans → relay → moto's X-Ray → the breakdown.

Until the classify handler is wired to tracing, `_classify_chunk` does what a chunk does with
the same span design (pipeline.observe.tracing's `span`, `invocation` and `StageClock`): real S3
GETs on a thread pool, real JPEG decodes, batched "classify" spans, a real S3 PUT for the results.
"""

from __future__ import annotations

import io
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import numpy as np
import orjson
import pytest
from PIL import Image
from typer.testing import CliRunner

from pipeline.aws.stack_outputs import REQUIRED_OUTPUTS
from pipeline.cli import app
from pipeline.local.state import StackInfo, write_state
from pipeline.local.xray import MAX_DATAGRAM_BYTES, start_xray_relay, xray_client
from pipeline.observe import tracing
from pipeline.observe.trace_search import load_run_traces
from pipeline.observe.tracing import StageClock, xray_tracer
from tests.wait import wait_until

pytestmark = pytest.mark.integration

CLASSIFY_BATCH = 16
XRAY_SEGMENT_LIMIT_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def relay(emulator):
    with start_xray_relay(emulator.endpoint_url, port=0) as running:
        yield running


@pytest.fixture
def traced(relay):
    previous = tracing._active  # in-process handlers of the session's stack installed theirs
    tracing.configure(xray_tracer(is_enabled=True, patch_sdk=True, daemon_address=relay.address))
    yield relay
    tracing.configure(previous)


@pytest.fixture(scope="module")
def pool():
    with ThreadPoolExecutor(max_workers=8) as executor:
        yield executor


def _jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG")
    return out.getvalue()


def _put_images(s3, bucket: str, count: int) -> list[str]:
    keys = [f"img/{i:05d}.jpg" for i in range(count)]
    for i, key in enumerate(keys):
        s3.put_object(Bucket=bucket, Key=key, Body=_jpeg(i % 7))
    return keys


def _classify_chunk(s3, bucket: str, run: str, number: int, keys: list[str], pool) -> None:  # noqa: PLR0917  # test helper
    clock = StageClock()

    def load(key: str) -> Image.Image:
        with clock.measure("fetch"):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        clock.add("bytes", 0.0, len(body))
        with clock.measure("decode"):
            image = Image.open(io.BytesIO(body))
            image.load()
        return image

    with (
        tracing.invocation("lambdaflow-classify"),
        tracing.span("chunk", annotations={"run": run, "chunk": number}) as chunk,
    ):
        images = list(pool.map(load, keys))
        for start in range(0, len(images), CLASSIFY_BATCH):
            batch = images[start : start + CLASSIFY_BATCH]
            with tracing.span("classify", metadata={"images": len(batch)}):
                np.stack([np.asarray(im, dtype=np.float32).mean(axis=(0, 1)) for im in batch])
        with tracing.span("write_results", metadata={"rows": len(images)}):
            s3.put_object(Bucket=bucket, Key=f"results/{run}/{number}", Body=b"rows")
        chunk.metadata("items", len(keys))
        chunk.metadata("stages", clock.snapshot())


def _split_pass(run: str) -> None:
    with (
        tracing.invocation("lambdaflow-split"),
        tracing.span("split", annotations={"run": run}, metadata={"lines": 30}),
    ):
        pass


def _read(emulator, run: str):
    now = datetime.now(UTC)
    return load_run_traces(
        xray_client(emulator.endpoint_url),
        run,
        start=now - timedelta(hours=1),
        end=now + timedelta(minutes=5),
        is_server_filtered=False,  # the emulator cannot filter (moto 5.2.5)
    )


def _read_when(emulator, run: str, is_complete):
    """The run's traces once `is_complete(traces)` holds (documents arrive asynchronously)."""

    def attempt():
        traces = _read(emulator, run)
        return traces if is_complete(traces) else None

    return wait_until(attempt, 20, what=f"the traces of {run}")


def test_traces_show_each_chunk_and_where_its_time_went(emulator, s3, bucket, traced, pool):
    # GIVEN a run of three chunks, its split pass, and a chunk of another run
    run, other = f"run-{uuid.uuid4().hex[:8]}", f"run-{uuid.uuid4().hex[:8]}"
    keys = _put_images(s3, bucket, 30)
    _split_pass(run)
    for number in range(3):
        _classify_chunk(s3, bucket, run, number, keys[number * 10 : (number + 1) * 10], pool)
    _classify_chunk(s3, bucket, other, 0, keys[:10], pool)
    # WHEN its traces are read back from the emulator
    result = _read_when(emulator, run, lambda r: len(r.chunks) == 3 and r.run_level.spans)
    # THEN each chunk has the stages, annotations and counts of its own work only
    assert len(result.trace_ids) == 4
    for number, breakdown in result.chunks.items():
        assert number in {0, 1, 2}
        paths = set(breakdown.stages)
        assert {("chunk",), ("chunk", "classify"), ("chunk", "write_results")} <= paths
        assert ("chunk", "write_results", "s3") in paths  # boto3 patched: the PUT is traced
        assert breakdown.stages[("chunk",)].metadata["items"] == 10
        assert breakdown.busy["fetch"]["n"] == breakdown.busy["decode"]["n"] == 10
        assert breakdown.stages[("chunk", "classify")].metadata["images"] == 10
        assert breakdown.seconds >= breakdown.stages[("chunk", "write_results")].seconds > 0
    overall = result.overall()
    assert overall.busy["fetch"]["n"] == 30 and overall.busy["bytes"]["n"] > 0
    assert result.run_level.stages[("split",)].metadata == {"lines": 30}
    assert _read(emulator, other).chunks.keys() == {0}


def test_the_cli_prints_the_breakdown_as_a_table_and_as_json(emulator, s3, bucket, traced, pool):
    run = f"run-{uuid.uuid4().hex[:8]}"
    _classify_chunk(s3, bucket, run, 7, _put_images(s3, bucket, 5), pool)
    _read_when(emulator, run, lambda r: 7 in r.chunks)
    runner = CliRunner()

    as_json = runner.invoke(app, ["traces", run, "--json", "--since-hours", "1"])
    assert as_json.exit_code == 0, as_json.output
    data = orjson.loads(as_json.stdout)
    assert [c["chunk"] for c in data["chunks"]] == [7]
    assert data["overall"]["busy"]["decode"]["n"] == 5

    table = runner.invoke(app, ["traces", run, "--chunk", "7"], env={"COLUMNS": "160"})
    assert table.exit_code == 0, table.output
    for word in ("classify", "write_results", "fetch", "decode", "busy"):
        assert word in table.stdout

    missing = runner.invoke(app, ["traces", run, "--chunk", "8"])
    assert missing.exit_code == 1
    assert missing.stderr == f"error: run {run!r} has no traced chunk 8; traced: [7]\n"
    absent = runner.invoke(app, ["traces", "no-such-run", "--since-hours", "1"])
    assert absent.exit_code == 1
    assert absent.stderr.startswith("error: no traces of run 'no-such-run' in the last 1 h")
    assert absent.stderr.count("\n") == 1


def test_a_thousand_item_chunk_stays_under_the_segment_size_limit(
    emulator, s3, bucket, traced, pool
):
    # GIVEN a chunk of 1,000 images (63 classify batches: the SDK streams subsegments)
    run = f"run-{uuid.uuid4().hex[:8]}"
    keys = _put_images(s3, bucket, 50) * 20
    # WHEN it is traced
    _classify_chunk(s3, bucket, run, 0, keys, pool)
    result = _read_when(emulator, run, lambda r: 0 in r.chunks)
    # THEN every stored document is under X-Ray's 64 KB limit, none was lost or malformed
    client = xray_client(emulator.endpoint_url)
    (trace_id,) = result.trace_ids
    (trace,) = client.batch_get_traces(TraceIds=[trace_id])["Traces"]
    sizes = [len(segment["Document"].encode()) for segment in trace["Segments"]]
    assert max(sizes) < XRAY_SEGMENT_LIMIT_BYTES <= MAX_DATAGRAM_BYTES + 1
    assert traced.stats.malformed == traced.stats.dropped == traced.stats.rejected == 0
    breakdown = result.chunks[0]
    assert breakdown.busy["fetch"]["n"] == 1000
    assert breakdown.stages[("chunk", "classify")].spans == 1000 // CLASSIFY_BATCH + 1
    # AND per-image detail would not have fitted: aggregation is what keeps it under the limit
    per_image = [{"key": k, "labels": [["tabby", 0.81]] * 5, "fetch_s": 0.01} for k in keys]
    assert len(orjson.dumps(per_image)) > XRAY_SEGMENT_LIMIT_BYTES


def test_the_cli_reads_the_local_stack_from_its_state_file(  # noqa: PLR0917  # fixtures
    emulator, s3, bucket, traced, pool, tmp_path, monkeypatch
):
    # GIVEN a `lambdaflow up` publishing its endpoint here, and no endpoint in the environment
    run = f"run-{uuid.uuid4().hex[:8]}"
    _classify_chunk(s3, bucket, run, 2, _put_images(s3, bucket, 3), pool)
    _read_when(emulator, run, lambda r: 2 in r.chunks)
    monkeypatch.chdir(tmp_path)
    outputs = {"InputBucketName": "in", "ResultsBucketName": "out"}
    write_state(StackInfo("lf", outputs, endpoint_url=emulator.endpoint_url, pid=os.getpid()))
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    # WHEN traces runs THEN it found the emulator through the state file
    result = CliRunner().invoke(app, ["traces", run, "--json", "--since-hours", "1"])
    assert result.exit_code == 0, result.output
    assert [c["chunk"] for c in orjson.loads(result.stdout)["chunks"]] == [2]


def test_the_cli_resolves_a_deployed_stack_by_name(emulator, s3, bucket, traced, pool):
    run = f"run-{uuid.uuid4().hex[:8]}"
    _classify_chunk(s3, bucket, run, 5, _put_images(s3, bucket, 3), pool)
    _read_when(emulator, run, lambda r: 5 in r.chunks)
    name = f"lf-{uuid.uuid4().hex[:8]}"
    body = {
        "Resources": {"B": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {key: {"Value": "x"} for key in REQUIRED_OUTPUTS},
    }
    boto3.client("cloudformation").create_stack(
        StackName=name, TemplateBody=orjson.dumps(body).decode()
    )
    runner = CliRunner()
    found = runner.invoke(app, ["traces", run, "--stack", name, "--json", "--since-hours", "1"])
    assert found.exit_code == 0, found.output
    missing = runner.invoke(app, ["traces", run, "--stack", "lf-no-such-stack"])
    assert missing.exit_code == 1 and "no stack 'lf-no-such-stack'" in missing.output
