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
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import orjson

from pipeline.failures import ManifestLineError, ManifestReadError
from pipeline.manifest.parse import ManifestRecord

if TYPE_CHECKING:
    import numpy.typing as npt  # its import alone costs ~40 ms

LISTED_BATCH_ITEMS = 4096
"""Most items a `ListedBatch` holds (a batch of lines holds one read block anyway)."""
MAX_DENSE_BUCKETS = 256
"""Buckets a reader remembers for its proofs (a line naming another is read line by line)."""
LOOPED_BUCKETS = 8
"""Buckets a proof that tries them one at a time takes (each costs it a search or a gather):
the first ones learned. Past as many, the proofs of URI lines, CSV rows and JSON Lines (the
bucket first or last, or a `uri`) look each line's bucket up in a table
(`dense.bucket_lengths`, `bucket_lengths_before`), so they take every known bucket."""
_NEWLINE = 10
_POWERS_OF_TEN = [10**d for d in range(40)]


def digit_count_sum(lo: int, hi: int) -> int:
    """Sum of the decimal digit counts of the integers in [lo, hi) (lo >= 1).

    Called once a chunk: the common case, lo and hi - 1 of one digit count, is one step.
    """
    digits = len(str(lo))
    if hi <= _POWERS_OF_TEN[digits]:
        return max(0, hi - lo) * digits
    total, low, digits = 0, 1, 1
    while low < hi:
        high = low * 10
        total += max(0, min(hi, high) - max(lo, low)) * digits
        low, digits = high, digits + 1
    return total


def summed_item_bytes(
    sums: Sequence[int],
    first_line: int,
    start: int,
    stop: int,
    *,
    delta: int = 0,
    versions: Sequence[int] | None = None,
) -> int:
    """Sum of the sizes of items [start, stop) whose sizes are kept as prefix sums.

    Item i is `sums[i + 1] - sums[i]`, plus `delta`, plus its line number's digits (the line
    is `first_line + i`), plus `versions[i + 1] - versions[i]` when given: a chunk's size is
    then a few subtractions, whatever its length.
    """
    return (
        int(sums[stop] - sums[start])
        + delta * (stop - start)
        + digit_count_sum(first_line + start, first_line + stop)
        + (0 if versions is None else int(versions[stop] - versions[start]))
    )


def summed_item_sizes(
    sums: Sequence[int],
    first_line: int,
    start: int,
    stop: int,
    *,
    delta: int = 0,
    versions: Sequence[int] | None = None,
) -> list[int]:
    """The sizes of items [start, stop) one by one (see `summed_item_bytes`)."""
    return [
        int(sums[i + 1] - sums[i])
        + delta
        + len(str(first_line + i))
        + (0 if versions is None else int(versions[i + 1] - versions[i]))
        for i in range(start, stop)
    ]


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
    r"""Consecutive lines, each one record of a proved plain shape; records built on demand.

    Row `i` is line `first_line + i` less its last `line_extra` bytes (the newline, and for
    JSON Lines the closing `"}` too); `starts[i]` is that line's offset from the batch start
    (`starts[n]` the batch's length), so a row's length is `starts[i + 1] - starts[i] -
    line_extra`. `item_delta` turns a row length into its chunk item's JSON size (with the line
    number's digits and `escape_saves` less an escape, when its keys are escaped: 2 a `%XX` of
    URL-encoded keys, counted in `escaped`, the block's bytes; 1 a JSON `\/`, counted before
    each row in `escape_counts` by the proof). `buckets` holds every bucket its rows name (and
    maybe more): the chunk encoder rewrites `s3://B/` prefixes.

    Rows are cut from `data` (split at `row_end`) only when asked for (Split encoding a chunk;
    `scan` never does): counting needs the line starts alone, which come from one vectorized
    newline search (`line_starts`). A check that built its rows already passes them as
    `given_rows` (then `starts` came from their lengths).
    """

    first_line: int
    start_offset: int
    starts: Sequence[int]
    item_delta: int
    parse_row: Callable[[bytes], tuple[str, ...]]  # (bucket, key) or (bucket, key, version)
    end_line: int
    end_offset: int
    line_extra: int = 1
    escaped: bytes | None = None
    escape_saves: int = 2
    escape_counts: Sequence[int] | None = None  # escapes before each row, when a proof counted
    part: int = 0
    buckets: tuple[bytes, ...] = ()
    failures: tuple[ManifestLineError, ...] = ()
    data: bytes | None = None
    row_end: bytes = b"\n"
    given_rows: list[bytes] | None = None
    _rows: list[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.starts) - 1

    @property
    def rows(self) -> list[bytes]:
        """Every row, built once (from `data` when no check built them)."""
        if self.given_rows is not None:
            return self.given_rows
        if not self._rows and self.data is not None:
            rows = self.data.split(self.row_end)
            rows.pop()
            self._rows.extend(rows)
        return self._rows

    @property
    def lengths(self) -> list[int]:
        """Every row's length."""
        extra, starts = self.line_extra, self.starts
        return [int(b - a) - extra for a, b in pairwise(starts)]

    def joined_rows(self, start: int, stop: int) -> bytes:
        r"""`b"\n".join(self.rows[start:stop])`, where a row may keep the rest of its line end.

        Straight from `data` when the batch has it: its lines less the last newline, so a
        JSON Lines row keeps its closing `"}` (the chunk encoder drops it either way).
        """
        if self.data is None or self.given_rows is not None or stop <= start:
            return b"\n".join(self.rows[start:stop])
        starts = self.starts
        return self.data[starts[start] : starts[stop] - 1]

    def _escapes(self, start: int, stop: int) -> int:
        r"""How many escapes rows [start, stop) hold (`%XX` or `\/`: each decodes to one byte)."""
        if self.escaped is None:
            return 0
        if self.escape_counts is not None:
            return int(self.escape_counts[stop] - self.escape_counts[start])
        return self.escaped.count(b"%", self.starts[start], self.starts[stop])

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
        """Sum of item sizes, from the line starts and the line numbers' digits."""
        first, starts, count = self.first_line, self.starts, stop - start
        row_bytes = int(starts[stop] - starts[start]) - self.line_extra * count
        return (
            row_bytes
            + self.item_delta * count
            + digit_count_sum(first + start, first + stop)
            - self.escape_saves * self._escapes(start, stop)
        )

    def item_sizes(self, start: int, stop: int) -> list[int]:
        """Item sizes one by one."""
        delta, first, extra, starts = self.item_delta, self.first_line, self.line_extra, self.starts
        return [
            int(starts[i + 1] - starts[i])
            - extra
            + delta
            + len(str(first + i))
            - self.escape_saves * self._escapes(i, i + 1)
            for i in range(start, stop)
        ]

    def resume_after(self, index: int) -> tuple[int, int]:
        """The line after row `index` and the offset past its newline."""
        return self.first_line + index + 1, self.start_offset + int(self.starts[index + 1])

    def lines(self, start: int, stop: int, *, first_line: int, start_offset: int) -> Any:
        """Rows [start, stop) as a batch of their own: line `first_line`, at `start_offset`.

        For a block proved with lines taken out of it (blank lines, `RecordReader`): the rows
        between two taken out are consecutive lines again, where they lie in the manifest.
        Returns a batch of this batch's own class (`_sliced` adds a subclass's fields); only
        of one whose rows are cut from its bytes (every frame proof's: no `given_rows`).
        """
        assert self.given_rows is None, "rows a check built are not cut"
        starts, base = self.starts, int(self.starts[start])
        end = int(starts[stop])
        counts = self.escape_counts
        return replace(
            self,
            first_line=first_line,
            start_offset=start_offset,
            starts=_rebased(starts, start, stop + 1, base),
            end_line=first_line + stop - start,
            end_offset=start_offset + end - base,
            escaped=None if self.escaped is None else self.escaped[base:end],
            escape_counts=None if counts is None else _rebased(counts, start, stop + 1),
            data=None if self.data is None else self.data[base:end],
            failures=(),
            _rows=[],
            **self._sliced(start, stop),
        )

    def _sliced(self, start: int, stop: int) -> dict[str, Any]:
        """A subclass's own per-row fields, cut to rows [start, stop) for `lines`."""
        return {}


def _rebased(values: Sequence[int], start: int, stop: int, base: int | None = None) -> Any:
    """`values[start:stop]` less `base` (its first value by default): offsets or counts anew."""
    part = np.asarray(values[start:stop])
    return part - (part[0] if base is None else base)


class UnparsedBatch:
    """What the batches Split sends unparsed share (`raw_lines`, `raw_elements`).

    A unit (a line, an array element) is one record or one parse failure, which the worker
    finds out: `parsed` reads units as it does. `starts[i]` is where unit i's bytes begin
    (`starts[n]` the end); the message bytes of a unit are bounded by twice its bytes plus
    one, which is what the chunk cut measures.
    """

    __slots__ = ()
    first_line: int
    start_offset: int
    starts: npt.NDArray[np.int64]

    def parsed(self, start: int, stop: int) -> tuple[list[ManifestRecord], list[ManifestLineError]]:
        """Units [start, stop) read as the worker reads them: records and parse failures."""
        raise NotImplementedError

    def records(self, start: int, stop: int) -> list[ManifestRecord]:
        """The records among units [start, stop) (their failures are the worker's to record)."""
        return self.parsed(start, stop)[0]

    def items(self, start: int, stop: int) -> list[list[object]]:
        """No v1 items: Split sends these units only as a raw piece."""
        raise TypeError(f"{type(self).__name__} goes only as a raw piece of a v2 chunk message")

    def item_bytes(self, start: int, stop: int) -> int:
        """The bound on the message bytes of units [start, stop)."""
        return 2 * int(self.starts[stop] - self.starts[start]) + stop - start

    def item_sizes(self, start: int, stop: int) -> list[int]:
        """The same bound unit by unit."""
        return (2 * np.diff(self.starts[start : stop + 1]) + 1).tolist()

    def resume_after(self, index: int) -> tuple[int, int]:
        """The unit after unit `index` and the offset just past it."""
        return self.first_line + index + 1, self.start_offset + int(self.starts[index + 1])


def line_starts(data: bytes) -> npt.NDArray[np.int64]:
    """Offset of each newline-terminated line of `data`, and `len(data)` last.

    One vectorized pass (numpy), instead of a `bytes` object a line from `split`: a block of
    ~20,000 lines costs ~0.3 ms instead of ~2 (building, measuring and freeing the rows).
    """
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == _NEWLINE)
    starts = np.empty(len(ends) + 1, np.int64)
    starts[0] = 0
    np.add(ends, 1, out=starts[1:])
    return starts


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
