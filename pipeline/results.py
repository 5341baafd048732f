"""Gzip JSON Lines parts: where every result row and failure record of a run is written.

Layout in the results bucket (every key is a pure function of run, series and chunk, so a
redelivered chunk overwrites its own part and never adds a second one):

    results/<run>/part-NNNNNNNN.jsonl.gz              chunk N, first delivery (round 0)
    results/<run>/replay-RRRR-NNNNNNNN.jsonl.gz       replay round R (1, 2, …), replay chunk N
    failures/<run>/part-NNNNNNNN.jsonl.gz             item failures of chunk N
    failures/<run>/parse-NNNNNNNN.jsonl.gz            parse failures met while cutting chunk N
    failures/<run>/replay-RRRR-NNNNNNNN.jsonl.gz      failures of replay round R, chunk N

A part is written whole or not at all: rows go through a 1 MiB buffer into isal gzip (level 1:
FACTS.md measured gzip level 9 35x slower for 3.5 % less size) in a spooled temporary file, and
one PutObject publishes it when the block exits cleanly. An exception inside the block uploads
nothing. The readers live in `pipeline/result_reader.py`.
"""

from __future__ import annotations

import io
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson
from botocore.exceptions import ClientError
from isal import igzip

from pipeline.aws_errors import write_error_from
from pipeline.failures import FailureRecord

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any

GZIP_LEVEL = 1
BUFFER_BYTES = 1024 * 1024
SPOOL_BYTES = 16 * 1024 * 1024
"""Parts up to this size stay in memory before the upload; bigger ones spill to /tmp."""


class PartKind(StrEnum):
    """The two top-level prefixes of the results bucket."""

    RESULTS = "results"
    FAILURES = "failures"


class Series(StrEnum):
    """Which writer produced a part; a replay round is `REPLAY` plus its round number."""

    PART = "part"
    PARSE = "parse"
    REPLAY = "replay"


@dataclass(frozen=True, slots=True)
class PartName:
    """The parsed identity of one part key; `round` is 0 except for replays."""

    kind: PartKind
    run: str
    series: Series
    chunk: int
    round: int = 0

    @property
    def key(self) -> str:
        """The S3 key of this part."""
        stem = (
            f"replay-{self.round:04d}-{self.chunk:08d}"
            if self.series is Series.REPLAY
            else f"{self.series.value}-{self.chunk:08d}"
        )
        return f"{self.kind.value}/{self.run}/{stem}.jsonl.gz"

    def __post_init__(self) -> None:
        if self.chunk < 0 or self.round < 0 or (self.series is Series.REPLAY) != (self.round > 0):
            raise ValueError(f"invalid part name {self!r}: replay parts need a round >= 1")


_KEY_RE = re.compile(
    r"^(?P<kind>results|failures)/(?P<run>[^/]+)/"
    r"(?:(?P<series>part|parse)|replay-(?P<round>\d{4}))-(?P<chunk>\d{8})\.jsonl\.gz$"
)


def parse_part_key(key: str) -> PartName | None:
    """The `PartName` of `key`, or None for anything else under the prefix (`_SUCCESS.json`)."""
    match = _KEY_RE.match(key)
    if match is None:
        return None
    replay_round = int(match["round"] or 0)
    return PartName(
        kind=PartKind(match["kind"]),
        run=match["run"],
        series=Series(match["series"] or Series.REPLAY.value),
        chunk=int(match["chunk"]),
        round=replay_round,
    )


def chunk_part(kind: PartKind, run: str, chunk: int, *, replay_round: int = 0) -> PartName:
    """The part of a work chunk: round 0 is the first delivery, round R >= 1 a replay."""
    series = Series.REPLAY if replay_round else Series.PART
    return PartName(kind=kind, run=run, series=series, chunk=chunk, round=replay_round)


def parse_failures_part(run: str, chunk: int) -> PartName:
    """The part for parse failures met while Split cut chunk `chunk` (one per chunk with any).

    Keyed by the chunk, not the pass, so a Split retried from its checkpoint rewrites the same
    parts.
    """
    return PartName(kind=PartKind.FAILURES, run=run, series=Series.PARSE, chunk=chunk)


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One labelled manifest line (DESIGN.md "Result row"); labels are top-k, best first."""

    line: int
    bucket: str
    key: str
    labels: tuple[tuple[str, float], ...]
    version_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the contract; `version_id` only when the manifest gave one."""
        data: dict[str, Any] = {"line": self.line, "bucket": self.bucket, "key": self.key}
        if self.version_id is not None:
            data["version_id"] = self.version_id
        data["labels"] = [[name, score] for name, score in self.labels]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultRow:
        """Read a row back from a results part."""
        return cls(
            line=int(data["line"]),
            bucket=data["bucket"],
            key=data["key"],
            labels=tuple((str(name), float(score)) for name, score in data["labels"]),
            version_id=data.get("version_id"),
        )


class PartWriter:
    """Write one gzip JSON Lines object atomically: uploaded on clean exit, never half.

    Use as a context manager; `write` takes one JSON-able dict per line. Rows are not sorted
    here: `write_result_part` / `write_failure_part` sort a chunk before writing it.
    """

    def __init__(self, client: S3Client, bucket: str, key: str) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115  # closed in __exit__
        self._gzip = igzip.GzipFile(fileobj=self._spool, mode="wb", compresslevel=GZIP_LEVEL)
        self._buffer = io.BufferedWriter(self._gzip, buffer_size=BUFFER_BYTES)  # type: ignore[arg-type]
        self.rows = 0

    def write(self, row: dict[str, Any]) -> None:
        """Append one row (serialised with orjson)."""
        self._buffer.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
        self.rows += 1

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self._buffer.close()  # flushes into the gzip stream and writes its trailer
                self._upload()
        finally:
            self._spool.close()

    def _upload(self) -> None:
        size = self._spool.tell()
        self._spool.seek(0)
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=self._key,
                Body=self._spool,  # type: ignore[arg-type]
                ContentLength=size,
                ContentType="application/x-ndjson",
                ContentEncoding="gzip",
            )
        except ClientError as exc:
            raise write_error_from(exc, f"writing s3://{self._bucket}/{self._key}") from exc


def write_result_part(
    client: S3Client,
    bucket: str,
    run: str,
    chunk: int,
    rows: Iterable[ResultRow],
    *,
    replay_round: int = 0,
) -> PartName:
    """Write a chunk's result rows, sorted by line, to its deterministic key.

    Raises:
        ResultWriteError: S3 refused the write (after the SDK's retries).
        ThrottledError: S3 kept answering SlowDown (stage ``write``, retryable).
    """
    name = chunk_part(PartKind.RESULTS, run, chunk, replay_round=replay_round)
    with PartWriter(client, bucket, name.key) as writer:
        for row in sorted(rows, key=lambda r: r.line):
            writer.write(row.to_dict())
    return name


def write_failure_part(
    client: S3Client,
    bucket: str,
    name: PartName,
    records: Iterable[FailureRecord],
) -> PartName:
    """Write failure records, sorted by line, to `name` (use `chunk_part` or a PARSE name).

    With no records the part is deleted instead: a redelivered chunk that now fully succeeds
    must not leave its first delivery's failures behind.

    Raises:
        ResultWriteError: S3 refused the write (after the SDK's retries).
        ThrottledError: S3 kept answering SlowDown (stage ``write``, retryable).
    """
    if name.kind is not PartKind.FAILURES:
        raise ValueError(f"{name.key} is not a failures part")
    ordered = sorted(records, key=lambda r: r.line)
    if not ordered:
        try:
            client.delete_object(Bucket=bucket, Key=name.key)
        except ClientError as exc:
            raise write_error_from(exc, f"deleting s3://{bucket}/{name.key}") from exc
        return name
    with PartWriter(client, bucket, name.key) as writer:
        for record in ordered:
            writer.write(record.to_dict())
    return name
