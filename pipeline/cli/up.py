"""`lambdaflow up`: run the embedded local AWS stack in the foreground until Ctrl-C."""

from __future__ import annotations

import json
import signal
import threading
from typing import Annotated

import typer

from pipeline.cli.app import app
from pipeline.cli.stack_target import embedded_stack, stack_info
from pipeline.local.state import (
    STATE_FILE,
    StackInfo,
    clear_state,
    find_running_stack,
    write_state,
)


def _print_human(info: StackInfo) -> None:
    typer.echo(f"lambdaflow local stack {info.name!r} is up at {info.endpoint_url}")
    typer.echo("\nPoint the AWS SDK / CLI at it:")
    for name, value in info.client_env.items():
        typer.echo(f"  export {name}={value}")
    typer.echo("\nBuckets:")
    typer.echo(f"  input   s3://{info.input_bucket}   (drop manifests here)")
    typer.echo(f"  results s3://{info.results_bucket}")
    if info.images_bucket:
        typer.echo(f"  images  s3://{info.images_bucket}   (allowlisted image source)")
    typer.echo("\nOther lambdaflow commands in this directory use this stack. Ctrl-C stops it.")


@app.command()
def up(
    port: Annotated[int, typer.Option(help="Port for the emulator; 0 picks a free one.")] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON line with the endpoint and buckets.")
    ] = False,
    workers: Annotated[
        int | None, typer.Option(help="Classify worker processes (default: CPU cores).")
    ] = None,
) -> None:
    """Run the embedded local AWS stack (moto + template.yaml + pollers) until Ctrl-C."""
    running = find_running_stack(STATE_FILE)
    if running is not None:
        typer.echo(
            f"A stack is already up here (pid {running.pid}, {running.endpoint_url}): "
            "use it, or stop it with Ctrl-C first.",
            err=True,
        )
        raise typer.Exit(1)
    from pipeline.local.stack import StackOptions  # noqa: PLC0415  # slow import: see stack_target

    options = StackOptions() if workers is None else StackOptions(workers=workers)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with embedded_stack(options, port=port) as stack:
        info = stack_info(stack)
        write_state(info)
        try:
            if as_json:
                typer.echo(json.dumps(info.to_dict()), nl=True)
            else:
                _print_human(info)
            while not stopping.wait(1.0):
                pass
        finally:
            clear_state()
    if not as_json:
        typer.echo("stopped")
