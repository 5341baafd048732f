"""`lambdaflow classify` on local files: labels, failure rows, exit codes."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests import photos

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["classify", *args], env=env)


def test_classify_prints_top_k_labels_per_photo():
    result = run(str(photos.photo_path("coffee")), str(photos.photo_path("chelsea")), "--top", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == str(photos.photo_path("coffee"))
    assert lines[1].split()[1:] == ["espresso", "(967)"]
    assert lines[3] == str(photos.photo_path("chelsea"))
    assert "cat" in lines[4]
    assert len(lines) == 6


def test_json_lists_labels_and_failed_images_as_data(tmp_path):
    # GIVEN a good photo, a text file, an empty file and a path that does not exist
    (tmp_path / "notes.jpg").write_text("not a photo")
    (tmp_path / "empty.jpg").write_bytes(b"")
    paths = [
        str(photos.photo_path("coffee")),
        *(str(tmp_path / n) for n in ("notes.jpg", "empty.jpg", "gone.jpg")),
    ]
    # WHEN they are classified together
    result = run(*paths, "--json")
    # THEN every one is a row, in order, and the failures do not change the exit code
    assert result.exit_code == 0, result.output
    rows = orjson.loads(result.stdout)
    assert [row["path"] for row in rows] == paths
    assert rows[0]["labels"][0][0] == "espresso"
    assert len(rows[0]["labels"]) == 5
    assert [row.get("error") for row in rows[1:]] == ["NotAnImage", "EmptyObject", "NoSuchFile"]
    assert [row["stage"] for row in rows[1:]] == ["decode", "decode", "fetch"]


def test_top_k_defaults_to_the_setting():
    result = run(str(photos.photo_path("coffee")), "--json", env={"LAMBDAFLOW_TOP_K": "3"})
    assert result.exit_code == 0, result.output
    assert len(orjson.loads(result.stdout)[0]["labels"]) == 3


def test_image_over_the_byte_limit_is_a_failure_row():
    result = run(
        str(photos.photo_path("coffee")), "--json", env={"LAMBDAFLOW_MAX_IMAGE_BYTES": "1000"}
    )
    assert result.exit_code == 0
    assert orjson.loads(result.stdout)[0]["error"] == "ObjectTooLarge"


@pytest.mark.parametrize(
    "args",
    [[], ["--top", "0", "x.jpg"], ["s3://only-a-bucket"], ["s3:///key.jpg"]],
)
def test_usage_errors_exit_2(args):
    result = run(*args)
    assert result.exit_code == 2


def test_bad_settings_exit_2_with_one_line():
    result = run(str(photos.photo_path("coffee")), env={"LAMBDAFLOW_NUM_THREADS": "zero"})
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: invalid configuration: LAMBDAFLOW_NUM_THREADS")
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_model_exits_1_with_one_line(tmp_path):
    result = run(
        str(photos.photo_path("coffee")), env={"LAMBDAFLOW_MODEL": str(tmp_path / "m.tflite")}
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: model file not found: {tmp_path / 'm.tflite'}"
