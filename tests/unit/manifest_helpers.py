"""Small helpers shared by the manifest tests: write a manifest, read it back as plain tuples."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from pipeline.failures import ManifestLineError
from pipeline.manifest.reader import ManifestRecord, iter_manifest
from pipeline.split.chunk_encoding import encode_span
from pipeline.split.chunking import Chunk, iter_chunk_spans, iter_chunks


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


def flatten_batches(batches) -> list[tuple]:
    """Every record and line failure of `batches` as tuples, in line order."""
    items = [as_tuple(r) for b in batches for r in b.records(0, len(b))]
    items += [as_tuple(f) for b in batches for f in b.failures]
    return sorted(items, key=lambda t: t[1])


def assert_spans_are_the_chunks(batches, records, *, chunk_items: int, cap: int) -> None:
    """`iter_chunk_spans` over `batches` cuts, encodes and sizes what `iter_chunks` does."""
    limits = {"run": "run-1", "chunk_items": chunk_items, "chunk_max_bytes": cap}
    try:
        expected = list(iter_chunks(records, **limits, first_chunk=3))
    except ValueError:
        with pytest.raises(ValueError):
            list(iter_chunk_spans(batches, **limits, first_chunk=3))
        return
    spans = list(iter_chunk_spans(batches, **limits, first_chunk=3))
    assert [s.to_chunk() for s in spans] == expected
    for span, chunk in zip(spans, expected, strict=True):
        body = encode_span(span, max_bytes=cap)
        assert Chunk.from_message(orjson.loads(body)) == chunk
        assert span.message_bytes == len(orjson.dumps(chunk.to_message()))
        assert len(body) <= cap


def share_sent_as(batches, field: str) -> float:
    """Share of the batches' chunks (97 items each) whose last piece Split sends as v2 `field`.

    Every message is checked to read back to exactly its chunk on the way.
    """
    spans = list(iter_chunk_spans(batches, run="r", chunk_items=97, chunk_max_bytes=10**6))
    sent = 0
    for span in spans:
        message = orjson.loads(encode_span(span, max_bytes=10**6))
        assert Chunk.from_message(message) == span.to_chunk()
        sent += message["v"] == 2 and field in message["pieces"][-1]
    return sent / len(spans)
