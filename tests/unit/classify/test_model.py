"""The committed model, through the real LiteRT interpreter, on real photos."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from pipeline.classify.images import ImageDecoder
from pipeline.classify.model import Classifier, Label, get_classifier, top_labels
from pipeline.config import DEFAULT_MODEL_PATH, Settings
from pipeline.failures import ClassifyError, ConfigError, FailureRecord, Stage
from tests import photos

MODEL_SHA256 = "db4f4e7448643aaf5d249a7253a7b35634917a0d4da120bad8e1104e2df103f8"
"""The int8-weight EfficientNet-Lite0 built by `make model` (models/README.md)."""

DECODER = ImageDecoder()


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return get_classifier(Settings.from_env({}))


def top1(classifier: Classifier, data: bytes) -> Label:
    return classifier.classify([DECODER.decode(data)], top_k=5)[0][0]


def test_committed_model_is_the_one_models_readme_describes():
    digest = hashlib.sha256(DEFAULT_MODEL_PATH.read_bytes()).hexdigest()
    assert digest == MODEL_SHA256
    assert (DEFAULT_MODEL_PATH.parent / "README.md").read_text().count(MODEL_SHA256) >= 1


def test_cat_photo_is_a_cat(classifier):
    label = top1(classifier, photos.photo_bytes("chelsea"))
    assert label.index in photos.CAT_CLASSES
    assert "cat" in label.name


def test_coffee_photo_is_espresso(classifier):
    label = top1(classifier, photos.photo_bytes("coffee"))
    assert (label.index, label.name) == (photos.ESPRESSO, "espresso")
    assert label.score > 0.8


@pytest.mark.parametrize("name", ["chelsea", "coffee"])
@pytest.mark.parametrize("variant", ["exif-rotated", "greyscale", "png"])
def test_rotated_greyscale_and_png_versions_classify_the_same(classifier, name, variant):
    original = top1(classifier, photos.photo_bytes(name))
    assert top1(classifier, photos.variants(name)[variant]).index == original.index


@pytest.mark.parametrize(
    "variant", ["cmyk-jpeg", "palette-png", "16-bit-png", "alpha-png", "webp", "gif", "tiff"]
)
def test_every_mode_still_classifies(classifier, variant):
    assert top1(classifier, photos.variants("coffee")[variant]).index == photos.ESPRESSO
    assert top1(classifier, photos.variants("chelsea")[variant]).index in photos.CAT_CLASSES


def test_animated_gif_is_classified_by_its_first_frame(classifier):
    assert top1(classifier, photos.animated_gif("coffee", "chelsea")).index == photos.ESPRESSO
    assert top1(classifier, photos.animated_gif("chelsea", "coffee")).index in photos.CAT_CLASSES


def test_classify_returns_top_k_per_image_in_order_best_first(classifier):
    images = [DECODER.decode(photos.photo_bytes(n)) for n in ("coffee", "chelsea", "coffee")]
    results = classifier.classify(images, top_k=3)
    assert [len(r) for r in results] == [3, 3, 3]
    assert results[0] == results[2]
    assert results[1][0].index in photos.CAT_CLASSES
    for labels in results:
        scores = [label.score for label in labels]
        assert scores == sorted(scores, reverse=True)
        assert 0 < sum(scores) <= 1.0001


def test_batched_interpreter_gives_the_same_labels(classifier):
    batched = Classifier.load(DEFAULT_MODEL_PATH, batch_size=4)
    images = [DECODER.decode(photos.photo_bytes(n)) for n in ("coffee", "chelsea", "rocket")]
    expected = classifier.predict(images)
    assert np.allclose(batched.predict(images), expected, atol=1e-4)


def test_classify_of_nothing_is_nothing(classifier):
    assert classifier.classify([]) == []


def test_wrong_input_shape_is_a_classify_error(classifier):
    with pytest.raises(ClassifyError) as caught:
        classifier.classify([np.zeros((100, 100, 3), np.float32)])
    record = FailureRecord.from_exception(caught.value, run="r", line=1)
    assert (record.stage, record.error) == (Stage.CLASSIFY, "BadInput")


def test_get_classifier_loads_once_per_model_and_threads(classifier):
    settings = Settings.from_env({})
    assert get_classifier(settings) is classifier
    assert get_classifier(Settings.from_env({}, num_threads=2)) is not classifier


def test_missing_model_fails_loudly(tmp_path):
    with pytest.raises(ConfigError, match="model file not found"):
        Classifier.load(tmp_path / "nope.tflite")


def test_a_file_that_is_not_a_model_fails_loudly(tmp_path):
    path = tmp_path / "fake.tflite"
    path.write_bytes(photos.photo_bytes("coffee"))
    with pytest.raises(ConfigError, match=r"is not a \.tflite model"):
        Classifier.load(path)


def test_top_labels_orders_by_score_then_index():
    probabilities = np.zeros(1000, np.float32)
    probabilities[[5, 3, 900, 7]] = [0.2, 0.5, 0.2, 0.1]
    labels = top_labels(probabilities, 3)
    assert [(label.index, label.score) for label in labels] == [
        (3, 0.5),
        (5, pytest.approx(0.2)),
        (900, pytest.approx(0.2)),
    ]
    assert labels[0].name == "tiger shark, Galeocerdo cuvieri"


def test_model_comes_from_settings(tmp_path):
    settings = Settings.from_env({"LAMBDAFLOW_MODEL": str(tmp_path / "other.tflite")})
    assert settings.model == str(tmp_path / "other.tflite")
    with pytest.raises(ConfigError, match="model file not found"):
        get_classifier(settings)
