r"""Prove JSON Lines of flat objects laid out like the block's first line plain, for `scan`.

JSON Lines with fields beside the record's (`{"bucket":"B","key":"K","size":123}`, a label,
a version) take no frame proof (`pipeline.manifest.dense_json`): `scan` read them a column at
a time, one `orjson` object a line and the columns cut out of them, ~1.2 µs a line against
~0.2 µs to decompress it (BENCHMARKS.md, "scan of the shapes read a column at a time").
Split sends such lines unparsed (`raw_lines`); `scan` must count them exactly, so it must
know each line is a record. Here that is proved for a whole block from one template: the
first line, parsed by orjson, with each string's role read from its field name.

Proof, for the n newline-terminated lines of the block (with no backslash, DEL or control
byte but the newlines, and UTF-8): every line holds the first line's number of quotes, all
inside it (one numpy search, reshaped a row a line); so every `"` opens or closes a string,
the i-th pair of a line being the i-th string of its object. Between strings, each line holds
the first line's bytes exactly, or for a number the same bytes around a JSON integer of up to
18 digits (no leading zero); the field names are the first line's; the bucket is a validated
one, the key (or the URI's key) not empty. Every line is then an object with the first
line's fields in its order, each value a string of plain bytes or an integer, which the
reference parser (`orjson.loads` + `parse.parse_json_value`) reads to the record whose parts
the proof measured: item sizes come from the strings' lengths. Anything else returns None
and the block goes as before. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from pipeline.manifest.dense import _Form, _is_utf8
from pipeline.manifest.dense_columns import SummedBatch, _version_sums
from pipeline.manifest.dense_json import (
    _WHITESPACE,
    _WHITESPACE_RUN,
    _WORD,
    _WORDS,
    _line_starts_if_only_line_ends,
)
from pipeline.manifest.parse import ManifestRecord, parse_json_line

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy.typing as npt

    from pipeline.manifest.batch import DenseBatch
    from pipeline.manifest.dense import DenseShape

_QUOTE, _ZERO, _NINE = ord('"'), ord("0"), ord("9")
_BYTEWISE_UP_TO = 2
"""Pieces this short are compared a byte at a time: fewer gathers than a word and its mask."""
_URI_PREFIX = b"s3://"
_ITEM_FRAME = len('[,"",""]')
_URI_FRAME = len("s3:///")
"""Bytes of `s3://B/K` that are neither bucket nor key."""
_NEVER_EMPTY = -(2**62)
_MAX_DIGITS = 18
"""Longer integers go the reference way (orjson refuses those past 64 bits)."""
_NUMBER = re.compile(
    rb"(:%b)(?:0|[1-9][0-9]{0,17})(%b[,}]%b)" % (_WHITESPACE_RUN, _WHITESPACE_RUN, _WHITESPACE_RUN)
)
_VERSION_NAMES = frozenset({"version_id", "versionId", "VersionId"})


class _Role(Enum):
    NAME = "name"
    BUCKET = "bucket"
    KEY = "key"
    URI = "uri"
    VERSION = "version"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class _Template:
    """The first line's layout: the bytes between its strings, and each string's role.

    `gaps[j]` are the bytes before string j (`gaps[-1]` those after the last), or for a number
    the (before, after) bytes around its digits; `roles[j]` and `names[j]` say what string j
    is (a field name holds its name).
    """

    gaps: tuple[bytes | tuple[bytes, bytes], ...]
    roles: tuple[_Role, ...]
    names: tuple[bytes, ...]

    @property
    def quotes(self) -> int:
        return 2 * len(self.roles)


def dense_template_batch(data: bytes, shape: DenseShape) -> DenseBatch | None:
    """The block as one batch when every line is laid out like its first (module docstring)."""
    template = _template(data[: data.find(b"\n")])
    plain = None if template is None else plain_lines(data)
    if template is None or plain is None:
        return None
    block, starts = plain
    pairs = found_a_line(block, starts, _QUOTE, template.quotes)
    if pairs is None:
        return None
    sizes = _sizes(block, pairs, starts[:-1], starts[1:] - 1, template, shape.looped_buckets)  # type: ignore[arg-type]
    if sizes is None or not _is_utf8(data):
        return None
    return summed_batch(shape, data, starts, sizes, _template_row, line_extra=1)


def summed_batch(
    shape: DenseShape,
    data: bytes,
    starts: npt.NDArray[np.int64],
    sizes: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64] | None],
    parse_row: Callable[[bytes], tuple[str, ...]],
    *,
    line_extra: int,
    kind: type[SummedBatch] = SummedBatch,
    **extra: Any,
) -> SummedBatch | None:
    """A proved block's batch, or None for a row over the length limit.

    Its rows start at `starts`, each read by `parse_row` less `line_extra` bytes; `sizes` are
    each row's bucket + key bytes and the versions' prefix sums. Built as `kind`, with `extra`
    fields.
    """
    items, versions = sizes
    form = _Form(_ITEM_FRAME, parse_row, line_extra, _NEVER_EMPTY, b"")
    return shape.batch(
        data,
        None,
        form,
        starts=starts,
        kind=kind,
        item_sums=_prefix_sums(items),
        version_sums=versions,
        **extra,
    )


def plain_lines(data: bytes) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]] | None:
    """The block and its line starts, when it holds no byte a laid-out row may not.

    No backslash, DEL or control byte but the newlines, the last byte one.
    """
    if b"\\" in data or b"\x7f" in data:
        return None
    starts = _line_starts_if_only_line_ends(data)
    return None if starts is None else (np.frombuffer(data, np.uint8), starts)


def found_a_line(
    block: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], byte: int, count: int
) -> npt.NDArray[np.intp] | None:
    """Where `byte` lies in each line of `block` (a row a line), when each holds `count`.

    One search finds them all, in order; as many in all as `count` a line, and each row's
    first and last inside its line (before the newline), so each line holds exactly `count`.
    """
    found = np.flatnonzero(block == byte)
    n = len(starts) - 1
    if len(found) != count * n:
        return None
    rows = found.reshape(n, count)
    if count and not ((rows[:, 0] >= starts[:-1]).all() and (rows[:, -1] < starts[1:] - 1).all()):
        return None
    return rows


def _template(line: bytes) -> _Template | None:
    """The layout of a first line that is a flat object of string and integer fields."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or not value:
        return None
    at = [m.start() for m in re.finditer(b'"', line)]
    if len(at) % 2 or len(at) < 4:  # noqa: PLR2004
        return None
    # the bytes before each string, and those after the last
    pieces = [line[: at[0]]] + [line[at[j] + 1 : at[j + 1]] for j in range(1, len(at) - 1, 2)]
    pieces.append(line[at[-1] + 1 :])
    strings = tuple(line[at[j] + 1 : at[j + 1]] for j in range(0, len(at), 2))
    gaps = tuple(map(_gap, pieces))
    roles = _roles(strings, pieces, gaps)
    if roles is None or None in gaps or not _layout_reads_a_record(value, roles, strings):
        return None
    return _Template(gaps, roles, strings)  # type: ignore[arg-type]  # no gap is None


def _roles(
    strings: tuple[bytes, ...],
    pieces: list[bytes],
    gaps: tuple[bytes | tuple[bytes, bytes] | None, ...],
) -> tuple[_Role, ...] | None:
    """Each string's role: a field name after `{` or `,`, else the named field's value."""
    roles: list[_Role] = []
    name: str | None = None
    for string, before, gap in zip(strings, pieces, gaps, strict=False):
        if before.rstrip(_WHITESPACE).endswith((b"{", b",")):
            name = string.decode()
            roles.append(_Role.NAME)
        elif (
            before.rstrip(_WHITESPACE).endswith(b":")
            and isinstance(gap, bytes)
            and name is not None
        ):
            roles.append(_value_role(name))
            name = None
        else:
            return None
    return tuple(roles)


def _gap(piece: bytes) -> bytes | tuple[bytes, bytes] | None:
    """The bytes between two strings, or (before, after) around the integer they hold."""
    if not any(48 <= b <= 57 for b in piece):  # noqa: PLR2004  # no digit: fixed bytes
        return piece if b"[" not in piece and b"{" not in piece[1:] else None
    number = _NUMBER.fullmatch(piece)
    return None if number is None else (number.group(1), number.group(2))


def _value_role(name: str) -> _Role:
    return {"bucket": _Role.BUCKET, "key": _Role.KEY, "uri": _Role.URI}.get(
        name, _Role.VERSION if name in _VERSION_NAMES else _Role.OTHER
    )


def _layout_reads_a_record(
    value: dict[str, object], roles: tuple[_Role, ...], names: tuple[bytes, ...]
) -> bool:
    """Whether every line laid out so is read to a record, its parts in the strings measured.

    Each field once, each value a string or an integer (no bool, float, null, array or
    object); a string `uri`, or string `bucket` and `key` (the `uri` is read first); at most
    one version field, a string.
    """
    field_names = [names[j].decode() for j, r in enumerate(roles) if r is _Role.NAME]
    if len(field_names) != len(value) or set(field_names) != set(value):
        return False
    if any(type(v) not in (str, int) for v in value.values()):
        return False
    string_roles = {r for r in roles if r is not _Role.NAME}
    versions = _VERSION_NAMES & set(value)
    if len(versions) > 1 or (versions and _Role.VERSION not in string_roles):
        return False
    if "uri" in value:
        return _Role.URI in string_roles
    return {_Role.BUCKET, _Role.KEY} <= string_roles


def _sizes(  # noqa: PLR0917
    block: npt.NDArray[np.uint8],
    pairs: npt.NDArray[np.intp],
    row_starts: npt.NDArray[np.int64],
    row_ends: npt.NDArray[np.int64],
    template: _Template,
    buckets: list[bytes],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64] | None] | None:
    """Each row's bucket + key bytes and what its version adds; None unless laid out so.

    Row i runs over `[row_starts[i], row_ends[i])` of `block` (a line less its newline, or an
    array element after its separator) and `pairs[i]` are its quotes. Every row must hold
    the template's bytes between its strings and its field names.
    """
    if not _frames_hold(block, pairs, row_starts, row_ends, template):
        return None
    items = np.zeros(len(pairs), np.int64)
    versions = None
    for j, role in enumerate(template.roles):
        if role is _Role.NAME:
            continue
        start = pairs[:, 2 * j] + 1
        length = pairs[:, 2 * j + 1] - start
        if not _value_holds(block, start, length, role, buckets):
            return None
        if role in (_Role.BUCKET, _Role.KEY):
            items += length
        elif role is _Role.VERSION:
            versions = _version_sums(start, start + length)
    if _Role.URI in template.roles:  # a `uri` is read first: `bucket` and `key` are not
        j = template.roles.index(_Role.URI)
        items = (pairs[:, 2 * j + 1] - pairs[:, 2 * j] - 1 - _URI_FRAME).astype(np.int64)
    return items, versions


def _frames_hold(
    block: npt.NDArray[np.uint8],
    pairs: npt.NDArray[np.intp],
    row_starts: npt.NDArray[np.int64],
    row_ends: npt.NDArray[np.int64],
    template: _Template,
) -> bool:
    """Whether every row holds the template's bytes outside its values: gaps and field names.

    A field name and the fixed gaps on either side are one piece, compared at once (`,"key":"`
    is one word gather, not three compares). The piece's quotes are the row's next ones: the
    quotes in `pairs` are all the block's, and no gap holds one.
    """
    count = len(template.roles)

    def gap_start(j: int) -> npt.NDArray[np.int64]:
        return row_starts if j == 0 else pairs[:, 2 * j - 1] + 1

    def gap_end(j: int) -> npt.NDArray[np.int64]:
        return pairs[:, 2 * j] if j < count else row_ends

    compared: set[int] = set()
    for j in (j for j, role in enumerate(template.roles) if role is _Role.NAME):
        lead, tail = template.gaps[j], template.gaps[j + 1]
        piece, start, end = b'"%b"' % template.names[j], pairs[:, 2 * j], pairs[:, 2 * j + 1] + 1
        if isinstance(lead, bytes):
            piece, start = lead + piece, gap_start(j)
            compared.add(j)
        if isinstance(tail, bytes) and j + 1 < count:
            piece, end = piece + tail, gap_end(j + 1)
            compared.add(j + 1)
        if not ((end - start == len(piece)).all() and _equal(block, start, piece)):
            return False
    return all(
        _gap_holds(block, gap_start(j), gap_end(j), gap)
        for j, gap in enumerate(template.gaps)
        if j not in compared
    )


def _value_holds(
    block: npt.NDArray[np.uint8],
    start: npt.NDArray[np.intp],
    length: npt.NDArray[np.intp],
    role: _Role,
    buckets: list[bytes],
) -> bool:
    """Whether value j of every row (at `start`, `length` long) is what its role needs."""
    if role is _Role.KEY:
        return bool((length > 0).all())
    if role in (_Role.BUCKET, _Role.URI):
        return _names_a_known_bucket(block, start, length, buckets, uri=role is _Role.URI)
    return True


def _gap_holds(
    block: npt.NDArray[np.uint8],
    start: npt.NDArray[np.intp],
    end: npt.NDArray[np.intp],
    gap: bytes | tuple[bytes, bytes],
) -> bool:
    """Whether every line holds `gap` between `start` and `end` (an integer, for a pair)."""
    if isinstance(gap, bytes):
        return bool((end - start == len(gap)).all()) and _equal(block, start, gap)
    before, after = gap
    digits = end - start - len(before) - len(after)
    if not ((digits >= 1) & (digits <= _MAX_DIGITS)).all():
        return False
    if not (_equal(block, start, before) and _equal(block, end - len(after), after)):
        return False
    first = start + len(before)
    last = len(block) - 1
    for k in range(int(digits.max())):
        at = np.minimum(first + k, last)
        byte = block[at]
        is_digit = (byte >= _ZERO) & (byte <= _NINE)
        if not (is_digit | (digits <= k)).all():
            return False
    return bool(((block[first] != _ZERO) | (digits == 1)).all())


def _equal(block: npt.NDArray[np.uint8], at: npt.NDArray[np.intp], piece: bytes) -> bool:
    """Whether `block[at + k] == piece[k]` for every offset in `at` and every k."""
    return bool(_equal_mask(block, at, piece).all())


def _equal_mask(
    block: npt.NDArray[np.uint8], at: npt.NDArray[np.intp], piece: bytes
) -> npt.NDArray[np.bool_]:
    """For each offset in `at` (ascending): whether `piece` lies there (False past the block).

    A piece of 3 bytes or more is read as little-endian 8-byte words, a gather for 8 bytes
    (a 19-byte `s3://bucket/` prefix is three gathers, not nineteen); a shorter one a byte at
    a time, which gathers less. The last offsets, where a read would leave the block, are
    compared a byte at a time with the block's end in mind.
    """
    step = _WORD if len(piece) > _BYTEWISE_UP_TO else 1
    count = len(block) - step + 1
    words = block if step == 1 else np.ndarray((max(count, 0),), _WORDS, block, strides=(1,))
    inside = int(np.searchsorted(at, count - 1 - (len(piece) - 1) // step * step, "right"))
    hit = np.ones(len(at), bool)
    head = at[:inside]
    for offset in range(0, len(piece), step):
        chunk = piece[offset : offset + step]
        word = words[head + offset if offset else head]  # (`take` would copy a strided view)
        if len(chunk) < step:
            word &= np.uint64((1 << 8 * len(chunk)) - 1)
        hit[:inside] &= word == int.from_bytes(chunk, "little")
    if inside < len(at):
        last = len(block) - 1
        tail = at[inside:]
        for k, byte in enumerate(piece):
            hit[inside:] &= (tail + k <= last) & (block.take(np.minimum(tail + k, last)) == byte)
    return hit


def _names_a_known_bucket(
    block: npt.NDArray[np.uint8],
    start: npt.NDArray[np.intp],
    length: npt.NDArray[np.intp],
    buckets: list[bytes],
    *,
    uri: bool,
) -> bool:
    """Whether every value (at `start`, `length` long) names a known bucket.

    The value is the bucket itself, or with `uri` an `s3://B/` URI with a key after it.
    """
    matched = np.zeros(len(start), bool)
    for bucket in buckets:
        if uri:
            prefix = _URI_PREFIX + bucket + b"/"
            matched |= (length > len(prefix)) & _equal_mask(block, start, prefix)
        else:
            matched |= (length == len(bucket)) & _equal_mask(block, start, bucket)
        if matched.all():
            return True
    return False


def _prefix_sums(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    sums = np.zeros(len(values) + 1, np.int64)
    np.cumsum(values, out=sums[1:])
    return sums


def _template_row(row: bytes) -> tuple[str, ...]:
    """A proved line's record parts, read by the reference parser itself."""
    record = parse_json_line(row, 0)
    if not isinstance(record, ManifestRecord):  # cannot be: the proof took the line
        raise ValueError(f"a proved line is no record: {record}")
    parts = (record.bucket, record.key)
    return parts if record.version_id is None else (*parts, record.version_id)
