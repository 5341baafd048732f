"""Read byte ranges of one object, from S3 or a local file, and count every byte fetched.

This is the seam under resumable manifest reading (`pipeline/gzip/checkpoint.py`): the decompressor
sees a seekable file, the file asks an `ObjectReader` for blocks, and the reader counts what
crossed the wire, so tests and benchmarks can prove that a resumed pass never re-read the
compressed bytes before its checkpoint. Knows nothing of gzip, manifests or Lambda.
"""

from __future__ import annotations

import io
import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.failures import ManifestReadError, Stage, ThrottledError

if TYPE_CHECKING:
    from collections.abc import Buffer

logger = logging.getLogger(__name__)

DEFAULT_BLOCK_BYTES = 1024 * 1024
"""S3 ranged-GET block: measured 1.04x the object fetched over a 3-pass chain."""

DEFAULT_CACHE_BYTES = 32 * 1024 * 1024
"""Blocks kept behind the read position. zran restarts every read at its last seek point, so it
seeks back up to about one `spacing` of compressed data; a cache under ~32 MiB re-fetches."""

_THROTTLE_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded"}
)


class ObjectReader(Protocol):
    """Bytes ``[start, end)`` of one immutable object, and its size."""

    @property
    def size_bytes(self) -> int:
        """The object's size in bytes."""
        ...

    def read_range(self, start: int, end: int) -> bytes:
        """Return bytes ``[start, end)``; shorter only at the end of the object."""
        ...


class LocalFileReader:
    """An `ObjectReader` over a local file: the stand-in for S3 past moto's size limits.

    moto loads a whole object into RAM on every GET (moto 5.2.5), so 20 GB+ logic is exercised
    through this adapter with the same reading code above it.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDONLY)
        self._size = os.fstat(self._fd).st_size
        self.bytes_fetched = 0
        self.requests = 0

    @property
    def size_bytes(self) -> int:
        """The file's size when it was opened."""
        return self._size

    def read_range(self, start: int, end: int) -> bytes:
        """Read ``[start, end)`` with one ``pread`` (no shared file position)."""
        data = os.pread(self._fd, max(0, min(end, self._size) - start), start)
        self.bytes_fetched += len(data)
        self.requests += 1
        return data

    def close(self) -> None:
        """Release the file descriptor."""
        os.close(self._fd)


class S3ObjectReader:
    """An `ObjectReader` over one S3 object through an injected boto3 client.

    With ``streaming=False`` every `read_range` is one ranged GET (what real S3 wants for
    random access). With ``streaming=True`` a GET opens at the requested offset and runs to the
    end of the object, and sequential ranges are served from that one body: moto re-loads the
    whole object on every GET, so locally one streaming GET per pass is far cheaper than many
    small ranges. Either way `bytes_fetched` counts only the bytes actually read off the wire.

    ``etag`` pins the object: a manifest replaced mid-run fails with ``ManifestChanged``
    instead of resuming a checkpoint into different bytes.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        *,
        version_id: str | None = None,
        etag: str | None = None,
        streaming: bool = False,
    ) -> None:
        self._client = client
        self.bucket = bucket
        self.key = key
        self._version_id = version_id
        self._etag = etag
        self._streaming = streaming
        self._size: int | None = None
        self._body: Any = None
        self._body_pos = -1
        self.bytes_fetched = 0
        self.requests = 0

    @property
    def size_bytes(self) -> int:
        """The object's ContentLength, from one HEAD on first use."""
        if self._size is None:
            head = self._call("head_object", **self._object_args())
            self._size = int(head["ContentLength"])
            self._etag = self._etag or head.get("ETag")
        return self._size

    def read_range(self, start: int, end: int) -> bytes:
        """Return ``[start, end)`` from the open stream or a new ranged GET."""
        end = min(end, self.size_bytes)
        if start >= end:
            return b""
        if not self._streaming:
            body = self._get(f"bytes={start}-{end - 1}")
            return self._read_body(body, end - start)
        if self._body is None or self._body_pos != start:
            self.close()
            self._body = self._get(f"bytes={start}-")
            self._body_pos = start
        try:
            data = self._read_body(self._body, end - start)
        except ManifestReadError:
            self.close()  # how far the broken body got is unknown: a next read opens another
            raise
        self._body_pos += len(data)
        return data

    def close(self) -> None:
        """Drop an open streaming body (the rest of it is never transferred)."""
        if self._body is not None:
            self._body.close()
            self._body = None

    def _get(self, byte_range: str) -> Any:
        args = self._object_args()
        if self._etag:
            args["IfMatch"] = self._etag
        self.requests += 1
        return self._call("get_object", Range=byte_range, **args)["Body"]

    def _read_body(self, body: Any, size: int) -> bytes:
        """Read exactly ``size`` bytes: a short read would look like the end of the gzip."""
        parts: list[bytes] = []
        missing = size
        try:
            while missing > 0:
                part = body.read(missing)
                if not part:
                    break
                parts.append(part)
                missing -= len(part)
        except (BotoCoreError, OSError) as exc:
            raise ManifestReadError(
                f"reading s3://{self.bucket}/{self.key} broke: {exc}; retry the pass",
                error="ReadInterrupted",
            ) from exc
        data = b"".join(parts)
        self.bytes_fetched += len(data)
        if missing > 0:
            raise ManifestReadError(
                f"s3://{self.bucket}/{self.key} ended {missing} bytes early; retry the pass",
                error="ReadInterrupted",
            )
        return data

    def _object_args(self) -> dict[str, str]:
        args = {"Bucket": self.bucket, "Key": self.key}
        if self._version_id:
            args["VersionId"] = self._version_id
        return args

    def _call(self, operation: str, **kwargs: Any) -> Any:
        """Translate botocore errors into the failure hierarchy (nothing above catches them)."""
        try:
            return getattr(self._client, operation)(**kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
            where = f"s3://{self.bucket}/{self.key}"
            if code in _THROTTLE_CODES:
                raise ThrottledError(
                    f"S3 throttled {where}", stage=Stage.PARSE, error=code
                ) from exc
            if code in {"PreconditionFailed", "412"}:
                raise ManifestReadError(
                    f"{where} changed since the run started; submit it again as a new run",
                    error="ManifestChanged",
                ) from exc
            if code in {"NoSuchKey", "404"}:  # HEAD answers a bare 404
                raise ManifestReadError(
                    f"cannot open manifest {where}: no such object; check the name",
                    error="NoSuchKey",
                ) from exc
            raise ManifestReadError(f"cannot read {where}: {code}", error=code) from exc


class RangedRawFile(io.RawIOBase):
    """A seekable, read-only raw file over an `ObjectReader`, fetching fixed-size blocks.

    zran (indexed_gzip) seeks back to its last seek point on every read, so recently fetched
    blocks are kept in an LRU of ``cache_bytes``; without it a pass fetches ~3x the object.
    It deliberately has no ``fileno()``: indexed_gzip then calls ``read``/``seek``/``tell``.
    """

    def __init__(
        self,
        reader: ObjectReader,
        *,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        super().__init__()
        self._reader = reader
        self._block_bytes = block_bytes
        self._cache_blocks = max(2, cache_bytes // block_bytes)
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._pos = 0
        self.size_bytes = reader.size_bytes

    def readable(self) -> bool:
        """Always readable."""
        return True

    def seekable(self) -> bool:
        """Always seekable: a seek is free, bytes are fetched only when read."""
        return True

    def tell(self) -> int:
        """The compressed offset of the next byte to read."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the position; nothing is fetched until the next read."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size_bytes}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Buffer) -> int:
        """Fill ``buffer`` from cached or freshly fetched blocks; 0 at the end of the object."""
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view) and self._pos < self.size_bytes:
            block_no, skip = divmod(self._pos, self._block_bytes)
            block = self._block(block_no)
            piece = block[skip : skip + len(view) - filled]
            if not piece:
                break
            view[filled : filled + len(piece)] = piece
            filled += len(piece)
            self._pos += len(piece)
        return filled

    def _block(self, block_no: int) -> bytes:
        block = self._blocks.get(block_no)
        if block is not None:
            self._blocks.move_to_end(block_no)
            return block
        start = block_no * self._block_bytes
        block = self._reader.read_range(start, start + self._block_bytes)
        self._blocks[block_no] = block
        while len(self._blocks) > self._cache_blocks:
            self._blocks.popitem(last=False)
        return block
