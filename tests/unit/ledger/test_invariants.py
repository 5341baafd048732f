"""Impossible counts are errors: never SUCCEEDED, and the chunk that disagrees is named."""

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
