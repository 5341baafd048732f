"""`lambdaflow replay` as a person types it, against the session's stack (published in a dir)."""

from __future__ import annotations

import json

import boto3
import pytest

from pipeline.parts.store import iter_result_rows
from tests.e2e.test_cli import PHOTO, _lambdaflow

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
