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


def _items(records: Iterable[ManifestRecord]) -> list[list[Any]]:
    """The message's item lists (one comprehension: this runs once per record, twice a chunk)."""
    return [
        [r.line, r.bucket, r.key]
        if r.version_id is None
        else [r.line, r.bucket, r.key, r.version_id]
        for r in records
    ]


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
            "items": _items(self.items),
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


def _fitting_prefix(records: list[ManifestRecord], run: str, number: int, cap: int) -> int:
    """How many of `records`, from the first, one message of at most `cap` bytes can hold.

    One `orjson.dumps` of the whole list answers the common case (everything fits); only an
    overfull candidate is measured item by item. Both measure the exact message bytes.

    Raises:
        ValueError: when not even the first record fits.
    """
    envelope = _envelope_bytes(run, number)
    items = _items(records)
    if envelope - 2 + len(orjson.dumps(items)) <= cap:  # "[]" is counted in both
        return len(records)
    size = envelope
    for n, item in enumerate(items):
        size += len(orjson.dumps(item)) + (1 if n else 0)
        if size > cap:
            if n == 0:
                raise ValueError(
                    f"line {records[0].line} alone makes a {size}-byte message, over "
                    f"chunk_max_bytes={cap}; raise the limit"
                )
            return n
    return len(records)


def iter_chunks(
    records: Iterable[ManifestRecord],
    *,
    run: str,
    chunk_items: int,
    chunk_max_bytes: int,
    first_chunk: int = 0,
) -> Iterator[Chunk]:
    """Cut records into chunks of at most `chunk_items` whose message fits `chunk_max_bytes`.

    Greedy and exact: each chunk is the longest run of the next records within both limits, so
    the cut depends on nothing but the records, the limits, `run` and `first_chunk`.

    Raises:
        ValueError: for non-positive limits, or a record that alone would overflow a message.
    """
    if chunk_items <= 0 or chunk_max_bytes <= 0:
        raise ValueError("chunk_items and chunk_max_bytes must be positive")
    number = first_chunk
    pending: list[ManifestRecord] = []
    for record in records:
        pending.append(record)
        if len(pending) >= chunk_items:
            n = _fitting_prefix(pending, run, number, chunk_max_bytes)
            yield Chunk(run, number, tuple(pending[:n]))
            number += 1
            del pending[:n]
    while pending:
        n = _fitting_prefix(pending, run, number, chunk_max_bytes)
        yield Chunk(run, number, tuple(pending[:n]))
        number += 1
        del pending[:n]
