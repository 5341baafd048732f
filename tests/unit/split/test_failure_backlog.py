"""The parse-failure backlog: line order kept, memory bounded, disk reused once drained."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.failures import FailureRecord, Stage
from pipeline.split.failure_backlog import GROUP_RECORDS, FailureBacklog


def _record(line: int) -> FailureRecord:
    return FailureRecord(
        run="r",
        line=line,
        bucket=None,
        key=None,
        stage=Stage.PARSE,
        error="BadFieldCount",
        message=f"line {line}: 1 field, want bucket,key",
        retryable=False,
    )


def _take(backlog: FailureBacklog, last_line: float) -> list[FailureRecord]:
    return [record for group in backlog.pop_through(last_line) for record in group]


def test_records_come_back_in_order_through_the_spill_and_memory_stays_bounded():
    with FailureBacklog(memory_records=100) as backlog:
        for line in range(1, 1_001):
            backlog.add(_record(line))
            assert backlog.in_memory < 100
        assert len(backlog) == 1_000
        assert [r.line for r in _take(backlog, 450)] == list(range(1, 451))
        assert [r.line for r in _take(backlog, 449)] == []
        assert _take(backlog, 1_000) == [_record(line) for line in range(451, 1_001)]
        assert len(backlog) == 0


def test_groups_are_bounded():
    with FailureBacklog(memory_records=1_000) as backlog:
        for line in range(1, 2 * GROUP_RECORDS + 2):
            backlog.add(_record(line))
        sizes = [len(group) for group in backlog.pop_through(float("inf"))]
        assert sizes == [GROUP_RECORDS, GROUP_RECORDS, 1]


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 60)), min_size=1, max_size=30),
    memory=st.integers(1, 16),
)
def test_any_interleaving_of_adds_and_takes_matches_a_plain_list(steps, memory):
    # GIVEN adds (n new lines) and takes (through some line) in any order, with a tiny memory
    expected: list[int] = []
    next_line = 1
    with FailureBacklog(memory_records=memory) as backlog:
        for added, through in steps:
            for _ in range(added):
                backlog.add(_record(next_line))
                expected.append(next_line)
                next_line += 1
            taken = [r.line for r in _take(backlog, next_line - through)]
            # THEN each take gives exactly what a list would, oldest first
            assert taken == [line for line in expected if line <= next_line - through]
            expected = [line for line in expected if line > next_line - through]
            assert len(backlog) == len(expected)
            assert backlog.in_memory < 2 * memory  # the newest, and one block read back
