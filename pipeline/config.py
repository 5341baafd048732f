"""Every setting, read from the environment in one place.

`Settings.from_env` is the only reader of `os.environ` in the project. It validates everything at
once and raises one `ConfigError` listing every problem, so a bad deploy fails at cold start with
the whole story instead of one variable at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pipeline.failures import ConfigError

PREFIX = "LAMBDAFLOW_"

INPUT_BUCKET = "LAMBDAFLOW_INPUT_BUCKET"
RESULTS_BUCKET = "LAMBDAFLOW_RESULTS_BUCKET"
SOURCE_BUCKETS = "LAMBDAFLOW_SOURCE_BUCKETS"
WORK_QUEUE_URL = "LAMBDAFLOW_WORK_QUEUE_URL"
FAILURE_QUEUE_URL = "LAMBDAFLOW_FAILURE_QUEUE_URL"
RUNS_TABLE = "LAMBDAFLOW_RUNS_TABLE"
STATE_MACHINE_ARN = "LAMBDAFLOW_STATE_MACHINE_ARN"
MODEL = "LAMBDAFLOW_MODEL"
LABELS = "LAMBDAFLOW_LABELS"
MODEL_SHA256 = "LAMBDAFLOW_MODEL_SHA256"
CROP_FRACTION = "LAMBDAFLOW_CROP_FRACTION"
RESIZE_FILTER = "LAMBDAFLOW_RESIZE_FILTER"
INPUT_MEAN = "LAMBDAFLOW_INPUT_MEAN"
INPUT_STD = "LAMBDAFLOW_INPUT_STD"
TOP_K = "LAMBDAFLOW_TOP_K"
NUM_THREADS = "LAMBDAFLOW_NUM_THREADS"
INTERPRETERS = "LAMBDAFLOW_INTERPRETERS"
CHUNK_ITEMS = "LAMBDAFLOW_CHUNK_ITEMS"
CHUNK_MAX_BYTES = "LAMBDAFLOW_CHUNK_MAX_BYTES"
MAX_LINE_BYTES = "LAMBDAFLOW_MAX_LINE_BYTES"
MAX_IMAGE_BYTES = "LAMBDAFLOW_MAX_IMAGE_BYTES"
MAX_IMAGE_PIXELS = "LAMBDAFLOW_MAX_IMAGE_PIXELS"
FETCH_CONCURRENCY = "LAMBDAFLOW_FETCH_CONCURRENCY"
SPLIT_BUDGET_S = "LAMBDAFLOW_SPLIT_BUDGET_S"
SPLIT_MAX_WAITING_CHUNKS = "LAMBDAFLOW_SPLIT_MAX_WAITING_CHUNKS"
SPLIT_PAUSE_S = "LAMBDAFLOW_SPLIT_PAUSE_S"
SPLIT_PASSES_PER_EXECUTION = "LAMBDAFLOW_SPLIT_PASSES_PER_EXECUTION"
CLASSIFY_CONCURRENCY = "LAMBDAFLOW_CLASSIFY_CONCURRENCY"
TRACING = "LAMBDAFLOW_TRACING"
PROGRESS_POLL_S = "LAMBDAFLOW_PROGRESS_POLL_S"
STALL_TIMEOUT_S = "LAMBDAFLOW_STALL_TIMEOUT_S"
INVENTORY_CHECKSUM_WAIT_S = "LAMBDAFLOW_INVENTORY_CHECKSUM_WAIT_S"
STACK = "LAMBDAFLOW_STACK"
WORK_VISIBILITY_TIMEOUT_S = "LAMBDAFLOW_WORK_VISIBILITY_TIMEOUT_S"
WORK_MAX_RECEIVE_COUNT = "LAMBDAFLOW_WORK_MAX_RECEIVE_COUNT"
LOCAL_MAX_HISTORY_EVENTS = "LAMBDAFLOW_LOCAL_MAX_HISTORY_EVENTS"

DEFAULT_MODEL_PATH = (
    Path(__file__).resolve().parent.parent / "models" / "efficientnet_lite0_int8.tflite"
)
"""The committed int8-weight EfficientNet-Lite0 (models/README.md): the default preset's file."""

RESIZE_FILTERS = ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos")
"""Pillow's resampling filters, by the lower-case name of `PIL.Image.Resampling`."""

SQS_MAX_MESSAGE_BYTES = 1024 * 1024
"""SQS's message limit since January 2026; a chunk message must stay under it."""


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def _parse_csv(raw: str) -> frozenset[str]:
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(f"must be a positive integer, got {value}")
    return value


CHUNK_MAX_BYTES_LIMIT = SQS_MAX_MESSAGE_BYTES - 64 * 1024
"""The largest `chunk_max_bytes`: a chunk of lines sent unparsed is cut by a bound on their
bytes, so its pieces' headers (line numbers, a CSV layout) may add a few hundred bytes past the
cut; 64 KiB of room keeps every message under SQS's limit (`pipeline.split.chunk_encoding`)."""
MAX_HISTORY_EVENTS = 25_000
"""AWS Step Functions: events in one Standard execution's history (a hard quota)."""
MAX_SPLIT_PASSES_PER_EXECUTION = 2_000
"""The most Split passes one execution may run: 9 events each (a pass and its pause) leave 7,000
of `MAX_HISTORY_EVENTS` for retries, the wait and Finalize."""


def _at_most(limit: int, why: str) -> Callable[[str], int]:
    """A positive-integer parser that refuses more than `limit`, saying `why` in its error."""

    def parse(raw: str) -> int:
        value = _positive_int(raw)
        if value > limit:
            raise ValueError(f"must be at most {limit} ({why}), got {value}")
        return value

    return parse


_chunk_max_bytes = _at_most(
    CHUNK_MAX_BYTES_LIMIT,
    f"SQS takes {SQS_MAX_MESSAGE_BYTES} bytes a message, less room for headers",
)
_split_passes_per_execution = _at_most(
    MAX_SPLIT_PASSES_PER_EXECUTION,
    f"a pass and its pause take up to 9 of an execution's {MAX_HISTORY_EVENTS} history events",
)


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError(f"must be positive, got {value}")
    return value


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """`parse`, with a blank value meaning unset (a template parameter left empty)."""

    def parse_or_none(raw: str) -> Any:
        return None if not raw.strip() else parse(raw)

    return parse_or_none


def _fraction(raw: str) -> float:
    value = float(raw)
    if not 0 < value <= 1:
        raise ValueError(f"must be in (0, 1], got {value}")
    return value


def _resize_filter(raw: str) -> str:
    value = raw.strip().lower()
    if value not in RESIZE_FILTERS:
        raise ValueError(f"must be one of {', '.join(RESIZE_FILTERS)}")
    return value


def _channel_values(raw: str) -> tuple[float, ...]:
    """One number for all RGB channels, or three comma-separated ones."""
    values = tuple(float(part) for part in raw.split(","))
    if len(values) not in (1, 3):
        raise ValueError("expected one number or three (R,G,B)")
    return values


def _positive_channels(raw: str) -> tuple[float, ...]:
    values = _channel_values(raw)
    if any(v <= 0 for v in values):
        raise ValueError("must be positive")
    return values


def _setting(env_var: str, default: Any, parse: Callable[[str], Any] = str) -> Any:
    return field(default=default, metadata={"env": env_var, "parse": parse})


@dataclass(frozen=True, slots=True)
class Settings:
    """What every part of the pipeline may be configured with.

    Buckets, queues and the table are empty strings when unset: the parts that need them check
    with `require`, so a CLI command that only scans a local manifest needs no AWS names.
    """

    input_bucket: str = _setting(INPUT_BUCKET, "")
    results_bucket: str = _setting(RESULTS_BUCKET, "")
    source_buckets: frozenset[str] = _setting(SOURCE_BUCKETS, frozenset(), _parse_csv)
    """Allowlist of buckets images may be read from: a manifest cannot make us read any other."""
    work_queue_url: str = _setting(WORK_QUEUE_URL, "")
    failure_queue_url: str = _setting(FAILURE_QUEUE_URL, "")
    runs_table: str = _setting(RUNS_TABLE, "")
    state_machine_arn: str = _setting(STATE_MACHINE_ARN, "")
    model: str = _setting(MODEL, "efficientnet-lite0")
    """A preset name (efficientnet-lite0, efficientnet-lite2) or a path / s3:// URI of a .tflite
    (`pipeline/classify/model_spec.py`)."""
    labels: str = _setting(LABELS, "")
    """Path / s3:// URI of the model's labels file, one class name a line (empty: ImageNet-1k)."""
    model_sha256: str = _setting(MODEL_SHA256, "")
    """Expected sha256 of the model file, checked at load (a preset's is pinned)."""
    crop_fraction: float | None = _setting(CROP_FRACTION, None, _optional(_fraction))
    resize_filter: str | None = _setting(RESIZE_FILTER, None, _optional(_resize_filter))
    input_mean: tuple[float, ...] | None = _setting(INPUT_MEAN, None, _optional(_channel_values))
    input_std: tuple[float, ...] | None = _setting(INPUT_STD, None, _optional(_positive_channels))
    """Preprocessing of a user's model; unset: the preset's (or 0.875, bilinear, 0, 1)."""
    top_k: int = _setting(TOP_K, 5, _positive_int)
    num_threads: int = _setting(NUM_THREADS, 1, _positive_int)
    interpreters: int = _setting(INTERPRETERS, 1, _positive_int)
    """Model interpreters per process, one per vCPU the classify function has (invoke releases
    the GIL, so N interpreters on N threads use N cores; BENCHMARKS.md "Right-sizing")."""
    chunk_items: int = _setting(CHUNK_ITEMS, 500, _positive_int)
    chunk_max_bytes: int = _setting(CHUNK_MAX_BYTES, 900 * 1024, _chunk_max_bytes)
    """Cap on a chunk message's JSON size, under SQS's 1 MiB with room for the envelope."""
    max_line_bytes: int = _setting(MAX_LINE_BYTES, 64 * 1024, _positive_int)
    max_image_bytes: int = _setting(MAX_IMAGE_BYTES, 50 * 1024 * 1024, _positive_int)
    max_image_pixels: int = _setting(MAX_IMAGE_PIXELS, 100_000_000, _positive_int)
    fetch_concurrency: int = _setting(FETCH_CONCURRENCY, 16, _positive_int)
    split_budget_s: float | None = _setting(SPLIT_BUDGET_S, None, _positive_float)
    """Overrides the Split pass budget derived from the invocation's remaining time."""
    classify_concurrency: int = _setting(CLASSIFY_CONCURRENCY, 50, _positive_int)
    """The classify function's MaximumConcurrency (template.yaml): how fast the WorkQueue drains."""
    split_max_waiting_chunks: int | None = _setting(SPLIT_MAX_WAITING_CHUNKS, None, _positive_int)
    """Chunks in the WorkQueue at which Split pauses; None: two hours of the workers' work
    (`pipeline/split/backpressure.py`)."""
    split_pause_s: int = _setting(SPLIT_PAUSE_S, 1800, _positive_int)
    """How long the state machine waits before the next Split pass once the WorkQueue is full."""
    split_passes_per_execution: int = _setting(
        SPLIT_PASSES_PER_EXECUTION, 1000, _split_passes_per_execution
    )
    """Split passes (each with its pause) one execution runs before the run continues in a new one:
    at most 9 history events each, so 1,000 leave room under the 25,000 quota for retries and the
    wait (`pipeline/split/state.py`)."""
    is_tracing_enabled: bool = _setting(TRACING, False, _parse_bool)
    progress_poll_s: int = _setting(PROGRESS_POLL_S, 15, _positive_int)
    """Seconds the state machine waits between progress checks of a run."""
    stall_timeout_s: float = _setting(STALL_TIMEOUT_S, 10800.0, _positive_float)
    """A run whose counted lines do not move for this long is finalized as partial."""
    inventory_checksum_wait_s: float = _setting(INVENTORY_CHECKSUM_WAIT_S, 10.0, _positive_float)
    """How long ingest waits for an S3 Inventory manifest.checksum written after manifest.json."""
    stack: str = _setting(STACK, "")
    """The deployed stack CLI commands talk to when no `--stack` is given (name or ARN)."""
    work_visibility_timeout_s: float | None = _setting(
        WORK_VISIBILITY_TIMEOUT_S, None, _positive_float
    )
    """The WorkQueue's visibility timeout (template.yaml), to check the stall timeout against."""
    work_max_receive_count: int | None = _setting(WORK_MAX_RECEIVE_COUNT, None, _positive_int)
    """The WorkQueue's maxReceiveCount (template.yaml), to check the stall timeout against."""

    def stall_problem(self) -> str | None:
        """Why the stall timeout is too short, if it is.

        A chunk whose handler crashes is retried `maxReceiveCount` times, each after the
        visibility timeout, before SQS parks it in the WorkDLQ. A stall timeout shorter than that
        finalizes the run while the chunk can still come back and be counted.
        """
        if self.work_visibility_timeout_s is None or self.work_max_receive_count is None:
            return None
        retries_s = self.work_visibility_timeout_s * self.work_max_receive_count
        if self.stall_timeout_s > retries_s:
            return None
        return (
            f"{STALL_TIMEOUT_S}={self.stall_timeout_s:g} must exceed the WorkQueue's visibility "
            f"timeout x maxReceiveCount = {self.work_visibility_timeout_s:g} x "
            f"{self.work_max_receive_count} = {retries_s:g} s (raise StallTimeoutSeconds)"
        )

    local_max_history_events: int = _setting(
        LOCAL_MAX_HISTORY_EVENTS, MAX_HISTORY_EVENTS, _positive_int
    )
    """The local stack's Step Functions history quota (AWS: 25,000); tests lower it."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings: explicit overrides > environment > defaults.

        Raises:
            ConfigError: listing every invalid variable at once.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        problems: list[str] = []
        for f in fields(cls):
            if f.name in overrides:
                values[f.name] = overrides[f.name]
                continue
            raw = env.get(f.metadata["env"])
            if raw is None:
                continue
            try:
                values[f.name] = f.metadata["parse"](raw)
            except ValueError as exc:
                problems.append(f"{f.metadata['env']}={raw!r}: {exc}")
        unknown = set(overrides) - {f.name for f in fields(cls)}
        problems.extend(f"unknown setting {name!r}" for name in sorted(unknown))
        settings = None if problems else cls(**values)
        if settings is not None and (stall := settings.stall_problem()):
            problems.append(stall)
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
        return settings  # type: ignore[return-value]  # not None: no problems

    def require(self, *names: str) -> None:
        """Fail fast when a part that needs AWS names runs without them.

        Raises:
            ConfigError: naming each missing environment variable.
        """
        env_of = {f.name: f.metadata["env"] for f in fields(self)}
        missing = [env_of[name] for name in names if not getattr(self, name)]
        if missing:
            raise ConfigError("missing configuration: set " + ", ".join(missing))
