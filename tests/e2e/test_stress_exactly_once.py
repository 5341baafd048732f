"""Stress: every chunk delivered twice, crashes, a changing world and a replay asked mid-run.

On the session's stack (worker processes, the real model, the real event path): a 48-line
manifest in 12 chunks, split one chunk a pass and each pass in a new execution (the run goes on
through 12 executions), and while it runs
- a second copy of every chunk message is sent to the WorkQueue (marked `"copy": "dup"`, a field
  the worker ignores), in which the GETs of `transient-` images are refused: two copies of one
  chunk see different worlds, and either may be counted;
- one chunk crashes on its first delivery, and the last chunk crashes until it is "cured", so
  the run is still running when
- `lambdaflow replay --run RUN` is asked for: refused in one line, exit 1; and
  `lambdaflow replay --run RUN --wait` is started, which waits for the run to finish;
- the world changes: missing images are uploaded, present ones deleted;
- the crashing chunk is cured and moved back from the WorkDLQ (`replay --source dlq`, allowed
  while running).
Then the raw parts (every object under results/<run>/ and failures/<run>/), `lambdaflow
results` and `lambdaflow failures`, and the summary must all say the same thing: every line
exactly once, nothing left in staging, no chunk counted twice.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import boto3
import pytest

from pipeline.ledger.ingest import ManifestObject
from pipeline.ledger.summary import read_summary
from pipeline.ledger.table import RunLedger
from pipeline.manifest.parse import ManifestRecord
from pipeline.split.chunking import Chunk
from tests.e2e.budgeted_split import CONTINUED, CONTINUED_PASSES, ONE_CHUNK_PASSES
from tests.e2e.faulty_classify import DUP
from tests.e2e.test_cli import LAMBDAFLOW, _lambdaflow
from tests.queues import messages_held
from tests.raw_parts import assert_exactly_once_raw
from tests.wait import wait_until

pytestmark = pytest.mark.e2e

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "images"
LINES = 48
CHUNK_ITEMS = 4  # the session stack's ChunkItems


def _name(line: int) -> str:
    if line > LINES - CHUNK_ITEMS:
        return f"poison-{line}.jpg"  # the last chunk crashes until cured
    if 9 <= line <= 12:  # chunk 2
        return f"crash-once-{line}.jpg"
    kind = {1: "transient", 3: "late", 5: "gone"}.get(line % 6, "ok")
    return f"{kind}-{line}.jpg"


def test_every_line_once_under_duplicates_crashes_a_changing_world_and_a_mid_run_replay(
    local_stack, stack_dir
):
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    outputs = local_stack.outputs
    images, results = outputs["ImagesBucketName"], outputs["ResultsBucketName"]
    prefix = f"stress-{uuid.uuid4().hex[:8]}"
    photos = sorted(PHOTOS.glob("*.jpg"))
    names = {line: _name(line) for line in range(1, LINES + 1)}
    for line, name in names.items():
        if not name.startswith("late-"):
            body = photos[line % len(photos)].read_bytes()
            s3.put_object(Bucket=images, Key=f"{prefix}/{name}", Body=body)
    # GIVEN the manifest dropped into the input bucket (the real S3 event path)
    body = "".join(f"s3://{images}/{prefix}/{names[n]}\n" for n in range(1, LINES + 1))
    key = f"manifests/{prefix}-{ONE_CHUNK_PASSES}-{CONTINUED}.csv"
    etag = s3.put_object(Bucket=outputs["InputBucketName"], Key=key, Body=body.encode())["ETag"]
    run = ManifestObject(outputs["InputBucketName"], key, etag.strip('"')).run
    # AND a second copy of every chunk message, sent while the run is in flight
    for number in range(LINES // CHUNK_ITEMS):
        lines = range(number * CHUNK_ITEMS + 1, (number + 1) * CHUNK_ITEMS + 1)
        items = tuple(ManifestRecord(n, images, f"{prefix}/{names[n]}") for n in lines)
        message = {**Chunk(run, number, items).to_message(), "copy": DUP}
        sqs.send_message(QueueUrl=outputs["WorkQueueUrl"], MessageBody=json.dumps(message))
    ledger = RunLedger(boto3.client("dynamodb"), outputs["RunsTableName"])
    wait_until(lambda: _chunks_done(ledger, run) >= 6, 60, interval_s=0.3, what="half the chunks")
    # WHEN a replay is asked for mid-run THEN it is refused in one line, exit 1
    refused = _lambdaflow("replay", "--run", run, cwd=stack_dir)
    assert refused.returncode == 1
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: run {run} is still running")
    # AND one that is asked to wait waits for the run to finish, then replays
    waiting = subprocess.Popen(
        [
            LAMBDAFLOW,
            "replay",
            "--run",
            run,
            "--wait",
            "--source",
            "items",
            "--timeout",
            "180",
            "--json",
        ],
        cwd=stack_dir,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # WHEN the world changes mid-run, then the crashing chunk is cured and moved back
    for line, name in names.items():
        if name.startswith("late-"):
            body = photos[line % len(photos)].read_bytes()
            s3.put_object(Bucket=images, Key=f"{prefix}/{name}", Body=body)
        if name.startswith("gone-"):
            s3.delete_object(Bucket=images, Key=f"{prefix}/{name}")
    s3.put_object(Bucket=results, Key=f"test-faults/{run}/cured", Body=b"fixed")
    wait_until(
        lambda: (
            _lambdaflow("replay", "--run", run, "--source", "dlq", cwd=stack_dir).returncode == 0
            and read_summary(s3, results, run) is not None
        ),
        120,
        interval_s=2,
        what="the run to finish once its crashing chunk came back",
    )
    out, err = waiting.communicate(timeout=180)
    assert waiting.returncode == 0, err
    replayed = json.loads(out)["runs"]
    wait_until(
        lambda: messages_held(sqs, outputs["WorkQueueUrl"]) == 0,
        60,
        interval_s=0.5,
        what="every copy to be handled",
    )
    # THEN read raw: every line exactly once, results never twice, the summary equal to the rows
    summary = read_summary(s3, results, run)
    raw = assert_exactly_once_raw(s3, results, run, LINES, summary)
    assert raw.staged == []
    assert (summary["status"], summary["lines"]) == ("SUCCEEDED", LINES)
    # every failure left is an image deleted mid-run, failed again by the replay
    assert {names[int(r["line"])].split("-")[0] for r in raw.failures} <= {"gone"}
    if replayed:
        assert all(r["attempts"] == 2 for r in raw.failures)
    # AND the CLI's readers say the same as the raw parts
    cli_ok = [json.loads(x)["line"] for x in _cli(stack_dir, "results", run)]
    cli_failed = [json.loads(x)["line"] for x in _cli(stack_dir, "failures", run)]
    assert cli_ok == sorted(raw.result_lines)
    assert cli_failed == sorted(raw.failure_lines)
    # AND no chunk was counted twice
    state = ledger.get_run(run)
    assert (state.chunks_done, state.ok, state.failed) == (
        LINES // CHUNK_ITEMS,
        summary["ok"],
        summary["failed"],
    )
    # AND the run went on through one execution a pass, each ended by starting the next
    assert CONTINUED_PASSES == 1
    sfn = boto3.client("stepfunctions")
    executions = outputs["StateMachineArn"].replace(":stateMachine:", ":execution:")
    execution_names = [run, *(f"{run}-{passes}" for passes in range(1, LINES // CHUNK_ITEMS))]

    def statuses() -> list[str] | None:
        found = [
            sfn.describe_execution(executionArn=f"{executions}:{name}")["status"]
            for name in execution_names
        ]
        return None if "RUNNING" in found else found  # the last ends just after its summary

    assert wait_until(statuses, 30, interval_s=0.2) == ["SUCCEEDED"] * len(execution_names)


def _chunks_done(ledger: RunLedger, run: str) -> int:
    try:
        return ledger.get_run(run).chunks_done
    except LookupError:
        return 0


def _cli(cwd: Path, *args: str) -> list[str]:
    done = _lambdaflow(*args, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _env() -> dict[str, str]:
    import os  # noqa: PLC0415  # only the subprocess needs it

    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAMBDAFLOW_"))}
