"""`lambdaflow status [RUN] [--watch] [--json]`: every run (or one) as the ledger counts it.

Reads the DynamoDB run ledger (`pipeline/ledger/table.py`) of the stack found (`--stack NAME`,
LAMBDAFLOW_STACK, or a running `lambdaflow up` in this directory or a parent), or of the table
named by `--table` / `LAMBDAFLOW_RUNS_TABLE` (the SDK's `AWS_ENDPOINT_URL` points it at an
emulator). Per run: manifest, state, lines split (`+` while Split is still going), chunks
done/sent, ok/failed, images/s, ETA and the cost so far: a table, or a few lines a run where
the terminal is too narrow for every value whole. `--watch` redraws it until every shown run has
finished. Exit 1 with one line on stderr when no ledger can be found or the run is unknown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import boto3
import orjson
import typer
from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from pipeline.cli.app import app
from pipeline.cli.errors import CliError
from pipeline.cli.stack_target import StackOption, find_stack
from pipeline.config import Settings
from pipeline.ledger.runs import RunState, RunStatus
from pipeline.ledger.summary import Prices, estimate_cost
from pipeline.ledger.table import RunLedger, UnknownRunError

RUNS_TABLE_OUTPUT = "RunsTableName"
"""The template output naming the ledger table (what a running local stack publishes)."""


def run_row(state: RunState, now: float, prices: Prices | None = None) -> dict[str, Any]:
    """The status of one run as plain values (the `--json` shape and the table's cells)."""
    wall_s = state.wall_s(now)
    eta = state.eta_s(now)
    return {
        "run": state.run,
        "manifest": state.manifest,
        "status": state.status.value,
        "lines_split": state.lines_split,
        "is_split_done": state.is_split_done,
        "is_split_paused": state.is_split_paused and not state.is_split_done,
        "chunks_done": state.chunks_done,
        "chunks_sent": state.chunks_sent,
        "ok": state.ok,
        "failed": state.failed,
        "pending": max(0, state.pending),
        "images_per_s": round(state.images / wall_s, 2) if wall_s > 0 else 0.0,
        "eta_s": None if eta is None or state.status is not RunStatus.RUNNING else round(eta),
        "seconds": round(wall_s, 1),
        "cost_usd": estimate_cost(state, prices or Prices())["total"],
        "reason": state.reason,
    }


COLUMNS = ("run", "manifest", "state", "lines", "chunks", "ok", "failed", "img/s", "ETA", "cost $")
"""The runs table's columns; every one but the manifest is shown whole, never wrapped or cut."""
MANIFEST_MIN_WIDTH = 40
"""Fewest columns the folded manifest URI may take in the table; with fewer, each run is shown
in a few lines of its own."""
NO_RUNS = "no runs in this ledger yet: `lambdaflow run MANIFEST` starts one"


def render_table(rows: list[dict[str, Any]], width: int) -> RenderableType:
    """The runs, newest first, in `width` columns: a table, or a few lines a run when narrower.

    Why: a run id or a count cut to "e59b…" on an 80-column terminal is useless (the id is what
    every other command takes). So every value is shown whole on one line but the manifest URI,
    which is folded, never shortened; when those values do not fit side by side, each run gets
    its own lines (`_block`).
    """
    if not rows:
        return NO_RUNS
    cells = [_cells(row) for row in rows]
    if _fixed_width(cells) + MANIFEST_MIN_WIDTH + 3 > width:
        return Group(*(_block(row, run_cells) for row, run_cells in zip(rows, cells, strict=True)))
    table = Table(title="lambdaflow runs", expand=False)
    for name in COLUMNS:
        if name == "manifest":
            table.add_column(name, overflow="fold")
        else:
            justify = "left" if name in {"run", "state"} else "right"
            table.add_column(name, justify=justify, no_wrap=True)
    for run_cells in cells:
        table.add_row(*run_cells)
    reasons = [f"{row['run']}: {row['reason']}" for row in rows if row.get("reason")]
    if reasons:  # why a run is PARTIAL or FAILED: the table alone would not say
        table.caption = "\n".join(reasons)
        table.caption_justify = "left"
    return table


def _cells(row: dict[str, Any]) -> tuple[str, ...]:
    """One run's values, in `COLUMNS` order (`+`: Split has not finished counting)."""
    more = "" if row["is_split_done"] else "+"
    paused = ", split paused: queue full" if row["is_split_paused"] else ""
    return (
        row["run"],
        row["manifest"],
        f"{row['status']}{paused}",
        f"{row['lines_split']:,}{more}",
        f"{row['chunks_done']:,}/{row['chunks_sent']:,}{more}",
        f"{row['ok']:,}",
        f"{row['failed']:,}",
        f"{row['images_per_s']:.1f}",
        "-" if row["eta_s"] is None else _duration(row["eta_s"]),
        f"{row['cost_usd']:.4f}",
    )


def _fixed_width(cells: list[tuple[str, ...]]) -> int:
    """Columns the table takes without its manifest: each whole value, padding and borders."""
    manifest = COLUMNS.index("manifest")
    widths = [
        max([cell_len(name)] + [cell_len(run_cells[i]) for run_cells in cells])
        for i, name in enumerate(COLUMNS)
        if i != manifest
    ]
    return sum(width + 3 for width in widths) + 1  # " value " and a border each, one more


_PAIR_NAMES = tuple(name.removesuffix(" $") for name in COLUMNS[3:])
"""The names of `_block`'s pairs: the columns after the run, the manifest and the state."""


def _block(row: dict[str, Any], cells: tuple[str, ...]) -> RenderableType:
    """One run in a few lines of any width: its id and state, then ``name=value`` pairs.

    A pair has no space in it, so a narrow terminal wraps between pairs, never inside a value;
    the manifest URI is folded, and a blank line ends the run. Five lines or so a run keep a
    `--watch` of several runs on one screen.
    """
    run, manifest, state, *stats = cells
    pairs = (
        f"{name}=${value}" if name == "cost" else f"{name}={value}"
        for name, value in zip(_PAIR_NAMES, stats, strict=True)
    )
    body = [Text(" ".join(pairs)), Text(manifest, overflow="fold")]
    if row.get("reason"):
        body.append(Text(f"reason: {row['reason']}"))
    return Group(Text.assemble((run, "bold"), " ", state), Padding(Group(*body), (0, 0, 1, 2)))


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def open_ledger(table: str | None, stack: str | None = None) -> RunLedger:
    """The ledger of `--table`, else of the stack found, else of the settings.

    The stack found: `--stack`, LAMBDAFLOW_STACK, or a local `lambdaflow up` here or in a parent
    (`stack_target.find_stack`).

    Raises:
        CliError: no table can be found (with a hint).
    """
    if table is None:
        info = find_stack(stack)
        if info is not None:
            table = info.outputs.get(RUNS_TABLE_OUTPUT)
    table = table or Settings.from_env().runs_table
    if not table:
        raise CliError(
            "no run ledger found: start `lambdaflow up` here, or pass --stack NAME or --table "
            "(or set LAMBDAFLOW_RUNS_TABLE, with AWS_ENDPOINT_URL for a local emulator)"
        )
    return RunLedger(boto3.client("dynamodb"), table)


def read_rows(ledger: RunLedger, run: str | None, now: float) -> list[dict[str, Any]]:
    """The rows to show: one run, or every run newest first."""
    states = [ledger.get_run(run)] if run else ledger.list_runs()
    return [run_row(state, now) for state in states]


def watch(
    read: Callable[[], list[dict[str, Any]]], console: Console, interval_s: float
) -> list[dict[str, Any]]:
    """Redraw the table every `interval_s` until no shown run is RUNNING; return the last rows."""
    rows = read()
    with Live(render_table(rows, console.width), console=console, refresh_per_second=4) as live:
        while any(row["status"] == RunStatus.RUNNING.value for row in rows):
            time.sleep(interval_s)
            rows = read()
            live.update(render_table(rows, console.width))
    return rows


@app.command()
def status(  # noqa: PLR0917  # typer: one parameter per documented CLI option
    run: Annotated[str | None, typer.Argument(help="One run id; every run when omitted.")] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table.")
    ] = False,
    is_watching: Annotated[
        bool, typer.Option("--watch", help="Live table until every shown run has finished.")
    ] = False,
    interval_s: Annotated[
        float, typer.Option("--interval", min=0.01, help="Seconds between reads.")
    ] = 2.0,
    table: Annotated[str | None, typer.Option(help="The DynamoDB runs table to read.")] = None,
    stack: StackOption = None,
) -> None:
    """Show every run, or one: progress, ok/failed, img/s, ETA, cost.

    Progress is the lines split and the chunks done; the cost is an estimate of the AWS cost so far.
    """
    ledger = open_ledger(table, stack)
    try:
        if is_watching and not json_out:
            watch(lambda: read_rows(ledger, run, time.time()), Console(), interval_s)
            return
        rows = read_rows(ledger, run, time.time())
    except UnknownRunError as exc:
        raise CliError(f"{exc}; `lambdaflow status` lists every run") from None
    if json_out:
        payload: Any = rows[0] if run else rows
        typer.echo(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode())
        return
    console = Console()
    console.print(render_table(rows, console.width))
