"""Records a read block at a time: the fast path from decompressed bytes to chunks.

Building one frozen `ManifestRecord` per line, parsing it and serializing it to size its chunk
costs ~1.5 µs a line, five times what decompression costs (BENCHMARKS.md, "Manifest scan").
Most manifests are one plain shape line after line (`bucket,key` or
`{"bucket":"…","key":"…"}`), so a whole block of lines can be *proved* to be that shape with a
few C-speed byte operations (`bytes.translate`, `count`, `startswith`), and then every fact a
chunk needs — count, line numbers, restart offsets, the exact JSON size of each chunk item —
follows from the line lengths alone. Such a block becomes a `DenseBatch`, whose records are
built only when someone asks (Split sending a chunk; `scan` never does). Any block that is not
proved plain goes line by line through the reference parser into a `ListedBatch`, so both
kinds yield exactly what `RecordReader` iteration yields. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson

from pipeline.failures import ManifestLineError, ManifestReadError
from pipeline.manifest_parse import ManifestRecord


def _ordinary(special: bytes) -> bytes:
    r"""Bytes that carry no structure: printable ASCII but `special`, and all non-ASCII.

    Deleting them with `bytes.translate` leaves a line's skeleton. Control bytes, DEL, `"`
    and `\\` are never ordinary: they would need JSON escaping, so a line holding one takes the
    reference path and the chunk-size arithmetic below stays exact.
    """
    excluded = set(special) | set(b'"\\')
    printable = set(range(ord(" "), ord("~") + 1)) - excluded
    return bytes(b for b in range(256) if b in printable or not chr(b).isascii())


_CSV_ORDINARY = _ordinary(b",%+")  # `%`/`+` would need URL-decoding; `,` is the skeleton
_CSV_SKELETON = b",\n"
_CSV_ITEM_DELTA = 7
"""`[line,"b","k"]` is the row `b,k` (len - 1 comma) + brackets, 4 quotes, 2 commas + digits."""
_JSONL_ORDINARY = _ordinary(b"{}:,")
_JSONL_SKELETON = b'{"":"","":""}\n'
_JSONL_KEY, _JSONL_END, _JSONL_EMPTY_KEY = b'","key":"', b'"}\n', b'","key":""}'
_JSONL_ITEM_DELTA = -14
"""The row `{"bucket":"b","key":"k"}` is 22 bytes more than b + k; its item is 8 more."""
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
    after the batch (line number and offset just past its last item).
    """

    failures: Sequence[ManifestLineError]
    end_line: int
    end_offset: int

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
    """Consecutive lines, each one record of a proved plain shape; records built on demand."""

    first_line: int
    start_offset: int
    rows: list[bytes]
    lengths: list[int]
    item_delta: int
    parse_row: Callable[[bytes], tuple[str, str]]
    end_line: int
    end_offset: int
    failures: tuple[ManifestLineError, ...] = ()

    def __len__(self) -> int:
        return len(self.rows)

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
        first = self.first_line
        return (
            sum(self.lengths[start:stop])
            + self.item_delta * (stop - start)
            + digit_count_sum(first + start, first + stop)
        )

    def item_sizes(self, start: int, stop: int) -> list[int]:
        """Item sizes one by one."""
        delta, first = self.item_delta, self.first_line
        return [
            length + delta + len(str(first + i))
            for i, length in enumerate(self.lengths[start:stop], start)
        ]

    def resume_after(self, index: int) -> tuple[int, int]:
        """The line after row `index` and the offset past its newline."""
        offset = self.start_offset + sum(self.lengths[: index + 1]) + index + 1
        return self.first_line + index + 1, offset


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


@dataclass(frozen=True, slots=True)
class DenseShape:
    """What a dense check needs besides the block: where it sits and what is already known."""

    first_line: int
    start_offset: int
    buckets: Sequence[bytes]
    max_line_bytes: int

    def batch(
        self, lines: list[bytes], item_delta: int, parse_row: Callable[[bytes], tuple[str, str]]
    ) -> DenseBatch | None:
        """The batch, unless a line is over the length limit (it must become a failure)."""
        lengths = list(map(len, lines))
        if not lengths or max(lengths) > self.max_line_bytes:
            return None
        n = len(lines)
        end_offset = self.start_offset + sum(lengths) + n
        return DenseBatch(
            self.first_line,
            self.start_offset,
            lines,
            lengths,
            item_delta,
            parse_row,
            end_line=self.first_line + n,
            end_offset=end_offset,
        )


def group_items(
    items: Iterator[ManifestRecord | ManifestLineError],
    resume_point: Callable[[], tuple[int, int]],
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
                yield ListedBatch(records, resume, tuple(failures), *resume_point())
                records, resume, failures = [], [], []
    except ManifestReadError:
        if records or failures:
            yield ListedBatch(records, resume, tuple(failures), *resume_point())
        raise
    if records or failures:
        yield ListedBatch(records, resume, tuple(failures), *resume_point())


def _csv_row(row: bytes) -> tuple[str, str]:
    bucket, key = row.decode().split(",")
    return bucket, key


def _jsonl_row(row: bytes) -> tuple[str, str]:
    parts = row.decode().split('"')
    return parts[3], parts[7]


def _is_utf8(data: bytes) -> bool:
    if data.isascii():
        return True
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def _count_line_starts(data: bytes, prefix: bytes) -> int:
    """How many lines of `data` (newline-terminated) start with `prefix`."""
    return data.count(b"\n" + prefix) + data.startswith(prefix)


def _all_start_with_a_bucket(data: bytes, n: int, buckets: Sequence[bytes], fmt: bytes) -> bool:
    """True when each of the `n` lines starts with `fmt % bucket` for one of `buckets`."""
    return sum(_count_line_starts(data, fmt % bucket) for bucket in buckets) == n


def dense_csv_batch(data: bytes, lines: list[bytes], shape: DenseShape) -> DenseBatch | None:
    r"""A `DenseBatch` when every line is `bucket,key` the reference parser takes verbatim.

    Proof, for the `n` newline-terminated lines of `data`: what is left after deleting ordinary
    bytes is exactly `",\\n" * n` (one comma a line; no quote, `%`, `+`, CR, control byte or
    blank line), every line starts `bucket,` with an already-validated bucket, no key is empty,
    and the bytes are UTF-8. Else None: the caller parses line by line.
    """
    n = len(lines)
    if data.translate(None, _CSV_ORDINARY) != _CSV_SKELETON * n or b",\n" in data:
        return None
    if not _all_start_with_a_bucket(data, n, shape.buckets, b"%b,") or not _is_utf8(data):
        return None
    return shape.batch(lines, _CSV_ITEM_DELTA, _csv_row)


def dense_jsonl_batch(data: bytes, lines: list[bytes], shape: DenseShape) -> DenseBatch | None:
    """A `DenseBatch` when every line is exactly `{"bucket":"B","key":"K"}` with plain strings.

    Proof: the skeleton left after deleting ordinary bytes is `{"":"","":""}` a line (no
    backslash, so no escapes; no control byte); each line starts `{"bucket":"B","` with a
    validated bucket B; `","key":"` and a closing `"}` + newline occur once a line; no key
    is empty; the bytes are UTF-8.
    """
    n = len(lines)
    if data.translate(None, _JSONL_ORDINARY) != _JSONL_SKELETON * n:
        return None
    if data.count(_JSONL_KEY) != n or data.count(_JSONL_END) != n or _JSONL_EMPTY_KEY in data:
        return None
    if not _all_start_with_a_bucket(data, n, shape.buckets, b'{"bucket":"%b","'):
        return None
    if not _is_utf8(data):
        return None
    return shape.batch(lines, _JSONL_ITEM_DELTA, _jsonl_row)
