"""A Split pass that sends nothing: what `lambdaflow scan` runs, so scan reads exactly as Split.

`dry_run` calls `split_pass` itself — the ranged reader, the record reader (gzip inflated by
ISA-L when the file is plain, else by zran as in Split), the not-a-manifest guard, the chunk
cuts and the handling of a manifest that breaks — with sinks that count instead of sending:
chunk messages are sized exactly (their bytes built only for the first few, decoded back for
`scan --show`), parse failures are tallied by error code. A truncated manifest therefore counts
the records Split would send before the break, in the chunks it would send them. Knows nothing
of the command line.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pipeline.failures import FailureRecord, ManifestReadError, NotPlainGzip
from pipeline.gzip.ranged import LocalFileReader, ObjectReader, S3ObjectReader
from pipeline.manifest.parse import ManifestRecord
from pipeline.observe.cost import sqs_units
from pipeline.s3_uri import S3_SCHEME, split_s3_uri
from pipeline.split.chunking import Chunk
from pipeline.split.passes import SplitOptions, SplitOutcome, split_pass
from pipeline.split.sinks import ChunkMessage

DRY_RUN_ID = "scan0000000000000"
"""Stand-in run id of a run id's length, so message sizes (and chunk cuts) match a real run."""
EXAMPLES_PER_ERROR = 5
_READING_LOGGERS = ("pipeline.gzip.", "pipeline.manifest.")
"""Warnings from these are about the manifest's bytes (the split's own are in its outcome)."""
_S3_RETRIES = {"mode": "standard", "max_attempts": 5}
"""`standard` retries ride out S3's 503 SlowDown; `legacy` does not."""


class _MemoryIndexStore:
    """Seek-point indexes kept in memory: one pass to the end never resumes from them."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    def put_index(self, name: str, data: bytes) -> str:
        self._data[name] = data
        return name

    def get_index(self, ref: str) -> bytes:
        return self._data[ref]


@dataclass(slots=True)
class CountingChunks:
    """A `ChunkSink` that counts Split's exact messages and keeps the first `show` records."""

    show: int = 0
    on_chunk: Callable[[CountingChunks], None] | None = None
    chunks: int = 0
    records: int = 0
    message_bytes: int = 0
    sqs_units: int = 0
    shown: list[ManifestRecord] = field(default_factory=list)

    @property
    def wants_body(self) -> bool:
        """Encoded messages only while records are still wanted for `--show`.

        Counting needs only sizes, which Split computes without encoding: each chunk's v1
        message size (`ChunkSpan.message_bytes`, property-tested against orjson), a floor of what
        Split sends (`ChunkMessage`); encoding would be a fifth of scan's time.
        """
        return len(self.shown) < self.show

    def send(self, message: ChunkMessage) -> None:
        """Count one message; decode it while records are still wanted for `--show`."""
        self.chunks += 1
        self.records += message.count
        self.message_bytes += message.body_bytes
        self.sqs_units += sqs_units(message.body_bytes)
        if message.body and len(self.shown) < self.show:
            items = Chunk.from_message(orjson.loads(message.body)).items
            self.shown.extend(items[: self.show - len(self.shown)])
        if self.on_chunk is not None:
            self.on_chunk(self)

    def flush(self) -> None:
        """Nothing is buffered."""


@dataclass(slots=True)
class CountingFailures:
    """A `ParseFailureWriter` that tallies failures by code and keeps the first few."""

    show: int = 0
    by_error: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[int]] = field(default_factory=dict)
    shown: list[FailureRecord] = field(default_factory=list)

    def append(self, run: str, chunk: int, records: Sequence[FailureRecord]) -> None:
        """Count `records`, keeping the first line numbers of each code."""
        for record in records:
            self.by_error[record.error] += 1
            lines = self.examples.setdefault(record.error, [])
            if len(lines) < EXAMPLES_PER_ERROR and record.line is not None:
                lines.append(record.line)
            if len(self.shown) < self.show:
                self.shown.append(record)

    def close(self, run: str, chunk: int) -> None:
        """Nothing to store."""

    def abort(self) -> None:
        """Nothing to drop: a dry run keeps what it counted."""


class Opener:
    """Open `s3://` objects (one streaming GET, as Split) or local files for ranged reads.

    Keeps what it opened, so progress can show the compressed bytes fetched so far.
    """

    def __init__(self, client: Any = None) -> None:
        self._client = client
        self._readers: list[ObjectReader] = []

    @property
    def bytes_fetched(self) -> int:
        """Compressed bytes read so far, over every object opened."""
        return sum(getattr(r, "bytes_fetched", 0) for r in self._readers)

    def __call__(self, location: str) -> ObjectReader:
        """Open `location`.

        Raises:
            ManifestReadError: a local file that cannot be opened (S3 errors come on first read).
        """
        reader: ObjectReader
        if location.startswith(S3_SCHEME):
            if self._client is None:
                # lazy: a local manifest needs no AWS SDK (boto3 is a third of scan's start-up)
                import boto3  # noqa: PLC0415
                from botocore.config import Config  # noqa: PLC0415

                self._client = boto3.client("s3", config=Config(retries=_S3_RETRIES))
            bucket, key = split_s3_uri(location)
            reader = S3ObjectReader(self._client, bucket, key, streaming=True)
        else:
            try:
                reader = LocalFileReader(Path(location))
            except OSError as exc:
                code = "NoSuchKey" if isinstance(exc, FileNotFoundError) else "ReadFailed"
                raise ManifestReadError(
                    f"cannot open manifest {location}: {exc.strerror or exc}; check the name "
                    "and read permission",
                    error=code,
                ) from exc
        self._readers.append(reader)
        return reader


class _Warnings(logging.Handler):
    """Collects what the reading logged as warnings (trailing garbage ignored, say).

    Attached to the `pipeline` logger for the pass, it also keeps those lines off stderr
    (logging's last-resort handler): the command reports them itself.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_READING_LOGGERS):
            self.messages.append(record.getMessage())


@dataclass(frozen=True, slots=True)
class DryRun:
    """What one whole Split pass over the manifest would have sent, and what it warned."""

    outcome: SplitOutcome
    chunks: CountingChunks
    failures: CountingFailures
    warnings: tuple[str, ...] = ()

    @property
    def lines(self) -> int:
        """Physical lines read, blank and header lines included (to the break, if it broke)."""
        return self.outcome.lines_read

    @property
    def format(self) -> str | None:
        """The sniffed format (None when the manifest could not be opened)."""
        return self.outcome.checkpoint.extra.get("format")


def dry_run(
    source: str,
    *,
    options: SplitOptions,
    client: Any = None,
    show: int = 0,
    tick: Callable[[int, int], None] | None = None,
) -> DryRun:
    """Run Split's pass over `source` to its end (or its break), sending nothing.

    `tick(chunks, compressed_bytes)` is called after every chunk (for a progress bar). A pass
    to the end takes no checkpoint, so a gzip is read with ISA-L (`pipeline/gzip/first_pass.py`)
    while it is plain; one that is not (truncated, corrupt, padded) is read again from the start
    the way Split reads it, through zran, so its counts and its error are Split's.

    Raises:
        ManifestReadError: only a transient read error Split itself would retry.
    """
    if options.budget_s is not None:
        return _one_pass(source, options, client, show, tick)
    fast = dataclasses.replace(options, knobs=dataclasses.replace(options.knobs, checkpoints=False))
    try:
        return _one_pass(source, fast, client, show, tick)
    except NotPlainGzip:
        return _one_pass(source, options, client, show, tick)


def _one_pass(
    source: str,
    options: SplitOptions,
    client: Any,
    show: int,
    tick: Callable[[int, int], None] | None,
) -> DryRun:
    open_reader = Opener(client)
    on_chunk = None
    if tick is not None:
        on_chunk = lambda sink: tick(sink.chunks, open_reader.bytes_fetched)  # noqa: E731
    chunks = CountingChunks(show=show, on_chunk=on_chunk)
    failures = CountingFailures(show=show)
    warnings = _Warnings()
    logger = logging.getLogger("pipeline")
    logger.addHandler(warnings)
    try:
        outcome = split_pass(
            source,
            None,
            run=DRY_RUN_ID,
            options=options,
            open_reader=open_reader,
            sink=chunks,
            failures=failures,
            index_store=_MemoryIndexStore(),
        )
    finally:
        logger.removeHandler(warnings)
    return DryRun(outcome, chunks, failures, tuple(warnings.messages))
