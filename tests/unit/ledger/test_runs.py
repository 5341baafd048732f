import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.ledger.runs import RunState, RunStatus, is_run_id, run_id

SFN_NAME = re.compile(r"^[0-9A-Za-z_-]{1,80}$")


def test_same_object_dropped_twice_is_one_run():
    assert run_id("in", "m.csv.gz", '"abc"') == run_id("in", "m.csv.gz", "abc")


@pytest.mark.parametrize(
    "other",
    [("in", "m.csv.gz", "abd"), ("in", "n.csv.gz", "abc"), ("in2", "m.csv.gz", "abc")],
)
def test_changed_object_is_a_new_run(other):
    assert run_id("in", "m.csv.gz", "abc") != run_id(*other)


def test_fields_cannot_run_into_each_other():
    assert run_id("ab", "c", "v") != run_id("a", "bc", "v")


@given(
    st.text(min_size=1), st.text(min_size=1), st.text(min_size=1).filter(lambda s: s.strip('" '))
)
def test_run_id_is_a_valid_execution_name(bucket, key, version):
    rid = run_id(bucket, key, version)
    assert SFN_NAME.fullmatch(rid)
    assert is_run_id(rid)


def test_run_id_needs_every_part():
    with pytest.raises(ValueError, match="ETag"):
        run_id("in", "m.csv.gz", "")


def test_is_run_id_rejects_paths():
    assert not is_run_id("../etc")


def test_run_state_pending_and_completion():
    state = RunState(
        run="r",
        manifest="m",
        status=RunStatus.RUNNING,
        started_at=10.0,
        lines_split=10,
        chunks_sent=2,
        is_split_done=True,
        chunks_done=1,
        ok=4,
        failed=1,
    )
    assert (state.pending, state.is_complete, state.wall_s(now=15.0)) == (5, False, 5.0)


def test_eta_only_once_the_total_is_known():
    base = {"run": "r", "manifest": "m", "status": RunStatus.RUNNING, "started_at": 0.0}
    assert RunState(**base, lines_split=10, ok=5).eta_s(now=10.0) is None
    done = RunState(**base, lines_split=10, is_split_done=True, ok=4, failed=1)
    assert done.eta_s(now=10.0) == 10.0
    assert RunState(**base, lines_split=10, is_split_done=True).eta_s(now=10.0) is None
