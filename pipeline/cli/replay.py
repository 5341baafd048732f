"""`lambdaflow replay`: re-run failed lines and WorkDLQ chunks; print what moved and the summary."""

from __future__ import annotations

import sys
from typing import Annotated

import boto3
import orjson
import typer
from rich.console import Console
from rich.table import Table

from pipeline.cli.app import app
from pipeline.cli.errors import CliError
from pipeline.cli.run_view import summary_table
from pipeline.cli.stack_target import StackOption, use_stack
from pipeline.config import Settings
from pipeline.failures import Stage
from pipeline.ledger.runs import RunStatus
from pipeline.ledger.table import RunLedger, UnknownRunError
from pipeline.local.state import StackInfo
from pipeline.replay.ledger import ReplayInProgressError, ReplayLedger, RunStillRunningError
from pipeline.replay.replayer import (
    Replayer,
    ReplayFilter,
    ReplaySource,
    ReplayTargets,
    ReplayTimeoutError,
    RunReplay,
    replay_runs,
)


def build_replayer(info: StackInfo, settings: Settings) -> Replayer:
    """A `Replayer` on the stack behind `info` (its SDK environment is already set)."""
    outputs = info.outputs
    dynamodb = boto3.client("dynamodb")
    table = outputs["RunsTableName"]
    return Replayer(
        s3=boto3.client("s3"),
        sqs=boto3.client("sqs"),
        ledger=RunLedger(dynamodb, table),
        replays=ReplayLedger(dynamodb, table),
        targets=ReplayTargets(
            results_bucket=info.results_bucket,
            work_queue_url=outputs["WorkQueueUrl"],
            work_dlq_url=outputs["WorkDLQUrl"],
            failure_queue_url=outputs["FailureQueueUrl"],
            chunk_items=settings.chunk_items,
            chunk_max_bytes=settings.chunk_max_bytes,
            use_move_task=info.endpoint_url is None,  # a deployed stack: SQS's own move task
        ),
    )


def replay_table(reports: list[RunReplay], *, dry_run: bool) -> Table:
    """A row per run: what was (or would be) replayed, the run id and the counts never cut."""
    verb = "would replay" if dry_run else "replayed"
    table = Table(title=f"lambdaflow replay: {verb}")
    table.add_column("run", no_wrap=True)  # the id other commands take: never cut
    for name in ("round", "lines", "chunks"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("WorkDLQ chunks", justify="right", max_width=9)  # the header on two lines
    table.add_column("by error", overflow="fold")  # the room left, wrapped at words
    for r in reports:
        errors = ", ".join(f"{code} {count}" for code, count in sorted(r.by_error.items()))
        if r.unreplayable:
            errors += f" (+{r.unreplayable} parse, not replayable)"
        table.add_row(
            r.run,
            f"{r.replay_round} again" if r.resent else str(r.replay_round or "-"),
            str(len(r.lines)),
            str(r.chunks),
            str(len(r.dlq_chunks)),
            errors or "-",
        )
    return table


def failure_queue_warnings(reports: list[RunReplay]) -> list[str]:
    """One line for each run whose FailureQueue may still hold superseded failure messages."""
    return [
        f"run {r.run}: {r.failure_queue_left}, so failure messages of lines this replay "
        "superseded may remain in it; the failure parts in S3 are exact"
        for r in reports
        if r.failure_queue_left
    ]


def _every_run(
    replayer: Replayer, console: Console, *, skip_running: bool, skipped: list[str]
) -> list[str]:
    """Every run in the ledger; without --wait a running one is skipped, with one line."""
    runs = []
    for state in replayer.ledger.iter_runs():
        if skip_running and state.status is RunStatus.RUNNING:
            console.print(
                f"run {state.run} is still running: not replayed (or pass --wait)", soft_wrap=True
            )
            skipped.append(state.run)
            continue
        runs.append(state.run)
    return runs


@app.command()
def replay(  # noqa: PLR0917  # typer: one parameter per documented CLI option
    run: Annotated[str | None, typer.Option(help="Only this run (default: every run).")] = None,
    stage: Annotated[
        str | None, typer.Option(help="Only failures at this stage (fetch, decode, …).")
    ] = None,
    error: Annotated[str | None, typer.Option(help="Only failures with this error code.")] = None,
    retryable_only: Annotated[
        bool, typer.Option("--retryable-only", help="Only failures marked retryable.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count and show what would be replayed.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option(min=0, help="Replay at most N lines (and N chunks).")
    ] = None,
    source: Annotated[
        ReplaySource, typer.Option(help="items: failed lines; dlq: WorkDLQ chunks; all: both.")
    ] = ReplaySource.ALL,
    timeout: Annotated[
        float,
        typer.Option(
            min=0,
            help="Seconds to wait for the replay, for another replay's FailureQueue drain, "
            "and (with --wait) for the run.",
        ),
    ] = 600.0,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", help="Wait (up to --timeout) for a running run to finish, then replay it."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    stack: StackOption = None,
) -> None:
    """Replay failed lines and poison chunks (one run, or every run).

    Failed lines go back as new chunks of their run; poison chunks come back from the WorkDLQ.
    """
    if stage is not None and stage not in {s.value for s in Stage}:
        raise typer.BadParameter(f"unknown stage {stage!r}", param_hint="--stage")
    console = Console(stderr=True)
    skipped: list[str] = []  # running runs left out of an every-run replay: exit 1 at the end
    with use_stack(start_if_missing=False, stack=stack) as info:
        replayer = build_replayer(info, Settings.from_env())
        try:
            runs = (
                [run]
                if run
                else _every_run(
                    replayer,
                    console,
                    skip_running=not wait and source is not ReplaySource.DLQ,
                    skipped=skipped,
                )
            )
            if run:
                replayer.ledger.get_run(run)
            if wait and source is not ReplaySource.DLQ:
                for running in (r for r in runs if replayer.is_running(r)):
                    console.print(
                        f"run {running} is still running: waiting up to {timeout:.0f}s for it",
                        soft_wrap=True,
                    )
            reports = replay_runs(
                replayer,
                runs,
                ReplayFilter(stage=stage, error=error, is_retryable_only=retryable_only),
                source=source,
                limit=limit,
                dry_run=dry_run,
                timeout_s=timeout,
                wait=wait,
            )
        except (
            UnknownRunError,
            ReplayInProgressError,
            ReplayTimeoutError,
            RunStillRunningError,
        ) as exc:
            raise CliError(str(exc)) from exc
    _print(reports, dry_run=dry_run, as_json=as_json, console=console)
    if skipped:
        raise typer.Exit(1)


def _print(reports: list[RunReplay], *, dry_run: bool, as_json: bool, console: Console) -> None:
    if as_json:
        body = {"dry_run": dry_run, "runs": [r.to_dict() for r in reports]}
        sys.stdout.write(orjson.dumps(body).decode() + "\n")
        return
    if not reports:
        console.print("nothing to replay")
        return
    out = Console()
    out.print(replay_table(reports, dry_run=dry_run))
    for warning in failure_queue_warnings(reports):
        console.print(warning, style="yellow", markup=False, soft_wrap=True)
    for report in reports:  # each replayed run's new summary (what its summary file now says)
        if report.summary:
            out.print(summary_table(report.summary))
