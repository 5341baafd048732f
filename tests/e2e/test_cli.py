"""The commands a person types, as subprocesses, against a running stack."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from pipeline.local.state import STATE_FILE
from tests.wait import wait_until

pytestmark = pytest.mark.e2e

LAMBDAFLOW = str(Path(sys.executable).parent / "lambdaflow")
PHOTO = Path(__file__).resolve().parents[1] / "fixtures" / "images" / "coffee.jpg"


def _lambdaflow(*args: str, cwd: Path, timeout_s: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAMBDAFLOW_"))}
    return subprocess.run(
        [LAMBDAFLOW, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def test_run_json_prints_only_the_summary_then_results_and_failures_read_it(local_stack, stack_dir):
    # GIVEN a local manifest: two good lines and a missing key
    bucket = local_stack.outputs["ImagesBucketName"]
    boto3.client("s3").put_object(Bucket=bucket, Key="cli/coffee.jpg", Body=PHOTO.read_bytes())
    manifest = stack_dir / "cli-manifest.csv"
    manifest.write_text(
        f"s3://{bucket}/cli/coffee.jpg\ns3://{bucket}/cli/gone.jpg\ns3://{bucket}/cli/coffee.jpg\n"
    )
    # WHEN `lambdaflow run --json` runs it on the stack published in this directory
    done = _lambdaflow("run", str(manifest), "--json", cwd=stack_dir)
    # THEN stdout is exactly the summary object (logs and progress went elsewhere)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["lines"], summary["ok"], summary["failed"]) == (3, 2, 1)
    run = summary["run"]
    # AND `results` / `failures` print that run's rows as JSON Lines
    rows = [json.loads(x) for x in _lambdaflow("results", run, cwd=stack_dir).stdout.splitlines()]
    assert [r["line"] for r in rows] == [1, 3]
    assert all(r["labels"][0][0] == "espresso" for r in rows)
    limited = _lambdaflow("results", run, "--limit", "1", cwd=stack_dir).stdout.splitlines()
    assert len(limited) == 1
    failed = _lambdaflow("failures", run, cwd=stack_dir).stdout.splitlines()
    assert [(f["line"], f["error"]) for f in map(json.loads, failed)] == [(2, "NoSuchKey")]


def test_results_without_a_running_stack_says_how_to_start_one(tmp_path):
    done = _lambdaflow("results", "0123456789abcdef0123", cwd=tmp_path)
    assert done.returncode == 1
    assert "lambdaflow up" in done.stderr


def test_up_json_prints_the_stack_and_ctrl_c_stops_it_cleanly(tmp_path):
    # GIVEN `lambdaflow up --json` in the foreground
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAMBDAFLOW_"))}
    process = subprocess.Popen(
        [LAMBDAFLOW, "up", "--json", "--workers", "1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # THEN its one JSON line names the endpoint and the buckets, and it publishes itself
        info = json.loads(process.stdout.readline())
        assert info["endpoint_url"].startswith("http://127.0.0.1:")
        for name in ("input_bucket", "results_bucket", "images_bucket"):
            assert info[name]
        published = json.loads((tmp_path / STATE_FILE).read_text())
        assert published["endpoint_url"] == info["endpoint_url"]
        env = info["env"]
        s3 = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        s3.head_bucket(Bucket=info["images_bucket"])
        # AND a second `up` in the same directory refuses to shadow it
        second = _lambdaflow("up", "--json", cwd=tmp_path)
        assert second.returncode == 1
        assert second.stderr.startswith("error: a stack is already up here (pid ")
        assert second.stderr.count("\n") == 1
        # WHEN it gets Ctrl-C THEN it stops and withdraws its state file
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert not (tmp_path / STATE_FILE).exists()
    finally:
        if process.poll() is None:
            process.kill()
    wait_until(lambda: process.poll() is not None, 5)


def test_run_of_a_file_that_is_not_a_manifest_is_partial_says_why_and_exits_1(stack_dir):
    # GIVEN a gzip TSV report dropped by mistake (12,000 lines, not one image reference)
    report = stack_dir / "report.csv.gz"
    rows = b"".join(b"2026-11-26\tdaily\t%06d\n" % i for i in range(12_000))
    report.write_bytes(gzip.compress(rows))
    # WHEN it is run
    done = _lambdaflow("run", str(report), "--json", cwd=stack_dir)
    # THEN the run ends early as partial, with the reason, and the command exits 1
    summary = json.loads(done.stdout)
    assert (summary["status"], summary["ok"], summary["chunks"]) == ("PARTIAL", 0, 0)
    assert summary["reason"].startswith("NotAManifest")
    assert summary["failed"] == summary["lines"] >= 10_000
    assert done.returncode == 1
    last = done.stderr.splitlines()[-1]
    assert last.startswith(f"error: run {summary['run']} is partial: NotAManifest")
