"""The state around Split: what a pass's outcome makes of it, and its trip through the JSON."""

from __future__ import annotations

import dataclasses

from pipeline.gzip.checkpoint import Checkpoint, StreamKind
from pipeline.split.state import SplitState
from pipeline.split.values import SplitOutcome

PASSES = 3


def _outcome(*, is_done: bool = False, is_paused: bool = False) -> SplitOutcome:
    return SplitOutcome(
        checkpoint=Checkpoint(9, 120, 2, StreamKind.PLAIN, 120),
        is_done=is_done,
        lines=8,
        records=7,
        parse_failures={"BadUri": 1},
        chunks_sent=2,
        passes=5,
        pass_lines=4,
        pass_chunks=1,
        bytes_fetched=60,
        seconds=0.1,
        is_paused=is_paused,
    )


def _after(state: SplitState, outcome: SplitOutcome) -> SplitState:
    return state.after(outcome, pause_s=30, passes_per_execution=PASSES)


def test_a_pass_carries_its_outcome_into_the_state():
    state = _after(SplitState(run="r", manifest={"key": "m"}), _outcome(is_paused=True))
    assert (state.done, state.paused, state.pause_s) == (False, True, 30)
    assert (state.lines, state.chunks, state.passes) == (8, 2, 5)
    assert state.parse_failures == {"BadUri": 1}
    assert state.resume == Checkpoint(9, 120, 2, StreamKind.PLAIN, 120).to_dict()
    assert (state.execution_passes, state.continues) == (1, False)


def test_the_run_goes_on_in_a_new_execution_after_its_passes_unless_done():
    state = SplitState(run="r", manifest={"key": "m"}, execution_passes=PASSES - 2)
    assert not _after(state, _outcome()).continues
    last = dataclasses.replace(state, execution_passes=PASSES - 1)
    assert _after(last, _outcome()).continues
    assert (_after(last, _outcome()).execution_passes, _after(last, _outcome()).passes) == (3, 5)
    assert not _after(last, _outcome(is_done=True)).continues


def test_the_state_reads_back_what_it_wrote():
    state = _after(
        SplitState(run="r", manifest={"key": "m"}, execution_passes=PASSES - 1), _outcome()
    )
    data = state.to_dict()
    assert (data["continue"], data["execution_passes"]) == (True, PASSES)
    assert SplitState.from_dict(data) == state
