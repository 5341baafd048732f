"""The one error path of `lambdaflow`: every failure is one line on stderr and an exit code.

Anticipated failures (a missing file, an unknown run, no stack, AWS saying no) are one line and
exit 1 (the work could not be done) or 2 (usage). Anything else is one line naming the
exception, plus how to see its traceback (`--debug`, or LAMBDAFLOW_DEBUG=1). Light on purpose:
imported for every command, `--help` included, so botocore is recognised by module name.
"""

from __future__ import annotations

import os
import sys
import traceback

import typer
from typer._click import exceptions as click_errors  # typer >= 0.20 vendors click here

USAGE_ERROR = 2
WORK_FAILED = 1
INTERRUPTED = 130
DEBUG_FLAG = "--debug"
DEBUG_ENV = "LAMBDAFLOW_DEBUG"

_AWS_HINTS = {
    # AWS_DEFAULT_REGION, not AWS_REGION: the SDK (botocore) reads only the former.
    "NoRegionError": (
        "no AWS region: export AWS_DEFAULT_REGION (or set the profile's region), or start "
        "`lambdaflow up` here"
    ),
    "NoCredentialsError": "no AWS credentials: configure them, or start `lambdaflow up` here",
    "EndpointConnectionError": "cannot reach the AWS endpoint",
}


class Interrupted(Exception):
    """Ctrl-C that the command did not turn into its own line (see `OneErrorPath.invoke`)."""


class CliError(Exception):
    """An anticipated failure: its message is the whole story, one line."""

    def __init__(self, message: str, code: int = WORK_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def debug_requested(args: list[str]) -> bool:
    """`--debug` anywhere in the arguments, or LAMBDAFLOW_DEBUG set to a true value."""
    return DEBUG_FLAG in args or os.environ.get(DEBUG_ENV, "").lower() in {"1", "true", "yes"}


def say(message: str) -> None:
    """One line on stderr: newlines in `message` are folded so it stays one."""
    line = " ".join(str(message).split())
    typer.echo(f"error: {line}", err=True)


def exit_code_for(exc: BaseException, *, debug: bool) -> int:
    """Report `exc` in one line (and its traceback under --debug); return the exit code."""
    if isinstance(exc, click_errors.NoArgsIsHelpError):
        exc.show()
        return exc.exit_code
    if isinstance(exc, click_errors.ClickException):
        hint = ""
        ctx = getattr(exc, "ctx", None)
        if isinstance(exc, click_errors.UsageError) and ctx is not None:
            hint = f" (see `{ctx.command_path} --help`)"
        say(exc.format_message() + hint)
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt | Interrupted | typer.Abort):
        typer.echo("interrupted", err=True)
        return INTERRUPTED
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, CliError):
        say(exc.message)
        return exc.code
    known = _anticipated(exc)
    if known is not None:
        say(known)
        return WORK_FAILED
    say(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
    return WORK_FAILED


def _anticipated(exc: BaseException) -> str | None:
    """The one line for failures that are not bugs: AWS refusing, the pipeline's own errors."""
    from pipeline.failures import ConfigError, PipelineError  # noqa: PLC0415  # light module

    name = type(exc).__name__
    line: str | None = None
    if isinstance(exc, PipelineError):
        line = f"{exc.error}: {exc.message}"
    elif isinstance(exc, ConfigError):
        line = str(exc)
    elif isinstance(exc, FileNotFoundError):
        line = f"{exc.filename or exc}: no such file"
    elif isinstance(exc, PermissionError):
        line = f"{exc.filename or exc}: permission denied"
    elif type(exc).__module__.startswith(("botocore", "boto3")):
        if name in _AWS_HINTS:
            line = f"{_AWS_HINTS[name]} ({exc})"
        else:
            line = f"AWS refused: {exc}" if name == "ClientError" else f"AWS: {exc}"
    return line
