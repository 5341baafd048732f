r"""The v2 chunk message: each piece of consecutive lines as its first line and its rows.

Split sends every line of the manifest, and writing `[line,"bucket","key"]` a line (v1,
`Chunk.to_message`) cost more than decompressing it: a line number and a few multi-byte
replaces a row. Every piece `(batch, start, stop)` of a `ChunkSpan` is consecutive lines, so
v2 carries a piece's first line number once and its rows in a form that is a whole-block
rewrite of bytes the dense proof already holds (`pipeline.split.chunk_encoding`):

    {"v":2, "run":…, "chunk":N, "pieces":[PIECE,…]}
    PIECE, lines L, L+1, … in order:
      {"line":L,"csv":"b,k\nb,k…"}     `bucket,key` rows, a newline between (no CR)
      {"line":L,"csv_url":"b,k\n…"}     the same, keys URL-encoded (`+` a space, `%XX`)
      {"line":L,"uris":"s3://b/k\n…"}  `s3://bucket/key` rows, a newline between
      {"line":L,"layout":{…},"csv_fields":[["f","f",…],…]}   each row's CSV fields,
                                        read by `parse_csv_fields` with the layout
      {"line":L,"layout":{…},"csv_rows":"r\n…"}   bare CSV rows, a newline between, read
                                        by `parse_csv_row` with the layout
      {"line":L,"objects":[{…},…]}      the manifest's own JSON records, as they were
      {"line":L,"pairs":["b","k",…]}    bucket, key, bucket, key, … (and `version_pairs`
                                        with `versions`, each line's version id, "": none)
      {"line":L,"bucket":"B","keys":["k",…]}   every line of the piece in bucket B
      {"line":L,"buckets":["b",…],"keys":["k",…](,"versions":["v",…])}   the same
                                        columns, each line's bucket (and version, "": none)
                                        (`pairs` and `version_pairs` are no longer sent; read
                                        so a message queued before is still read)
      {"line":L,"raw_lines":"l\n…"}    JSON Lines lines Split did not parse, a newline
                                        between: each line a record or a parse failure
      {"line":L,"layout":{…},"raw_lines":"l\n…"}   the same, CSV lines read with the layout
      {"line":L,"raw_elements":"{…}, {…}…"}   JSON array elements Split did not parse and the
                                        separators between them, each a record or a failure
      {"items":[[line,b,k(,version)],…]}        v1 items (any other batch)

A row of `csv` holds exactly one comma, and a `uris` row starts `s3://` and names its bucket
up to the first `/` (a bucket name holds no `/` or comma); keys are taken verbatim otherwise.
`objects`, `csv_fields` and `csv_rows` are read as the manifest reader reads a JSON record or
a CSV row (`layout` is `parse.layout_to_dict`'s form); one that is not a record is poison.
`raw_lines` are read by the reader's own line parsers (`pipeline.manifest.raw_lines`): a line
that is not a record is the chunk's parse failure, not poison; an older worker, which knows no
`raw_lines`, refuses the piece as poison. `read_pieces` turns pieces back into exactly the
records (and raw lines' failures) the reader reads from those lines, so a worker reads either
version (`Chunk.from_message`); Split still cuts chunks by their v1 size (raw lines by a bound
on theirs), and writes v2 only when it stays within that same limit
(`pipeline.split.chunk_encoding`). Pure.
"""

from __future__ import annotations

from typing import Any

from pipeline.failures import ManifestLineError
from pipeline.manifest.parse import (
    CsvLayout,
    ManifestRecord,
    decode_key,
    layout_from_dict,
    parse_csv_fields,
    parse_csv_row,
    parse_json_value,
    split_uri,
)
from pipeline.manifest.raw_elements import read_raw_elements
from pipeline.manifest.raw_lines import read_raw_lines

SPAN_MESSAGE_VERSION = 2
PIECES = "pieces"
CSV_FIELDS, CSV_ROWS, LAYOUT, BUCKETS = "csv_fields", "csv_rows", "layout", "buckets"
RAW_LINES, RAW_ELEMENTS = "raw_lines", "raw_elements"
LINE, CSV, CSV_URL, URIS, PAIRS, OBJECTS, BUCKET, KEYS, ITEMS = (
    "line",
    "csv",
    "csv_url",
    "uris",
    "pairs",
    "objects",
    "bucket",
    "keys",
    "items",
)
VERSION_PAIRS, VERSIONS = "version_pairs", "versions"
"""Not `pairs` plus a `versions` field: a reader that knows `pairs` only must refuse the piece
(a poison message, to the WorkDLQ), not read it quietly without its versions."""
_ITEM_WITH_VERSION = 4


def read_items(items: list[Any]) -> list[ManifestRecord]:
    """Records of v1 items `[line, bucket, key(, version)]`.

    Raises:
        ValueError: on a malformed item.
    """
    records = []
    for item in items:
        if not isinstance(item, list) or len(item) not in (3, _ITEM_WITH_VERSION):
            raise ValueError(f"chunk item {item!r} is not [line, bucket, key(, version)]")
        version = item[3] if len(item) == _ITEM_WITH_VERSION else None
        records.append(ManifestRecord(int(item[0]), str(item[1]), str(item[2]), version))
    return records


def read_pieces(pieces: object) -> tuple[list[ManifestRecord], list[ManifestLineError]]:
    """Records of a v2 message's `pieces`, in order, and the failures among its raw lines.

    Raises:
        ValueError: on a malformed piece (a poison message: it fails until the WorkDLQ).
    """
    if not isinstance(pieces, list):
        raise ValueError(f"chunk message pieces {str(pieces)[:200]!r} is not a list")
    records: list[ManifestRecord] = []
    failures: list[ManifestLineError] = []
    for piece in pieces:
        try:
            if RAW_LINES in piece or RAW_ELEMENTS in piece:
                found, failed = _raw_piece(piece)
                records += found
                failures += failed
            else:
                records += _read_piece(piece)
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"chunk piece {str(piece)[:200]!r} is malformed: {e!r}") from e
    return records, failures


def _raw_piece(piece: dict[str, Any]) -> tuple[list[ManifestRecord], list[ManifestLineError]]:
    line = _line(piece)
    if RAW_ELEMENTS in piece:
        found = read_raw_elements(_text(piece[RAW_ELEMENTS]), line)
        if found is None:
            raise ValueError(f"chunk piece at line {line}: raw elements that do not split")
        return found
    layout = None
    if LAYOUT in piece:
        layout = _layout(piece, line)
    return read_raw_lines(_text(piece[RAW_LINES]), line, layout)


def _line(piece: dict[str, Any]) -> int:
    line = piece[LINE]
    if not isinstance(line, int) or line < 1:
        raise ValueError(f"chunk piece line {line!r} is not a line number")
    return line


def _layout(piece: dict[str, Any], line: int) -> CsvLayout:
    try:
        layout = layout_from_dict(piece[LAYOUT])
    except ValueError as e:  # an unknown kind
        raise ValueError(f"chunk piece at line {line}: {e}") from e
    if layout is None:
        raise ValueError(f"chunk piece at line {line} has no layout")
    return layout


def _read_piece(piece: dict[str, Any]) -> list[ManifestRecord]:
    if ITEMS in piece:
        return read_items(piece[ITEMS])
    line = _line(piece)
    if OBJECTS in piece:
        objects = _list(piece[OBJECTS])
        return [_checked(parse_json_value(value, n)) for n, value in enumerate(objects, line)]
    if LAYOUT in piece:
        return _csv_piece(piece, line)
    if KEYS in piece or PAIRS in piece or VERSION_PAIRS in piece:
        return _listed_piece(piece, line)
    if URIS in piece:
        return [ManifestRecord(n, *_uri(row)) for n, row in enumerate(_rows(piece[URIS]), line)]
    is_encoded = CSV_URL in piece
    rows = _rows(piece[CSV_URL] if is_encoded else piece[CSV])
    return [
        ManifestRecord(n, *_csv(row, is_encoded=is_encoded)) for n, row in enumerate(rows, line)
    ]


def _listed_piece(piece: dict[str, Any], line: int) -> list[ManifestRecord]:
    """`keys` of one bucket or of `buckets`, or the `pairs`/`version_pairs` of earlier Splits."""
    if KEYS in piece and BUCKETS in piece:
        keys = _list(piece[KEYS])
        versions = [_text(v) or None for v in _list(piece.get(VERSIONS, [""] * len(keys)))]
        return _columns(_list(piece[BUCKETS]), keys, versions, line)
    if KEYS in piece:
        bucket = _text(piece[BUCKET])
        return [ManifestRecord(n, bucket, _text(k)) for n, k in enumerate(piece[KEYS], line)]
    if PAIRS in piece:
        pairs = piece[PAIRS]
        return _columns(pairs[::2], pairs[1::2], [None] * (len(pairs) // 2), line)
    pairs, versions = piece[VERSION_PAIRS], [_text(v) or None for v in piece[VERSIONS]]
    return _columns(pairs[::2], pairs[1::2], versions, line)


def _columns(
    buckets: list[Any], keys: list[Any], versions: list[str | None], line: int
) -> list[ManifestRecord]:
    if not len(buckets) == len(keys) == len(versions):
        raise ValueError(
            f"chunk piece at line {line}: {len(buckets)} buckets, {len(keys)} keys and "
            f"{len(versions)} versions"
        )
    return [
        ManifestRecord(n, _text(b), _text(k), v)
        for n, (b, k, v) in enumerate(zip(buckets, keys, versions, strict=True), line)
    ]


def _csv_piece(piece: dict[str, Any], line: int) -> list[ManifestRecord]:
    layout = _layout(piece, line)
    if CSV_FIELDS in piece:
        rows = _list(piece[CSV_FIELDS])
        return [
            _checked(parse_csv_fields([_text(f) for f in _list(row)], n, layout))
            for n, row in enumerate(rows, line)
        ]
    rows = _rows(piece[CSV_ROWS])
    return [_checked(parse_csv_row(row, n, layout)) for n, row in enumerate(rows, line)]


def _checked(record: ManifestRecord | ManifestLineError) -> ManifestRecord:
    if isinstance(record, ManifestLineError):  # Split sends only records it has read
        raise ValueError(f"chunk row is not a record: {record}")
    return record


def _list(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"{str(value)[:200]!r} is not a list")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


def _rows(text: object) -> list[str]:
    return _text(text).split("\n")


def _uri(row: str) -> tuple[str, str]:
    parts = split_uri(row)
    if parts is None:
        raise ValueError(f"chunk row {row[:200]!r} is not an s3:// URI")
    return parts


def _csv(row: str, *, is_encoded: bool) -> tuple[str, str]:
    fields = row.split(",")
    if len(fields) != 2:  # noqa: PLR2004 - bucket and key
        raise ValueError(f"chunk row {row[:200]!r} is not bucket,key")
    bucket, key = fields
    if is_encoded:
        decoded = decode_key(key, 0)
        if not isinstance(decoded, str):
            raise ValueError(f"chunk row {row[:200]!r}: {decoded}")
        key = decoded
    return bucket, key
