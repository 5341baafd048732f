"""Where checkpoint seek-point indexes live: an S3 prefix next to the run, or a local directory.

A checkpoint is Step Functions state and must stay small, so the ~33 KB trimmed zran index goes
here and the checkpoint keeps only its reference. Names are deterministic (the caller derives
them from the uncompressed offset), so a retried pass that checkpoints at the same place writes
the same object again instead of a new one. Knows nothing of gzip.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from pipeline.failures import ManifestReadError, ResultWriteError


class IndexStore(Protocol):
    """Stores opaque index bytes under a name and returns a reference to read them back."""

    def put_index(self, name: str, data: bytes) -> str:
        """Store ``data`` as ``name``; return the reference a later pass passes to `get_index`."""
        ...

    def get_index(self, ref: str) -> bytes:
        """Return the bytes stored under ``ref``."""
        ...


class LocalIndexStore:
    """Index files in a local directory; the reference is the file's path."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def put_index(self, name: str, data: bytes) -> str:
        """Write atomically (temp file + rename): a crash never leaves half an index."""
        target = self.directory / name
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        Path(tmp).replace(target)
        return str(target)

    def get_index(self, ref: str) -> bytes:
        """Read the index file back; a missing one is a `ManifestReadError`."""
        try:
            return Path(ref).read_bytes()
        except FileNotFoundError as exc:
            raise ManifestReadError(
                f"checkpoint index {ref} is gone; restart the split from the beginning",
                error="CheckpointIndexMissing",
            ) from exc


class S3IndexStore:
    """Index objects under ``prefix`` in ``bucket``; the reference is the object key."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix.rstrip("/")

    def put_index(self, name: str, data: bytes) -> str:
        """PUT the index (a single PUT is atomic in S3)."""
        key = f"{self.prefix}/{name}"
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=data)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
            raise ResultWriteError(
                f"cannot store checkpoint index s3://{self.bucket}/{key}: {code}", error=code
            ) from exc
        return key

    def get_index(self, ref: str) -> bytes:
        """GET the index object; a missing one is a `ManifestReadError`."""
        try:
            return bytes(self._client.get_object(Bucket=self.bucket, Key=ref)["Body"].read())
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
            missing = code in {"NoSuchKey", "404"}
            raise ManifestReadError(
                f"cannot read checkpoint index s3://{self.bucket}/{ref}: {code}",
                error="CheckpointIndexMissing" if missing else code,
            ) from exc
