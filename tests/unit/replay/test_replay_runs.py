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

    def replay_items(self, run: str, flt: ReplayFilter, *, limit: int | None, dry_run: bool):
        self.calls.append(("items", run, limit))
        count = self.failed.get(run, 0) if limit is None else min(limit, self.failed.get(run, 0))
        return RunReplay(run, 0 if dry_run else 1, tuple(range(1, count + 1)), 1 if count else 0)

    def wait_settled(self, runs: list[str], *, timeout_s: float) -> None:
        self.calls.append(("wait", sorted(runs)))

    def refresh_summary(self, run: str, *, now: float) -> dict:
        self.calls.append(("summary", run))
        return {"run": run}


def test_the_dlq_goes_first_and_is_waited_for_then_items_share_the_limit():
    fake = FakeReplayer(
        {A: 3, B: 5, C: 2}, parked=[ParkedChunk(B, 4, 0, 2), ParkedChunk("", -1, 0, 0)]
    )
    reports = replay_runs(fake, [A, B, C], ReplayFilter(), limit=6)  # type: ignore[arg-type]
    assert fake.calls[:2] == [("dlq", None, 6, False), ("wait", [B])]
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
