"""`lambdaflow results RUN` and `lambdaflow failures RUN`: a run's rows as JSON Lines.

A run id the stack's ledger does not know is an error (exit 1, one line), never an empty
success: a mistyped id must not look like a run with no rows.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import typer

from pipeline.cli.app import app
from pipeline.cli.errors import CliError
from pipeline.cli.stack_target import StackOption, use_stack

_Limit = Annotated[int | None, typer.Option(min=0, help="Print at most this many rows.")]
_Run = Annotated[str, typer.Argument(help="The run id (`lambdaflow status` lists them).")]
RUNS_TABLE_OUTPUT = "RunsTableName"


@app.command()
def results(run: _Run, limit: _Limit = None, stack: StackOption = None) -> None:
    """Print RUN's result rows as JSON Lines, each line once, in order."""
    from pipeline.parts.store import iter_result_rows  # noqa: PLC0415  # fast --help

    _print_rows(run, limit, stack, iter_result_rows)


@app.command()
def failures(run: _Run, limit: _Limit = None, stack: StackOption = None) -> None:
    """Print RUN's failure records as JSON Lines, latest per line."""
    from pipeline.parts.store import iter_failure_records  # noqa: PLC0415  # fast --help

    _print_rows(run, limit, stack, iter_failure_records)


def _print_rows(
    run: str,
    limit: int | None,
    stack: str | None,
    read: Callable[[Any, str, str], Iterable[Any]],
) -> None:
    import boto3  # noqa: PLC0415  # fast --help
    import orjson  # noqa: PLC0415

    with use_stack(start_if_missing=False, stack=stack) as info:
        _require_known_run(info.outputs.get(RUNS_TABLE_OUTPUT), run)
        rows = read(boto3.client("s3"), info.results_bucket, run)
        for row in itertools.islice(rows, limit):
            sys.stdout.write(orjson.dumps(row.to_dict()).decode() + "\n")


def _require_known_run(table: str | None, run: str) -> None:
    """Raise CliError unless the ledger knows `run` (skipped for a stack without a ledger)."""
    if not table:
        return
    import boto3  # noqa: PLC0415

    from pipeline.ledger.table import RunLedger, UnknownRunError  # noqa: PLC0415

    try:
        RunLedger(boto3.client("dynamodb"), table).get_run(run)
    except UnknownRunError:
        raise CliError(
            f"no run {run!r} on this stack: `lambdaflow status` lists every run"
        ) from None
