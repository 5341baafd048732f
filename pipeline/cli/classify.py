"""`lambdaflow classify IMAGE... [--model M] [--labels F] [--top K] [--json]`: label images.

Local files and s3:// objects; the model is a preset name or a user's `.tflite` (with its labels
file), and every row names it and its sha256.

A failed image is data: it is printed as an error row and the exit code stays 0. Only usage
errors (bad arguments, bad settings: 2) and work that cannot be done at all (no model, S3
unreachable: 1) exit non-zero, each with one clear line on stderr.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import boto3
import orjson
import typer
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from pipeline.classify.fetch import fetch_image, read_local_image
from pipeline.classify.model import Classifier, Label, ModelIdentity, get_classifier
from pipeline.cli.app import app
from pipeline.config import Settings
from pipeline.failures import ClassifyError, ConfigError, PipelineError

GROUP_SIZE = 32
"""Images read, decoded and classified together: bounds memory for long argument lists."""

USAGE_ERROR = 2
WORK_FAILED = 1


@dataclass(frozen=True, slots=True)
class Source:
    """One argument: a local path, or a bucket and key."""

    text: str
    bucket: str | None = None
    key: str | None = None

    @classmethod
    def parse(cls, text: str) -> Source:
        """Split ``s3://bucket/key``; anything else is a local path.

        Raises:
            typer.BadParameter: an s3:// URI without a bucket or a key.
        """
        if not text.startswith("s3://"):
            return cls(text)
        bucket, _, key = text.removeprefix("s3://").partition("/")
        if not bucket or not key:
            raise typer.BadParameter(f"{text!r} is not s3://BUCKET/KEY")
        return cls(text, bucket, key)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one argument: its labels, or the error that stopped it."""

    path: str
    labels: tuple[Label, ...] = ()
    error: PipelineError | None = None
    model: ModelIdentity | None = None

    def to_json(self) -> dict[str, Any]:
        """The `--json` row: ``{"path", "labels": [[name, score], …], "model", "model_sha256"}``.

        A failed image has ``error``, ``stage`` and ``message`` instead of the labels.
        """
        if self.error is not None:
            row = {
                "path": self.path,
                "error": self.error.error,
                "stage": self.error.stage.value,
                "message": self.error.message,
            }
        else:
            labels = [[lb.name, round(lb.score, 6)] for lb in self.labels]
            row = {"path": self.path, "labels": labels}
        if self.model is not None:
            row |= {"model": self.model.name, "model_sha256": self.model.sha256}
        return row

    def to_text(self) -> str:
        """The human rendering: the path, then one ``score  name`` line per label."""
        if self.error is not None:
            return (
                f"{self.path}: {self.error.error} ({self.error.stage.value}): {self.error.message}"
            )
        lines = [self.path, *(f"  {lb.score:.4f}  {lb.name} ({lb.index})" for lb in self.labels)]
        return "\n".join(lines)


@app.command()
def classify(
    images: Annotated[
        list[str],
        typer.Argument(metavar="IMAGE", help="Local image files or s3://bucket/key URIs."),
    ],
    top: Annotated[
        int | None,
        typer.Option("--top", min=1, max=1000, help="Labels per image [LAMBDAFLOW_TOP_K]."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON list.")] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="efficientnet-lite0 (default), efficientnet-lite2, or the path / s3:// URI of "
            "a .tflite image classifier [LAMBDAFLOW_MODEL].",
        ),
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option(
            "--labels",
            help="The model's labels file (path or s3://), one class name a line "
            "[LAMBDAFLOW_LABELS; default: ImageNet-1k].",
        ),
    ] = None,
) -> None:
    """Classify images with an image model; failed images are reported, not fatal."""
    sources = [Source.parse(text) for text in images]
    given = {"model": model, "labels": labels}
    try:
        settings = Settings.from_env(**{k: v for k, v in given.items() if v is not None})
    except ConfigError as exc:
        _fail(str(exc), USAGE_ERROR)
    try:
        classifier = get_classifier(settings)
    except ConfigError as exc:
        _fail(str(exc), WORK_FAILED)
    try:
        outcomes = list(_classify_all(sources, classifier, settings, top or settings.top_k))
    except BotoCoreError as exc:  # no credentials, endpoint unreachable: nothing can be read
        _fail(f"cannot reach S3: {exc}", WORK_FAILED)
    if as_json:
        typer.echo(orjson.dumps([o.to_json() for o in outcomes]).decode())
    else:
        typer.echo("\n".join(o.to_text() for o in outcomes))


def _classify_all(
    sources: Sequence[Source], classifier: Classifier, settings: Settings, top_k: int
) -> Iterator[Outcome]:
    decoder = classifier.decoder(settings)
    reader = _Reader(settings.max_image_bytes)
    for start in range(0, len(sources), GROUP_SIZE):
        group = sources[start : start + GROUP_SIZE]
        decoded: dict[int, Any] = {}
        failed: dict[int, PipelineError] = {}
        for i, source in enumerate(group):
            try:
                decoded[i] = decoder.decode(reader.read(source))
            except PipelineError as exc:
                failed[i] = exc
        try:
            found = classifier.classify(list(decoded.values()), top_k=top_k)
        except ClassifyError as exc:
            failed.update(dict.fromkeys(decoded, exc))
            found = []
        labels = dict(zip(decoded, found, strict=False))
        for i, source in enumerate(group):
            yield Outcome(source.text, labels.get(i, ()), failed.get(i), classifier.identity)


class _Reader:
    """Reads local files, and S3 objects through one client made on first use."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._client: Any = None

    def read(self, source: Source) -> bytes:
        if source.bucket is None or source.key is None:
            return read_local_image(Path(source.text), max_bytes=self._max_bytes)
        if self._client is None:
            self._client = boto3.client("s3", config=Config(retries={"mode": "standard"}))
        return fetch_image(self._client, source.bucket, source.key, max_bytes=self._max_bytes)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
