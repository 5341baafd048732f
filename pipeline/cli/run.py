"""`lambdaflow run MANIFEST`: drop a manifest into the stack, follow it, print the summary."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, TextIO

import boto3
import orjson
import typer
from rich.console import Console

from pipeline.cli.app import app
from pipeline.cli.run_view import RunProgress, summary_table
from pipeline.cli.stack_target import use_stack
from pipeline.ledger.runs import RunStatus
from pipeline.ledger.submit import RunTimeoutError, submit_manifest, watch_run
from pipeline.ledger.table import RunLedger
from pipeline.local.state import StackInfo


@contextmanager
def stdout_reserved() -> Iterator[TextIO]:
    """Keep stdout for the result alone: everything else written to fd 1 goes to stderr.

    Handlers log to stdout (as on Lambda), in this process and in the worker processes it
    spawns; moving fd 1 itself catches them all, so `--json` output stays one clean object.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with os.fdopen(os.dup(saved), "w") as out:
            yield out
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def run_manifest(info: StackInfo, manifest: str, console: Console, timeout_s: float) -> dict:
    """Submit `manifest` to the stack behind `info` and follow it to its summary."""
    s3 = boto3.client("s3")
    obj = submit_manifest(s3, info.input_bucket, manifest)
    ledger = RunLedger(boto3.client("dynamodb"), info.outputs["RunsTableName"])
    view = RunProgress(console, obj.run)
    with view.shown():
        return watch_run(
            ledger=ledger,
            s3=s3,
            results_bucket=info.results_bucket,
            run=obj.run,
            on_progress=view.update,
            timeout_s=timeout_s,
        )


@app.command()
def run(
    manifest: Annotated[str, typer.Argument(help="A local manifest file or an s3:// URI.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print only the summary object (_SUCCESS.json).")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the run.")] = 3600.0,
    workers: Annotated[
        int | None, typer.Option(help="Classify processes of an embedded stack (default: cores).")
    ] = None,
) -> None:
    """Label every image of MANIFEST on the running stack (or an embedded one, started now).

    Exits 0 when every line was read and has a result or a failure record (bad lines and bad
    images are data), 1 when the run is partial (the manifest broke or was not a manifest, or
    the run stalled: the summary says why), failed, or timed out.
    """
    console = Console(stderr=as_json)
    with stdout_reserved() as out, use_stack(start_if_missing=True, workers=workers) as info:
        try:
            summary = run_manifest(info, manifest, console, timeout)
        except RunTimeoutError as exc:
            console.print(f"[red]{exc}")
            raise typer.Exit(1) from exc
        if as_json:
            out.write(orjson.dumps(summary).decode() + "\n")
    if not as_json:
        console.print(summary_table(summary))
    status = summary.get("status")
    if status != RunStatus.SUCCEEDED.value:
        # Partial is not "done": a script chaining on `run` must not take it for a full result.
        reason = summary.get("reason") or "see `lambdaflow status`"
        typer.echo(f"run {summary['run']} is {str(status).lower()}: {reason}", err=True)
        raise typer.Exit(1)
