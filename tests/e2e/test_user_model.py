"""`lambdaflow up --model PATH --labels FILE`: the local stack's workers label with a user's model.

A uint8-input RGB classifier with its own three classes (tests/fixtures/models), from `up` through
`run` to `results`: every row carries the labels file's names and names the model and its sha256.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from pipeline.classify.model_spec import file_sha256
from tests.wait import wait_until

pytestmark = pytest.mark.e2e

LAMBDAFLOW = str(Path(sys.executable).parent / "lambdaflow")
TESTS = Path(__file__).resolve().parents[1]
MODEL = TESTS / "fixtures" / "models" / "rgb_uint8.tflite"
LABELS = TESTS / "fixtures" / "models" / "rgb_labels.txt"
PHOTOS = sorted((TESTS / "fixtures" / "images").glob("*.jpg"))


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAMBDAFLOW_"))}


def _lambdaflow(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LAMBDAFLOW, *args],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_a_run_on_a_stack_up_with_a_user_model_labels_with_its_classes(tmp_path):
    # GIVEN `lambdaflow up` with the user's model and labels file
    process = subprocess.Popen(
        [
            LAMBDAFLOW,
            "up",
            "--json",
            "--workers",
            "1",
            "--model",
            str(MODEL),
            "--labels",
            str(LABELS),
        ],
        cwd=tmp_path,
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(process.stdout.readline())
        env = info["env"]
        s3 = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        bucket = info["images_bucket"]
        for photo in PHOTOS:
            s3.put_object(Bucket=bucket, Key=f"mine/{photo.name}", Body=photo.read_bytes())
        manifest = tmp_path / "manifest.csv"
        manifest.write_text("".join(f"s3://{bucket}/mine/{p.name}\n" for p in PHOTOS))
        # WHEN a manifest of real photos runs on it
        done = _lambdaflow("run", str(manifest), "--json", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert (summary["lines"], summary["ok"]) == (len(PHOTOS), len(PHOTOS))
        # THEN every row has the labels file's three names, best first, and names the model
        results = _lambdaflow("results", summary["run"], cwd=tmp_path).stdout.splitlines()
        rows = [json.loads(line) for line in results]
        assert len(rows) == len(PHOTOS)
        for row in rows:
            assert sorted(name for name, _ in row["labels"]) == ["blue", "green", "red"]
            assert row["model"] == str(MODEL)
            assert row["model_sha256"] == file_sha256(MODEL)
        # AND they are the model's answers: the same as `classify` gives for those photos
        local = _lambdaflow(
            "classify",
            *map(str, PHOTOS),
            "--model",
            str(MODEL),
            "--labels",
            str(LABELS),
            "--json",
            cwd=tmp_path,
        )
        expected = {Path(r["path"]).name: r["labels"][0][0] for r in json.loads(local.stdout)}
        assert {Path(r["key"]).name: r["labels"][0][0] for r in rows} == expected
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    wait_until(lambda: process.poll() is not None, 5)


def test_up_with_a_bad_model_exits_2_with_one_line_before_starting(tmp_path):
    done = _lambdaflow(
        "up", "--model", str(tmp_path / "none.tflite"), "--labels", str(LABELS), cwd=tmp_path
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: model file not found: {tmp_path / 'none.tflite'}"
    assert not any(tmp_path.iterdir())  # no stack was published
