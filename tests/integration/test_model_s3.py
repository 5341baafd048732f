"""A model and labels file on S3 (the template's ModelUri/LabelsUri): fetched once to the temp
dir, checked against the sha256, loaded; a wrong hash or a missing object fails in one line."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from pipeline.classify.model import get_classifier
from pipeline.classify.model_spec import file_sha256
from pipeline.config import Settings
from pipeline.failures import ConfigError
from tests import photos

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models"
MODEL = FIXTURES / "rgb_uint8.tflite"


@pytest.fixture
def temp_dir(tmp_path, monkeypatch) -> Path:
    """Lambda's /tmp, private to the test."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.fixture
def uploaded(s3, bucket) -> dict[str, str]:
    s3.put_object(Bucket=bucket, Key="models/rgb.tflite", Body=MODEL.read_bytes())
    s3.put_object(Bucket=bucket, Key="models/rgb.txt", Body=b"red\ngreen\nblue\n")
    return {
        "LAMBDAFLOW_MODEL": f"s3://{bucket}/models/rgb.tflite",
        "LAMBDAFLOW_LABELS": f"s3://{bucket}/models/rgb.txt",
        "LAMBDAFLOW_MODEL_SHA256": file_sha256(MODEL),
    }


def test_an_s3_model_is_fetched_once_verified_and_labels_with_its_names(uploaded, temp_dir):
    classifier = get_classifier(Settings.from_env(uploaded))
    assert classifier.labels == ("red", "green", "blue")
    assert classifier.identity.name == uploaded["LAMBDAFLOW_MODEL"]
    assert classifier.identity.sha256 == uploaded["LAMBDAFLOW_MODEL_SHA256"]
    decoder = classifier.decoder(Settings())
    (labels,) = classifier.classify([decoder.decode(photos.photo_bytes("coffee"))], top_k=1)
    assert labels[0].name == "red"
    copies = sorted(p.name.split("-", 1)[1] for p in (temp_dir / "lambdaflow-models").iterdir())
    assert copies == ["rgb.tflite", "rgb.txt"]
    assert get_classifier(Settings.from_env(uploaded)) is classifier  # once per process


def test_a_wrong_sha256_refuses_the_model(uploaded, temp_dir):
    env = {**uploaded, "LAMBDAFLOW_MODEL_SHA256": "0" * 64}
    with pytest.raises(ConfigError) as info:
        get_classifier(Settings.from_env(env))
    assert str(info.value) == (
        f"model {uploaded['LAMBDAFLOW_MODEL']} has sha256 {uploaded['LAMBDAFLOW_MODEL_SHA256']}, "
        f"expected {'0' * 64}"
    )


def test_a_missing_s3_object_fails_in_one_line(bucket, temp_dir):
    env = {"LAMBDAFLOW_MODEL": f"s3://{bucket}/nope.tflite"}
    with pytest.raises(ConfigError) as info:
        get_classifier(Settings.from_env(env))
    assert str(info.value) == f"cannot read s3://{bucket}/nope.tflite: 404"
