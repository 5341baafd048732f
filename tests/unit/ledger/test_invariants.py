"""Impossible counts are errors: never SUCCEEDED, and the chunk that disagrees is named."""

import dataclasses

import pytest

from pipeline.ledger.finalize import settled_status
from pipeline.ledger.invariants import marker_problems
from pipeline.ledger.items import CommittedChunk
from pipeline.ledger.runs import RunState, RunStatus
from pipeline.ledger.summary import (
    LedgerInvariantError,
    build_summary,
    final_status,
    invariant_problems,
)


def _state(**overrides) -> RunState:
    values = {
        "run": "r1",
        "manifest": "s3://in/m.csv",
        "status": RunStatus.RUNNING,
        "started_at": 100.0,
        "finished_at": 120.0,
        "lines_split": 6,
        "chunks_sent": 2,
        "is_split_done": True,
        "chunks_done": 2,
        "ok": 4,
        "failed": 2,
        "failed_by_stage": {"fetch": 2},
        "failed_by_error": {"NoSuchKey": 2},
    }
    return RunState(**(values | overrides))


def _marker(chunk: int, ok: int, failed: int, **overrides) -> CommittedChunk:
    values = {
        "chunk": chunk,
        "replay_round": 0,
        "ok": ok,
        "failed": failed,
        "replaced": 0,
        "attempt": "a1",
        "items": ok + failed,
        "result_rows": ok,
        "failure_rows": failed,
    }
    return CommittedChunk(**(values | overrides))


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"lines_split": 2, "ok": 3, "failed": -1}, "negative counts"),  # race 2's summary
        ({"ok": 7, "failed": 0}, "ok 7 > lines 6"),
        ({"ok": 5, "failed": 2}, "> lines 6"),
        ({"ok": 3, "failed": 2}, "!= lines 6"),  # every chunk counted, a line missing
    ],
)
def test_impossible_counts_are_never_succeeded(overrides, problem):
    state = _state(**overrides)
    assert any(problem in p for p in invariant_problems(state))
    assert final_status(state) is RunStatus.FAILED
    with pytest.raises(LedgerInvariantError):
        build_summary(state, now=200.0)  # a running run with them is an error, not a summary


def test_a_failed_run_is_summarised_with_its_raw_counts_and_reason():
    state = _state(ok=3, failed=-1, lines_split=2, status=RunStatus.FAILED, reason="impossible")
    summary = build_summary(state, now=200.0)
    assert (summary.status, summary.ok, summary.failed, summary.reason) == (
        RunStatus.FAILED,
        3,
        -1,
        "impossible",
    )


def test_a_failed_run_whose_counters_are_possible_is_summarised_with_them_as_they_are():
    # FAILED for its markers (counters alone look fine): no line is invented as unprocessed
    state = _state(ok=3, failed=0, status=RunStatus.FAILED, reason="impossible counts: chunk 1")
    summary = build_summary(state, now=200.0)
    assert (summary.ok, summary.failed, summary.lines) == (3, 0, 6)
    assert "unprocessed" not in summary.failed_by_stage


def test_markers_that_agree_with_the_counters_raise_nothing():
    markers = [_marker(0, 3, 0), _marker(1, 1, 2)]
    assert marker_problems(_state(), markers) == []
    assert settled_status(_state(), []) == (RunStatus.SUCCEEDED, None)


def test_a_chunk_whose_counts_disagree_with_its_committed_rows_is_named():
    markers = [_marker(0, 3, 0), _marker(1, 1, 2, result_rows=2, failure_rows=1)]
    problems = marker_problems(_state(), markers)
    assert problems == [
        "chunk 1 counted ok 1 failed 2 but its committed parts hold 2 result and 1 failure rows"
    ]
    status, reason = settled_status(_state(), problems)
    assert status is RunStatus.FAILED
    assert reason.startswith("impossible counts: chunk 1 counted")


def test_counters_that_drifted_from_the_markers_are_reported():
    markers = [_marker(0, 3, 0), _marker(1, 1, 1, items=3)]
    problems = marker_problems(_state(), markers)
    assert "chunk 1 counted 2 lines but holds 3" in problems
    assert "the run counts ok 4 failed 2, its chunk markers ok 4 failed 1" in problems


def test_replay_markers_move_lines_instead_of_adding_them():
    state = _state(ok=6, failed=0, failed_by_stage={}, failed_by_error={}, replay_chunks_done=1)
    markers = [_marker(0, 3, 0), _marker(1, 1, 2), _marker(0, 2, 0, replay_round=1, replaced=2)]
    assert marker_problems(state, markers) == []


def test_a_stall_that_every_chunk_was_counted_past_settles_as_succeeded():
    stalled = _state(status=RunStatus.PARTIAL, reason="stalled: no chunk was counted")
    assert settled_status(stalled, []) == (RunStatus.SUCCEEDED, None)
    truncated = _state(status=RunStatus.PARTIAL, reason="TruncatedManifest: cut")
    assert settled_status(truncated, []) == (RunStatus.PARTIAL, "TruncatedManifest: cut")


@pytest.mark.parametrize(
    "reason",
    ["stalled: no chunk was counted", "the run's execution failed: WaitNotArmed: Internal"],
)
def test_a_reason_that_stopped_holding_gives_way_to_the_split_s_own(reason):
    # every chunk counted: what the split found still holds, hidden behind `reason` or not
    cut = _state(status=RunStatus.PARTIAL, reason=reason, split_reason="CorruptGzip: line 7")
    assert settled_status(cut, []) == (RunStatus.PARTIAL, "CorruptGzip: line 7")
    assert settled_status(cut, [], reason=reason) == (RunStatus.PARTIAL, "CorruptGzip: line 7")
    read_to_its_end = dataclasses.replace(cut, split_reason="")
    assert settled_status(read_to_its_end, []) == (RunStatus.SUCCEEDED, None)
    # chunks still uncounted: the reason holds
    counting = dataclasses.replace(
        read_to_its_end, chunks_done=1, ok=2, failed=0, failed_by_stage={}, failed_by_error={}
    )
    assert settled_status(counting, []) == (RunStatus.PARTIAL, reason)


def test_a_failed_execution_s_reason_stays_when_nothing_is_known_of_the_split_s_end():
    # a run item from before `split_reason` was kept: the split may have found the manifest cut
    reason = "the run's execution failed: WaitNotArmed: InternalServerError"
    old = _state(status=RunStatus.PARTIAL, reason=reason, split_reason=None)
    assert settled_status(old, []) == (RunStatus.PARTIAL, reason)
    not_split = _state(
        status=RunStatus.PARTIAL, reason=reason, split_reason="", is_split_done=False
    )
    assert settled_status(not_split, []) == (RunStatus.PARTIAL, reason)


def test_parse_failures_of_split_and_of_raw_lines_in_chunks_each_count_once():
    # GIVEN 8 lines: 1 failed in Split's parse part, 2 found by a worker among raw lines
    state = _state(
        lines_split=8,
        ok=4,
        failed=4,  # 1 fetch + 2 worker parse (the chunks') + 1 Split parse (the run item's)
        failed_by_stage={"fetch": 1, "parse": 3},
        split_parse_failed=1,
    )
    markers = [_marker(0, 3, 2), _marker(1, 1, 1)]  # chunk 0 holds the 2 raw-line failures
    # THEN the markers agree with the counters: neither kind of parse failure counted twice
    assert marker_problems(state, markers) == []
    # AND taking every parse failure for Split's would have counted the chunks' twice
    as_if_all_split = dataclasses.replace(state, split_parse_failed=3)
    assert "the counted chunks hold 10 lines, Split split 8" in marker_problems(
        as_if_all_split, markers
    )
