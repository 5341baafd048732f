"""The LiteRT image classifier: load once per process, batch-infer, top-k with label names.

Takes model input as made by `pipeline.classify.images` (float32 ``[size, size, 3]`` RGB 0..255),
applies the spec's normalisation, quantises it when the model takes uint8/int8 input (its own
scale and zero point), and returns the model's class names. Which model and labels is the spec's
business (`pipeline.classify.model_spec`); this module checks the model fits them at load.
Knows nothing of S3, decoding or Lambda.

Just past the ~300-line guide: loading, checking and invoking the interpreter stay together, so
one module owns LiteRT.
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
from PIL import Image

from pipeline.classify.images import ImageDecoder
from pipeline.classify.model_spec import (
    ModelSpec,
    Preprocessing,
    check_image_model,
    file_sha256,
    first_line,
    imagenet_labels,
    model_file,
    read_labels,
    spec_from_settings,
)
from pipeline.config import Settings
from pipeline.failures import ClassifyError, ConfigError

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # pragma: no cover  # older environments: the frozen predecessor
    from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]

logger = logging.getLogger(__name__)

NUM_CLASSES = 1000
"""ImageNet-1k: the presets' outputs, and a user model's when it brings no labels file."""

NO_PREPROCESSING = Preprocessing()
"""The defaults: crop 0.875, bilinear, no normalisation (the presets scale inside the model)."""

DEFAULT_BATCH_SIZE = 1
"""Images per invoke. Per-image invokes measured as fast as batched ones with XNNPACK on
EfficientNet-Lite0 (benchmarks/classify.py, BENCHMARKS.md "Classifier"), and they need no
padding for a short last batch, so 1 is the default."""


@dataclass(frozen=True, slots=True)
class Label:
    """One class the model saw, with its probability (or score, for a model without softmax)."""

    name: str
    index: int
    score: float


@dataclass(frozen=True, slots=True)
class ModelIdentity:
    """What names a model in results: the preset name or path/URI given, and the file's sha256."""

    name: str
    sha256: str


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
        labels: Sequence[str] | None = None,
        identity: ModelIdentity | None = None,
        preprocessing: Preprocessing = NO_PREPROCESSING,
        batch_size: int = DEFAULT_BATCH_SIZE,
        replicas: Sequence[Any] = (),
    ) -> None:
        self._interpreter = interpreter
        first = interpreter.get_input_details()[0]
        self.input_size = int(first["shape"][1])
        self.input_dtype = np.dtype(first["dtype"])
        self.labels = tuple(labels) if labels is not None else imagenet_labels()
        self.identity = identity or ModelIdentity("unnamed", "")
        self.preprocessing = preprocessing
        self._mean = np.asarray(preprocessing.mean, dtype=np.float32)
        self._std = np.asarray(preprocessing.std, dtype=np.float32)
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
        labels: Sequence[str] | None = None,
        name: str | None = None,
        preprocessing: Preprocessing = NO_PREPROCESSING,
        num_threads: int = 1,
        batch_size: int = DEFAULT_BATCH_SIZE,
        replicas: int = 1,
    ) -> Classifier:
        """Load a `.tflite` image classifier: `replicas` interpreters, XNNPACK on `num_threads`.

        Raises:
            ConfigError: in one line: the file is missing, is not a `.tflite` model, is not an
                image classifier (input ``[1, N, N, 3]`` float32/uint8/int8, output
                ``[1, classes]``), or its number of classes is not the number of labels. A
                deploy problem: it crashes the cold start instead of failing every image.
        """
        if not model_path.is_file():
            raise ConfigError(f"model file not found: {model_path}")
        try:
            interpreters = [
                Interpreter(model_path=str(model_path), num_threads=num_threads)
                for _ in range(max(1, replicas))
            ]
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"{model_path} is not a .tflite model: {first_line(exc)}") from exc
        check_image_model(model_path, interpreters[0])
        identity = ModelIdentity(name or str(model_path), file_sha256(model_path))
        try:
            classifier = cls(
                interpreters[0],
                labels=labels,
                identity=identity,
                preprocessing=preprocessing,
                batch_size=batch_size,
                replicas=interpreters[1:],
            )
        except (ValueError, RuntimeError, IndexError) as exc:
            raise ConfigError(f"{model_path} cannot be loaded: {first_line(exc)}") from exc
        classes = int(classifier._output["shape"][-1])
        if classes != len(classifier.labels):
            source = "ImageNet-1k" if labels is None else "the labels file"
            raise ConfigError(
                f"{identity.name} outputs {classes} classes but {source} has "
                f"{len(classifier.labels)} names"
            )
        logger.info(
            "loaded %s sha256 %s (%d interpreters x %d threads, batch %d, %s input)",
            identity.name,
            identity.sha256,
            classifier.replicas,
            num_threads,
            batch_size,
            classifier.input_dtype,
        )
        return classifier

    def decoder(self, settings: Settings) -> ImageDecoder:
        """The image decoder this model wants: its input size and the spec's crop and filter."""
        return ImageDecoder.from_settings(
            settings,
            input_size=self.input_size,
            crop_fraction=self.preprocessing.crop_fraction,
            resample=Image.Resampling[self.preprocessing.resize_filter.upper()],
        )

    def classify(self, images: Sequence[np.ndarray], *, top_k: int = 5) -> list[tuple[Label, ...]]:
        """Return the `top_k` labels of each image, best first, in the order given.

        Raises:
            ClassifyError: an image has the wrong shape (``error="BadInput"``) or the
                interpreter failed (``"InterpreterFailed"``).
        """
        if not images:
            return []
        probabilities = self.predict(images)
        return [top_labels(row, top_k, self.labels) for row in probabilities]

    def predict(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Return the ``[len(images), classes]`` scores, in batches of `batch_size`."""
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

    def model_input(self, pixels: np.ndarray) -> np.ndarray:
        """0..255 RGB pixels → the input tensor: normalised, then quantised if the model wants.

        A quantised input holds ``real / scale + zero_point`` (the model's own parameters), with
        ``real = (pixels - mean) / std`` as the spec's normalisation defines it.
        """
        real = pixels.astype(np.float32, copy=False)
        if self._mean.any() or (self._std != 1.0).any():
            real = (real - self._mean) / self._std
        if self.input_dtype == np.float32:
            return np.ascontiguousarray(real, dtype=np.float32)
        scale, zero_point = self._input["quantization"]
        info = np.iinfo(self.input_dtype)
        quantised = np.rint(real / (scale or 1.0) + zero_point)
        return np.clip(quantised, info.min, info.max).astype(self.input_dtype)

    def _invoke(self, interpreter: Any, images: Sequence[np.ndarray]) -> np.ndarray:
        if len(images) == 1 and self.batch_size == 1:  # the default path: no batch copy
            batch = self.model_input(images[0])[np.newaxis]
        else:
            batch = np.zeros(self._input["shape"], dtype=self.input_dtype)  # short: zero-padded
            for i, image in enumerate(images):
                batch[i] = self.model_input(image)
        try:
            interpreter.set_tensor(self._input["index"], batch)
            interpreter.invoke()
            output = interpreter.get_tensor(self._output["index"])
        except (ValueError, RuntimeError) as exc:
            raise ClassifyError(f"interpreter failed: {exc}", error="InterpreterFailed") from exc
        return self._dequantised(output)

    def _dequantised(self, output: np.ndarray) -> np.ndarray:
        """Scores as float32: a quantised output is mapped back with its scale and zero point."""
        if output.dtype == np.float32:
            return output.copy()
        scale, zero_point = self._output["quantization"]
        return (output.astype(np.float32) - zero_point) * (scale or 1.0)

    def _resize(self, interpreter: Any, batch_size: int) -> None:
        details = interpreter.get_input_details()[0]
        shape = [batch_size, self.input_size, self.input_size, 3]
        if list(details["shape"]) != shape:
            interpreter.resize_tensor_input(details["index"], shape)
        interpreter.allocate_tensors()


def top_labels(
    probabilities: np.ndarray, top_k: int, labels: Sequence[str] | None = None
) -> tuple[Label, ...]:
    """The `top_k` classes of one probability row, best first (ties: lower index first)."""
    names = imagenet_labels() if labels is None else labels
    k = min(top_k, probabilities.shape[-1])
    candidates = np.argpartition(-probabilities, k - 1)[:k]
    order = candidates[np.lexsort((candidates, -probabilities[candidates]))]
    return tuple(
        Label(name=names[int(i)], index=int(i), score=float(probabilities[i])) for i in order
    )


def label_name(index: int) -> str:
    """The ImageNet-1k name of a class index, in the presets' order (``281`` → ``"tabby, …"``)."""
    return imagenet_labels()[index]


def load_spec(
    spec: ModelSpec, *, num_threads: int = 1, replicas: int = 1, batch_size: int = 1
) -> Classifier:
    """Fetch (if on S3), verify and load the model a spec names, with its labels.

    Raises:
        ConfigError: one line saying what is wrong with the spec (see `Classifier.load`).
    """
    labels = read_labels(spec)
    return Classifier.load(
        model_file(spec),
        labels=None if spec.labels_uri is None else labels,
        name=spec.name,
        preprocessing=spec.preprocessing,
        num_threads=num_threads,
        batch_size=batch_size,
        replicas=replicas,
    )


def get_classifier(settings: Settings) -> Classifier:
    """The process-wide classifier for these settings: loaded once, at first use."""
    return _cached_classifier(
        spec_from_settings(settings), settings.num_threads, settings.interpreters
    )


@functools.lru_cache(maxsize=4)
def _cached_classifier(spec: ModelSpec, num_threads: int, replicas: int) -> Classifier:
    return load_spec(spec, num_threads=num_threads, replicas=replicas)
