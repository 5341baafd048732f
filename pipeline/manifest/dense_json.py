r"""Prove JSON Lines blocks and JSON array spans plain from each record's frame, vectorized.

A plain JSON record is `{"bucket":"B","key":"K"}` (or `{"key":"K","bucket":"B"}`, or, in
JSON Lines, `{"uri":"s3://B/K"}`): a fixed frame around one validated bucket and one key, in
the spelling of the block's first record (compact, or `json.dumps`'s spaces: `json_spelling`).
The earlier proofs deleted every string byte with `bytes.translate` and compared the skeleton
left, then counted the frame with `count` over the whole block: three C passes over every
byte, ~1/3 of `scan`'s time on JSON. Here the records are found once (one numpy search for the
byte that ends each: the newline, or an array element's `}`), and the frame is read at those
offsets only: 8-byte words gathered at each record's start and end, compared with the frame of
each known bucket. What is left to prove about the key between the two frame pieces is that
it holds no byte JSON treats specially inside a string; that is counted over the whole block
at once: the block's `"` count is exactly the frames' quotes, its control bytes are exactly
the record ends (and the separators' whitespace), and it holds no DEL and no backslash but
those of `\/` escapes, which pandas writes for every `/` (JSON Lines only). Then every record
is exactly what the reference parser (`orjson.loads` + `parse.parse_json_value`) gives, the
key taken byte for byte (`{`, `}`, `:`, `,` included: orjson reads them as string bytes;
`\/` read as `/`), so the two paths can never disagree; anything else returns None and goes
record by record. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from pipeline.manifest.batch import LOOPED_BUCKETS, DenseBatch
from pipeline.manifest.dense import (
    DenseShape,
    _Form,
    _is_utf8,
    _jsonl_key_first_row,
    _jsonl_row,
    bucket_lengths,
    bucket_lengths_before,
    frame_matches,
    line_starts_if_controls_end_lines,
    unescape_slashes,
)
from pipeline.manifest.json_spelling import COMPACT, SPACED, JsonSpelling

if TYPE_CHECKING:
    import numpy.typing as npt

_WORD, _WORDS = 8, np.dtype("<u8")
_QUOTE, _CLOSE, _FIRST_PRINTABLE = ord('"'), ord("}"), ord(" ")
_CR = ord("\r")
_BACKSLASH, _SLASH = ord("\\"), ord("/")
_NO_ESCAPES = np.empty(0, np.intp)
_QUOTES_A_RECORD = 8
"""`{"bucket":"B","key":"K"}` in either order: 8 quotes, none inside a plain string."""
_NEVER_EMPTY = -(2**62)
"""`_Form.min_row_bytes` that skips `DenseShape.batch`'s empty-key search: done here."""
_BUCKET_OPEN = COMPACT.bucket_open
_ELEMENT_END = b'"}'
_EOLS = (b"\n", b"\r\n")
"""The line ends a JSON Lines block may have, each the same on every line: a writer on Windows
(Python's text mode, .NET) ends every line with CRLF."""
_WHITESPACE = b" \t\r\n"
_WHITESPACE_RUN = rb"[ \t\r\n]*"
"""Any run of JSON's whitespace (`_WHITESPACE`), as a regular expression's fragment."""
_URI_QUOTES = 4
"""`{"uri":"s3://B/K"}`: 4 quotes, none inside a plain string."""
_ROW_ITEM_DELTA = COMPACT.row_item_delta
"""A row `{"bucket":"b","key":"k` (or `{"key":"k","bucket":"b`) is b + k + 20 bytes; its item
`[n,"b","k"]` b + k + 8 + digits."""
BUCKET_FIRST, KEY_FIRST, URI = "bucket first", "key first", "uri"


def _bucket_needs(
    data: bytes,
    anchors: npt.NDArray[np.int64],
    pieces: Sequence[bytes],
    extra: int,
    *,
    at_end: bool = False,
) -> npt.NDArray[np.int64] | None:
    """Each record's width its bucket's frame needs, or None when one matches no bucket.

    `pieces[b]` is bucket b's frame piece, read at `anchors` (the record starts), or ending at
    them with `at_end` (the record ends); a record matching it needs `len(pieces[b]) + extra`
    bytes. The first bucket to match counts (only one can match a whole record: a bucket
    holds no quote), so buckets stop once every record has one.
    """
    need = np.zeros(len(anchors), np.int64)
    for piece in pieces:
        at = anchors - len(piece) if at_end else anchors
        hit = frame_matches(data, at, piece, backward=at_end)
        if piece is pieces[0] and hit.all():  # the common case: one bucket, every record
            need.fill(len(piece) + extra)
            return need
        hit &= need == 0
        need[hit] = len(piece) + extra
        if need.all():
            return need
    return None


def _record_needs(
    data: bytes,
    heads: npt.NDArray[np.int64],
    shape: DenseShape,
    fmt: bytes,
    pieces: Sequence[bytes],
    *,
    extra: int,
) -> npt.NDArray[np.int64] | None:
    """`_bucket_needs` of `pieces`, `fmt % B` for every known bucket B, at the record starts.

    Past `LOOPED_BUCKETS` buckets, each record's bucket is looked up in a table
    (`dense.bucket_lengths`) instead of trying the buckets in turn; the bytes of `fmt` after
    the bucket's closing quote or `/` are then gathered at each record's bucket end.
    """
    if len(shape.buckets) <= LOOPED_BUCKETS:
        return _bucket_needs(data, heads, pieces, extra)
    prefix, _, rest = fmt.partition(b"%b")
    lengths = bucket_lengths(data, heads, tuple(shape.buckets), prefix, rest[:1])
    if lengths is None:
        return None
    after = heads + len(prefix) + lengths + 1
    if len(rest) > 1 and not frame_matches(data, after, rest[1:]).all():
        return None
    return lengths + (len(prefix) + len(rest) + extra)


def _key_first_table_needs(
    data: bytes,
    ends: npt.NDArray[np.int64],
    shape: DenseShape,
    spelling: JsonSpelling,
    eol: bytes,
    *,
    extra: int,
) -> npt.NDArray[np.int64] | None:
    """Each key-first record's width its `","bucket":"B"}` end needs, or None, by table.

    Past `LOOPED_BUCKETS` buckets: each record's bucket is looked up in a table read backward
    from its line end (`dense.bucket_lengths_before`), then the bytes before it
    (`","bucket":"`) and after it (`"}` and the line end) gathered.
    """
    before, _, after = spelling.key_first_end.partition(b"%b")
    after += eol
    tails = ends - len(after)
    lengths = bucket_lengths_before(data, tails, tuple(shape.buckets), before[-1:])
    if lengths is None:
        return None
    if not frame_matches(data, tails, after, backward=True).all():
        return None
    if not frame_matches(data, tails - lengths - len(before), before).all():
        return None
    return lengths + (len(before) + len(after) + extra)


def _json_specials_are_the_frames(
    block: npt.NDArray[np.uint8], n: int, quotes: int = _QUOTES_A_RECORD
) -> bool:
    """True when `block` holds exactly `n` records' worth of quotes (and the frames hold them)."""
    return int(np.count_nonzero(block == _QUOTE)) == quotes * n


def _controls_are_the_frames(
    block: npt.NDArray[np.uint8], rows: int, frame: tuple[bytes, ...]
) -> bool:
    """Whether the block's control bytes are as many as `rows` rows' frame pieces hold.

    Once the pieces (a separator, the fixed bytes around the values) are proved in every
    row, no control byte then lies in a string.
    """
    controls = sum(byte < _FIRST_PRINTABLE for piece in frame for byte in piece)
    return int(np.count_nonzero(block < _FIRST_PRINTABLE)) == controls * rows


def _first_line_framed(
    data: bytes, heads: tuple[bytes, ...], tails: tuple[bytes, ...], quotes: int
) -> bool:
    """Whether the first line (with its newline) has a head, a tail and a record's `quotes`.

    A look at one line, which every line must pass: a block of other records is turned away
    before the whole-block searches. JSON with a field beside the record's (a size, a
    version, a label: `scan` proves those by template) can share the head and the tail, not
    the quotes.
    """
    line = data[: data.find(b"\n") + 1]
    return line.startswith(heads) and line.endswith(tails) and line.count(b'"') == quotes


def _eol_of(data: bytes) -> bytes:
    """The line end of a block's first line: CRLF when a CR comes before its newline."""
    newline = data.find(b"\n")
    return b"\r\n" if newline > 0 and data[newline - 1] == _CR else b"\n"


def _line_starts_if_only_line_ends(data: bytes, eol: bytes = b"\n") -> npt.NDArray[np.int64] | None:
    """`batch.line_starts(data)` when the only control bytes are the `eol` line ends; else None.

    One ends the block (`dense.line_starts_if_controls_end_lines` does the rest).
    """
    if not data.endswith(b"\n"):
        return None
    return line_starts_if_controls_end_lines(data, len(eol) > 1)


def _spaced_row(row: bytes) -> tuple[str, str]:
    return _jsonl_row(row)  # the same split at the quotes: a function of its own names the form


def _spaced_key_first_row(row: bytes) -> tuple[str, str]:
    return _jsonl_key_first_row(row)


def _jsonl_uri_row(row: bytes) -> tuple[str, str]:
    bucket, _, key = row[len(COMPACT.uri_head) :].decode().partition("/")
    return bucket, unescape_slashes(key)


def _spaced_uri_row(row: bytes) -> tuple[str, str]:
    bucket, _, key = row[len(SPACED.uri_head) :].decode().partition("/")
    return bucket, unescape_slashes(key)


ROW_FORMS: dict[Callable[[bytes], tuple[str, ...]], tuple[str, JsonSpelling]] = {
    _jsonl_row: (BUCKET_FIRST, COMPACT),
    _jsonl_key_first_row: (KEY_FIRST, COMPACT),
    _jsonl_uri_row: (URI, COMPACT),
    _spaced_row: (BUCKET_FIRST, SPACED),
    _spaced_key_first_row: (KEY_FIRST, SPACED),
    _spaced_uri_row: (URI, SPACED),
}
"""Each JSON Lines row parser: the record form and spelling its batches hold (the chunk encoder
rewrites their frames)."""
_FORMS = {
    (order, spelling, eol): _Form(
        spelling.uri_item_delta if order == URI else spelling.row_item_delta,
        parse,
        len(_ELEMENT_END + eol),
        _NEVER_EMPTY,
        b"",
        row_end=_ELEMENT_END + eol,  # the rows are the same bytes whatever the line end
    )
    for parse, (order, spelling) in ROW_FORMS.items()
    for eol in _EOLS
}
_SLASH_ESCAPED_FORMS = {
    form: replace(form, is_escaped=True, escape_saves=1) for form in _FORMS.values()
}
"""The same forms for blocks whose keys hold `\\/` (each decodes to one byte less)."""


def _slash_escapes(data: bytes) -> npt.NDArray[np.intp] | None:
    r"""Where `data`'s `\/` escapes start, when every backslash starts one; else None.

    pandas `to_json` writes every `/` of a string as `\/` (ujson's default), so nearly every
    S3 key it writes holds some. With every backslash followed by `/`, none starts another
    escape (`\\/` holds a backslash followed by a backslash).
    """
    if b"\\" not in data:  # the common case: one memchr
        return _NO_ESCAPES
    block = np.frombuffer(data, np.uint8)
    at = np.flatnonzero(block == _BACKSLASH)
    if at[-1] + 1 == len(block) or not (np.take(block, at + 1) == _SLASH).all():
        return None
    return at


def _lines_and_escapes(
    data: bytes, eol: bytes
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]] | None:
    r"""A JSON Lines block's line starts and `\/` escapes, or None when it cannot be plain.

    None when the block holds a backslash that starts no `\/`, a DEL, or a control byte that
    is no part of an `eol` line end (the checks every JSON Lines proof begins with).
    """
    escapes = _slash_escapes(data)
    if len(data) < _WORD or escapes is None or b"\x7f" in data:
        return None
    starts = _line_starts_if_only_line_ends(data, eol)
    return None if starts is None else (starts, escapes)


def _escape_counts(
    at: npt.NDArray[np.intp], starts: npt.NDArray[np.int64]
) -> npt.NDArray[np.intp] | None:
    """The escapes at `at` counted before each row (item sizes need them a chunk); None: none."""
    return np.searchsorted(at, starts) if len(at) else None


def _form(order: str, spelling: JsonSpelling, eol: bytes, *, has_escapes: bool) -> _Form:
    form = _FORMS[order, spelling, eol]
    return _SLASH_ESCAPED_FORMS[form] if has_escapes else form


def dense_jsonl_uri_lines(
    data: bytes, shape: DenseShape, spelling: JsonSpelling = COMPACT
) -> DenseBatch | None:
    r"""A `DenseBatch` when every line is one plain `{"uri":"s3://B/K"}` record; else None.

    The record as `spelling` writes it (shown compact).

    B a validated bucket, K a non-empty JSON string holding no control byte and no escape but
    `\/`: the reference parser (`parse_json_value` → `parse_uri`) reads the bucket up to the
    first `/` (a bucket holds none) and takes the rest as the key, verbatim but for `\/`.
    Proof, as for `dense_jsonl_lines`: the control bytes are exactly the line ends; each line
    starts with `{"uri":"s3://B/` and ends with `"}` + its line end, with a byte between; the
    block holds 4n quotes (the frames' own), no DEL, and no backslash but before a `/`; it is
    UTF-8.
    """
    fmt = spelling.uri_head + b"%b/"
    pieces = tuple(fmt % bucket for bucket in shape.buckets)
    eol = _eol_of(data)
    line_end = _ELEMENT_END + eol
    if not _first_line_framed(data, pieces, (line_end,), _URI_QUOTES):
        return None
    lines = _lines_and_escapes(data, eol)
    if lines is None:
        return None
    starts, escapes = lines
    n, heads, ends = len(starts) - 1, starts[:-1], starts[1:]
    if not _json_specials_are_the_frames(np.frombuffer(data, np.uint8), n, _URI_QUOTES):
        return None
    need = _record_needs(data, heads, shape, fmt, pieces, extra=1 + len(line_end))
    if need is None or not (np.diff(starts) >= need).all():
        return None
    is_framed = frame_matches(data, ends - len(line_end), line_end, backward=True).all()
    if not is_framed or not _is_utf8(data):
        return None
    form = _form(URI, spelling, eol, has_escapes=len(escapes) > 0)
    counts = _escape_counts(escapes, starts)
    return shape.batch(data, None, form, starts=starts, escape_counts=counts)


def dense_jsonl_lines(
    data: bytes, shape: DenseShape, *, key_first: bool, spelling: JsonSpelling = COMPACT
) -> DenseBatch | None:
    r"""A `DenseBatch` when every line is one plain JSON record in the one key order; else None.

    A plain record: `{"bucket":"B","key":"K"}` (`{"key":"K","bucket":"B"}` with `key_first`)
    as `spelling` writes it (shown compact), B a validated bucket, K a non-empty JSON string
    holding no control byte and no escape but `\/` (read as `/`).

    Proof, for the n lines of `data`, each ended as the first is (a newline, or CRLF): the
    control bytes are exactly the line ends (one numpy search, which also gives the line
    starts); each line starts with `{"bucket":"B","key":"` and ends with `"}` + its line end
    (key first: starts `{"key":"`, ends `","bucket":"B"}` + its line end), gathered at the
    line starts and ends, with at least one byte between the two pieces (so they do not
    overlap and the key is not empty); the block holds 8n quotes (the frames' own: none in a
    key), no DEL, and no backslash but before a `/`; it is UTF-8.
    """
    eol = _eol_of(data)
    line_end = _ELEMENT_END + eol
    ends_of: tuple[bytes, ...] = ()  # each known bucket's record end (key first)
    opens: tuple[bytes, ...] = ()  # each known bucket's record start (bucket first)
    if key_first:
        ends_of = tuple(spelling.key_first_end % bucket + eol for bucket in shape.buckets)
        head_tail = ((spelling.key_open,), ends_of)
    else:
        opens = tuple(spelling.bucket_open % bucket for bucket in shape.buckets)
        head_tail = (opens, (line_end,))
    if not _first_line_framed(data, *head_tail, _QUOTES_A_RECORD):
        return None
    lines = _lines_and_escapes(data, eol)
    if lines is None:
        return None
    starts, escapes = lines
    n, heads, ends = len(starts) - 1, starts[:-1], starts[1:]
    if not _json_specials_are_the_frames(np.frombuffer(data, np.uint8), n):
        return None
    if key_first:
        fixed, fixed_at = spelling.key_open, heads
        if len(shape.buckets) <= LOOPED_BUCKETS:
            need = _bucket_needs(data, ends, ends_of, 1 + len(fixed), at_end=True)
        else:
            need = _key_first_table_needs(data, ends, shape, spelling, eol, extra=1 + len(fixed))
    else:
        fixed, fixed_at = line_end, ends - len(line_end)
        fmt = spelling.bucket_open
        need = _record_needs(data, heads, shape, fmt, opens, extra=1 + len(line_end))
    if need is None or not (np.diff(starts) >= need).all():
        return None
    is_framed = frame_matches(data, fixed_at, fixed, backward=not key_first).all()
    if not is_framed or not _is_utf8(data):
        return None
    order = KEY_FIRST if key_first else BUCKET_FIRST
    form = _form(order, spelling, eol, has_escapes=len(escapes) > 0)
    counts = _escape_counts(escapes, starts)
    return shape.batch(data, None, form, starts=starts, escape_counts=counts)
