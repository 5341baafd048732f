"""`lambdaflow replay` as a person types it, against the session's stack (published in a dir)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import boto3
import pytest

from pipeline.parts.store import iter_result_rows
from tests.e2e.test_cli import LAMBDAFLOW, PHOTO, _lambdaflow
from tests.queues import queued_bodies

pytestmark = pytest.mark.e2e


def test_replay_dry_run_then_real_replay_moves_lines_from_failed_to_ok(local_stack, stack_dir):
    # GIVEN a finished run with two missing images
    bucket = local_stack.outputs["ImagesBucketName"]
    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key="replay-cli/ok.jpg", Body=PHOTO.read_bytes())
    manifest = stack_dir / "replay-manifest.csv"
    manifest.write_text(
        f"s3://{bucket}/replay-cli/ok.jpg\ns3://{bucket}/replay-cli/late-a.jpg\n"
        f"s3://{bucket}/replay-cli/late-b.jpg\n"
    )
    done = _lambdaflow("run", str(manifest), "--json", cwd=stack_dir)
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)["run"]
    # WHEN replay --dry-run runs THEN it counts the two lines and changes nothing
    dry = _lambdaflow("replay", "--run", run, "--dry-run", "--json", cwd=stack_dir)
    assert dry.returncode == 0, dry.stderr
    (planned,) = json.loads(dry.stdout)["runs"]
    assert (planned["lines"], planned["by_error"], planned["summary"]) == (
        2,
        {"NoSuchKey": 2},
        None,
    )
    # WHEN the images appear and replay runs for real, limited to one line first
    for name in ("late-a.jpg", "late-b.jpg"):
        s3.put_object(Bucket=bucket, Key=f"replay-cli/{name}", Body=PHOTO.read_bytes())
    one = _lambdaflow("replay", "--run", run, "--limit", "1", "--json", cwd=stack_dir)
    assert one.returncode == 0, one.stderr
    (first,) = json.loads(one.stdout)["runs"]
    assert (first["lines"], first["replay_round"], first["summary"]["ok"]) == (1, 1, 2)
    # its line's FailureQueue message is gone, and the drain saw every message it could
    assert (first["failure_queue_acknowledged"], first["failure_queue_left"]) == (1, None)
    rest = _lambdaflow("replay", "--run", run, cwd=stack_dir)
    assert rest.returncode == 0, rest.stderr
    assert f"run {run}: SUCCEEDED" in rest.stdout  # the new summary, printed
    assert "may remain" not in rest.stderr  # no FailureQueue warning when nothing is left
    # THEN results hold every line once, failures none, and the summary file says so
    results_bucket = local_stack.outputs["ResultsBucketName"]
    assert [r.line for r in iter_result_rows(s3, results_bucket, run)] == [1, 2, 3]
    assert _lambdaflow("failures", run, cwd=stack_dir).stdout == ""  # nothing left to replay
    summary = json.loads(
        s3.get_object(Bucket=results_bucket, Key=f"results/{run}/_SUCCESS.json")["Body"].read()
    )
    assert (summary["ok"], summary["failed"], summary["lines"]) == (3, 0, 3)


def test_two_replays_at_once_each_take_their_runs_failures_out_of_the_failure_queue(
    local_stack, stack_dir
):
    # GIVEN two finished runs, each with 4 missing images, whose images then appear
    bucket = local_stack.outputs["ImagesBucketName"]
    s3 = boto3.client("s3")
    runs = []
    for name in ("first", "second"):
        prefix = f"replay-twice/{name}-{uuid.uuid4().hex[:6]}"
        manifest = stack_dir / f"{name}-manifest.csv"
        manifest.write_text("".join(f"s3://{bucket}/{prefix}/{i}.jpg\n" for i in range(4)))
        done = _lambdaflow("run", str(manifest), "--json", cwd=stack_dir)
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout)["run"])
        for i in range(4):
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{i}.jpg", Body=PHOTO.read_bytes())
    url = local_stack.outputs["FailureQueueUrl"]
    sqs = boto3.client("sqs")
    queued = [b for b in queued_bodies(sqs, url) if b.get("run") in runs]
    assert len(queued) == 8
    # WHEN both runs are replayed at the same time, from two processes
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAMBDAFLOW_"))}
    replays = [
        subprocess.Popen(
            [LAMBDAFLOW, "replay", "--run", run, "--json"],
            cwd=stack_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for run in runs
    ]
    answers = [replay.communicate(timeout=300) for replay in replays]
    # THEN each moved its 4 lines to ok and took their 4 failures out of the FailureQueue
    for replay, (out, err) in zip(replays, answers, strict=True):
        assert replay.returncode == 0, err
        (report,) = json.loads(out)["runs"]
        assert (report["lines"], report["summary"]["ok"]) == (4, 4)
        assert (report["failure_queue_acknowledged"], report["failure_queue_left"]) == (4, None)
    assert [b for b in queued_bodies(sqs, url) if b.get("run") in runs] == []
