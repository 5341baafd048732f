"""Small helpers shared by the manifest tests: write a manifest, read it back as plain tuples."""

from __future__ import annotations

import gzip
from pathlib import Path

from pipeline.failures import ManifestLineError
from pipeline.manifest.reader import ManifestRecord, iter_manifest


def as_tuple(item: ManifestRecord | ManifestLineError) -> tuple:
    """A record as ("ok", line, bucket, key, version), a line error as ("err", line, code)."""
    if isinstance(item, ManifestRecord):
        return ("ok", item.line, item.bucket, item.key, item.version_id)
    return ("err", item.line, item.error)


def write(tmp_path: Path, name: str, data: bytes, *, is_gzip: bool) -> Path:
    path = tmp_path / (name + (".gz" if is_gzip else ""))
    path.write_bytes(gzip.compress(data) if is_gzip else data)
    return path


def read_all(path: Path | str, **kwargs) -> list[tuple]:
    return [as_tuple(item) for item in iter_manifest(str(path), **kwargs)]
