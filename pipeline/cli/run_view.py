"""How a run looks on a terminal: the live progress bar and the summary (rich)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from pipeline.ledger.runs import RunState


class RunProgress:
    """A live bar of lines counted out of lines split, with chunks, failures and images/s.

    The run id and the line counts are never cut: on a narrow terminal the bar shrinks and the
    details wrap instead (measured at 80 columns, where they took ~110 before).
    """

    def __init__(self, console: Console, run: str) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True)),
            BarColumn(bar_width=20),
            TextColumn(
                "{task.completed:>7.0f}/{task.fields[total_text]} lines",
                table_column=Column(no_wrap=True),
            ),
            TextColumn("{task.fields[detail]}", table_column=Column(overflow="fold")),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID = self._progress.add_task(
            f"run {run}", total=None, detail="starting", total_text="?"
        )
        self._started = time.monotonic()

    def update(self, state: RunState | None) -> None:
        """Show the ledger's latest reading (None: the run is not in the ledger yet)."""
        if state is None:
            self._progress.update(self._task, detail="waiting for Split")
            return
        elapsed = max(time.monotonic() - self._started, 1e-6)
        detail = (
            f"chunks {state.chunks_done}/{state.chunks_sent}{'' if state.is_split_done else '+'}"
            f"  ok {state.ok}  failed {state.failed}  {state.images / elapsed:.1f} img/s"
        )
        total = state.lines if state.is_split_done else None
        self._progress.update(
            self._task,
            completed=state.ok + state.failed,
            total=total,
            detail=detail,
            total_text="?" if total is None else str(total),
        )

    @contextmanager
    def shown(self) -> Iterator[RunProgress]:
        """Display the bar while the block runs."""
        with self._progress:
            yield self


def summary_table(summary: dict[str, Any]) -> Table:
    """The run summary as a two-column table."""
    table = Table(title=f"run {summary['run']}: {summary['status']}", show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # the manifest URI whole, folded on a narrow terminal
    table.add_row("manifest", str(summary.get("manifest")))
    table.add_row("lines", str(summary["lines"]))
    table.add_row("ok", str(summary["ok"]))
    table.add_row("failed", str(summary["failed"]))
    for label in ("failed_by_stage", "failed_by_error"):
        counts = summary.get(label) or {}
        if counts:
            table.add_row(label, ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    table.add_row("chunks", str(summary.get("chunks")))
    table.add_row("seconds", str(summary.get("seconds")))
    table.add_row("images/s", str(summary.get("images_per_s")))
    cost = summary.get("cost_usd") or {}
    if cost:
        table.add_row("est. AWS cost", f"${cost.get('total', 0):.6f}")
    if summary.get("reason"):
        table.add_row("reason", str(summary["reason"]))
    return table
