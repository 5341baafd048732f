"""Read JSON Lines blocks and JSON array spans of any objects, or URIs, a column at a time.

The frame proofs (`pipeline.manifest.dense_json`, `dense_array`) take records that are nothing
but `bucket` and `key`, or `uri`, spelled as the block's first record is. Every other object —
one with a `version_id`, a `size` or a `label`, fields in another order, spaces of its own —
and every array of URI strings, or written on one line or indented (`json.dump`), went record
by record, at ~5 µs a record: `orjson.loads`, `parse_json_value`, a record and a restart point
each, ~1/15 of the decompression speed. Here a block's lines (an array span's elements:
`array_values_batch`) are parsed by orjson in one C-level pass, and the records are read out
of the values a column at a time (`bucket`, `key`, `uri`, version: `map`s of `itemgetter`,
one bucket check per distinct bucket); records and restart points are built only when Split
asks (`scan` never does). Costs ~0.5-1 µs a record, most of it orjson building each object.
A block holding a record the reference parser (`orjson.loads` + `parse.parse_json_value`)
would make a failure, or one over the length limit, returns None and goes record by record,
so the two paths never disagree.

The lines are parsed by one `orjson.loads` of them joined into an array when that is proved
to read each line as itself, a third cheaper than `map(orjson.loads, lines)`: every line
starts with `{` and ends with `}`, the block holds no other brace (its `{` and `}` counts are
its line count), and the parse gives as many elements as lines, each an object. Each object
is opened by its own `{` and there are as many `{` as objects, so every `{` opens one, and
none nests: element i opens at line i's first byte. It closes before element i + 1 opens, at
line i + 1's start, with a `}`; the only one in between is line i's last byte. So element i
is line i, byte for byte, and orjson reads a whole value the same wherever it stands. (Without
the brace count a string could swallow the next line's `{"`: tested.) A key holding a brace
makes the block take the parse a line. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from operator import contains, itemgetter
from typing import TYPE_CHECKING

import numpy as np
import orjson

from pipeline.manifest.batch import line_starts, summed_item_bytes, summed_item_sizes
from pipeline.manifest.dense_json import _WHITESPACE
from pipeline.manifest.parse import ManifestRecord, is_bucket_name, split_uri

if TYPE_CHECKING:
    import numpy.typing as npt

    from pipeline.failures import ManifestLineError
    from pipeline.manifest.dense import DenseShape

_OPEN, _CLOSE, _QUOTE = ord("{"), ord("}"), ord('"')
_ITEM_FRAME = len("[,,]")
"""An item `[n,"b","k"]` is the strings' JSON, the line's digits and these 4 bytes."""
_URI_PREFIX = "s3://"
PLAIN_JSON_BYTES = bytes(b for b in range(0x20, 0x7F) if b not in b'"\\')
"""Bytes orjson writes as they are: printable ASCII but the quote and the backslash."""


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    """Consecutive lines (JSON Lines, CSV) or array elements, each one record, read by column.

    `starts[i]` is line i's offset from `start_offset` (`starts[n]` the block's length);
    `item_sums[i]` the JSON size of the chunk items of records [0, i), line digits aside.
    `versions` is None when no record has one. Implements `batch.RecordBatch`.
    """

    first_line: int
    start_offset: int
    starts: npt.NDArray[np.int64]
    buckets: list[str]
    keys: list[str]
    versions: list[str | None] | None
    item_sums: npt.NDArray[np.int64]
    end_line: int
    end_offset: int
    part: int = 0
    failures: tuple[ManifestLineError, ...] = ()
    bucket_names: frozenset[str] = frozenset()  # every bucket the records name, once

    def __len__(self) -> int:
        return len(self.keys)

    def _fields(self, start: int, stop: int) -> zip[tuple[object, ...]]:
        lines = range(self.first_line + start, self.first_line + stop)
        columns = [lines, self.buckets[start:stop], self.keys[start:stop]]
        if self.versions is not None:
            columns.append(self.versions[start:stop])
        return zip(*columns, strict=True)

    def records(self, start: int, stop: int) -> list[ManifestRecord]:
        """Build records [start, stop)."""
        return [ManifestRecord(*fields) for fields in self._fields(start, stop)]  # type: ignore[arg-type]

    def items(self, start: int, stop: int) -> list[list[object]]:
        """Chunk message items `[line, bucket, key(, version)]` of records [start, stop)."""
        if self.versions is None:
            return [list(fields) for fields in self._fields(start, stop)]
        return [
            list(fields) if fields[3] is not None else list(fields[:3])
            for fields in self._fields(start, stop)
        ]

    def item_bytes(self, start: int, stop: int) -> int:
        """Sum of item sizes: the prefix sums' span and the lines' digits."""
        return summed_item_bytes(self.item_sums, self.first_line, start, stop)

    def item_sizes(self, start: int, stop: int) -> list[int]:
        """Item sizes one by one."""
        return summed_item_sizes(self.item_sums, self.first_line, start, stop)

    def resume_after(self, index: int) -> tuple[int, int]:
        """The line after record `index` and the offset past its newline."""
        return self.first_line + index + 1, self.start_offset + int(self.starts[index + 1])


def objects_batch(data: bytes, shape: DenseShape) -> ParsedBatch | None:
    r"""The block of `\n`-terminated lines as a `ParsedBatch`, when proved (module docstring).

    None when a line is not one flat-braced object, is over the length limit, or would be a
    failure: the caller then reads the block line by line.
    """
    starts = line_starts(data)
    n = len(starts) - 1
    if n == 0 or int(np.diff(starts).max()) - 1 > shape.max_line_bytes:
        return None
    values = _values(data, starts)
    return None if values is None else _batch(values, data, starts, shape)


def _batch(
    values: list[dict[str, object]] | list[str],
    data: bytes,
    starts: npt.NDArray[np.int64],
    shape: DenseShape,
) -> ParsedBatch | None:
    """The values' records as a batch, unless one would be a failure."""
    # `in` is one memchr; a `count` scans at ~1.6 GB/s (most blocks hold no backslash)
    slashes_only = b"\\" not in data or data.count(b"\\") == data.count(b"\\/")
    columns = _columns(values, data, slashes_only=slashes_only)
    if columns is None:
        return None
    return parsed_batch(columns, starts, data, shape, is_plain=slashes_only and data.isascii())


def parsed_batch(
    columns: tuple[list[str], list[str], list[str | None] | None],
    starts: npt.NDArray[np.int64],
    data: bytes,
    shape: DenseShape,
    *,
    is_plain: bool,
) -> ParsedBatch | None:
    """The batch of records read out by column (buckets, keys, versions) from `data`.

    None if a pair is no record (an empty key, a bucket without a bucket's name): the
    reference parser would make it a failure. `is_plain`: no bucket, key or version holds a
    byte orjson escapes, nor any non-ASCII.
    """
    buckets, keys, versions = columns
    names = frozenset(buckets)
    if not all(keys) or not all(map(is_bucket_name, names)):
        return None
    return ParsedBatch(
        shape.first_line,
        shape.start_offset,
        starts,
        buckets,
        keys,
        versions,
        _item_sums(buckets, keys, versions, is_plain=is_plain, names=names),
        shape.first_line + len(keys),
        shape.start_offset + len(data),
        shape.part,
        bucket_names=names,
    )


def array_values_batch(span: bytes, shape: DenseShape) -> ParsedBatch | None:
    """A span of JSON array elements, all objects of any shape or all URIs, as a batch.

    `span` runs from just past an element to just past a later one (`ArraySplitter`): a
    separator (whitespace, one `,`, whitespace), then elements and separators. It is read by
    one orjson parse of it made an array, which reads the elements the splitter would find
    one by one: the two agree on where each value of valid JSON ends, and a span cut inside
    an element is no valid array. Where each element ends (its restart point) comes from
    the delimiters: when the parse gives as many objects as the span holds `{` and `}`,
    every brace opens or closes one (module docstring), so element i runs from the i-th `{`
    to the i-th `}`; likewise with as many strings as `"` pairs, every `"` opens or closes one.
    """
    bounds = _element_bounds(span)
    if bounds is None:
        return None
    first, opens, closes, kind = bounds
    n = len(opens)
    if int((closes - opens).max()) + 1 > shape.max_line_bytes:
        return None  # an element over the limit must become a failure
    try:
        values = orjson.loads(b"[" + span[first:] + b"]")
    except orjson.JSONDecodeError:
        return None
    if len(values) != n or set(map(type, values)) != {kind}:
        return None
    starts = np.empty(n + 1, np.int64)
    starts[0] = 0
    np.add(closes, 1, out=starts[1:])
    return _batch(values, span, starts, shape)


def _element_bounds(
    span: bytes,
) -> tuple[int, npt.NDArray[np.intp], npt.NDArray[np.intp], type] | None:
    """The first element's offset, each element's delimiters if proved, their type; or None.

    Objects are delimited by braces, strings by quotes; the
    delimiters must pair up, the last closing the span, the separator before the first be
    one `,` in whitespace.
    """
    delimiter = _OPEN if b"{" in span else _QUOTE
    first = span.find(bytes((delimiter,)))
    if first < 0 or span[:first].strip(_WHITESPACE) != b",":
        return None
    block = np.frombuffer(span, np.uint8)
    if delimiter == _OPEN:
        opens, closes = np.flatnonzero(block == _OPEN), np.flatnonzero(block == _CLOSE)
        kind: type = dict
    else:  # an escaped quote would make more quotes than strings: the count refuses it
        quotes = np.flatnonzero(block == _QUOTE)
        opens, closes, kind = quotes[0::2], quotes[1::2], str
    if not len(closes) or len(opens) != len(closes) or closes[-1] != len(span) - 1:
        return None
    return first, opens, closes, kind


def _values(data: bytes, starts: npt.NDArray[np.int64]) -> list[dict[str, object]] | None:
    """Each line parsed by orjson, when every one is an object; else None.

    One parse of the lines joined into an array when that is proved to read each line as
    itself (module docstring): a third cheaper than a parse a line, which the rest take.
    """
    n = len(starts) - 1
    try:
        if _is_brace_framed(data, starts):
            values = orjson.loads(b"[" + data[:-1].replace(b"\n", b",") + b"]")
        else:
            lines = data.split(b"\n")
            lines.pop()
            values = list(map(orjson.loads, lines))
    except orjson.JSONDecodeError:
        return None  # some line is no JSON: the reference path says which
    if len(values) != n or set(map(type, values)) != {dict}:
        return None
    return values


def _is_brace_framed(data: bytes, starts: npt.NDArray[np.int64]) -> bool:
    """Whether every line starts with `{`, ends with `}` and holds no other brace."""
    n = len(starts) - 1
    block = np.frombuffer(data, np.uint8)  # numpy counts a byte ~6x as fast as `bytes.count`
    if np.count_nonzero(block == _OPEN) != n or np.count_nonzero(block == _CLOSE) != n:
        return False
    return bool((block[starts[:-1]] == _OPEN).all() and (block[starts[1:] - 2] == _CLOSE).all())


def _columns(
    values: list[dict[str, object]] | list[str], data: bytes, *, slashes_only: bool
) -> tuple[list[str], list[str], list[str | None] | None] | None:
    """Buckets, keys and versions as `parse.parse_json_value` reads them; None on any failure.

    `values` are all objects or all strings (URIs). Read by C-speed `map`s of `itemgetter`
    (a comprehension of `dict.get` cost 3x as much): a missing field raises, and the block
    goes the reference way, which says which line.
    """
    if isinstance(values[0], str):
        halves = uri_columns(values)  # type: ignore[arg-type]
        return None if halves is None else (*halves, None)
    try:
        if not any(map(contains, values, repeat("uri"))):  # `bucket` and `key`
            buckets = list(map(itemgetter("bucket"), values))
            keys = list(map(itemgetter("key"), values))
            if set(map(type, buckets)) != {str} or set(map(type, keys)) != {str}:
                return None
            halves = buckets, keys
        else:
            halves = uri_columns(list(map(itemgetter("uri"), values)))  # type: ignore[assignment]
    except KeyError:
        return None
    if halves is None:
        return None
    if b"ersion" not in data and slashes_only:
        return (*halves, None)  # no field is named for a version, nor escaped to be one
    return (*halves, _versions(values))  # type: ignore[arg-type]


def uri_columns(uris: list[object]) -> tuple[list[str], list[str]] | None:
    """Buckets and keys of values that must all be `s3://` URIs; None if one is not."""
    if set(map(type, uris)) != {str} or not _all_start(uris, _URI_PREFIX):  # type: ignore[arg-type]
        return None  # a mix, or a `uri` that is no URI
    return _split_uris(uris)  # type: ignore[arg-type]


def _all_start(strings: list[str], prefix: str) -> bool:
    return all(map(str.startswith, strings, repeat(prefix)))


def _split_uris(uris: list[str]) -> tuple[list[str], list[str]]:
    """Buckets and keys of `s3://` URIs, as `parse.split_uri` cuts them.

    A block's URIs mostly name one bucket: when all start with the first one's `s3://B/`,
    the keys are sliced off by a C-speed `map`, at a third of a `partition` per URI.
    """
    bucket, _ = split_uri(uris[0])  # type: ignore[misc]  # the caller checked the prefix
    prefix = f"{_URI_PREFIX}{bucket}/"
    if _all_start(uris, prefix):
        return [bucket] * len(uris), list(map(itemgetter(slice(len(prefix), None)), uris))
    halves = list(map(split_uri, uris))
    return [h[0] for h in halves], [h[1] for h in halves]  # type: ignore[index]


def _versions(values: list[dict[str, object]]) -> list[str | None] | None:
    """Each object's version as `parse_json_value` reads it; None when no object has one."""
    found = [v.get("version_id") or v.get("versionId") or v.get("VersionId") for v in values]
    versions = [v if isinstance(v, str) and v else None for v in found]
    return None if versions.count(None) == len(versions) else versions


def _item_sums(
    buckets: list[str],
    keys: list[str],
    versions: list[str | None] | None,
    *,
    is_plain: bool,
    names: frozenset[str],
) -> npt.NDArray[np.int64]:
    """Prefix sums of the items' JSON sizes, line digits aside (`ParsedBatch.item_bytes`).

    A bucket name (`is_bucket_name`, which `parsed_batch` checked) is plain ASCII: its JSON
    is its length and two quotes, whatever the block holds. A block naming one bucket (`names`,
    the usual case) adds that one size: a `len` a record cost ~7 % of a scan of such rows.
    """
    sizes = _string_sizes(keys, is_plain=is_plain)
    if len(names) == 1:
        sizes += len(next(iter(names))) + 2
    else:
        sizes += np.fromiter(map(len, buckets), np.int64, len(buckets)) + 2
    sizes += _ITEM_FRAME
    if versions is not None:  # `,"V"` after the key, when the record has one
        present = [v for v in versions if v is not None]
        if is_plain or _are_plain(present):
            sizes += np.fromiter((0 if v is None else len(v) + 3 for v in versions), np.int64)
        else:
            dumps = orjson.dumps
            sizes += np.fromiter(
                (0 if v is None else len(dumps(v)) + 1 for v in versions), np.int64
            )
    sums = np.zeros(len(sizes) + 1, np.int64)
    np.cumsum(sizes, out=sums[1:])
    return sums


def _string_sizes(strings: list[str], *, is_plain: bool) -> npt.NDArray[np.int64]:
    r"""`len(orjson.dumps(s))` of each string.

    With `is_plain` (the caller's proof) or when the strings are plain (`_are_plain`) that is
    its length and two quotes (one C-speed `map`). `is_plain`: the block is ASCII and its only
    escapes are `\/` (pandas writes one for every `/`), so no string holds a byte orjson
    escapes. (Every backslash is followed by `/`, so none is itself escaped: the one escaping
    it would be followed by a backslash.)
    """
    if is_plain or _are_plain(strings):
        return np.fromiter(map(len, strings), np.int64, len(strings)) + 2
    dumps = orjson.dumps
    return np.fromiter((len(dumps(s)) for s in strings), np.int64, len(strings))


def _are_plain(strings: list[str]) -> bool:
    r"""Whether every string is printable ASCII without `"` or `\`: orjson escapes none of it.

    One join and two C passes: a third cheaper than `orjson.dumps` of each string, and what a
    block whose framing quotes hide its plainness (quoted CSV fields) is left to.
    """
    joined = "".join(strings).encode()
    return joined.isascii() and not joined.translate(None, PLAIN_JSON_BYTES)
