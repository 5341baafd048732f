"""Small helpers shared by the manifest tests: write a manifest, read it back as plain tuples."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from pipeline.failures import ManifestLineError
from pipeline.manifest import stream
from pipeline.manifest.reader import ManifestRecord, iter_manifest
from pipeline.split.chunk_encoding import encode_span
from pipeline.split.chunking import Chunk, iter_chunk_spans, iter_chunks


def count_taken(monkeypatch: pytest.MonkeyPatch, proof: str) -> list[bool]:
    """Whether each block `stream.<proof>` is offered is taken, in order (the proof still runs)."""
    taken: list[bool] = []
    real = getattr(stream, proof)

    def counted(*args: object, **kwargs: object) -> object:
        batch = real(*args, **kwargs)
        taken.append(batch is not None)
        return batch

    monkeypatch.setattr(stream, proof, counted)
    return taken


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


def item_size(record: ManifestRecord) -> int:
    """The size of a record's v1 chunk item, `[line,"bucket","key"(,"version")]`."""
    version = [] if record.version_id is None else [record.version_id]
    return len(orjson.dumps([record.line, record.bucket, record.key, *version]))


def assert_block_batch_is_the_reference(batch, data: bytes, reference: list) -> None:
    """A batch of the newline-ended lines of `data` holds `reference`'s records, a line each,
    with their item sizes and the restart point after each line."""
    lines = data.split(b"\n")[:-1]
    assert all(isinstance(r, ManifestRecord) for r in reference)
    assert batch.records(0, len(batch)) == reference
    sizes = [item_size(r) for r in reference]
    assert batch.item_sizes(0, len(batch)) == sizes
    for start in range(len(batch)):
        assert batch.item_bytes(start, len(batch)) == sum(sizes[start:])
    ends = [sum(len(line) + 1 for line in lines[: i + 1]) for i in range(len(lines))]
    assert [batch.resume_after(i) for i in range(len(batch))] == [
        (i + 2, end) for i, end in enumerate(ends)
    ]


def assert_batches_are_the_element_reader(batches, items, *, chunk_items: int) -> None:
    """Array batches give the element reader's records (`items`: each with the reader's
    position after it), item sizes and restart points, and Split cuts, encodes and sizes
    their chunks as it does for those records."""
    got = []
    for batch in batches:
        records = batch.records(0, len(batch))
        sizes = [item_size(r) for r in records]
        assert batch.item_sizes(0, len(batch)) == sizes
        assert batch.item_bytes(0, len(batch)) == sum(sizes)
        got += [(as_tuple(r), batch.resume_after(i)) for i, r in enumerate(records)]
    assert got == [
        (as_tuple(item), (position.line, position.offset))
        for item, position in items
        if isinstance(item, ManifestRecord)
    ]
    records = [item for item, _ in items if isinstance(item, ManifestRecord)]
    assert_spans_are_the_chunks(batches, records, chunk_items=chunk_items, cap=5000)
