import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.aws.failure_queue import MESSAGE_CHARS, iter_batches, message_body
from pipeline.failures import FailureRecord, Stage
from pipeline.parts.layout import (
    PartKind,
    PartName,
    ResultRow,
    Series,
    StagedPart,
    chunk_part,
    parse_failures_part,
    parse_part_key,
    parse_staging_key,
)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        (chunk_part(PartKind.RESULTS, "r1", 7), "results/r1/part-00000007.jsonl.gz"),
        (chunk_part(PartKind.FAILURES, "r1", 7), "failures/r1/part-00000007.jsonl.gz"),
        (parse_failures_part("r1", 3), "failures/r1/parse-00000003.jsonl.gz"),
        (
            chunk_part(PartKind.RESULTS, "r1", 2, replay_round=12),
            "results/r1/replay-0012-00000002.jsonl.gz",
        ),
    ],
)
def test_part_keys(name, key):
    assert name.key == key
    assert parse_part_key(key) == name


@given(
    st.sampled_from(PartKind),
    st.integers(0, 10**12),  # past 10^8 chunks the number is written wider, and read back
    st.integers(0, 10**6),
    st.text(st.sampled_from("0123456789abcdef_-"), min_size=1, max_size=16),
)
def test_part_and_staging_keys_round_trip(kind, chunk, replay_round, attempt):
    name = chunk_part(kind, "abc", chunk, replay_round=replay_round)
    assert parse_part_key(name.key) == name
    assert parse_staging_key(name.staging_key(attempt)) == StagedPart(name, attempt)


@pytest.mark.parametrize(
    "key",
    [
        "results/r1/_SUCCESS.json",
        "results/r1/part-7.jsonl.gz",
        "other/r1/part-00000001.jsonl.gz",
        "results/r1/part-000000001.jsonl.gz",  # a second name for part 1: never written
        "results/r1/replay-00001-00000001.jsonl.gz",
    ],
)
def test_other_keys_are_not_parts(key):
    assert parse_part_key(key) is None


def test_replay_parts_need_a_round():
    with pytest.raises(ValueError, match="round"):
        PartName(PartKind.RESULTS, "r", Series.REPLAY, 1, 0)


def test_result_row_round_trip_and_version_id_only_when_present():
    row = ResultRow(5, "b", "k", (("tabby", 0.81), ("tiger cat", 0.1)))
    assert row.to_dict() == {
        "line": 5,
        "bucket": "b",
        "key": "k",
        "labels": [["tabby", 0.81], ["tiger cat", 0.1]],
    }
    versioned = ResultRow(5, "b", "k", (), version_id="v1")
    assert ResultRow.from_dict(versioned.to_dict()) == versioned
    assert ResultRow.from_dict(row.to_dict()) == row


def test_batches_respect_count_and_size():
    bodies = ["x" * 10] * 25
    assert [len(b) for b in iter_batches(bodies)] == [10, 10, 5]
    assert [len(b) for b in iter_batches(bodies, max_bytes=35)] == [3] * 8 + [1]


def test_a_body_over_the_cap_is_refused_not_dropped():
    with pytest.raises(ValueError, match="exceeds"):
        list(iter_batches(["x" * 100], max_bytes=50))


def test_message_body_caps_long_messages():
    record = FailureRecord("r", 1, "b", "k", Stage.CLASSIFY, "internal", "m" * 100_000, True)
    body = message_body(record)
    assert len(body) < MESSAGE_CHARS + 500
    assert FailureRecord.from_dict(__import__("orjson").loads(body)).line == 1
