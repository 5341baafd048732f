"""`lambdaflow classify --model NAME|PATH [--labels FILE]`: presets, a user's model, bad specs."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from pipeline.classify.model_spec import PRESETS
from pipeline.cli import app
from tests import photos

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "models"
runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["classify", *args], env=env)


def test_lite2_preset_labels_the_cat_and_names_itself_in_every_row():
    paths = [str(photos.photo_path("chelsea")), str(photos.photo_path("coffee"))]
    result = run(*paths, "--model", "efficientnet-lite2", "--json")
    assert result.exit_code == 0, result.output
    rows = orjson.loads(result.stdout)
    assert [row["path"] for row in rows] == paths
    assert "cat" in rows[0]["labels"][0][0]
    assert rows[1]["labels"][0][0] == "espresso"
    for row in rows:
        assert row["model"] == "efficientnet-lite2"
        assert row["model_sha256"] == PRESETS["efficientnet-lite2"].sha256


def test_default_model_is_lite0_and_named():
    result = run(str(photos.photo_path("coffee")), "--json")
    assert result.exit_code == 0, result.output
    (row,) = orjson.loads(result.stdout)
    assert (row["model"], row["model_sha256"]) == (
        "efficientnet-lite0",
        PRESETS["efficientnet-lite0"].sha256,
    )


def test_a_user_model_with_its_labels_file_gives_its_class_names():
    model, labels = FIXTURES / "rgb_uint8.tflite", FIXTURES / "rgb_labels.txt"
    result = run(
        str(photos.photo_path("coffee")), "--model", str(model), "--labels", str(labels), "--json"
    )
    assert result.exit_code == 0, result.output
    (row,) = orjson.loads(result.stdout)
    assert [name for name, _ in row["labels"]] == ["red", "green", "blue"]
    assert row["model"] == str(model)
    assert len(row["model_sha256"]) == 64


def test_bad_specs_exit_1_with_one_line(tmp_path):
    two = tmp_path / "two.txt"
    two.write_text("a\nb\n")
    cases = {
        ("--model", "efficientnet-b7"): "error: unknown model 'efficientnet-b7'",
        ("--model", str(tmp_path / "x.tflite")): "error: model file not found: ",
        ("--model", str(FIXTURES / "rgb_uint8.tflite"), "--labels", str(two)): (
            "error: " + str(FIXTURES / "rgb_uint8.tflite") + " outputs 3 classes but the "
            "labels file has 2 names"
        ),
        ("--model", str(FIXTURES / "not_an_image.tflite")): "is not an image classifier",
    }
    for args, expected in cases.items():
        result = run(str(photos.photo_path("coffee")), *args)
        assert result.exit_code == 1, args
        assert expected in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stdout == ""
