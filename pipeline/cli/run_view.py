"""How a run looks on a terminal: the live progress bar and the summary (rich)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console, RenderableType
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from pipeline.ledger.runs import RunState


class _BarThenDetail(Progress):
    """One task's bar, with the task's ``detail`` field on the line below it, wrapped at spaces.

    rich's own way to lay a progress display out differently (`Progress.get_renderables`): on an
    80-column terminal a detail column beside the bar got ~12 columns and folded its values.
    """

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        for task in self.tasks:
            yield Text(f"  {task.fields.get('detail', '')}")


class RunProgress:
    """A live bar of lines counted out of lines split, then chunks, failures and images/s.

    Nothing is cut at any width: the bar line keeps the run id and the line counts whole (the
    bar shrinks), and the details below it are ``name=value`` pairs, wrapped between pairs.
    """

    def __init__(self, console: Console, run: str) -> None:
        self._progress = _BarThenDetail(
            TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True)),
            BarColumn(bar_width=20),
            TextColumn(
                "{task.completed:>9,.0f}/{task.fields[total_text]} lines",
                table_column=Column(no_wrap=True),
            ),
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
        more = "" if state.is_split_done else "+"
        detail = (  # name=value pairs, as `lambdaflow status` shows them
            f"chunks={state.chunks_done:,}/{state.chunks_sent:,}{more} ok={state.ok:,} "
            f"failed={state.failed:,} img/s={state.images / elapsed:.1f}"
        )
        total = state.lines if state.is_split_done else None
        self._progress.update(
            self._task,
            completed=state.ok + state.failed,
            total=total,
            detail=detail,
            total_text="?" if total is None else f"{total:,}",
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
