"""Group records into deterministic chunks: the unit of work on the WorkQueue.

Chunk numbers are dense from `first_chunk` and depend only on the batches' records (a line
sent unparsed counts as one) and the two limits, so cutting the same batches again (a retried
Split pass from its checkpoint) yields the same chunks and a re-sent chunk overwrites the same
result part. A chunk closes at `chunk_items` records or before its JSON message would pass
`chunk_max_bytes` (SQS takes at most 1 MiB). Pure: knows nothing of SQS or of where the records
came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson

from pipeline.manifest.batch import RecordBatch, UnparsedBatch
from pipeline.manifest.parse import ManifestRecord
from pipeline.split.span_message import PIECES, SPAN_MESSAGE_VERSION, read_items, read_pieces

if TYPE_CHECKING:
    from pipeline.failures import ManifestLineError

MESSAGE_VERSION = 1
"""The item form (`Chunk.to_message`): what replay sends, and what chunk sizes are cut by."""


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
    """Records `items` of run `run`, numbered `number`: one WorkQueue message.

    `parse_failures` are lines Split sent unparsed that are no record (`raw_lines`): the
    worker records them as the chunk's failures. Each line of the chunk is in one of the two.
    """

    run: str
    number: int
    items: tuple[ManifestRecord, ...]
    parse_failures: tuple[ManifestLineError, ...] = ()

    @property
    def lines(self) -> int:
        """The manifest lines the chunk holds: what its counts must add up to."""
        return len(self.items) + len(self.parse_failures)

    def to_message(self) -> dict[str, Any]:
        """The chunk message contract: `{"v":1,"run":…,"chunk":N,"items":[[line,bucket,key],…]}`.

        The version id is a 4th item element, present only when the record has one. v1 has
        no parse failures: a chunk of raw lines is only sent as Split's v2.

        Raises:
            ValueError: the chunk holds parse failures.
        """
        if self.parse_failures:
            raise ValueError("a chunk with parse failures has no v1 message")
        return {
            "v": MESSAGE_VERSION,
            "run": self.run,
            "chunk": self.number,
            "items": _items(self.items),
        }

    @classmethod
    def from_message(cls, body: dict[str, Any]) -> Chunk:
        """Read a chunk message back: v1 (`to_message`) or v2 (Split's pieces).

        v2 (`pipeline.split.span_message`) carries each piece's first line and its rows;
        both give the same chunk.

        Raises:
            ValueError: on an unknown version or a malformed item (a poison message: let it
                fail so SQS moves it to the WorkDLQ).
        """
        version = body.get("v")
        failures: list[ManifestLineError] = []
        if version == MESSAGE_VERSION:
            items = read_items(body["items"])
        elif version == SPAN_MESSAGE_VERSION:
            items, failures = read_pieces(body.get(PIECES))
        else:
            raise ValueError(f"chunk message version {version!r}, expected 1 or 2")
        return cls(str(body["run"]), int(body["chunk"]), tuple(items), tuple(failures))


def _envelope_bytes(run: str, number: int) -> int:
    """JSON size of a chunk message with no items: chunk 0's, with `number`'s digits for `0`."""
    return _envelope_base(run) + len(str(number)) - 1


@lru_cache(maxsize=64)
def _envelope_base(run: str) -> int:
    """JSON size of a run's chunk message with no items and chunk number 0 (once a run)."""
    return len(orjson.dumps({"v": MESSAGE_VERSION, "run": run, "chunk": 0, "items": []}))


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


@dataclass(frozen=True, slots=True)
class ChunkSpan:
    """A chunk cut from record batches without building its records (`iter_chunk_spans`).

    Attributes:
        run: The run id.
        number: The chunk number.
        count: How many records it holds (a raw line counts as one: `RawLinesBatch`).
        message_bytes: Exact `len(orjson.dumps(self.to_chunk().to_message()))`: the v1 size
            the cut is made by; with raw lines, their bound in its stead.
        pieces: (batch, start, stop) slices of the batches its records come from, in order.
    """

    run: str
    number: int
    count: int
    message_bytes: int
    pieces: tuple[tuple[RecordBatch, int, int], ...]

    def records(self) -> list[ManifestRecord]:
        """Build the chunk's records."""
        return [r for batch, start, stop in self.pieces for r in batch.records(start, stop)]

    def to_chunk(self) -> Chunk:
        """The chunk a worker reads: the same `iter_chunks` cuts from the same records.

        Raw lines are read as the worker reads them, into records and parse failures.
        """
        records: list[ManifestRecord] = []
        failures: list[ManifestLineError] = []
        for batch, start, stop in self.pieces:
            if isinstance(batch, UnparsedBatch):
                found, failed = batch.parsed(start, stop)
                records += found
                failures += failed
            else:
                records += batch.records(start, stop)
        return Chunk(self.run, self.number, tuple(records), tuple(failures))

    def to_message(self) -> dict[str, Any]:
        """`self.to_chunk().to_message()` (v1), built without record objects.

        Split sends `pipeline.split.chunk_encoding.encode_span`'s v2 form, which reads back
        to the same chunk; this is its fallback when v2 would not be smaller.
        """
        items = [item for batch, start, stop in self.pieces for item in batch.items(start, stop)]
        return {"v": MESSAGE_VERSION, "run": self.run, "chunk": self.number, "items": items}

    def resume_after(self) -> tuple[int, int, int]:
        """(line, offset, part) a reader restarts at to continue after the chunk's last record.

        With the CSV layout in force, these make the `Position` a resumed reader starts at.
        """
        batch, _, stop = self.pieces[-1]
        return (*batch.resume_after(stop - 1), batch.part)


class _SpanCutter:
    """Greedy cutting state of `iter_chunk_spans`: the open chunk and its size so far."""

    def __init__(self, run: str, number: int, chunk_items: int, cap: int) -> None:
        self.run, self.number, self.chunk_items, self.cap = run, number, chunk_items, cap
        self._open()

    def _open(self) -> None:
        self.count, self.pieces = 0, []
        self.size = _envelope_bytes(self.run, self.number)  # "[]" included; +1 comma an item

    def close(self) -> ChunkSpan:
        span = ChunkSpan(self.run, self.number, self.count, self.size, tuple(self.pieces))
        self.number += 1
        self._open()
        return span

    def take(self, batch: RecordBatch, start: int, stop: int) -> int:
        """Add the longest prefix of records [start, stop) that fits; return where it ended."""
        stop = min(stop, start + self.chunk_items - self.count)
        fit = stop - start
        added = batch.item_bytes(start, stop) + fit - (self.count == 0)
        if self.size + added > self.cap:
            fit, added = self._fitting(batch.item_sizes(start, stop))
            if fit == 0 and self.count == 0:
                line = batch.resume_after(start)[0] - 1  # the line the record ends on
                raise ValueError(
                    f"line {line} alone makes a {self.size + added}-byte message, over "
                    f"chunk_max_bytes={self.cap}; raise the limit"
                )
        if fit:
            self.pieces.append((batch, start, start + fit))
            self.count, self.size = self.count + fit, self.size + added
        return start + fit

    def _fitting(self, sizes: list[int]) -> tuple[int, int]:
        """How many of `sizes` still fit and the bytes they add (or the first one's, if none)."""
        added = 0
        for n, item in enumerate(sizes):
            more = item + (1 if self.count + n else 0)
            if self.size + added + more > self.cap:
                return n, added or more
            added += more
        return len(sizes), added


def iter_chunk_spans(
    batches: Iterable[RecordBatch],
    *,
    run: str,
    chunk_items: int,
    chunk_max_bytes: int,
    first_chunk: int = 0,
) -> Iterator[ChunkSpan]:
    """Cut record batches into exactly the chunks `iter_chunks` cuts from the same records.

    The fast path of chunking: sizes come from `batch.item_bytes` (arithmetic on line
    lengths for a dense batch) instead of serializing, and no record is built; call
    `span.to_chunk()` for the ones you send.

    Raises:
        ValueError: for non-positive limits, or a record that alone would overflow a message.
    """
    if chunk_items <= 0 or chunk_max_bytes <= 0:
        raise ValueError("chunk_items and chunk_max_bytes must be positive")
    cutter = _SpanCutter(run, first_chunk, chunk_items, chunk_max_bytes)
    for batch in batches:
        start, stop = 0, len(batch)
        while start < stop:
            start = cutter.take(batch, start, stop)
            if cutter.count == chunk_items or start < stop:
                yield cutter.close()
    if cutter.count:
        yield cutter.close()
