"""The v2 chunk message reads back to the records v1 carries; a malformed one is poison."""

from __future__ import annotations

import orjson
import pytest

from pipeline.manifest.parse import ManifestRecord
from pipeline.split.chunking import Chunk
from pipeline.split.work_message import parse_work_message

_INVENTORY = {
    "kind": "schema",
    "bucket_col": 0,
    "key_col": 1,
    "uri_col": None,
    "version_col": 2,
    "is_key_encoded": True,
}
_URI_FIRST = {**_INVENTORY, "uri_col": 0, "version_col": None, "is_key_encoded": False}


def _v2(*pieces: dict) -> dict:
    return {"v": 2, "run": "r1", "chunk": 4, "pieces": list(pieces)}


def test_every_piece_form_reads_back_in_line_order():
    # GIVEN one piece of each form, as the docstring of `span_message` writes them
    body = orjson.loads(
        orjson.dumps(
            _v2(
                {"line": 1, "csv": "b,k 1\nb,k"},
                {"line": 3, "csv_url": "b,a+b%2Fc"},
                {"line": 4, "uris": "s3://b2/x/y,z%41"},
                {"line": 5, "pairs": ["b", "k5", "c", "k6"]},
                {"line": 10**12, "bucket": "b", "keys": ["é", "k"]},
                {"items": [[10**12 + 2, "b", "v", "ver1"]]},
                {"line": 10**12 + 3, "objects": [{"key": "a/\u00e9", "bucket": "bkt"}]},
                {"line": 10**12 + 4, "objects": [{"uri": "s3://ckt/x y"}, "s3://dkt/z"]},
                {
                    "line": 10**12 + 6,
                    "layout": _INVENTORY,
                    "csv_fields": [["bkt", "a%2Fb+c", "v1", "12"], ["bkt", "k", "", "3"]],
                },
                {
                    "line": 10**12 + 8,
                    "layout": _URI_FIRST,
                    "csv_rows": "s3://ekt/%41,cat\ns3://ekt/q,",
                },
                {"line": 10**12 + 10, "buckets": ["b", "c"], "keys": ["k", "j"]},
                {
                    "line": 10**12 + 12,
                    "buckets": ["b", "c"],
                    "keys": ["k", "j"],
                    "versions": ["", "v"],
                },
            )
        )
    )
    # WHEN read / THEN the records, numbered from each piece's first line
    chunk, mark = parse_work_message(body)
    assert mark is None
    assert chunk == Chunk(
        "r1",
        4,
        (
            ManifestRecord(1, "b", "k 1"),
            ManifestRecord(2, "b", "k"),
            ManifestRecord(3, "b", "a b/c"),
            ManifestRecord(4, "b2", "x/y,z%41"),
            ManifestRecord(5, "b", "k5"),
            ManifestRecord(6, "c", "k6"),
            ManifestRecord(10**12, "b", "é"),
            ManifestRecord(10**12 + 1, "b", "k"),
            ManifestRecord(10**12 + 2, "b", "v", "ver1"),
            ManifestRecord(10**12 + 3, "bkt", "a/é"),
            ManifestRecord(10**12 + 4, "ckt", "x y"),
            ManifestRecord(10**12 + 5, "dkt", "z"),
            ManifestRecord(10**12 + 6, "bkt", "a/b c", "v1"),
            ManifestRecord(10**12 + 7, "bkt", "k"),
            ManifestRecord(10**12 + 8, "ekt", "%41"),
            ManifestRecord(10**12 + 9, "ekt", "q"),
            ManifestRecord(10**12 + 10, "b", "k"),
            ManifestRecord(10**12 + 11, "c", "j"),
            ManifestRecord(10**12 + 12, "b", "k"),
            ManifestRecord(10**12 + 13, "c", "j", "v"),
        ),
    )


def test_a_v1_message_still_reads():
    # GIVEN a v1 message in flight from an older Split
    chunk = Chunk("r1", 4, (ManifestRecord(7, "b", "k"), ManifestRecord(9, "b", "k2", "v")))
    # WHEN read / THEN the same chunk
    assert Chunk.from_message(orjson.loads(orjson.dumps(chunk.to_message()))) == chunk


@pytest.mark.parametrize(
    "piece",
    [
        {"line": 1, "csv": "b,k,extra"},
        {"line": 1, "csv": "no comma"},
        {"line": 1, "uris": "http://b/k"},
        {"line": 1, "pairs": ["b", "k", "odd"]},
        {"line": 1, "pairs": ["b", 3]},
        {"line": 0, "csv": "b,k"},
        {"line": "1", "csv": "b,k"},
        {"line": 1, "keys": ["k"]},
        {"line": 1},
        {"items": [[1, "b"]]},
        {"line": 1, "objects": [{"bucket": "bkt"}]},
        {"line": 1, "objects": [{"bucket": "bkt", "key": ""}]},
        {"line": 1, "objects": [{"bucket": "b", "key": "k"}]},
        {"line": 1, "objects": [7]},
        {"line": 1, "objects": {"s3://b/k": 1}},
        {"line": 1, "layout": None, "csv_rows": "s3://bkt/k"},
        {"line": 1, "layout": {**_URI_FIRST, "kind": "guess"}, "csv_rows": "s3://bkt/k"},
        {"line": 1, "layout": {**_URI_FIRST, "sep": ";"}, "csv_rows": "s3://bkt/k"},
        {"line": 1, "layout": _URI_FIRST, "csv_rows": "s3://bkt/k\nhttp://bkt/k"},
        {"line": 1, "layout": _URI_FIRST, "csv_rows": ["s3://bkt/k"]},
        {"line": 1, "layout": _INVENTORY, "csv_fields": [["bkt"]]},
        {"line": 1, "layout": _INVENTORY, "csv_fields": ["bkt", "k"]},
        {"line": 1, "layout": _INVENTORY, "csv_fields": [["bkt", 7]]},
        {"line": 1, "layout": _INVENTORY},
        {"line": 1, "buckets": ["b"], "keys": ["k", "j"]},
        {"line": 1, "buckets": ["b", "c"], "keys": ["k", "j"], "versions": ["v"]},
        {"line": 1, "buckets": "bc", "keys": ["k", "j"]},
        {"line": 1, "buckets": ["b"], "keys": [3]},
        "b,k",
    ],
)
def test_a_malformed_piece_is_a_value_error(piece):
    # GIVEN a v2 message with a broken piece / WHEN read / THEN ValueError (to the WorkDLQ)
    with pytest.raises(ValueError, match="chunk"):
        Chunk.from_message(_v2(piece))


def test_an_unknown_version_is_a_value_error():
    with pytest.raises(ValueError, match="version 3"):
        Chunk.from_message({**_v2(), "v": 3})
