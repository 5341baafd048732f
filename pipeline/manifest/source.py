"""Open a manifest's bytes from a local path or S3, and undo gzip when the magic bytes say so.

The I/O edge of manifest reading: smart_open with an injected boto3 client for `s3://`, the
builtin `open` for paths. Compression is detected from the first two bytes (`1f 8b`), never
from the name, and decoded with ISA-L's decompressor (2x stdlib gzip here; see BENCHMARKS.md)
driven by `pipeline.gzip.members.GzipMembers`, not `igzip.IGzipFile`/`igzip_threaded`: both of
those drop the decompressed tail of the block in which a truncated stream breaks, and the
contract is to yield every line before the break. Reading errors (truncated or corrupt gzip,
a dropped connection) become one `ManifestReadError` carrying the compressed offset reached.

smart_open (with boto3 behind it, a quarter second to import) is imported on the first `s3://`
open only: a local manifest (`lambdaflow scan FILE`) never needs it. From then on smart_open uses
ISA-L for every `.gz` it opens by name (`smart_open_lib`).
"""

from __future__ import annotations

import logging
import zlib
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError
from isal import igzip, igzip_lib, isal_zlib

from pipeline.failures import ManifestReadError
from pipeline.gzip.members import GzipMembers
from pipeline.s3_uri import S3_SCHEME, split_s3_uri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
S3_BUFFER_BYTES = 1024 * 1024
"""smart_open's read buffer for S3: fewer, larger reads of one streaming GET."""

_READ_ERRORS = (
    EOFError,
    OSError,
    zlib.error,
    isal_zlib.error,
    igzip_lib.IsalError,
    BotoCoreError,
    ClientError,
)


def _open_gz(file_obj: BinaryIO, mode: str, **kwargs: Any) -> BinaryIO:
    """smart_open compressor callback: ISA-L instead of the stdlib's gzip."""
    return igzip.open(file_obj, mode, **kwargs)  # type: ignore[return-value]


@cache
def smart_open_lib() -> ModuleType:
    """smart_open, imported on first use, with ISA-L registered for `.gz` names."""
    import smart_open  # noqa: PLC0415  # lazy: see the module docstring

    smart_open.register_compressor(".gz", _open_gz)
    return smart_open


def _client_error_code(exc: BaseException | None) -> str:
    """The S3 error code behind `exc` (smart_open wraps ClientError in OSError), or ReadFailed."""
    while exc is not None:
        if isinstance(exc, ClientError):
            return str(exc.response.get("Error", {}).get("Code", "ReadFailed"))
        if isinstance(exc, FileNotFoundError):
            return "NoSuchKey"
        exc = exc.__cause__ or exc.__context__
    return "ReadFailed"


def open_source(source: str, *, client: S3Client | None = None) -> BinaryIO:
    """Open the raw (maybe compressed) bytes of a local path or `s3://bucket/key`.

    Raises:
        ManifestReadError: when the object or file cannot be opened (error = the S3 code).
    """
    try:
        if source.startswith(S3_SCHEME):
            return smart_open_lib().open(
                source,
                "rb",
                compression="disable",
                transport_params={"client": client, "buffer_size": S3_BUFFER_BYTES},
            )
        return Path(source).open("rb")
    except _READ_ERRORS as exc:
        raise ManifestReadError(
            f"cannot open manifest {source}: {exc}; check the name and read permission",
            error=_client_error_code(exc),
        ) from exc


def source_size(source: str, *, client: S3Client | None = None) -> int | None:
    """Size of the raw object in bytes, for progress; None when it cannot be known."""
    try:
        if source.startswith(S3_SCHEME) and client is not None:
            bucket, key = split_s3_uri(source)
            return int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
        return Path(source).stat().st_size
    except _READ_ERRORS:
        return None


class _CountingReader:
    """Counts the compressed bytes handed on, with bytes already read put back in front."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.bytes_read = 0
        self._prefix = b""

    def peek_magic(self) -> bytes:
        data = b""
        while len(data) < len(GZIP_MAGIC):
            more = self._raw.read(len(GZIP_MAGIC) - len(data))
            if not more:
                break
            data += more
        self._prefix = data
        return data

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix, b""
            if size < 0 or size > len(data):
                data += self._raw.read(-1 if size < 0 else size - len(data))
        else:
            data = self._raw.read(size)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class DecodedStream:
    """The decompressed bytes of one manifest file, and how many raw bytes they came from.

    `read` never raises anything but `ManifestReadError` (line left None: the caller knows it).
    """

    def __init__(self, raw: BinaryIO, *, name: str) -> None:
        self._raw = raw
        self._name = name
        self._counter = _CountingReader(raw)
        magic = self._counter.peek_magic()
        # A lone 0x1f is a gzip cut inside its magic (`gzip -d`: unexpected end of file).
        self.is_gzip = magic == GZIP_MAGIC or magic == GZIP_MAGIC[:1]
        self._inner: Any = GzipMembers(self._counter) if self.is_gzip else self._counter

    @property
    def compressed_bytes(self) -> int:
        """Raw bytes consumed so far (the position of a break, to within one read block)."""
        return self._counter.bytes_read

    def read(self, size: int = -1) -> bytes:
        """Read decompressed bytes; b"" at the clean end of the stream."""
        try:
            return self._inner.read(size)
        except _READ_ERRORS as exc:
            offset = self._counter.bytes_read
            reason = "truncated" if isinstance(exc, EOFError) else "unreadable"
            raise ManifestReadError(
                f"{self._name} is {reason} near compressed byte {offset} ({exc})",
                error="TruncatedManifest" if isinstance(exc, EOFError) else "CorruptManifest",
                compressed_offset=offset,
            ) from exc

    def close(self) -> None:
        """Close the decoder and the raw source."""
        if self._inner is not self._counter:
            self._inner.close()
        self._raw.close()


def open_decoded(source: str, *, client: S3Client | None = None) -> DecodedStream:
    """Open `source` and undo its gzip, if its magic bytes say it has one."""
    raw = open_source(source, client=client)
    try:
        return DecodedStream(raw, name=source)
    except _READ_ERRORS as exc:
        raw.close()
        raise ManifestReadError(
            f"cannot read manifest {source}: {exc}", error=_client_error_code(exc)
        ) from exc
