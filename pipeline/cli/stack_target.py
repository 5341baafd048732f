"""Which stack a command talks to: the one `lambdaflow up` runs, or one started for the command.

Commands never guess endpoints: a running `lambdaflow up` in this directory publishes its
endpoint and outputs (`pipeline.local.state`); without one, `run` and `demo` start the embedded
stack for their own duration, while read-only commands (`results`, `failures`) say how to start
one. Pointing the same commands at a deployed AWS stack (`--stack NAME`) only needs a
`StackInfo` built from CloudFormation outputs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from pipeline.local.state import StackInfo, find_running_stack

if TYPE_CHECKING:
    from pipeline.local.stack import LocalStack, StackOptions


def stack_info(stack: LocalStack) -> StackInfo:
    """What other commands (and people) need to reach `stack`."""
    return StackInfo(
        name=stack.options.name,
        outputs=dict(stack.outputs),
        endpoint_url=stack.emulator.endpoint_url,
        pid=os.getpid(),
    )


@contextmanager
def embedded_stack(options: StackOptions | None = None, *, port: int = 0) -> Iterator[LocalStack]:
    """Start the emulator and the stack, point this process's SDK at it, stop both at the end.

    Imported here: moto and samtranslator take seconds to import, which commands that only
    read a running stack should not pay.
    """
    from pipeline.local.emulator import start_emulator  # noqa: PLC0415
    from pipeline.local.stack import LocalStack  # noqa: PLC0415

    emulator = start_emulator(port)
    os.environ.update(emulator.env)
    try:
        with LocalStack.start(options, emulator=emulator) as stack:
            os.environ.update(stack.function_env)
            yield stack
    finally:
        emulator.stop()


@contextmanager
def use_stack(*, start_if_missing: bool, workers: int | None = None) -> Iterator[StackInfo]:
    """The running stack, or (if allowed) an embedded one for the duration of the block."""
    info = find_running_stack()
    if info is not None:
        os.environ.update(info.client_env)
        yield info
        return
    if not start_if_missing:
        typer.echo(
            "No local stack is running here: start one with `lambdaflow up` (in this directory).",
            err=True,
        )
        raise typer.Exit(1)
    from pipeline.local.stack import StackOptions  # noqa: PLC0415  # see embedded_stack

    options = StackOptions() if workers is None else StackOptions(workers=workers)
    with embedded_stack(options) as stack:
        yield stack_info(stack)
