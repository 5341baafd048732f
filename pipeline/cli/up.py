"""`lambdaflow up`: run the embedded local AWS stack in the foreground until Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import threading
from typing import Annotated

import typer

from pipeline.cli.app import app
from pipeline.local.emulator import start_emulator
from pipeline.local.stack import LocalStack, StackOptions
from pipeline.local.state import StackInfo, clear_state, write_state


def stack_info(stack: LocalStack) -> StackInfo:
    """What other commands (and people) need to reach `stack`."""
    return StackInfo(
        name=stack.options.name,
        outputs=dict(stack.outputs),
        endpoint_url=stack.emulator.endpoint_url,
        pid=os.getpid(),
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
    emulator = start_emulator(port)
    os.environ.update(emulator.env)
    options = StackOptions() if workers is None else StackOptions(workers=workers)
    stack = LocalStack.start(options, emulator=emulator)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        info = stack_info(stack)
        write_state(info)
        if as_json:
            typer.echo(json.dumps(info.to_dict()), nl=True)
        else:
            _print_human(info)
        while not stopping.wait(1.0):
            pass
    finally:
        clear_state()
        stack.stop()
        emulator.stop()
        if not as_json:
            typer.echo("stopped")
