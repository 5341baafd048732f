import pytest

from pipeline.ledger.items import (
    COUNTER_SHARDS,
    ChunkCommit,
    ChunkCounts,
    chunk_marker,
    committed_from_item,
    counter_update,
    run_key,
    shard_key,
    shard_of,
    state_from_item,
    sum_shards,
)
from pipeline.ledger.runs import RunStatus


def _adds(update: dict) -> dict[str, int]:
    names, values = update["ExpressionAttributeNames"], update["ExpressionAttributeValues"]
    return {names[f"#a{i}"]: int(values[f":a{i}"]["N"]) for i in range(len(names))}


def test_first_delivery_adds_its_counts():
    counts = ChunkCounts(3, 2, {"fetch": 2}, {"NoSuchKey": 1, "AccessDenied": 1}, 1.5, 5)
    update = counter_update(run_key("r"), counts, {"chunks_done": 1}, now=1.0)
    assert _adds(update) == {
        "ok": 3,
        "failed": 2,
        "images": 5,
        "chunks_done": 1,
        "stage#fetch": 2,
        "error#AccessDenied": 1,
        "error#NoSuchKey": 1,
    }
    assert update["ExpressionAttributeValues"][":s"] == {"N": "1.5"}


def test_replay_moves_lines_between_breakdowns():
    counts = ChunkCounts(
        ok=3,
        failed=1,
        failed_by_stage={"decode": 1},
        failed_by_error={"DecodeFailed": 1},
        replaced_by_stage={"fetch": 4},
        replaced_by_error={"NoSuchKey": 4},
    )
    adds = _adds(counter_update(run_key("r"), counts, {"replay_chunks_done": 1}, now=1.0))
    assert adds == {
        "ok": 3,
        "failed": -3,
        "images": 0,
        "replay_chunks_done": 1,
        "stage#decode": 1,
        "stage#fetch": -4,
        "error#DecodeFailed": 1,
        "error#NoSuchKey": -4,
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ok": 1, "failed": 2, "failed_by_stage": {"fetch": 1}, "failed_by_error": {"X": 2}},
        {"ok": -1, "failed": 0},
        {"ok": 1, "failed": 0, "replaced_by_stage": {"fetch": 1}},
    ],
)
def test_inconsistent_counts_are_refused(kwargs):
    with pytest.raises(ValueError):
        ChunkCounts(**kwargs)


def test_chunk_markers_sort_in_chunk_order():
    assert chunk_marker(9) < chunk_marker(10) == "CHUNK#00000010"
    assert chunk_marker(3, replay_round=2) == "REPLAY#0002#00000003"


def test_state_adds_parse_failures_to_chunk_failures():
    item = {
        "run": {"S": "r"},
        "manifest": {"S": "s3://in/m"},
        "status": {"S": "PARTIAL"},
        "started_at": {"N": "5"},
        "lines_split": {"N": "10"},
        "ok": {"N": "6"},
        "failed": {"N": "2"},
        "stage#fetch": {"N": "2"},
        "error#NoSuchKey": {"N": "2"},
        "parse_failed": {"N": "2"},
        "parse_error#BadCsv": {"N": "2"},
        "stage#decode": {"N": "0"},
        "is_split_done": {"BOOL": True},
    }
    state = state_from_item(item)
    assert (state.status, state.failed, state.pending, state.finished_at) == (
        RunStatus.PARTIAL,
        4,
        0,
        None,
    )
    assert state.failed_by_stage == {"fetch": 2, "parse": 2}
    assert state.failed_by_error == {"BadCsv": 2, "NoSuchKey": 2}


def test_a_chunk_always_counts_on_the_same_shard_and_shards_spread():
    assert {shard_of(c) for c in range(COUNTER_SHARDS * 3)} == set(range(COUNTER_SHARDS))
    assert shard_of(5) == shard_of(5 + COUNTER_SHARDS) == 5
    keys = {shard_key("r", k)["pk"]["S"] for k in range(COUNTER_SHARDS)}
    assert len(keys) == COUNTER_SHARDS  # each shard under its own partition key


def test_summing_shards_adds_every_counter_to_the_run_item():
    meta = {"run": {"S": "r"}, "ok": {"N": "2"}, "lines_split": {"N": "40"}, "error#X": {"N": "1"}}
    shards = [
        {"ok": {"N": "10"}, "failed": {"N": "1"}, "chunks_done": {"N": "3"}, "error#X": {"N": "1"}},
        {"ok": {"N": "5"}, "compute_s": {"N": "1.5"}, "chunks_done": {"N": "2"}},
    ]
    summed = sum_shards(meta, shards)
    assert float(summed["ok"]["N"]) == 17  # a run written before sharding keeps its own counts
    assert float(summed["chunks_done"]["N"]) == 5
    assert float(summed["error#X"]["N"]) == 2
    assert float(summed["compute_s"]["N"]) == 1.5
    assert summed["lines_split"] == {"N": "40"}  # Split's absolute values are not summed


@pytest.mark.parametrize("live_until", [None, 1_764_950_400.125])
def test_a_commit_reads_back_with_the_deadline_of_its_delivery_when_it_had_one(live_until):
    # GIVEN a marker item as the ledger writes it: the chunk's counts and the commit
    counts = ChunkCounts(3, 1, {"fetch": 1}, {"NoSuchKey": 1}, 1.5, 4)
    commit = ChunkCommit("a1b2", items=4, result_rows=3, failure_rows=1, live_until=live_until)
    item = {**run_key("r"), "sk": {"S": chunk_marker(7)}, **counts.to_item(1.0), **commit.to_item()}
    # WHEN read back THEN it names the attempt, its rows and the deadline (or none)
    marker = committed_from_item(item)
    assert (marker.chunk, marker.attempt, marker.result_rows, marker.failure_rows) == (
        7,
        "a1b2",
        3,
        1,
    )
    assert marker.live_until == live_until
    assert ("live_until" in item) is (live_until is not None)
