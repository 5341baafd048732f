"""Model specs: both presets, a user's model with its own labels, and one-line errors for bad specs.

Everything loads through the real LiteRT interpreter: the presets committed in models/, and the
tiny models of tests/fixtures/models (built by its build.py: a uint8-input RGB classifier with
its own labels file, and a model that is no image model).
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.classify.model import Classifier, get_classifier, load_spec
from pipeline.classify.model_spec import (
    MODELS_DIR,
    PRESETS,
    Preprocessing,
    file_sha256,
    imagenet_labels,
    resolve_spec,
)
from pipeline.config import Settings
from pipeline.failures import ConfigError
from tests import photos

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "models"
RGB_MODEL = FIXTURES / "rgb_uint8.tflite"
RGB_LABELS = FIXTURES / "rgb_labels.txt"


@pytest.mark.parametrize(
    ("preset", "size"), [("efficientnet-lite0", 224), ("efficientnet-lite2", 260)]
)
def test_each_preset_loads_pinned_with_its_input_size(preset, size):
    classifier = get_classifier(Settings.from_env({"LAMBDAFLOW_MODEL": preset}))
    assert classifier.input_size == size
    assert classifier.decoder(Settings()).input_size == size
    assert classifier.identity.name == preset
    assert classifier.identity.sha256 == PRESETS[preset].sha256
    assert file_sha256(MODELS_DIR / PRESETS[preset].file) == PRESETS[preset].sha256
    assert PRESETS[preset].sha256 in (MODELS_DIR / "README.md").read_text()
    image = classifier.decoder(Settings()).decode(photos.photo_bytes("chelsea"))
    assert image.shape == (size, size, 3)
    (labels,) = classifier.classify([image], top_k=1)
    assert labels[0].index in photos.CAT_CLASSES
    assert labels[0].name == imagenet_labels()[labels[0].index]


def test_a_user_model_names_its_classes_from_its_labels_file(tmp_path):
    # GIVEN the Lite0 file as a user's model, with a relabelled class list
    model = tmp_path / "mine.tflite"
    shutil.copyfile(MODELS_DIR / PRESETS["efficientnet-lite0"].file, model)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"mine-{i:04d}" for i in range(1000)) + "\n")
    # WHEN it classifies a cat
    classifier = get_classifier(
        Settings.from_env({"LAMBDAFLOW_MODEL": str(model), "LAMBDAFLOW_LABELS": str(labels)})
    )
    image = classifier.decoder(Settings()).decode(photos.photo_bytes("chelsea"))
    (top,) = classifier.classify([image], top_k=1)
    # THEN the name is the labels file's, the model is named by its path and hash
    assert top[0].index in photos.CAT_CLASSES
    assert top[0].name == f"mine-{top[0].index:04d}"
    assert classifier.identity.name == str(model)
    assert classifier.identity.sha256 == PRESETS["efficientnet-lite0"].sha256


def test_a_uint8_input_model_gets_pixels_and_its_own_labels():
    classifier = load_spec(resolve_spec(str(RGB_MODEL), labels=str(RGB_LABELS)))
    assert (classifier.input_size, classifier.input_dtype) == (32, np.dtype(np.uint8))
    assert classifier.labels == ("red", "green", "blue")
    decoder = classifier.decoder(Settings())
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 20, 240)).save(buffer, "PNG")
    (labels,) = classifier.classify([decoder.decode(buffer.getvalue())], top_k=3)
    assert [label.name for label in labels] == ["blue", "green", "red"]
    (coffee,) = classifier.classify([decoder.decode(photos.photo_bytes("coffee"))], top_k=1)
    assert coffee[0].name == "red"  # a red-brown cup on a red saucer


class _QuantisedInput:
    """Interpreter stand-in: only its input/output details, to check the quantisation arithmetic."""

    def __init__(self, dtype: type, scale: float, zero_point: int) -> None:
        self.details = {
            "index": 0,
            "shape": np.array([1, 2, 2, 3]),
            "dtype": dtype,
            "quantization": (scale, zero_point),
        }

    def get_input_details(self):
        return [self.details]

    def get_output_details(self):
        return [{"index": 1, "shape": np.array([1, 3]), "dtype": np.float32}]

    def allocate_tensors(self) -> None:
        pass


@pytest.mark.parametrize(
    ("quantisation", "mean", "std", "expected"),
    [
        # MobileNet-style uint8: real = (p - 127.5) / 127.5, q = real * 128 + 128 (≈ p + 0.5)
        ((np.uint8, 1 / 128, 128), (127.5,), (127.5,), [0, 129, 255]),
        # int8 with the scaling inside the model: real = p, q = p / 1 - 128
        ((np.int8, 1.0, -128), (0.0,), (1.0,), [-128, 0, 127]),
    ],
)
def test_quantised_input_uses_the_models_scale_and_zero_point(quantisation, mean, std, expected):
    classifier = Classifier(
        _QuantisedInput(*quantisation),
        labels=("a", "b", "c"),
        preprocessing=Preprocessing(mean=mean, std=std),
    )
    pixels = np.array([0.0, 128.0, 255.0], np.float32).reshape(1, 1, 3)
    result = classifier.model_input(pixels)
    assert result.dtype == quantisation[0]
    assert result.reshape(-1).tolist() == expected


def test_preprocessing_settings_reach_the_decoder():
    settings = Settings.from_env(
        {"LAMBDAFLOW_CROP_FRACTION": "1.0", "LAMBDAFLOW_RESIZE_FILTER": "bicubic"}
    )
    decoder = get_classifier(settings).decoder(settings)
    assert (decoder.crop_fraction, decoder.resample) == (1.0, Image.Resampling.BICUBIC)
    assert get_classifier(Settings()).decoder(Settings()).crop_fraction == 0.875


def _write_lines(path: Path, count: int) -> Path:
    path.write_text("".join(f"class {i}\n" for i in range(count)))
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown preset", "unknown model 'efficientnet-b7': use one of efficientnet-lite0"),
        ("missing model", "model file not found: "),
        ("missing labels", "labels file not found: "),
        ("too few labels", "outputs 3 classes but the labels file has 2 names"),
        ("no labels, not ImageNet", "outputs 3 classes but ImageNet-1k has 1000 names"),
        ("not a tflite", "is not a .tflite model: "),
        ("not an image model", "is not an image classifier: input shape [1, 10]"),
        ("wrong sha256", "has sha256 "),
        ("contradicts a pin", "model efficientnet-lite2 is pinned to sha256 "),
    ],
)
def test_a_bad_spec_fails_at_load_with_one_line(tmp_path, case, message):
    env = {
        "unknown preset": {"LAMBDAFLOW_MODEL": "efficientnet-b7"},
        "missing model": {"LAMBDAFLOW_MODEL": str(tmp_path / "gone.tflite")},
        "missing labels": {
            "LAMBDAFLOW_MODEL": str(RGB_MODEL),
            "LAMBDAFLOW_LABELS": str(tmp_path / "gone.txt"),
        },
        "too few labels": {
            "LAMBDAFLOW_MODEL": str(RGB_MODEL),
            "LAMBDAFLOW_LABELS": str(_write_lines(tmp_path / "two.txt", 2)),
        },
        "no labels, not ImageNet": {"LAMBDAFLOW_MODEL": str(RGB_MODEL)},
        "not a tflite": {"LAMBDAFLOW_MODEL": str(photos.photo_path("coffee"))},
        "not an image model": {"LAMBDAFLOW_MODEL": str(FIXTURES / "not_an_image.tflite")},
        "wrong sha256": {
            "LAMBDAFLOW_MODEL": str(RGB_MODEL),
            "LAMBDAFLOW_LABELS": str(RGB_LABELS),
            "LAMBDAFLOW_MODEL_SHA256": "0" * 64,
        },
        "contradicts a pin": {
            "LAMBDAFLOW_MODEL": "efficientnet-lite2",
            "LAMBDAFLOW_MODEL_SHA256": "0" * 64,
        },
    }[case]
    with pytest.raises(ConfigError) as info:
        get_classifier(Settings.from_env(env))
    text = str(info.value)
    assert message in text
    assert len(text.splitlines()) == 1
