"""Prove a block of manifest lines to be one plain shape, with C-speed byte operations.

The checks behind `DenseBatch` (see `pipeline.manifest.batch` for why): each takes the bytes
of whole newline-terminated lines and returns a batch only when every line is one the
reference parser (`pipeline.manifest.parse`) would turn into a record verbatim, so the two
paths can never disagree; otherwise None, and the caller parses line by line. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from pipeline.manifest.batch import LOOPED_BUCKETS, DenseBatch, line_starts

if TYPE_CHECKING:
    import numpy.typing as npt
from pipeline.manifest.parse import decode_key


def _ordinary(special: bytes) -> bytes:
    r"""Bytes that carry no structure: printable ASCII but `special`, and all non-ASCII.

    Deleting them with `bytes.translate` leaves a line's skeleton. Control bytes, DEL, `"`
    and `\\` are never ordinary: they would need JSON escaping, so a line holding one takes the
    reference path and the chunk-size arithmetic below stays exact.
    """
    excluded = set(special) | set(b'"\\')
    printable = set(range(ord(" "), ord("~") + 1)) - excluded
    return bytes(b for b in range(256) if b in printable or not chr(b).isascii())


_CSV_SKELETON, _CSV_SKELETON_CRLF = b",\n", b",\r\n"
_CSV_ITEM_DELTA = 7
"""`[line,"b","k"]` is the row `b,k` (len - 1 comma) + brackets, 4 quotes, 2 commas + digits."""
_URI_ORDINARY = _ordinary(b"")
_FIRST_PRINTABLE, _CR, _NEWLINE, _COMMA = ord(" "), ord("\r"), ord("\n"), ord(",")
_WORD, _WORDS = 8, np.dtype("<u8")
_URI_SCHEME = b"s3://"
_URI_ITEM_DELTA = 2
"""A row `s3://b/k` is b + k + 6 bytes; its item `[n,"b","k"]` b + k + 8 + digits."""
_ESCAPE = re.compile(rb"%[0-9A-Fa-f]{2}")
_HARD_ESCAPE = re.compile(rb"%(?:[0189A-Fa-f][0-9A-Fa-f]|22|5[Cc]|7[Ff])")
"""Escapes whose byte is not plain ASCII in JSON: control, `"`, `\\`, DEL, or non-ASCII."""


_Batch = TypeVar("_Batch", bound=DenseBatch)


@dataclass(frozen=True, slots=True)
class DenseShape:
    """What a dense check needs besides the block: where it sits and what is already known."""

    first_line: int
    start_offset: int
    buckets: Sequence[bytes]
    max_line_bytes: int
    part: int = 0

    @property
    def looped_buckets(self) -> Sequence[bytes]:
        """The buckets a proof that tries them one at a time takes (`LOOPED_BUCKETS`)."""
        return self.buckets[:LOOPED_BUCKETS]

    def batch(
        self,
        data: bytes,
        rows: list[bytes] | None,
        form: _Form,
        *,
        starts: npt.NDArray[np.int64] | None = None,
        escape_counts: Sequence[int] | None = None,
        kind: type[_Batch] = DenseBatch,  # type: ignore[assignment]
        **extra: Any,
    ) -> _Batch | None:
        """The batch, unless a line is over the length limit (it must become a failure).

        `rows` are the rows a check built already, or None: then each row is its line less
        `form.line_extra` bytes (cut from `data` at `form.row_end` only if someone asks), and
        the lengths come from the newline positions alone. A row no longer than
        `form.min_row_bytes` may be `bucket,` with an empty key: then `form.empty_key` is
        searched for (a slow multi-byte search, so only when needed). `starts` are
        `line_starts(data)`, when the check computed them already; `escape_counts` the
        escapes before each row, when the check found them (else a chunk counts `%` itself).
        `kind` is the `DenseBatch` subclass to build, `extra` its own fields (item sums from
        a proof, a layout).
        """
        if rows is None:
            starts = line_starts(data) if starts is None else starts
            widths = np.diff(starts)  # each line with its newline
            longest, shortest_row = int(widths.max()) - 1, int(widths.min()) - form.line_extra
        else:
            lengths = list(map(len, rows))
            starts = list(accumulate(map(form.line_extra.__add__, lengths), initial=0))
            longest, shortest_row = max(lengths) + form.line_extra - 1, min(lengths)
        if longest > self.max_line_bytes:
            return None
        shortest = max(map(len, self.buckets)) + form.min_row_bytes
        if shortest_row <= shortest and form.empty_key in data:
            return None
        return kind(
            self.first_line,
            self.start_offset,
            starts,
            form.item_delta,
            form.parse_row,
            end_line=self.first_line + len(starts) - 1,
            end_offset=self.start_offset + len(data),
            line_extra=form.line_extra,
            escaped=data if form.is_escaped else None,
            escape_saves=form.escape_saves,
            escape_counts=escape_counts,
            part=self.part,
            buckets=tuple(self.buckets),
            data=data,
            row_end=form.row_end,
            given_rows=rows,
            **extra,
        )


@dataclass(frozen=True, slots=True)
class _Form:
    """How rows of one proved shape are measured and parsed."""

    item_delta: int
    parse_row: Callable[[bytes], tuple[str, ...]]
    line_extra: int
    min_row_bytes: int  # a row of the bucket plus this many bytes has an empty key
    empty_key: bytes
    is_escaped: bool = False
    row_end: bytes = b"\n"  # where `data` is split into rows (when no rows are given)
    escape_saves: int = 2  # with `is_escaped`: bytes an escape (`%XX`, JSON's `\/`) saves


def _csv_row(row: bytes) -> tuple[str, str]:
    bucket, key = row.decode().split(",")
    return bucket, key


def _csv_crlf_row(row: bytes) -> tuple[str, str]:
    bucket, key = row[:-1].decode().split(",")
    return bucket, key


def _csv_encoded_row(row: bytes) -> tuple[str, str]:
    bucket, key = row.decode().removesuffix("\r").split(",")
    return bucket, decode_key(key, 0)  # type: ignore[return-value]  # proved decodable


def _uri_row(row: bytes) -> tuple[str, str]:
    bucket, _, key = row[5:].decode().partition("/")
    return bucket, key


def _uri_crlf_row(row: bytes) -> tuple[str, str]:
    bucket, _, key = row[5:-1].decode().partition("/")
    return bucket, key


def _jsonl_row(row: bytes) -> tuple[str, str]:
    parts = row.decode().split('"')
    return parts[3], unescape_slashes(parts[7])


def _jsonl_key_first_row(row: bytes) -> tuple[str, str]:
    parts = row.decode().split('"')
    return parts[7], unescape_slashes(parts[3])


def unescape_slashes(key: str) -> str:
    r"""A proved JSON key's `\/` escapes (pandas `to_json` writes every `/` so) as `/`.

    The dense JSON proofs take no other backslash, so this is the key's JSON decoding.
    """
    return key.replace("\\/", "/") if "\\" in key else key


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
    """True when each of the `n` lines starts with `fmt % bucket` for one of `buckets`.

    A line can match one bucket only (`fmt` ends the bucket with a byte no bucket name holds),
    so the counts add up to `n` exactly when every line matched; stop as soon as they do.
    """
    matched = 0
    for bucket in buckets:
        matched += _count_line_starts(data, fmt % bucket)
        if matched == n:
            return True
    return False


def _lines_start_with_a_bucket(
    data: bytes, starts: npt.NDArray[np.int64], buckets: Sequence[bytes], fmt: bytes
) -> bool:
    """`_all_start_with_a_bucket`, vectorized over the known line starts.

    Each line's first bytes are read as little-endian 8-byte words at the line starts (a
    19-byte prefix is three numpy gathers) instead of searching the whole block for each
    prefix. Exact: every line is longer than each prefix (else the search answers), so the
    words read lie inside the line. Past `LOOPED_BUCKETS` buckets, each line's bucket is
    looked up in a table instead (`_lines_name_a_bucket`): its cost does not grow with them.
    """
    heads = starts[:-1]
    longest = len(fmt % b"") + max(map(len, buckets), default=0)  # of the prefixes
    if not buckets or int(np.diff(starts).min()) <= max(_WORD, longest):
        return _all_start_with_a_bucket(data, len(heads), buckets[:LOOPED_BUCKETS], fmt)
    if len(buckets) > LOOPED_BUCKETS:
        return _lines_name_a_bucket(data, starts, tuple(buckets), fmt)
    matched = np.zeros(len(heads), bool)
    for prefix in (fmt % bucket for bucket in buckets):
        matched |= frame_matches(data, heads, prefix)
        if matched.all():
            return True
    return False


def frame_matches(
    data: bytes, at: npt.NDArray[np.int64], piece: bytes, *, backward: bool = False
) -> npt.NDArray[np.bool_]:
    """For each offset in `at`: whether `data[at : at + len(piece)] == piece`.

    The bytes are read as little-endian 8-byte words (a 21-byte piece is three gathers),
    each inside `[at, at + len(piece))`; a piece under 8 bytes is read from the word starting
    at `at`, or with `backward` from the one ending at `at + len(piece)` (for a piece at a
    record's end: that word lies inside a record of 8 bytes or more). Reads that would leave
    `data` are clipped into it, so a True for a piece that does not lie inside `data` means
    nothing: callers accept a match only for a record long enough to hold every piece read
    in it, and 8 bytes at least. `data` holds at least 8 bytes.
    """
    words = np.ndarray((len(data) - _WORD + 1,), _WORDS, data, strides=(1,))
    short = _WORD - len(piece)
    if short > 0:  # one word, its bytes past the piece masked off
        word = words[_inside(at - short if backward else at, len(words))]
        if backward:
            return (word >> np.uint64(8 * short)) == int.from_bytes(piece, "little")
        return (word & np.uint64((1 << 8 * len(piece)) - 1)) == int.from_bytes(piece, "little")
    hit = words[_inside(at, len(words))] == int.from_bytes(piece[:_WORD], "little")
    for offset in (*range(_WORD, len(piece) - _WORD, _WORD), len(piece) - _WORD):
        word = words[_inside(at + offset, len(words))]
        hit &= word == int.from_bytes(piece[offset : offset + _WORD], "little")
    return hit


def _inside(at: npt.NDArray[np.int64], size: int) -> npt.NDArray[np.int64]:
    """`at` clipped into [0, size); `at` ascends, so two reads tell when there is nothing to do."""
    if len(at) and (at[0] < 0 or at[-1] >= size):
        return np.clip(at, 0, size - 1)
    return at


@dataclass(frozen=True, slots=True)
class _BucketTable:
    """Known buckets as words, for `_lines_name_a_bucket`.

    A bucket of L bytes is its words at 0, 8, 16, … with the last one ending at L (it may
    overlap the one before); under 8 bytes, one word of its L bytes (the rest zero). Every
    bucket has `len(columns)` words, as many as the longest needs (a shorter one's last
    repeated), so that lines are compared a column at a time whatever their bucket's length.
    `hashes` (sorted) mix a bucket's length and words; `rows[i]` is the bucket whose hash is
    `hashes[i]`.
    """

    lengths: tuple[int, ...]  # every known length, longest first
    hashes: npt.NDArray[np.uint64]
    rows: npt.NDArray[np.intp]
    columns: tuple[npt.NDArray[np.uint64], ...]  # word c of every bucket
    sizes: npt.NDArray[np.int64]


_MIX = np.uint64(0x9E3779B97F4A7C15)


def _word_offsets(lengths: npt.NDArray[np.int64], column: int) -> npt.NDArray[np.int64]:
    """Where word `column` of a bucket of each length starts: 8 per column, none past the end."""
    return np.maximum(np.minimum(_WORD * column, lengths - _WORD), 0)


def _mixed(
    lengths: npt.NDArray[np.int64], columns: Sequence[npt.NDArray[np.uint64]]
) -> npt.NDArray[np.uint64]:
    """One 64-bit hash of each bucket's length and words (multiply and xor, wrapping)."""
    mixed = lengths.astype(np.uint64)
    with np.errstate(over="ignore"):
        for column in columns:
            mixed = (mixed ^ column) * _MIX
    return mixed


def _short_masks(lengths: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    """For lengths under 8: the mask of a word's first `length` bytes."""
    return (np.uint64(1) << (8 * lengths).astype(np.uint64)) - np.uint64(1)


@lru_cache(maxsize=8)
def _bucket_table(buckets: tuple[bytes, ...]) -> _BucketTable:
    sizes = np.array([len(b) for b in buckets], np.int64)
    padded = b"".join(b.ljust(64, b"\0") for b in buckets)
    flat = np.ndarray((len(padded) - _WORD + 1,), _WORDS, padded, strides=(1,))
    base = np.arange(len(buckets), dtype=np.int64) * 64
    width = max(1, -(-int(sizes.max()) // _WORD))
    columns = [flat[base + _word_offsets(sizes, c)] for c in range(width)]
    short = sizes < _WORD
    for column in columns:
        column[short] &= _short_masks(sizes[short])
    hashes = _mixed(sizes, columns)
    order = np.argsort(hashes, kind="stable")
    lengths = tuple(sorted(set(sizes.tolist()), reverse=True))
    return _BucketTable(lengths, hashes[order], order, tuple(columns), sizes)


def _lines_name_a_bucket(
    data: bytes, starts: npt.NDArray[np.int64], buckets: tuple[bytes, ...], fmt: bytes
) -> bool:
    """Whether each line starts `fmt % B` for a known bucket B, by table, not bucket by bucket.

    `fmt` is a prefix, the bucket, then one byte no bucket name holds (`/`, `,` or `"`).
    The caller made sure each line is longer than 8 bytes and its prefix.
    """
    prefix, _, rest = fmt.partition(b"%b")
    if int(starts[-2]) + len(prefix) + _WORD > len(data):
        return _all_start_with_a_bucket(data, len(starts) - 1, buckets[:LOOPED_BUCKETS], fmt)
    return bucket_lengths(data, starts[:-1], buckets, prefix, rest[:1]) is not None


def bucket_lengths(
    data: bytes, heads: npt.NDArray[np.int64], buckets: tuple[bytes, ...], prefix: bytes, end: bytes
) -> npt.NDArray[np.int64] | None:
    """The length of the known bucket after `prefix` at each head, then `end`; else None.

    `end` is a byte no bucket name holds (`/`, `,` or `"`): so a record naming bucket B has it
    at B's length after the prefix, and at no shorter known length. Each record's bucket
    length is therefore the shortest known length with that byte after it (one byte gather a
    known length); its bucket is then looked up in a table (`_bucket_table`) by a hash of its
    length and words, and its length and every word compared with the bucket's it found. A
    cost that does not grow with the buckets, where trying them in turn does. Exact: a
    record too short for what is read at it holds a newline there, which no prefix or bucket
    holds. None too when the last head has not 8 bytes after its prefix.
    """
    table = _bucket_table(buckets)
    at = heads + len(prefix)  # each record's bucket, if it names one
    if not len(heads) or int(at[-1]) + _WORD > len(data):
        return None
    if prefix and not frame_matches(data, heads, prefix).all():
        return None
    block, last, end_byte = np.frombuffer(data, np.uint8), len(data) - 1, end[0]
    lengths = np.zeros(len(heads), np.int64)
    for size in table.lengths:  # longest first: the shortest length that fits wins
        lengths[block[np.minimum(at + size, last)] == end_byte] = size
    return lengths if _name_known_buckets(data, at, lengths, table) else None


def bucket_lengths_before(
    data: bytes, tails: npt.NDArray[np.int64], buckets: tuple[bytes, ...], start: bytes
) -> npt.NDArray[np.int64] | None:
    """`bucket_lengths` read backward: the known bucket ending at each tail, `start` before it.

    For a record that ends with its bucket (JSON Lines, key first: `…,"bucket":"B"}`).
    `start` is a byte no bucket name holds (`"`): the shortest known length with it right
    before wins, as `bucket_lengths` takes the byte after. Every byte read lies in the 8
    before each tail or between its bucket's start and the tail (a bucket under 8 bytes is
    read as the word ending at the tail); the caller proves each record wide enough to hold
    what was read in it.
    """
    table = _bucket_table(buckets)
    if not len(tails) or int(tails.min()) < _WORD:
        return None
    block, start_byte = np.frombuffer(data, np.uint8), start[0]
    lengths = np.zeros(len(tails), np.int64)
    for size in table.lengths:
        lengths[block[np.maximum(tails - size - 1, 0)] == start_byte] = size
    ok = _name_known_buckets(data, tails - lengths, lengths, table, backward=True)
    return lengths if ok else None


def _name_known_buckets(
    data: bytes,
    at: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    table: _BucketTable,
    *,
    backward: bool = False,
) -> bool:
    """Whether the `lengths[i]` bytes at `at[i]` are a known bucket, for every i, by `table`.

    A bucket under 8 bytes is read as the word starting at it, its bytes past the bucket
    masked off, or with `backward` as the word ending with it, shifted down: the same value.
    """
    if not (lengths > 0).all():  # (a length past the record's end: its newline fails below)
        return False
    words = np.ndarray((len(data) - _WORD + 1,), _WORDS, data, strides=(1,))
    last = len(words) - 1  # read backward, a short bucket's word from its start may pass it
    if len(table.lengths) == 1:  # one length: every record's words at the same offsets
        offsets = _word_offsets(np.array(table.lengths), np.arange(len(table.columns)))
        columns = [words[np.minimum(at + int(offset), last)] for offset in offsets]
    else:
        columns = [
            words[np.minimum(at + _word_offsets(lengths, c), last)]
            for c in range(len(table.columns))
        ]
    short = lengths < _WORD
    if short.any():
        if backward:  # every column of a short bucket is its one word, read again
            size = lengths[short]
            word = words[at[short] + size - _WORD] >> (8 * (_WORD - size)).astype(np.uint64)
            for column in columns:
                column[short] = word
        else:
            for column in columns:
                column[short] &= _short_masks(lengths[short])
    found = np.searchsorted(table.hashes, _mixed(lengths, columns))
    rows = table.rows.take(np.minimum(found, len(table.rows) - 1))
    if not (table.sizes.take(rows) == lengths).all():
        return False
    pairs = zip(columns, table.columns, strict=True)
    return all(bool((column == known.take(rows)).all()) for column, known in pairs)


def _uri_line_starts(data: bytes, is_crlf: bool) -> npt.NDArray[np.int64] | None:
    r"""`line_starts(data)` when only the line ends are not `_URI_ORDINARY` bytes; else None.

    The same fact as `data.translate(None, _URI_ORDINARY) == b"\n" * n` (or `b"\r\n" * n`
    with a CR ending every line), with the line starts found in the same pass: no quote,
    backslash or DEL (`in` is a memchr), and the control bytes, found by one numpy compare,
    are exactly the newlines (or CR, newline pairs).
    """
    if b'"' in data or b"\\" in data or b"\x7f" in data:
        return None
    return line_starts_if_controls_end_lines(data, is_crlf)


def line_starts_if_controls_end_lines(data: bytes, is_crlf: bool) -> npt.NDArray[np.int64] | None:
    """`line_starts(data)` when the control bytes are exactly the line ends; else None.

    One numpy compare finds the control bytes: they must all be newlines, or with `is_crlf`
    alternate CR, newline, each CR right before its newline.
    """
    block = np.frombuffer(data, np.uint8)
    controls = np.flatnonzero(block < _FIRST_PRINTABLE)
    if not is_crlf:
        ends = controls
    elif len(controls) % 2 or not (block[controls[::2]] == _CR).all():
        return None
    else:
        ends = controls[1::2]
        if not (ends - controls[::2] == 1).all():
            return None
    if not (block[ends] == _NEWLINE).all():
        return None
    starts = np.empty(len(ends) + 1, np.int64)
    starts[0] = 0
    np.add(ends, 1, out=starts[1:])
    return starts


def _csv_line_starts(data: bytes, is_crlf: bool) -> npt.NDArray[np.int64] | None:
    r"""`line_starts(data)` when the line ends and one comma a line are its only special bytes.

    With the check that every line starts `bucket,` (a bucket name holds no comma), this is the
    translate proof `data.translate(None, _ordinary(b",")) == b",\n" * n` (or `b",\r\n" * n`
    with a CR ending every line) in one numpy pass instead of two: the controls are exactly
    the line ends (`_uri_line_starts`, which also finds the starts), and the block holds `n`
    commas, so with one at the bucket's end of each line there is no other. Else None.
    """
    starts = _uri_line_starts(data, is_crlf)
    # numpy counts a byte ~3x faster than `bytes.count` (a compare, then a popcount)
    if (
        starts is None
        or np.count_nonzero(np.frombuffer(data, np.uint8) == _COMMA) != len(starts) - 1
    ):
        return None
    return starts


def _has_plain_escapes(data: bytes) -> bool:
    """True when every `%` starts an escape of a plain ASCII byte.

    Then each escape decodes to one byte that JSON writes as itself, so a key's item size is
    its row length less 2 bytes an escape, and every run of escapes is valid UTF-8 (the
    reference parser decodes each run on its own: `manifest_parse.decode_key`).
    """
    return len(_ESCAPE.findall(data)) == data.count(b"%") and _HARD_ESCAPE.search(data) is None


def dense_csv_batch(data: bytes, shape: DenseShape) -> DenseBatch | None:
    r"""A `DenseBatch` when every line is a `bucket,key` row with a simply encoded key.

    Proof, for the `n` newline-terminated lines of `data`: what is left after deleting ordinary
    bytes is exactly `",\n" * n`, or `",\r\n" * n` with a CR ending every line (one comma
    a line; no quote, backslash, control byte or blank line: `_csv_line_starts` with the
    next check), every line starts `bucket,` with an already-validated bucket, no key is
    empty, the bytes are UTF-8, and every `%` is an escape of a plain ASCII byte (`+` is a
    space: same length). Else None.
    """
    is_crlf = b"\r" in data
    skeleton = _CSV_SKELETON_CRLF if is_crlf else _CSV_SKELETON
    starts = _csv_line_starts(data, is_crlf)
    if starts is None:
        return None
    if not _lines_start_with_a_bucket(data, starts, shape.buckets, b"%b,"):
        return None
    if not _is_utf8(data):
        return None
    is_escaped = b"%" in data
    if is_escaped and not _has_plain_escapes(data):
        return None
    if is_escaped or b"+" in data:
        parse = _csv_encoded_row
    else:
        parse = _csv_crlf_row if is_crlf else _csv_row
    form = _Form(_CSV_ITEM_DELTA - is_crlf, parse, 1, 1 + is_crlf, skeleton, is_escaped)
    return shape.batch(data, None, form, starts=starts)


def dense_uri_batch(data: bytes, shape: DenseShape) -> DenseBatch | None:
    r"""A `DenseBatch` when every line is `s3://bucket/key` with a validated bucket.

    The reference parser (`parse.parse_csv_row` with the URI layout) takes such a line's key
    literally — `%`, `+` and `,` included — once the line is UTF-8 and its one trailing CR is
    dropped. Proof, for the `n` newline-terminated lines of `data`: deleting ordinary bytes
    leaves exactly `"\n" * n`, or `"\r\n" * n` with a CR ending every line (so no quote — a
    line starting with one is CSV-quoted —, backslash or control byte, which JSON would escape),
    every line starts `s3://bucket/` with an already-validated bucket (a bucket name holds no
    `/`, so a line matches one bucket at most), no key is empty, the bytes are UTF-8. Else None.
    """
    is_crlf = b"\r" in data
    skeleton = b"\r\n" if is_crlf else b"\n"
    starts = _uri_line_starts(data, is_crlf)
    if starts is None:
        return None
    if not _lines_start_with_a_bucket(data, starts, shape.buckets, _URI_SCHEME + b"%b/"):
        return None
    if not _is_utf8(data):
        return None
    parse = _uri_crlf_row if is_crlf else _uri_row
    # `s3://B/` (+ CR) is a row with an empty key: 6 bytes (7 with a CR) more than its bucket
    form = _Form(_URI_ITEM_DELTA - is_crlf, parse, 1, 6 + is_crlf, b"/" + skeleton)
    return shape.batch(data, None, form, starts=starts)
