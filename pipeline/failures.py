"""The one error hierarchy, and the single place errors become failure records.

Item-level errors (a bad manifest line, a missing or corrupt image) are data: they become a
`FailureRecord` and the chunk still succeeds. Only a crash or a timeout fails a chunk. The mapping
from exception to record happens here, by type and never by message text, so every stage reports
failures the same way and a replay can filter on `stage`, `error` and `retryable`.

Knows nothing of Lambda or boto3: adapters translate `botocore` errors into these classes.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1


class Stage(StrEnum):
    """Where in the flow an item failed (the failure record's `stage`)."""

    PARSE = "parse"
    FETCH = "fetch"
    DECODE = "decode"
    CLASSIFY = "classify"
    WRITE = "write"


class PipelineError(Exception):
    """Base of every error the pipeline maps to a failure record; never raised bare.

    Attributes:
        error: A short, stable code such as ``"NoSuchKey"`` that users filter and replay by.
        line: The manifest line the error is about, when known.
    """

    stage: ClassVar[Stage]
    retryable: ClassVar[bool] = False
    default_code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, error: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error = error or self.default_code
        self.line = line


class ManifestLineError(PipelineError):
    """A manifest line that is not an image reference (bad CSV/JSON, no key, too long)."""

    stage = Stage.PARSE
    default_code = "MalformedLine"

    def __eq__(self, other: object) -> bool:
        """The same failure of the same line: a chunk read twice (a re-sent one) is equal."""
        if not isinstance(other, ManifestLineError):
            return NotImplemented
        return (self.line, self.error, self.message) == (other.line, other.error, other.message)

    def __hash__(self) -> int:
        return hash((self.line, self.error, self.message))


class ManifestReadError(PipelineError):
    """The manifest stream itself broke (truncated or corrupt gzip, unreadable object).

    Raised after every record before the break was yielded; the message says at which line and
    compressed byte it broke, so the run can be marked partial with the reason.
    """

    stage = Stage.PARSE
    default_code = "CorruptManifest"

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        line: int | None = None,
        compressed_offset: int | None = None,
    ) -> None:
        super().__init__(message, error=error, line=line)
        self.compressed_offset = compressed_offset


class ImageFetchError(PipelineError):
    """The image object could not be read.

    NoSuchKey, AccessDenied, an object over the byte limit, or a bucket not on the allowlist.
    """

    stage = Stage.FETCH
    default_code = "FetchFailed"


class ImageDecodeError(PipelineError):
    """The bytes are not a usable image: not an image, truncated, zero bytes, too many pixels."""

    stage = Stage.DECODE
    default_code = "DecodeFailed"


class ClassifyError(PipelineError):
    """The interpreter failed on a decoded image."""

    stage = Stage.CLASSIFY
    default_code = "ClassifyFailed"


class ResultWriteError(PipelineError):
    """A result or failure part could not be written (after the SDK's own retries)."""

    stage = Stage.WRITE
    default_code = "WriteFailed"


class ThrottledError(PipelineError):
    """AWS still said SlowDown/Throttling after the SDK's bounded adaptive retries.

    Retryable: a replay later will most likely succeed. The stage is given where it is raised,
    because throttling happens both fetching images and writing results.
    """

    retryable = True
    default_code = "Throttled"

    def __init__(
        self, message: str, *, stage: Stage, error: str | None = None, line: int | None = None
    ) -> None:
        super().__init__(message, error=error, line=line)
        self.stage = stage  # type: ignore[misc]  # per-instance: fetch or write


class OutOfTimeError(PipelineError):
    """The delivery's time ran out before this line was labelled (a stalled GET, huge images).

    Stage fetch and retryable: nothing says the object is wrong, and a replay gives it time of
    its own. Without it, a chunk that cannot finish within the function's timeout came back,
    timed out again on every delivery, and went to the WorkDLQ with none of its lines done.
    """

    stage = Stage.FETCH
    retryable = True
    default_code = "OutOfTime"


class ImageServiceError(PipelineError):
    """S3 answered a server error (a 5xx, a request timeout) past the SDK's own retries.

    Stage fetch and retryable: S3 had trouble, not the object, so a replay picks it up.
    `error` is S3's code (``InternalError``, ``502`` …).
    """

    stage = Stage.FETCH
    retryable = True
    default_code = "ServiceError"


class ImageNetworkError(PipelineError):
    """The connection broke while reading an image (a read timeout, a reset, a cut body).

    Stage fetch and retryable: the object may be fine and the network was not, so
    `replay --stage fetch` or `--retryable-only` picks it up. `error` is the transport error's
    name (``ReadTimeoutError``, ``ConnectionClosedError`` …).
    """

    stage = Stage.FETCH
    retryable = True
    default_code = "NetworkError"


class NotPlainGzip(Exception):  # a signal, not a failure: never reported
    """A pass reading with ISA-L met a gzip that is not plain members to its end.

    Raised by `pipeline.gzip.first_pass.FirstPassRaw` and caught by `pipeline.split.dry_run`,
    which reads the manifest again through zran, so irregular gzips read exactly as Split reads
    them. Not a `PipelineError`: no failure record is ever made of it.
    """


class ConfigError(Exception):
    """Settings are invalid at cold start: crash loudly, never a failure record."""


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """One line that produced no label, and why; the body of a FailureQueue message.

    `(run, line)` is the identity: a replay that succeeds replaces the record with a result, one
    that fails again writes the record with `attempts` increased. `version_id` is the object
    version the manifest named, so a replay reads that version again and not the latest one.
    """

    run: str
    line: int
    bucket: str | None
    key: str | None
    stage: Stage
    error: str
    message: str
    retryable: bool
    attempts: int = 1
    version_id: str | None = None
    v: int = SCHEMA_VERSION

    @classmethod
    def from_exception(
        cls,
        exc: BaseException,
        *,
        run: str,
        line: int,
        bucket: str | None = None,
        key: str | None = None,
        attempts: int = 1,
        stage: Stage | None = None,
        version_id: str | None = None,
    ) -> FailureRecord:
        """Map any exception to a record: the single mapping point of the project.

        An exception outside the hierarchy becomes ``error="internal"`` at the given stage (or
        ``classify``) with its traceback logged: it is recorded, never swallowed.
        """
        if isinstance(exc, PipelineError):
            return cls(
                run=run,
                line=line,
                bucket=bucket,
                key=key,
                stage=exc.stage,
                error=exc.error,
                message=exc.message,
                retryable=exc.retryable,
                attempts=attempts,
                version_id=version_id,
            )
        logger.error(
            "unexpected error on line %s: %s",
            line,
            "".join(traceback.format_exception(exc)),
            extra={"run": run, "line": line},
        )
        return cls(
            run=run,
            line=line,
            bucket=bucket,
            key=key,
            stage=stage or Stage.CLASSIFY,
            error="internal",
            message=f"{type(exc).__name__}: {exc}",
            retryable=True,
            attempts=attempts,
            version_id=version_id,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of the failure record contract (`v` first).

        `version_id` only when the manifest gave one, as in a result row.
        """
        data = {
            "v": self.v,
            "run": self.run,
            "line": self.line,
            "bucket": self.bucket,
            "key": self.key,
            "stage": self.stage.value,
            "error": self.error,
            "message": self.message,
            "retryable": self.retryable,
            "attempts": self.attempts,
        }  # by hand: dataclasses.asdict deep-copies every field, 10x slower per record
        if self.version_id is not None:
            data["version_id"] = self.version_id
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FailureRecord:
        """Read a record back from a FailureQueue message or a failures part row."""
        return cls(
            run=data["run"],
            line=int(data["line"]),
            bucket=data.get("bucket"),
            key=data.get("key"),
            stage=Stage(data["stage"]),
            error=data["error"],
            message=data.get("message", ""),
            retryable=bool(data.get("retryable", False)),
            attempts=int(data.get("attempts", 1)),
            version_id=data.get("version_id") or None,
            v=int(data.get("v", SCHEMA_VERSION)),
        )
