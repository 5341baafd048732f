"""Group records into deterministic chunks: the unit of work on the WorkQueue.

Chunk numbers are dense from `first_chunk` and depend only on the records and the two limits,
so re-splitting the same manifest (or resuming it at a checkpoint with the next `first_chunk`)
yields the same chunks and a re-sent chunk overwrites the same result part (DESIGN.md). A chunk
closes at `chunk_items` records or before its JSON message would pass `chunk_max_bytes` (SQS
takes at most 1 MiB). Pure: knows nothing of SQS or of where the records came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.manifest_parse import ManifestRecord

MESSAGE_VERSION = 1
_ITEM_WITH_VERSION = 4


def _item(record: ManifestRecord) -> list[Any]:
    if record.version_id is None:
        return [record.line, record.bucket, record.key]
    return [record.line, record.bucket, record.key, record.version_id]


@dataclass(frozen=True, slots=True)
class Chunk:
    """Records `items` of run `run`, numbered `number`: one WorkQueue message."""

    run: str
    number: int
    items: tuple[ManifestRecord, ...]

    def to_message(self) -> dict[str, Any]:
        """The chunk message contract: `{"v":1,"run":…,"chunk":N,"items":[[line,bucket,key],…]}`.

        The version id is a 4th item element, present only when the record has one.
        """
        return {
            "v": MESSAGE_VERSION,
            "run": self.run,
            "chunk": self.number,
            "items": [_item(record) for record in self.items],
        }

    @classmethod
    def from_message(cls, body: dict[str, Any]) -> Chunk:
        """Read a chunk message back.

        Raises:
            ValueError: on an unknown version or a malformed item (a poison message: let it
                fail so SQS moves it to the WorkDLQ).
        """
        if body.get("v") != MESSAGE_VERSION:
            raise ValueError(f"chunk message version {body.get('v')!r}, expected 1")
        items = []
        for item in body["items"]:
            if not isinstance(item, list) or len(item) not in (3, _ITEM_WITH_VERSION):
                raise ValueError(f"chunk item {item!r} is not [line, bucket, key(, version)]")
            version = item[3] if len(item) == _ITEM_WITH_VERSION else None
            items.append(ManifestRecord(int(item[0]), str(item[1]), str(item[2]), version))
        return cls(run=str(body["run"]), number=int(body["chunk"]), items=tuple(items))


def _envelope_bytes(run: str, number: int) -> int:
    """JSON size of a chunk message with no items."""
    return len(orjson.dumps({"v": MESSAGE_VERSION, "run": run, "chunk": number, "items": []}))


def iter_chunks(
    records: Iterable[ManifestRecord],
    *,
    run: str,
    chunk_items: int,
    chunk_max_bytes: int,
    first_chunk: int = 0,
) -> Iterator[Chunk]:
    """Cut records into chunks of at most `chunk_items` whose message fits `chunk_max_bytes`.

    Sizes are exact (orjson, as the sender serialises), counting one comma per item.

    Raises:
        ValueError: for non-positive limits, or a record that alone would overflow a message.
    """
    if chunk_items <= 0 or chunk_max_bytes <= 0:
        raise ValueError("chunk_items and chunk_max_bytes must be positive")
    number = first_chunk
    items: list[ManifestRecord] = []
    size = _envelope_bytes(run, number)
    for record in records:
        item_bytes = len(orjson.dumps(_item(record))) + 1
        if items and (len(items) >= chunk_items or size + item_bytes > chunk_max_bytes):
            yield Chunk(run, number, tuple(items))
            number += 1
            items = []
            size = _envelope_bytes(run, number)
        if size + item_bytes > chunk_max_bytes:
            raise ValueError(
                f"line {record.line} alone makes a {size + item_bytes}-byte message, over "
                f"chunk_max_bytes={chunk_max_bytes}; raise the limit"
            )
        items.append(record)
        size += item_bytes
    if items:
        yield Chunk(run, number, tuple(items))
