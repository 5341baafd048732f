"""Which stack a command talks to, resolved the same way by every command, and said.

In order: `--stack NAME` (a deployed stack, resolved through its CloudFormation Outputs), then
the environment (LAMBDAFLOW_STACK names one), then the `lambdaflow up` running in this directory
or the nearest parent that has one (`pipeline.local.state`: its endpoint and dummy credentials
are applied to this process, so nothing needs exporting). Only when none is found do `run` and
`demo` start a throwaway embedded stack, and say so on stderr; read-only commands say how to
start one and exit 1. `scan` and `classify` read `s3://` objects through the same resolution
(`use_s3_of`), falling back on the SDK's own configuration.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from pipeline.cli.errors import CliError

if TYPE_CHECKING:
    from pipeline.local.stack import LocalStack, StackOptions
    from pipeline.local.state import StackInfo

StackOption = Annotated[
    str | None,
    typer.Option(
        "--stack",
        help="A deployed stack's name [LAMBDAFLOW_STACK] (default: the `lambdaflow up` of this "
        "directory or a parent).",
        show_default=False,
    ),
]

NO_STACK = (
    "no stack to talk to: none named by --stack or LAMBDAFLOW_STACK, and no `lambdaflow up` "
    "running in this directory or a parent (start one there, or pass --stack NAME)"
)
THROWAWAY = (
    "No stack found (--stack, LAMBDAFLOW_STACK, or a `lambdaflow up` in this directory or a "
    "parent): starting a throwaway local stack for this command; it and its results are gone "
    "when the command ends."
)
_SDK_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_PROFILE")
"""Variables by which a user points the SDK somewhere themselves: these win over a found stack."""


def stack_info(stack: LocalStack) -> StackInfo:
    """What other commands (and people) need to reach `stack`."""
    from pipeline.local.state import StackInfo  # noqa: PLC0415

    return StackInfo(
        name=stack.options.name,
        outputs=dict(stack.outputs),
        endpoint_url=stack.emulator.endpoint_url,
        pid=os.getpid(),
    )


def named_stack(stack: str | None) -> str:
    """The deployed stack named by `--stack`, else by LAMBDAFLOW_STACK, else ``""``."""
    if stack:
        return stack
    from pipeline.config import Settings  # noqa: PLC0415

    return Settings.from_env().stack


def deployed_stack(name: str) -> StackInfo:
    """A deployed stack's `StackInfo`, from its Outputs (region: the SDK's).

    Raises:
        ConfigError: no such stack, or one that is not usable (said by `describe_deployed_stack`).
    """
    import boto3  # noqa: PLC0415  # slow import: only commands that talk to a stack pay it

    from pipeline.aws.stack_outputs import describe_deployed_stack  # noqa: PLC0415
    from pipeline.local.state import StackInfo  # noqa: PLC0415

    deployed = describe_deployed_stack(boto3.client("cloudformation"), name)
    return StackInfo(
        name=deployed.name,
        outputs=dict(deployed.outputs),
        endpoint_url=None,
        region=deployed.region,
    )


def find_stack(stack: str | None = None) -> StackInfo | None:
    """The stack this command talks to (`--stack`, LAMBDAFLOW_STACK, a local `up`), or None.

    A found local stack's endpoint and credentials are applied to this process's environment.
    """
    name = named_stack(stack)
    if name:
        return deployed_stack(name)
    from pipeline.local.state import find_running_stack  # noqa: PLC0415

    info = find_running_stack()
    if info is not None:
        os.environ.update(info.client_env)
    return info


def use_s3_of(stack: str | None) -> None:
    """Point this process's S3 reads at the stack found here, unless the user pointed them.

    `--stack`/LAMBDAFLOW_STACK: the deployed stack's region. Otherwise, when no SDK variable is
    exported, a `lambdaflow up` of this directory or a parent (its endpoint and credentials).
    """
    name = named_stack(stack)
    if name:
        info = deployed_stack(name)
        os.environ.setdefault("AWS_DEFAULT_REGION", info.region)
        return
    if any(os.environ.get(var) for var in _SDK_ENV):
        return
    from pipeline.local.state import find_running_stack  # noqa: PLC0415

    info = find_running_stack()
    if info is not None:
        os.environ.update(info.client_env)


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
def use_stack(
    *,
    start_if_missing: bool,
    workers: int | None = None,
    stack: str | None = None,
    announce: bool = True,
) -> Iterator[StackInfo]:
    """The stack found (see `find_stack`), or (if allowed) a throwaway embedded one, said.

    `announce=False`: the caller says it itself (the demo, whose whole point is that stack).

    Raises:
        CliError: no stack was found and this command may not start one.
    """
    info = find_stack(stack)
    if info is not None:
        yield info
        return
    if not start_if_missing:
        raise CliError(NO_STACK)
    if announce:
        typer.echo(THROWAWAY, err=True)
    from pipeline.local.stack import StackOptions  # noqa: PLC0415  # see embedded_stack

    options = StackOptions() if workers is None else StackOptions(workers=workers)
    with embedded_stack(options) as embedded:
        yield stack_info(embedded)
