"""Records a read block at a time: the fast path from decompressed bytes to chunks.

Building one frozen `ManifestRecord` per line, parsing it and serializing it to size its chunk costs
~1.5 µs a line, five times what decompression costs (BENCHMARKS.md, "Manifest scan"). Most manifests
are one plain shape line after line (`bucket,key`, `s3://bucket/key`, `{"bucket":"…","key":"…"}` or
`{"key":"…","bucket":"…"}`), so a whole block of lines can be *proved* to be that shape with a few
C-speed byte operations (`bytes.translate`, `count`, `startswith`), and then every fact a chunk
needs — count, line numbers, restart offsets, the exact JSON size of each chunk item — follows from
the line lengths alone. Such a block becomes a `DenseBatch`, whose records are built only when
someone asks (Split sending a chunk; `scan` never does). Any block that is not proved plain goes
line by line through the reference parser into a `ListedBatch`, so both kinds yield exactly what
`RecordReader` iteration yields. Pure: no I/O.

STYLE deviation, measured: on the hot path records stay raw row bytes, and restart points are
`(line, offset)` tuples, not frozen dataclasses. One `ManifestRecord` costs ~0.5-0.8 µs here
while the whole dense path costs ~0.2 µs a line; a `Position` per record would cost the same
again. Records and `Position`s are still what callers get (`records()`, `reader.position`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Protocol

import orjson

from pipeline.failures import ManifestLineError, ManifestReadError
from pipeline.manifest.parse import ManifestRecord

LISTED_BATCH_ITEMS = 4096
"""Most items a `ListedBatch` holds (a batch of lines holds one read block anyway)."""
MAX_DENSE_BUCKETS = 8
"""Buckets a dense check tries (each costs one `count` over the block)."""


def digit_count_sum(lo: int, hi: int) -> int:
    """Sum of the decimal digit counts of the integers in [lo, hi) (lo >= 1)."""
    total, low, digits = 0, 1, 1
    while low < hi:
        high = low * 10
        total += max(0, min(hi, high) - max(lo, low)) * digits
        low, digits = high, digits + 1
    return total


class RecordBatch(Protocol):
    """Records of consecutive lines, in line order, as `RecordReader.iter_batches` yields.

    `failures` are the bad lines among them; `end_line`/`end_offset` is `RecordReader.position`
    after the batch (line number and offset just past its last item). A batch may be empty (no
    record, no failure): a block of blank lines only, its `end_line` just past them.
    """

    failures: Sequence[ManifestLineError]
    end_line: int
    end_offset: int
    part: int  # the file the batch was read from (S3 Inventory parts; 0 otherwise)

    def __len__(self) -> int: ...  # the number of records (failures not counted)

    def records(self, start: int, stop: int) -> list[ManifestRecord]:
        """Build records [start, stop)."""
        ...

    def items(self, start: int, stop: int) -> list[list[object]]:
        """Chunk message items `[line, bucket, key(, version)]` of records [start, stop)."""
        ...

    def item_bytes(self, start: int, stop: int) -> int:
        """Exact sum of `len(orjson.dumps(item))` of the chunk items of records [start, stop)."""
        ...

    def item_sizes(self, start: int, stop: int) -> list[int]:
        """The same sizes one by one (for the rare chunk cut by bytes)."""
        ...

    def resume_after(self, index: int) -> tuple[int, int]:
        """(line, offset) a reader restarts at to continue right after record `index`."""
        ...


@dataclass(frozen=True, slots=True)
class DenseBatch:
    """Consecutive lines, each one record of a proved plain shape; records built on demand.

    `rows[i]` is line `first_line + i` less its last `line_extra` bytes (the newline, and for
    JSON Lines the closing `"}` too), `lengths[i]` its length; `item_delta` turns a row length
    into its chunk item's JSON size (with the line number's digits and 2 less a `%XX` escape
    counted in `escaped`, the block's bytes, when its keys are URL-encoded). `buckets` holds
    every bucket its rows name (and maybe more): the chunk encoder rewrites `s3://B/` prefixes.
    """

    first_line: int
    start_offset: int
    rows: list[bytes]
    lengths: list[int]
    item_delta: int
    parse_row: Callable[[bytes], tuple[str, str]]
    end_line: int
    end_offset: int
    line_extra: int = 1
    escaped: bytes | None = None
    part: int = 0
    buckets: tuple[bytes, ...] = ()
    failures: tuple[ManifestLineError, ...] = ()
    _starts: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def _row_starts(self) -> list[int]:
        """Offset of each row's line from the batch start (and of the end), built once.

        Chunk cutting asks for `item_bytes` and `resume_after` once per chunk; prefix sums make
        each an O(1) lookup instead of a sum over the batch's lines so far.
        """
        if not self._starts:
            extra = self.line_extra
            self._starts.extend(accumulate(map(extra.__add__, self.lengths), initial=0))
        return self._starts

    def _escapes(self, start: int, stop: int) -> int:
        """How many `%XX` escapes rows [start, stop) hold (each decodes to one byte)."""
        if self.escaped is None:
            return 0
        starts = self._row_starts()
        return self.escaped.count(b"%", starts[start], starts[stop])

    def records(self, start: int, stop: int) -> list[ManifestRecord]:
        """Build records [start, stop) from their rows."""
        parse, line = self.parse_row, self.first_line
        return [
            ManifestRecord(line + i, *parse(row))
            for i, row in enumerate(self.rows[start:stop], start)
        ]

    def items(self, start: int, stop: int) -> list[list[object]]:
        """Chunk message items built straight from the rows (no record objects)."""
        parse, line = self.parse_row, self.first_line
        return [[line + i, *parse(row)] for i, row in enumerate(self.rows[start:stop], start)]

    def item_bytes(self, start: int, stop: int) -> int:
        """Sum of item sizes, from the line lengths and the line numbers' digits."""
        first, starts = self.first_line, self._row_starts()
        row_bytes = starts[stop] - starts[start] - self.line_extra * (stop - start)
        return (
            row_bytes
            + self.item_delta * (stop - start)
            + digit_count_sum(first + start, first + stop)
            - 2 * self._escapes(start, stop)
        )

    def item_sizes(self, start: int, stop: int) -> list[int]:
        """Item sizes one by one."""
        delta, first = self.item_delta, self.first_line
        return [
            length + delta + len(str(first + i)) - 2 * self._escapes(i, i + 1)
            for i, length in enumerate(self.lengths[start:stop], start)
        ]

    def resume_after(self, index: int) -> tuple[int, int]:
        """The line after row `index` and the offset past its newline."""
        return self.first_line + index + 1, self.start_offset + self._row_starts()[index + 1]


def _item(record: ManifestRecord) -> list[object]:
    if record.version_id is None:
        return [record.line, record.bucket, record.key]
    return [record.line, record.bucket, record.key, record.version_id]


@dataclass(frozen=True, slots=True)
class ListedBatch:
    """Records the reference parser built line by line, with their restart points."""

    listed: list[ManifestRecord]
    resume: list[tuple[int, int]]
    failures: tuple[ManifestLineError, ...]
    end_line: int
    end_offset: int
    part: int = 0

    def __len__(self) -> int:
        return len(self.listed)

    def records(self, start: int, stop: int) -> list[ManifestRecord]:
        """Records [start, stop)."""
        return self.listed[start:stop]

    def items(self, start: int, stop: int) -> list[list[object]]:
        """Chunk message items of records [start, stop)."""
        return [_item(r) for r in self.listed[start:stop]]

    def item_bytes(self, start: int, stop: int) -> int:
        """Sum of item sizes, serialized (this path is the slow one anyway)."""
        return sum(self.item_sizes(start, stop))

    def item_sizes(self, start: int, stop: int) -> list[int]:
        """Item sizes one by one, serialized."""
        dumps = orjson.dumps
        return [len(dumps(_item(r))) for r in self.listed[start:stop]]

    def resume_after(self, index: int) -> tuple[int, int]:
        """The restart point recorded after record `index`."""
        return self.resume[index]


def group_items(
    items: Iterator[ManifestRecord | ManifestLineError],
    resume_point: Callable[[], tuple[int, int]],
    part: int = 0,
) -> Iterator[ListedBatch]:
    """Collect items into `ListedBatch`es; on a broken stream, hand on what was read first.

    `resume_point()` is the reader's restart point, read right after each item.
    """
    records: list[ManifestRecord] = []
    resume: list[tuple[int, int]] = []
    failures: list[ManifestLineError] = []
    try:
        for item in items:
            if isinstance(item, ManifestRecord):
                records.append(item)
                resume.append(resume_point())
            else:
                failures.append(item)
            if len(records) + len(failures) >= LISTED_BATCH_ITEMS:
                yield ListedBatch(records, resume, tuple(failures), *resume_point(), part)
                records, resume, failures = [], [], []
    except ManifestReadError:
        if records or failures:
            yield ListedBatch(records, resume, tuple(failures), *resume_point(), part)
        raise
    if records or failures:
        yield ListedBatch(records, resume, tuple(failures), *resume_point(), part)
