"""Stream records out of an already-decompressed manifest, from any restart point.

This is the seam between reading bytes (local file, S3, gzip, a resumable zran reader) and
parsing them: give `RecordReader` a binary stream, a format and where it starts (line number,
uncompressed offset, CSV layout) and it yields records and line errors in constant memory. After
any item, `reader.position` says where a later reader should start to continue right after it.
`iter_batches()` yields the same items a read block at a time (see `pipeline.manifest.batch`).
Knows nothing of gzip, S3 or smart_open.

Longer than ~300 lines on purpose: the line-by-line path, the block fast path and the joining of
CSV records that span lines (`pipeline.manifest.quoted`) share one reader's position state, which
must move only past whole records; split across modules, that state would leak between them.
The same holds for JSON arrays, whose proved-plain spans (`pipeline.manifest.dense_array`) come
between elements read one by one.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby
from typing import BinaryIO

from pipeline.failures import ManifestLineError, ManifestReadError
from pipeline.manifest.batch import (
    MAX_DENSE_BUCKETS,
    DenseBatch,
    ListedBatch,
    RecordBatch,
    group_items,
)
from pipeline.manifest.dense import (
    DenseShape,
    dense_csv_batch,
    dense_uri_batch,
)
from pipeline.manifest.dense_array import dense_array_batch
from pipeline.manifest.dense_array_template import dense_array_template_batch
from pipeline.manifest.dense_columns import columns_check
from pipeline.manifest.dense_csv_template import dense_csv_template_batch
from pipeline.manifest.dense_json import dense_jsonl_lines, dense_jsonl_uri_lines
from pipeline.manifest.dense_template import dense_template_batch
from pipeline.manifest.dense_uri_columns import dense_uri_columns_batch
from pipeline.manifest.format import ManifestFormat, sniff_format
from pipeline.manifest.json_array import ArraySplitter
from pipeline.manifest.json_spelling import spelling_of
from pipeline.manifest.lines import (
    BLOCK_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    HeadStream,
    LineRun,
    LineSplitter,
    around_blank_lines,
)
from pipeline.manifest.parse import (
    CsvKind,
    CsvLayout,
    ManifestRecord,
    decode_line,
    detect_csv_layout,
    parse_csv_line,
    parse_json_line,
)
from pipeline.manifest.parsed_csv import parsed_csv_batch
from pipeline.manifest.parsed_json import ParsedBatch, array_values_batch, objects_batch
from pipeline.manifest.quoted import OpenRecord, ends_inside_quotes
from pipeline.manifest.raw_elements import RawElementsBatch, raw_elements_batch
from pipeline.manifest.raw_lines import RawLinesBatch, raw_lines_batch

__all__ = [  # ManifestFormat and sniff_format moved to manifest_format; importable here still
    "SNIFF_BYTES",
    "Item",
    "ManifestFormat",
    "Position",
    "RecordReader",
    "iter_records_from_stream",
    "sniff_format",
]

SNIFF_BYTES = 64 * 1024
NARROWEST_RUN = 4 * 1024
"""Smallest piece a read block is halved into around a line its frame proof refuses. Measured
with a bad line every 1,000 or 5,000: 4 KiB within 15 % of 2 KiB, 3x faster than 64 KiB."""

NARROWEST_PROOF = 1024
"""Fewest bytes of lines between blank ones offered to a proof of their own: a proof costs
~40 µs whatever its size, reading line by line ~3 µs a line. Measured in process on 1,000,000
URI lines with an empty one every 20 lines: 2.0 s proved in ~740-byte pieces, 2.9 s line by
line; every 100 lines (~3.7 KB pieces): 0.52 s against 2.9 s."""

Item = ManifestRecord | ManifestLineError
ProvedBatch = DenseBatch | ParsedBatch | RawLinesBatch | RawElementsBatch
"""A read block taken whole: proved plain, read a column at a time, or sent unparsed."""


@dataclass(frozen=True, slots=True)
class Position:
    """Where to restart so the next item read is the one after the last item yielded.

    Attributes:
        line: The line number (JSON arrays: element number) the restarted reader starts at.
        offset: Uncompressed byte offset just past the last item's line (JSON arrays: just
            past its element, where `,` or `]` follows) in the current part.
        part: Index of the file being read (S3 Inventory parts); 0 otherwise.
        layout: The CSV layout in force (a header row lies behind the restart point).
    """

    line: int
    offset: int
    part: int = 0
    layout: CsvLayout | None = None


class RecordReader:
    """Iterate one decompressed manifest stream; see the module docstring.

    Args:
        stream: Decompressed bytes, positioned at `start_offset` (minus `head`).
        fmt: The format; `INVENTORY` is not a stream format (see `pipeline.manifest.inventory`).
        first_line: Line (element) number of the first line in the stream.
        start_offset: Uncompressed offset of the stream's first byte (a BOM is stripped only at 0).
        layout: The CSV layout; None detects it from the first non-blank line.
        max_line_bytes: Longer lines become `LineTooLong` failures, read past in constant memory.
        part: Reported back in `position`.
        head: Bytes already read from `stream` (for sniffing) that logically come first.
        block_bytes: Read size of the line formats (tests use small ones to cross blocks).
        raw_lines: `iter_batches` yields blocks no frame proof takes unparsed when it can
            (`RawLinesBatch`: Split's, whose worker parses them); `scan` counts records, so not.
    """

    def __init__(
        self,
        stream: BinaryIO,
        fmt: ManifestFormat,
        *,
        first_line: int = 1,
        start_offset: int = 0,
        layout: CsvLayout | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        part: int = 0,
        head: bytes = b"",
        block_bytes: int = BLOCK_BYTES,
        raw_lines: bool = False,
    ) -> None:
        if fmt is ManifestFormat.INVENTORY:
            raise ValueError("an Inventory manifest.json lists parts; read it with iter_manifest")
        self._fmt = fmt
        self._max_line_bytes, self._part, self._layout = max_line_bytes, part, layout
        self._first_line, self._block_bytes = first_line, block_bytes
        self._raw_lines = raw_lines
        self._next_line, self._next_offset = first_line, start_offset
        self._line_after = first_line
        self._source = HeadStream(head, stream, start_offset=start_offset)
        self._lines = LineSplitter(self._source, max_line_bytes=max_line_bytes)
        self._buckets: list[bytes] = []  # validated buckets the dense checks try
        self._open: OpenRecord | None = None  # a CSV record whose quoted field spans lines
        self._bucket_names: set[str] = set()
        self._narrows = False  # the last read block had a piece the frame proof took
        self._blank_lines_seen = False  # the last block cut around blank lines had some

    @property
    def position(self) -> Position:
        """The restart point just past the last item yielded."""
        return Position(self._next_line, self._next_offset, self._part, self._layout)

    @property
    def uncompressed_bytes(self) -> int:
        """Uncompressed offset reached so far (read ahead of the last item by up to a block)."""
        return self._source.offset

    @property
    def next_line_read(self) -> int:
        """The number of the first physical line not read yet (blank and header lines count)."""
        return max(self._line_after, self._next_line)

    @property
    def lines_read(self) -> int:
        """Lines (array elements) read: exact at the end, else up to the last item yielded."""
        return max(self._line_after, self._next_line) - self._first_line

    def __iter__(self) -> Iterator[Item]:
        if self._fmt is ManifestFormat.JSON_ARRAY:
            items = self._iter_json_array()
        else:
            items = self._iter_line_items()
        try:
            yield from items
        except ManifestReadError as exc:
            located = self._located(exc)
            if located is exc:
                raise
            raise located from exc

    def _located(self, exc: ManifestReadError) -> ManifestReadError:
        """The error with the line at which the stream broke, if it does not say already."""
        if exc.line is not None:
            return exc
        line = self._line_after
        return ManifestReadError(
            f"{exc.message} while reading line {line}; every line before it was read",
            error=exc.error,
            line=line,
            compressed_offset=exc.compressed_offset,
        )

    def iter_batches(self) -> Iterator[RecordBatch]:
        """Yield the same records and line errors as iteration, a read block at a time.

        The fast path (see `pipeline.manifest.batch`): a block proved to be one plain shape
        becomes a `DenseBatch` without a Python object per line; any other block is parsed line
        by line into a `ListedBatch`. `position` is exact after each batch; inside a batch,
        `batch.resume_after(i)` gives the restart point after record i. Use either this or
        iteration on one reader, not both.
        """
        try:
            if self._fmt is ManifestFormat.JSON_ARRAY:
                yield from self._array_batches()
                return
            for block in self._lines.iter_runs(self._block_bytes):
                for run, dense in self._pieces(block, raw=self._raw_lines):
                    if dense is None:
                        yield from self._listed_batches(run)
                        continue
                    self._line_after = dense.end_line
                    self._next_line, self._next_offset = dense.end_line, dense.end_offset
                    yield dense
            yield from group_items(self._flush_open(), self._resume_point, self._part)
        except ManifestReadError as exc:
            located = self._located(exc)
            if located is exc:
                raise
            raise located from exc

    def _listed_batches(self, run: LineRun) -> Iterator[RecordBatch]:
        """The run parsed line by line, in batches; one empty batch if it is all blank lines.

        The empty batch says how far the reading got (its `end_line`): a gzip of nothing but
        newlines would otherwise read for minutes without a sign, past every guard
        (`pipeline.manifest.guard`). The reader's `position` stays after the last item.
        """
        is_blank = True
        for batch in group_items(self._run_items(run), self._resume_point, self._part):
            is_blank = False
            yield batch
        if is_blank:
            yield ListedBatch([], [], (), self._line_after, run.end, self._part)

    def _resume_point(self) -> tuple[int, int]:
        """(line, offset) of `position`, without building one."""
        return self._next_line, self._next_offset

    def _iter_line_items(self) -> Iterator[Item]:
        """Yield line items one by one; proved-plain blocks skip the per-line parser."""
        for block in self._lines.iter_runs(self._block_bytes):
            for run, dense in self._pieces(block, raw=False):
                if dense is None:
                    yield from self._run_items(run)
                    continue
                if isinstance(dense, ParsedBatch):
                    for i, record in enumerate(dense.records(0, len(dense))):
                        self._next_line, self._next_offset = dense.resume_after(i)
                        yield record
                    self._line_after = dense.end_line
                    continue
                line, offset, extra = dense.first_line, dense.start_offset, dense.line_extra
                records = dense.records(0, len(dense))
                for record, length in zip(records, dense.lengths, strict=True):
                    line, offset = line + 1, offset + length + extra
                    self._next_line, self._next_offset = line, offset
                    yield record
                self._line_after = dense.end_line
        yield from self._flush_open()

    def _pieces(self, run: LineRun, *, raw: bool) -> Iterator[tuple[LineRun, ProvedBatch | None]]:
        """The run's pieces in order, each with its batch (None: read it line by line).

        A run its frame proof takes is one piece. One it refuses is halved at a newline and
        each half tried again, down to `NARROWEST_RUN`, so that a malformed line among plain
        ones costs the slower paths a few kilobytes around it, not its whole megabyte (scan of
        `s3://` URIs with a bad line every 100,000: 0.32x `gzip -dc | wc -l` before, 1.56x).
        Only after a run with a proved piece (not for a shape no frame proof takes, or bad
        lines everywhere: halving would find nothing), and not for Split (`raw`): it sends a
        refused run unparsed whole, which costs less than narrowing it. Before it is halved or
        read line by line, for scan and Split alike, a refused run is cut around its blank
        lines (`lines.around_blank_lines`), which no proof takes and the reader skips: the
        blank lines are counted, the lines between them tried again (in process, 1,000,000 URI
        lines with an empty one every 1,000: 2.7 s line by line before, 0.10 s; 0.05 s
        without them). Lazily: a piece's line numbers are known only once the pieces before it
        are read.
        """
        if run.data is None:  # a line straddling two reads: no proof's, and no sign either
            yield run, None
            return
        narrow = self._narrows and not raw
        proved = False
        for piece, batch, is_framed in self._narrowed(run, raw=raw, narrow=narrow):
            proved |= is_framed
            yield piece, batch
        self._narrows = proved

    def _narrowed(
        self, run: LineRun, *, raw: bool, narrow: bool, whole: bool = True
    ) -> Iterator[tuple[LineRun, ProvedBatch | None, bool]]:
        """`_pieces`, with whether each batch is the frame proof's.

        A `whole` read block is cut around its blank lines at once when the block before had
        some (every proof would refuse it, at the cost of trying), else only when it would
        otherwise be halved or read line by line: a block no frame proof takes but a slower
        proof does (JSON with other fields) never pays for the search. Pieces of a block have
        none (halves neither).
        """
        shape = self._shape(run)
        data: bytes = run.data  # type: ignore[assignment]  # not None when there is a shape
        may_cut = whole and shape is not None
        if may_cut and self._blank_lines_seen:
            may_cut = False  # tried here: none, if it is not cut now
            if (pieces := self._around_blank_lines(run)) is not None:
                yield from self._around(pieces, raw=raw, narrow=narrow)
                return
        framed = None if shape is None else self._framed(data, shape)
        if framed is not None:
            yield run, framed, True
            return
        if narrow and may_cut and (pieces := self._around_blank_lines(run)) is not None:
            yield from self._around(pieces, raw=raw, narrow=narrow)
            return
        halves = _halves(run) if narrow else None
        if halves is not None:
            for half in halves:
                yield from self._narrowed(half, raw=raw, narrow=narrow, whole=False)
            return
        batch = None if shape is None else self._unframed(data, shape, raw=raw)
        may_cut &= batch is None and not narrow
        if may_cut and (pieces := self._around_blank_lines(run)) is not None:
            yield from self._around(pieces, raw=raw, narrow=narrow)
            return
        yield run, batch, False

    def _around(
        self, pieces: list[tuple[LineRun, bool]], *, raw: bool, narrow: bool
    ) -> Iterator[tuple[LineRun, ProvedBatch | None, bool]]:
        """The pieces of a block cut around its blank lines: those between them tried again.

        All at once first: their lines joined, the blank lines left out, for one frame proof,
        and each piece's batch cut from it (`DenseBatch.lines`). A proof costs ~40 µs whatever
        its size: proved one by one, the pieces of a manifest with an empty line every 1,000
        lines made a pass 15 to 35 % slower (BENCHMARKS.md, "Blank lines proved around"). A
        piece is cut only when no record is open before it (as `_shape` requires); otherwise,
        and when the joined lines are refused, each piece is tried on its own.
        """
        joined = self._joined_proof([piece for piece, is_plain in pieces if is_plain])
        row = end = 0  # where this piece starts in `joined`: its first row, its offset
        for piece, has_no_blank_line in pieces:
            if not has_no_blank_line:
                yield piece, None, False
                continue
            if joined is None:
                yield from self._narrowed(piece, raw=raw, narrow=narrow, whole=False)
                continue
            end += piece.end - piece.start
            stop = bisect_left(joined.starts, end, lo=row)  # the row starting where it ends
            if self._open is None:
                at = {"first_line": self._line_after, "start_offset": piece.start}
                yield piece, joined.lines(row, stop, **at), True
            else:
                yield from self._narrowed(piece, raw=raw, narrow=narrow, whole=False)
            row = stop

    def _joined_proof(self, plain: list[LineRun]) -> DenseBatch | None:
        """The frame proof of `plain`'s lines joined (two pieces or more), or None."""
        if len(plain) < 2:  # noqa: PLR2004
            return None
        joined = LineRun(plain[0].start, plain[-1].end, b"".join(p.data for p in plain))  # type: ignore[misc]
        shape = self._shape(joined)
        return None if shape is None else self._framed(joined.data, shape)  # type: ignore[arg-type]

    def _around_blank_lines(self, run: LineRun) -> list[tuple[LineRun, bool]] | None:
        """`lines.around_blank_lines`, remembering whether the run had any."""
        pieces = around_blank_lines(run, narrowest=NARROWEST_PROOF)
        self._blank_lines_seen = pieces is not None
        return pieces

    def _shape(self, run: LineRun) -> DenseShape | None:
        """What a proof of `run` needs; None when none may take it (a record open, no bucket)."""
        if run.data is None or self._open is not None:
            return None
        if not self._buckets and not self._learn_first_bucket(run.data):
            return None
        return DenseShape(
            self._line_after, run.start, self._buckets, self._max_line_bytes, self._part
        )

    def _framed(self, data: bytes, shape: DenseShape) -> DenseBatch | None:
        """The run by the frame proof its format and layout call for, or None."""
        if self._fmt is ManifestFormat.JSON_LINES:
            return _proved_jsonl(data, shape)
        return _proved_csv(self._layout, data, shape)

    def _unframed(self, data: bytes, shape: DenseShape, *, raw: bool) -> ProvedBatch | None:
        """A run no frame proof takes, as one batch when a slower proof takes it; else None.

        With `raw` (Split's batches, `raw_lines`), it goes unparsed when it can
        (`pipeline.manifest.raw_lines`), instead of proved laid out like its first line or
        read a column at a time.
        """
        is_json = self._fmt is ManifestFormat.JSON_LINES
        layout = None if is_json else self._layout
        if layout is None and not is_json:
            return None
        if raw:
            unparsed = raw_lines_batch(data, shape, layout)
            if unparsed is not None:
                return unparsed
        if layout is None:
            return self._objects(data, shape)
        return self._columns(data, shape, layout, raw=raw)

    def _objects(self, data: bytes, shape: DenseShape) -> ProvedBatch | None:
        """JSON Lines no frame proof takes: proved laid out alike, else read a column at a time.

        The proof (`pipeline.manifest.dense_template`) takes a block laid out like its first
        line. Split tries `raw_lines` first: sending the lines as text costs less than it.
        """
        templated = dense_template_batch(data, shape)
        if templated is not None:
            return templated
        return self._learned(objects_batch(data, shape))

    def _columns(
        self, data: bytes, shape: DenseShape, layout: CsvLayout, *, raw: bool
    ) -> ProvedBatch | None:
        """CSV rows no frame proof takes, read a column at a time.

        For `scan` (not `raw`), a block laid out like its first line is proved without a `str`
        a field (`pipeline.manifest.dense_csv_template`).
        """
        if not raw:
            templated = dense_csv_template_batch(data, shape, layout)
            if templated is not None:
                return templated
        return self._learned(parsed_csv_batch(data, shape, layout))

    def _learned(self, batch: DenseBatch | ParsedBatch | None) -> DenseBatch | ParsedBatch | None:
        """The batch, the buckets a `ParsedBatch` names remembered first.

        A dense proof takes known buckets only: without them every later block naming these
        buckets would be read a column at a time, several times slower than a proof.
        """
        if isinstance(batch, ParsedBatch) and not batch.bucket_names <= self._bucket_names:
            for bucket in batch.bucket_names - self._bucket_names:
                self._learn_bucket(bucket)
        return batch

    def _learn_first_bucket(self, data: bytes) -> bool:
        """Validate the bucket of the block's first line, if it is a record; True if known now.

        After a header row the first block would else go line by line: no bucket is known yet.
        Parsing the line is pure, so it is parsed here and again, densely or not, below.
        """
        if self._fmt is not ManifestFormat.JSON_LINES and self._layout is None:
            return False  # the first line may set the layout: only `_run_items` reads it
        item = self._line_item(data[: data.find(b"\n")], self._line_after)
        if isinstance(item, ManifestRecord):
            self._learn_bucket(item.bucket)
        return bool(self._buckets)

    def _run_items(self, run: LineRun) -> Iterator[Item]:
        """Parse a run line by line, exactly as iteration does, keeping `position` exact.

        `position` moves only past whole records: never inside a record still open.
        """
        if self._open is None and run.data is not None and not run.data.strip():
            self._line_after += run.data.count(b"\n")  # blank lines only: counted at C speed
            return
        n, end = self._line_after - 1, run.start
        try:
            for raw in run.lines():
                n += 1
                end = run.end if run.data is None else end + len(raw) + 1  # type: ignore[arg-type]
                if self._open is not None:
                    yield from self._take(raw, n, end)
                    continue
                # `_take` inlined for the line that opens no record: this runs once a line
                item = self._line_item(raw, n)
                if item is None:
                    continue
                if isinstance(item, ManifestRecord):
                    if item.bucket not in self._bucket_names:
                        self._learn_bucket(item.bucket)
                elif self._opens_record(raw, item):
                    self._open = OpenRecord([(raw, n, end)])  # type: ignore[list-item]
                    continue
                self._next_line, self._next_offset = n + 1, end
                yield item
        finally:
            self._line_after = n + 1

    def _take(self, raw: bytes | None, n: int, end: int) -> Iterator[Item]:
        """Physical line `n` (ending at `end`): an item, a part of an open record, or nothing."""
        queue: deque[tuple[bytes | None, int, int]] = deque([(raw, n, end)])
        while queue:
            raw, n, end = queue.popleft()
            record = self._open
            if record is None:
                item = self._line_item(raw, n)
                if self._opens_record(raw, item):
                    self._open = OpenRecord([(raw, n, end)])  # type: ignore[list-item]
                else:
                    yield from self._emit(item, n, end)
                continue
            if raw is None or record.size + 1 + len(raw) > self._max_line_bytes:
                queue.appendleft((raw, n, end))
                queue.extendleft(reversed(self._give_up()))
                yield from self._emit_first_alone(record)
                continue
            record.lines.append((raw, n, end))
            joined = record.joined()
            item = self._line_item(joined, record.first_line)
            if self._opens_record(joined, item):
                continue
            if isinstance(item, ManifestLineError):
                queue.extendleft(reversed(self._give_up()))
                yield from self._emit_first_alone(record)
                continue
            self._open = None
            yield from self._emit(item, n, end)

    def _opens_record(self, raw: bytes | None, item: Item | None) -> bool:
        """Whether a CSV line (or joined lines) failed only because a quoted field is open."""
        if raw is None or not isinstance(item, ManifestLineError) or item.error != "BadCsv":
            return False
        return ends_inside_quotes(raw.decode("utf-8", "replace"))

    def _give_up(self) -> list[tuple[bytes | None, int, int]]:
        """Drop the open record; its lines after the first, to be read again one by one."""
        record, self._open = self._open, None
        assert record is not None  # only called with a record open
        return list(record.lines[1:])

    def _emit_first_alone(self, record: OpenRecord) -> Iterator[Item]:
        """The first line of a record given up, parsed alone (the failure it always was)."""
        raw, n, end = record.lines[0]
        yield from self._emit(self._line_item(raw, n), n, end)

    def _emit(self, item: Item | None, n: int, end: int) -> Iterator[Item]:
        """Yield `item` (None: a blank or header line) and move `position` past line `n`."""
        if item is None:
            return
        if isinstance(item, ManifestRecord) and item.bucket not in self._bucket_names:
            self._learn_bucket(item.bucket)
        self._next_line, self._next_offset = n + 1, end
        yield item

    def _flush_open(self) -> Iterator[Item]:
        """At the end of the stream, a record still open is given up (see `_take`)."""
        while self._open is not None:
            record = self._open
            rest = self._give_up()
            yield from self._emit_first_alone(record)
            for raw, n, end in rest:
                yield from self._take(raw, n, end)

    def _line_item(self, raw: bytes | None, n: int) -> Item | None:
        """Line `n` as a record or an error; None for a blank line or the header row."""
        if raw is None or len(raw) > self._max_line_bytes:
            return self._too_long(n)
        if not raw or raw.isspace():
            return None
        if self._fmt is ManifestFormat.JSON_LINES:
            return parse_json_line(raw, n)
        return self._csv_item(raw, n)

    def _csv_item(self, raw: bytes, n: int) -> Item | None:
        """A non-blank CSV line as a record or an error; None for the header row."""
        if self._layout is None:  # the first non-blank line: a header, or the first row
            decoded = decode_line(raw, n)
            if isinstance(decoded, ManifestLineError):
                return decoded
            if self._detect_layout(decoded.removesuffix("\r"), n):
                return None
        return parse_csv_line(raw, n, self._layout)  # type: ignore[arg-type]

    def _learn_bucket(self, bucket: str) -> None:
        """Remember a validated bucket, so the next blocks naming it can be dense."""
        if len(self._buckets) < MAX_DENSE_BUCKETS:
            self._bucket_names.add(bucket)
            self._buckets.append(bucket.encode())

    def _too_long(self, line: int) -> ManifestLineError:
        return ManifestLineError(
            f"line {line}: longer than {self._max_line_bytes} bytes; raise max_line_bytes "
            "if it is a real key",
            error="LineTooLong",
            line=line,
        )

    def _detect_layout(self, text: str, line: int) -> bool:
        """Set the layout from the first non-blank line; True when that line is a header."""
        layout = detect_csv_layout(text, line)
        if isinstance(layout, ManifestLineError):
            raise ManifestReadError(layout.message, error=layout.error, line=line)
        self._layout = layout
        return layout.kind is CsvKind.HEADER

    def _array_batches(self) -> Iterator[RecordBatch]:
        """Array elements in batches: spans proved plain dense, the rest element by element."""
        pieces = self._iter_json_array(dense=True)
        for is_dense, group in groupby(pieces, key=_is_dense):
            if is_dense:
                yield from group  # type: ignore[misc]
            else:
                yield from group_items(group, self._resume_point, self._part)  # type: ignore[arg-type]

    def _dense_span(self, span: bytes, start: int) -> ProvedBatch | None:
        """A span of whole elements as one batch, when proved plain (`ArraySplitter`).

        Elements no frame proof takes are proved laid out like the span's first when they are
        (`pipeline.manifest.dense_array_template`); else, with `raw_lines`, they go unparsed
        when they can (`pipeline.manifest.raw_elements`).
        """
        if not self._buckets:
            return None
        shape = DenseShape(self._next_line, start, self._buckets, self._max_line_bytes)
        dense = dense_array_batch(span, shape)
        if dense is None:
            dense = dense_array_template_batch(span, shape)
        if dense is not None:
            return dense
        if self._raw_lines:
            unparsed = raw_elements_batch(span, shape)
            if unparsed is not None:
                return unparsed
        return self._learned(array_values_batch(span, shape))

    def _iter_json_array(self, *, dense: bool = False) -> Iterator[Item]:
        """Yield array elements; element number (index + 1) is the line identity.

        With `dense`, spans of elements proved plain come as one `DenseBatch` each.
        """
        n = self._next_line - 1
        elements = ArraySplitter(
            self._source,
            max_element_bytes=self._max_line_bytes,
            dense=self._dense_span if dense else None,
        )
        try:
            for raw in elements:
                if isinstance(raw, ProvedBatch):
                    n = raw.end_line - 1
                    self._next_line, self._next_offset = raw.end_line, raw.end_offset
                    yield raw  # type: ignore[misc]
                    continue
                n += 1
                if raw is None:
                    item: Item = self._too_long(n)
                else:
                    item = parse_json_line(raw, n)
                if isinstance(item, ManifestRecord) and item.bucket not in self._bucket_names:
                    self._learn_bucket(item.bucket)
                self._next_line, self._next_offset = n + 1, elements.end
                yield item
        finally:
            self._line_after = n + 1


def _halves(run: LineRun) -> tuple[LineRun, LineRun] | None:
    """The run cut at the newline nearest its middle, or None below twice `NARROWEST_RUN`."""
    data = run.data
    if data is None or len(data) < 2 * NARROWEST_RUN:
        return None
    cut = data.find(b"\n", len(data) // 2) + 1
    if cut == len(data):
        cut = data.rfind(b"\n", 0, len(data) // 2) + 1
    if cut <= 0:
        return None  # one line
    middle = run.start + cut
    return LineRun(run.start, middle, data[:cut]), LineRun(middle, run.end, data[cut:])


def _proved_jsonl(data: bytes, shape: DenseShape) -> DenseBatch | None:
    """A JSON Lines block by its frame proof, or None."""
    spelling = spelling_of(data)
    if data.startswith(b'{"uri"'):
        return dense_jsonl_uri_lines(data, shape, spelling)
    key_first = data.startswith(b'{"key"')
    return dense_jsonl_lines(data, shape, key_first=key_first, spelling=spelling)


def _proved_csv(layout: CsvLayout | None, data: bytes, shape: DenseShape) -> DenseBatch | None:
    """A CSV block by the one dense proof its layout and first line call for, or None."""
    kind = None if layout is None else layout.kind
    if kind is CsvKind.URI:
        return dense_uri_batch(data, shape)
    if layout is not None and kind is CsvKind.HEADER and layout.uri_col == 0:
        # No comma in the block: each row is one field, read as a URI line is (the key
        # verbatim), as pandas `to_csv` writes a one-column frame after its `uri` header.
        if b"," not in data:
            return dense_uri_batch(data, shape)
        return dense_uri_columns_batch(data, shape, version_col=layout.version_col)
    if kind is CsvKind.BATCH and _is_bare_pair(data):
        batch = dense_csv_batch(data, shape)
        if batch is not None:
            return batch
    # header CSV, Inventory, quoted or versioned Batch rows (`manifest.dense_columns`)
    columns = columns_check(layout)
    return None if columns is None else columns(data, shape)


def _is_bare_pair(data: bytes) -> bool:
    """Whether a block's first line is a bare `bucket,key` row: `dense_csv_batch`'s shape.

    Other Batch rows (quoted, or with a version) take the columns check alone: trying the
    `bucket,key` proof first cost a wasted search over every block of them.
    """
    first = data[: data.find(b"\n")]
    return first.count(b",") == 1 and b'"' not in first


def _is_dense(piece: Item | ProvedBatch) -> bool:
    return isinstance(piece, ProvedBatch)


def iter_records_from_stream(
    stream: BinaryIO,
    fmt: ManifestFormat,
    *,
    first_line: int = 1,
    start_offset: int = 0,
    layout: CsvLayout | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[Item]:
    """Yield records and line errors from a decompressed stream (no position tracking needed).

    Use `RecordReader` directly when you need `position` after each item.
    """
    return iter(
        RecordReader(
            stream,
            fmt,
            first_line=first_line,
            start_offset=start_offset,
            layout=layout,
            max_line_bytes=max_line_bytes,
        )
    )
