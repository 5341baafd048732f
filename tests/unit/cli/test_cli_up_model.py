"""`lambdaflow up --model/--labels`: what reaches the template's model parameters (the stack itself
runs in tests/e2e/test_user_model.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer

from pipeline.cli.up import model_parameters

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "models"


def test_no_option_gives_the_default_preset_and_empty_preprocessing(monkeypatch):
    for name in ("LAMBDAFLOW_MODEL", "LAMBDAFLOW_LABELS", "LAMBDAFLOW_CROP_FRACTION"):
        monkeypatch.delenv(name, raising=False)
    assert model_parameters(None, None) == {
        "ModelUri": "efficientnet-lite0",
        "LabelsUri": "",
        "ModelSha256": "",
        "ModelCropFraction": "",
        "ModelResizeFilter": "",
        "ModelInputMean": "",
        "ModelInputStd": "",
    }


def test_a_relative_user_model_becomes_absolute_and_the_shells_preprocessing_is_passed_on(
    monkeypatch,
):
    monkeypatch.chdir(FIXTURES)
    monkeypatch.setenv("LAMBDAFLOW_CROP_FRACTION", "1")
    monkeypatch.setenv("LAMBDAFLOW_INPUT_MEAN", "127.5")
    monkeypatch.setenv("LAMBDAFLOW_INPUT_STD", "127.5")
    parameters = model_parameters("rgb_uint8.tflite", "rgb_labels.txt")
    assert parameters["ModelUri"] == str(FIXTURES / "rgb_uint8.tflite")
    assert parameters["LabelsUri"] == str(FIXTURES / "rgb_labels.txt")
    assert (parameters["ModelCropFraction"], parameters["ModelResizeFilter"]) == ("1.0", "")
    assert (parameters["ModelInputMean"], parameters["ModelInputStd"]) == ("127.5", "127.5")


def test_a_bad_model_exits_2_before_any_stack(tmp_path, capsys):
    with pytest.raises(typer.Exit) as info:
        model_parameters(str(tmp_path / "x.tflite"), None)
    assert info.value.exit_code == 2
    assert (
        capsys.readouterr().err.strip() == f"error: model file not found: {tmp_path / 'x.tflite'}"
    )


def test_checking_the_model_prints_nothing_of_litert_before_the_banner():
    # a process of its own: LiteRT prints its INFO line once per process, at the first load
    code = "from pipeline.cli.up import model_parameters; model_parameters(None, None)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert (done.stdout, done.stderr) == ("", "")
