"""`parked_chunk` counts a WorkDLQ chunk's lines in either message version."""

from __future__ import annotations

import orjson

from pipeline.replay.work_dlq import ParkedChunk, parked_chunk


def test_a_v1_and_a_v2_body_count_their_lines():
    v1 = {"v": 1, "run": "r", "chunk": 3, "items": [[1, "b", "k"], [2, "b", "k2"]]}
    v2 = {"v": 2, "run": "r", "chunk": 4, "pieces": [{"line": 1, "uris": "s3://b/k\ns3://b/j"}]}
    assert parked_chunk(orjson.dumps(v1).decode()) == ParkedChunk("r", 3, 0, 2)
    assert parked_chunk(orjson.dumps(v2).decode()) == ParkedChunk("r", 4, 0, 2)


def test_unreadable_lines_count_none_and_an_unreadable_body_is_blank():
    broken = {"v": 2, "run": "r", "chunk": 4, "pieces": [{"line": 1, "csv": "no comma"}]}
    assert parked_chunk(orjson.dumps(broken).decode()) == ParkedChunk("r", 4, 0, 0)
    assert parked_chunk("not json") == ParkedChunk("", -1, 0, 0)


def test_raw_lines_count_every_line_records_or_not():
    raw = '{"bucket":"bkt","key":"a","n":1}\nnot json\n{"bucket":"bkt"}'
    body = {"v": 2, "run": "r", "chunk": 5, "pieces": [{"line": 7, "raw_lines": raw}]}
    assert parked_chunk(orjson.dumps(body).decode()) == ParkedChunk("r", 5, 0, 3)
