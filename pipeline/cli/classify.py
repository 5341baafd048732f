"""`lambdaflow classify IMAGE... [--model M] [--labels F] [--top K] [--json]`: label images.

Local files and s3:// objects; the model is a preset name or a user's `.tflite` (with its labels
file), and every row names it and its sha256.

A failed image is data: it is printed as an error row and the exit code stays 0. Only usage
errors (bad arguments, bad settings: 2) and work that cannot be done at all (no model, S3
unreachable: 1) exit non-zero, each with one clear line on stderr.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from pipeline.cli.app import app
from pipeline.cli.s3_uri import s3_bucket_key
from pipeline.cli.stack_target import StackOption, use_s3_of
from pipeline.failures import ConfigError, PipelineError
from pipeline.s3_uri import S3_SCHEME

if TYPE_CHECKING:
    from pipeline.classify.model import Classifier, Label, ModelIdentity
    from pipeline.config import Settings

# Imported when the command runs (numpy, Pillow, LiteRT; boto3 only for an s3:// argument): the
# command's start-up is part of its speed (BENCHMARKS.md "classify CLI"), and --help's.

WINDOW_PER_JOB = 4
"""Images in flight per job: keeps every core busy while bounding memory for long lists."""

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
        if not text.startswith(S3_SCHEME):
            return cls(text)
        bucket, key = s3_bucket_key(text)
        return cls(text, bucket, key)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one argument: its labels, or the error that stopped it.

    The error is kept as strings, never as the exception: an exception holds its traceback and
    with it the decoder's frames and buffers, so a call of many failing images would grow by
    each one's decode memory.
    """

    path: str
    labels: tuple[Label, ...] = ()
    error: str | None = None
    stage: str | None = None
    message: str | None = None
    model: ModelIdentity | None = None

    @classmethod
    def failed(cls, path: str, exc: BaseException) -> Outcome:
        """The row of an image that could not be labelled, from any exception."""
        if isinstance(exc, PipelineError):
            return cls(path, error=exc.error, stage=exc.stage.value, message=exc.message)
        return cls(path, error="internal", stage="decode", message=f"{type(exc).__name__}: {exc}")

    def to_json(self) -> dict[str, Any]:
        """The `--json` row: ``{"path", "labels": [[name, score], …], "model", "model_sha256"}``.

        A failed image has ``error``, ``stage`` and ``message`` instead of the labels.
        """
        if self.error is not None:
            row = {
                "path": self.path,
                "error": self.error,
                "stage": self.stage,
                "message": self.message,
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
            return f"{self.path}: {self.error} ({self.stage}): {self.message}"
        lines = [self.path, *(f"  {lb.score:.4f}  {lb.name} ({lb.index})" for lb in self.labels)]
        return "\n".join(lines)


@app.command()
def classify(  # noqa: PLR0917  # typer: one parameter an option
    images: Annotated[
        list[str],
        typer.Argument(metavar="IMAGE...", help="Local image files or s3://bucket/key URIs."),
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
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", min=1, max=64, help="Images decoded and classified at once."),
    ] = None,
    stack: StackOption = None,
) -> None:
    """Classify images (files or s3:// URIs); bad ones are reported."""
    import orjson  # noqa: PLC0415  # see the imports above

    from pipeline.config import Settings  # noqa: PLC0415

    sources = [Source.parse(text) for text in images]
    given = {"model": model, "labels": labels}
    try:
        settings = Settings.from_env(**{k: v for k, v in given.items() if v is not None})
    except ConfigError as exc:
        _fail(str(exc), USAGE_ERROR)
    if any(source.bucket for source in sources):
        use_s3_of(stack)  # s3:// arguments: the stack found here, without exported variables
    jobs = jobs or available_cores()
    try:
        classifier = _load_classifier(settings, replicas=jobs)
    except ConfigError as exc:
        _fail(str(exc), WORK_FAILED)
    labeller = _Labeller(classifier, settings, top or settings.top_k)
    try:
        outcomes = labeller.label_all(sources, jobs=jobs)
        if as_json:
            rows = [o.to_json() for o in outcomes]
            typer.echo(orjson.dumps(rows).decode())
        else:
            for outcome in outcomes:
                typer.echo(outcome.to_text())
    except _S3Unreachable as exc:  # no credentials, endpoint unreachable: nothing can be read
        _fail(f"cannot reach S3: {exc.__cause__}", WORK_FAILED)


def available_cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover  # not Linux
        return max(1, os.cpu_count() or 1)


def _load_classifier(settings: Settings, *, replicas: int) -> Classifier:
    """The model, with one interpreter per job (invoke releases the GIL: one per core)."""
    from pipeline.classify.model import get_classifier  # noqa: PLC0415
    from pipeline.local.quiet import native_stderr_silenced  # noqa: PLC0415

    with native_stderr_silenced():  # LiteRT's "INFO: Created … delegate" line
        return get_classifier(replace(settings, interpreters=max(replicas, settings.interpreters)))


class _Labeller:
    """Reads, decodes and classifies one image per task, `jobs` tasks at once, in order.

    Threads, not processes: Pillow's decoders and LiteRT's invoke run with the GIL released
    (BENCHMARKS.md "classify CLI"), so two threads use two cores, the model is loaded once, and
    start-up stays that of one process. Every exception of a task becomes that image's row.
    """

    def __init__(self, classifier: Classifier, settings: Settings, top_k: int) -> None:

        self._classifier = classifier
        self._decoder = classifier.decoder(settings)
        self._reader = _Reader(settings.max_image_bytes)
        self._top_k = top_k

    def label_all(self, sources: Sequence[Source], *, jobs: int) -> Iterator[Outcome]:
        """One outcome per source, in order, with at most `WINDOW_PER_JOB` x jobs in flight."""
        window = WINDOW_PER_JOB * jobs
        with ThreadPoolExecutor(jobs, thread_name_prefix="classify") as pool:
            in_flight: deque[Future[Outcome]] = deque()
            try:
                for source in sources:
                    in_flight.append(pool.submit(self.label, source))
                    if len(in_flight) >= window:
                        yield in_flight.popleft().result()
                while in_flight:
                    yield in_flight.popleft().result()
            finally:
                for future in in_flight:
                    future.cancel()

    def label(self, source: Source) -> Outcome:
        """Read, decode and classify one source; any failure is its row (BotoCoreError aside)."""
        try:
            image = self._decoder.decode(self._reader.read(source))
            labels = self._classifier.classify([image], top_k=self._top_k)[0]
        except _S3Unreachable:
            raise
        except Exception as exc:  # untrusted files: every failure is data
            if _is_botocore_error(exc):  # S3 itself unreachable: the whole call fails, said once
                raise _S3Unreachable from exc
            return replace(Outcome.failed(source.text, exc), model=self._classifier.identity)
        return Outcome(source.text, labels, model=self._classifier.identity)


class _Reader:
    """Reads local files, and S3 objects through one client made on first use (thread-safe)."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._client: Any = None
        self._lock = threading.Lock()

    def read(self, source: Source) -> bytes:
        from pipeline.classify.fetch import fetch_image, read_local_image  # noqa: PLC0415

        if source.bucket is None or source.key is None:
            return read_local_image(Path(source.text), max_bytes=self._max_bytes)
        with self._lock:
            if self._client is None:
                import boto3  # noqa: PLC0415  # ~0.5 s: only a call with s3:// arguments pays it
                from botocore.config import Config  # noqa: PLC0415

                self._client = boto3.client("s3", config=Config(retries={"mode": "standard"}))
        return fetch_image(self._client, source.bucket, source.key, max_bytes=self._max_bytes)


class _S3Unreachable(Exception):
    """botocore's own error (no credentials, no endpoint): the call fails, not the image."""


def _is_botocore_error(exc: BaseException) -> bool:
    """A `BotoCoreError`, recognised without importing botocore for calls that never use it."""
    return any(
        cls.__name__ == "BotoCoreError" and cls.__module__ == "botocore.exceptions"
        for cls in type(exc).__mro__
    )


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
