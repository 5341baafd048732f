"""How `replay_runs` orders its phases and shares `--limit` (a recording fake stands in for AWS)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.replay.replayer import ReplayFilter, ReplaySource, RunReplay, replay_runs
from pipeline.replay.work_dlq import ParkedChunk

A, B, C = "a" * 20, "b" * 20, "c" * 20


@dataclass
class FakeReplayer:
    """Records calls; each run has `failed` lines to replay, the DLQ holds `parked` chunks."""

    failed: dict[str, int]
    parked: list[ParkedChunk] = field(default_factory=list)
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def replay_dlq(self, run: str | None, *, limit: int | None, dry_run: bool) -> list:
        self.calls.append(("dlq", run, limit, dry_run))
        return [p for p in self.parked if run is None or p.run == run]

    drain_waits: list[float] = field(default_factory=list)

    def replay_items(
        self, run: str, flt: ReplayFilter, *, limit: int | None, dry_run: bool, drain_wait_s: float
    ):
        self.calls.append(("items", run, limit))
        self.drain_waits.append(drain_wait_s)
        count = self.failed.get(run, 0) if limit is None else min(limit, self.failed.get(run, 0))
        return RunReplay(run, 0 if dry_run else 1, tuple(range(1, count + 1)), 1 if count else 0)

    def wait_settled(self, runs: list[str], *, timeout_s: float) -> None:
        self.calls.append(("wait", sorted(runs)))

    def refresh_summary(self, run: str, *, now: float, replayed=None) -> dict:
        self.calls.append(("summary", run))
        return {"run": run}

    running: set[str] = field(default_factory=set)

    def is_running(self, run: str) -> bool:
        return run in self.running

    def wait_finished(self, runs: list[str], *, timeout_s: float) -> None:
        self.calls.append(("wait_finished", sorted(runs)))
        self.running -= set(runs)


def test_the_dlq_goes_first_and_is_waited_for_then_items_share_the_limit():
    fake = FakeReplayer(
        {A: 3, B: 5, C: 2}, parked=[ParkedChunk(B, 4, 0, 2), ParkedChunk("", -1, 0, 0)]
    )
    reports = replay_runs(fake, [A, B, C], ReplayFilter(), limit=6, timeout_s=42)  # type: ignore[arg-type]
    assert fake.calls[:2] == [("dlq", None, 6, False), ("wait", [B])]
    assert fake.drain_waits == [42, 42]  # --timeout bounds the wait for another replay's drain
    assert [c for c in fake.calls if c[0] == "items"] == [("items", A, 6), ("items", B, 3)]
    assert [(r.run, len(r.lines), len(r.dlq_chunks)) for r in reports] == [(A, 3, 0), (B, 3, 1)]
    assert ("wait", [A, B]) in fake.calls
    assert [c[1] for c in fake.calls if c[0] == "summary"] == [A, B]


def test_a_dry_run_neither_waits_nor_rewrites_summaries():
    fake = FakeReplayer({A: 2})
    (report,) = replay_runs(fake, [A], ReplayFilter(), dry_run=True)  # type: ignore[arg-type]
    assert (report.replay_round, report.summary) == (0, None)
    assert [c[0] for c in fake.calls] == ["dlq", "items"]


def test_source_selects_the_phase():
    items_only = FakeReplayer({A: 1}, parked=[ParkedChunk(A, 0, 0, 1)])
    replay_runs(items_only, [A], ReplayFilter(), source=ReplaySource.ITEMS)  # type: ignore[arg-type]
    assert "dlq" not in [c[0] for c in items_only.calls]
    dlq_only = FakeReplayer({A: 1}, parked=[ParkedChunk(A, 0, 0, 1)])
    (report,) = replay_runs(dlq_only, [A], ReplayFilter(), source=ReplaySource.DLQ)  # type: ignore[arg-type]
    assert "items" not in [c[0] for c in dlq_only.calls]
    assert [p.chunk for p in report.dlq_chunks] == [0]


def test_a_running_run_is_refused_before_anything_moves_unless_asked_to_wait():
    from pipeline.replay.ledger import RunStillRunningError  # noqa: PLC0415

    fake = FakeReplayer({A: 2}, parked=[ParkedChunk(A, 0, 0, 1)], running={A})
    try:
        replay_runs(fake, [A], ReplayFilter())  # type: ignore[arg-type]
    except RunStillRunningError as exc:
        assert f"run {A} is still running" in str(exc)
    else:
        raise AssertionError("a running run was not refused")
    assert fake.calls == []  # refused before the WorkDLQ moved or anything was read
    waited = FakeReplayer({A: 2}, parked=[ParkedChunk(A, 0, 0, 1)], running={A})
    (report,) = replay_runs(waited, [A], ReplayFilter(), wait=True)  # type: ignore[arg-type]
    names = [c[0] for c in waited.calls]
    assert names.index("dlq") < names.index("wait_finished") < names.index("items")
    assert len(report.lines) == 2


def test_the_dlq_moves_even_while_the_run_is_running():
    fake = FakeReplayer({A: 2}, parked=[ParkedChunk(A, 0, 0, 1)], running={A})
    (report,) = replay_runs(fake, [A], ReplayFilter(), source=ReplaySource.DLQ)  # type: ignore[arg-type]
    assert [p.chunk for p in report.dlq_chunks] == [0]
