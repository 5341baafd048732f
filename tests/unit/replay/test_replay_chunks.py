"""Replay chunks: the message contract, deterministic numbering, attempts and ledger counts."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.failures import FailureRecord, ImageFetchError, Stage
from pipeline.manifest.parse import ManifestRecord
from pipeline.replay.chunks import is_replayable, iter_replay_chunks
from pipeline.replay.replayer import ReplayFilter, select_failures
from pipeline.split.chunking import Chunk
from pipeline.split.work_message import parse_work_message

RUN = "0123456789abcdef0123"


def record(
    line: int,
    *,
    error: str = "NoSuchKey",
    stage: Stage = Stage.FETCH,
    attempts: int = 1,
    retryable: bool = False,
    key: str | None = "k.jpg",
) -> FailureRecord:
    return FailureRecord(
        run=RUN,
        line=line,
        bucket="bkt" if key else None,
        key=key,
        stage=stage,
        error=error,
        message="m",
        retryable=retryable,
        attempts=attempts,
    )


def test_replay_chunks_are_numbered_densely_in_line_order_and_round_trip_as_messages():
    records = [record(n, attempts=n % 3 + 1) for n in (2, 5, 7, 11, 13)]
    chunks = list(iter_replay_chunks(records, replay_round=3, chunk_items=2, chunk_max_bytes=10**6))
    assert [c.number for c in chunks] == [0, 1, 2]
    assert [[i.line for i in c.chunk.items] for c in chunks] == [[2, 5], [7, 11], [13]]
    body = orjson.loads(orjson.dumps(chunks[1].to_message()))
    assert (body["v"], body["run"], body["chunk"], body["replay"]) == (1, RUN, 1, 3)
    assert body["prior"] == [["fetch", "NoSuchKey", 2], ["fetch", "NoSuchKey", 3]]
    chunk, mark = parse_work_message(body)
    assert chunk == chunks[1].chunk
    assert mark == chunks[1].mark
    assert (mark.attempts_for(7), mark.attempts_for(11)) == (3, 4)


def test_the_same_selection_always_yields_the_same_chunks():
    records = [record(n) for n in range(1, 40, 3)]

    def cut():
        return [
            c.to_message()
            for c in iter_replay_chunks(
                records, replay_round=1, chunk_items=4, chunk_max_bytes=10**6
            )
        ]

    assert cut() == cut()


def test_a_first_delivery_message_has_no_replay_mark_and_old_readers_ignore_the_new_fields():
    chunk = Chunk(RUN, 4, (ManifestRecord(9, "bkt", "a.jpg"),))
    assert parse_work_message(chunk.to_message()) == (chunk, None)
    (replayed,) = iter_replay_chunks(
        [record(9)], replay_round=1, chunk_items=10, chunk_max_bytes=10**6
    )
    assert Chunk.from_message(replayed.to_message()).items == replayed.chunk.items


@pytest.mark.parametrize(
    "change",
    [{"replay": 0}, {"prior": []}, {"prior": [["fetch", "X", 1], ["fetch", "Y", 1]]}],
    ids=["round_zero", "no_prior", "prior_count_mismatch"],
)
def test_a_malformed_replay_message_is_refused(change):
    (replayed,) = iter_replay_chunks(
        [record(1)], replay_round=1, chunk_items=10, chunk_max_bytes=10**6
    )
    with pytest.raises(ValueError, match="replay chunk"):
        parse_work_message({**replayed.to_message(), **change})


def test_counts_move_each_line_out_of_its_prior_failure():
    prior = [
        record(1, error="NoSuchKey"),
        record(2, error="SlowDown", retryable=True),
        record(3, error="NoSuchKey"),
    ]
    (replayed,) = iter_replay_chunks(prior, replay_round=2, chunk_items=10, chunk_max_bytes=10**6)
    mark = replayed.mark
    again = FailureRecord.from_exception(
        ImageFetchError("gone", error="NoSuchKey"), run=RUN, line=3, attempts=mark.attempts_for(3)
    )
    counts = mark.counts(failures=[again], ok=2, seconds=0.5, images=2)
    assert (counts.ok, counts.failed, counts.replaced_total) == (2, 1, 3)
    assert counts.replaced_by_error == {"NoSuchKey": 2, "SlowDown": 1}
    assert counts.failed_by_error == {"NoSuchKey": 1}
    assert again.attempts == 2


def test_replay_chunks_refuse_mixed_runs_out_of_order_or_keyless_records():
    other = FailureRecord.from_dict({**record(5).to_dict(), "run": "f" * 20})
    for bad in ([record(3), record(2)], [record(1), other], [record(1, key=None)]):
        with pytest.raises(ValueError):
            list(iter_replay_chunks(bad, replay_round=1, chunk_items=10, chunk_max_bytes=10**6))


def test_select_applies_every_filter_and_the_limit_and_reports_parse_failures_apart():
    records = [
        record(1, error="NoSuchKey"),
        record(2, error="SlowDown", retryable=True),
        record(3, stage=Stage.DECODE, error="DecodeFailed"),
        record(4, stage=Stage.PARSE, error="MalformedLine", key=None),
        record(5, error="SlowDown", retryable=True),
    ]
    assert [r.line for r in select_failures(records, ReplayFilter(), limit=None)[0]] == [1, 2, 3, 5]
    assert select_failures(records, ReplayFilter(), limit=None)[1] == 1
    only = select_failures(records, ReplayFilter(is_retryable_only=True), limit=None)[0]
    assert [r.line for r in only] == [2, 5]
    by_stage = select_failures(records, ReplayFilter(stage="decode"), limit=None)[0]
    assert [r.line for r in by_stage] == [3]
    limited = select_failures(records, ReplayFilter(error="SlowDown"), limit=1)[0]
    assert [r.line for r in limited] == [2]
    assert not is_replayable(records[3])


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(st.integers(1, 10**6), min_size=1, max_size=60, unique=True),
    chunk_items=st.integers(1, 9),
)
def test_every_selected_line_is_in_exactly_one_replay_chunk(lines, chunk_items):
    records = [record(n) for n in sorted(lines)]
    chunks = list(
        iter_replay_chunks(records, replay_round=1, chunk_items=chunk_items, chunk_max_bytes=10**6)
    )
    got = [item.line for c in chunks for item in c.chunk.items]
    assert got == sorted(lines)
    assert [c.number for c in chunks] == list(range(len(chunks)))
    assert all(len(c.chunk.items) <= chunk_items for c in chunks)


def test_a_replay_chunk_names_the_version_each_line_failed_on():
    versioned = FailureRecord(
        run=RUN,
        line=4,
        bucket="bkt",
        key="k.jpg",
        stage=Stage.FETCH,
        error="Throttled",
        message="m",
        retryable=True,
        version_id="v1",
    )
    (replay,) = iter_replay_chunks(
        [record(2), versioned], replay_round=1, chunk_items=10, chunk_max_bytes=10**6
    )
    body = orjson.loads(orjson.dumps(replay.to_message()))
    assert body["items"] == [[2, "bkt", "k.jpg"], [4, "bkt", "k.jpg", "v1"]]
    chunk, _ = parse_work_message(body)
    assert [item.version_id for item in chunk.items] == [None, "v1"]
