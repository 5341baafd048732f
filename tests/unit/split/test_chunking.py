"""Chunks are dense, deterministic, bounded in items and in message bytes, and round-trip."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.manifest.reader import ManifestRecord
from pipeline.split.chunking import Chunk, _envelope_bytes, iter_chunks


def _records(n: int, key_len: int = 10) -> list[ManifestRecord]:
    return [ManifestRecord(i, "bkt", f"{i:0{key_len}d}") for i in range(1, n + 1)]


def test_chunks_are_dense_from_first_chunk_and_cut_by_items():
    chunks = list(
        iter_chunks(_records(25), run="r1", chunk_items=10, chunk_max_bytes=10**6, first_chunk=7)
    )
    assert [c.number for c in chunks] == [7, 8, 9]
    assert [len(c.items) for c in chunks] == [10, 10, 5]
    assert [r.line for c in chunks for r in c.items] == list(range(1, 26))
    assert {c.run for c in chunks} == {"r1"}


def test_chunks_are_cut_by_message_bytes_and_never_exceed_them():
    records = _records(200, key_len=100)
    cap = 2000
    chunks = list(iter_chunks(records, run="r", chunk_items=1000, chunk_max_bytes=cap))
    sizes = [len(orjson.dumps(c.to_message())) for c in chunks]
    assert max(sizes) <= cap
    assert len(chunks) > 10
    # tight: adding the next record's item to any full chunk would have passed the cap
    assert all(s + 100 > cap for s in sizes[:-1])


def test_a_record_too_big_for_any_message_is_refused():
    with pytest.raises(ValueError, match="line 1"):
        list(iter_chunks(_records(1, key_len=500), run="r", chunk_items=5, chunk_max_bytes=300))


@pytest.mark.parametrize("bad", [{"chunk_items": 0}, {"chunk_max_bytes": 0}])
def test_non_positive_limits_are_refused(bad):
    limits = {"chunk_items": 5, "chunk_max_bytes": 1000} | bad
    with pytest.raises(ValueError, match="positive"):
        list(iter_chunks(_records(1), run="r", **limits))


def test_message_contract_and_version_id_only_when_present():
    chunk = Chunk("run9", 3, (ManifestRecord(1, "b", "k"), ManifestRecord(2, "b", "é", "v7")))
    assert chunk.to_message() == {
        "v": 1,
        "run": "run9",
        "chunk": 3,
        "items": [[1, "b", "k"], [2, "b", "é", "v7"]],
    }
    assert Chunk.from_message(orjson.loads(orjson.dumps(chunk.to_message()))) == chunk


@pytest.mark.parametrize(
    "body",
    [
        {"v": 2, "run": "r", "chunk": 0, "items": []},  # v2 carries pieces
        {"v": 3, "run": "r", "chunk": 0, "pieces": []},
        {"v": 1, "run": "r", "chunk": 0, "items": [[1, "b"]]},
        {"v": 1, "run": "r", "chunk": 0, "items": ["s3://b/k"]},
    ],
)
def test_from_message_rejects_poison_messages(body):
    with pytest.raises(ValueError):
        Chunk.from_message(body)


def test_empty_input_gives_no_chunks():
    assert list(iter_chunks([], run="r", chunk_items=3, chunk_max_bytes=1000)) == []


@settings(max_examples=50, deadline=None)
@given(
    keys=st.lists(st.text(min_size=1, max_size=60), max_size=80),
    chunk_items=st.integers(1, 20),
    cap=st.integers(300, 3000),
)
def test_chunking_is_deterministic_lossless_and_bounded(keys, chunk_items, cap):
    records = [ManifestRecord(i + 1, "bkt", k) for i, k in enumerate(keys)]
    first = list(iter_chunks(records, run="r", chunk_items=chunk_items, chunk_max_bytes=cap))
    again = list(iter_chunks(iter(records), run="r", chunk_items=chunk_items, chunk_max_bytes=cap))
    assert first == again
    assert [r for c in first for r in c.items] == records
    assert [c.number for c in first] == list(range(len(first)))
    for chunk in first:
        assert 1 <= len(chunk.items) <= chunk_items
        assert len(orjson.dumps(chunk.to_message())) <= cap
        assert Chunk.from_message(chunk.to_message()) == chunk


@given(run=st.text(max_size=40), number=st.integers(0, 10**12))
def test_the_envelope_size_is_the_empty_messages_json_size(run, number):
    # the size is computed once a run and adjusted by the chunk number's digits
    empty = {"v": 1, "run": run, "chunk": number, "items": []}
    assert _envelope_bytes(run, number) == len(orjson.dumps(empty))
