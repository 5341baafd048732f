"""The `lambdaflow` typer application that every command module registers on.

Its group routes every exception through `pipeline.cli.errors`: one line on stderr, exit 1 or 2,
never a traceback unless `--debug` asks for one. It also loads commands lazily: `COMMANDS` names
each command's module and one-line help, so `lambdaflow --help` imports no command module, and
`lambdaflow NAME …` imports only NAME's (boto3, numpy and the model stack cost seconds on a busy
machine; `--help` must not pay them).
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import Annotated, Any

import typer
from typer import _click  # typer >= 0.20 vendors click here
from typer.core import TyperCommand, TyperGroup

from pipeline.cli.errors import DEBUG_FLAG, Interrupted, debug_requested, exit_code_for

COMMANDS: dict[str, tuple[str, str]] = {
    "up": (
        "pipeline.cli.up",
        "Run the embedded local AWS stack until Ctrl-C.",
    ),
    "run": (
        "pipeline.cli.run",
        "Label every image of MANIFEST on the stack found, or a new one.",
    ),
    "status": (
        "pipeline.cli.status",
        "Show every run, or one: progress, ok/failed, img/s, ETA, cost.",
    ),
    "results": (
        "pipeline.cli.results",
        "Print RUN's result rows as JSON Lines, each line once, in order.",
    ),
    "failures": (
        "pipeline.cli.results",
        "Print RUN's failure records as JSON Lines, latest per line.",
    ),
    "replay": (
        "pipeline.cli.replay",
        "Replay failed lines and poison chunks (one run, or every run).",
    ),
    "traces": (
        "pipeline.cli.traces",
        "Show where a run's time went (fetch, decode, classify, write).",
    ),
    "scan": (
        "pipeline.cli.scan",
        "Dry-run a manifest: lines, bad lines, chunks, speed and cost.",
    ),
    "classify": (
        "pipeline.cli.classify",
        "Classify images (files or s3:// URIs); bad ones are reported.",
    ),
    "demo": (
        "pipeline.cli.demo",
        "Run real photos with planted faults through the local stack.",
    ),
    "version": ("pipeline.cli.version", "Print the lambdaflow version."),
}
"""Every command: the module that registers it, and its one-line help (a test keeps both true)."""


def settle_start_up() -> None:
    """Freeze what start-up built and collect garbage again, if `main` paused collection.

    A command's imports (numpy, typer, the core) build tens of thousands of objects that live
    until exit. Collecting while they are built walks them again and again, and the
    collections at exit walk them once more; frozen (`gc.freeze`), they are never walked: a
    one-line `scan` takes ~20 ms less of its ~0.2 s. What the command itself allocates is
    collected as always.
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


class OneErrorPath(TyperGroup):
    """A typer group that loads commands on use and turns every exception into one line."""

    def list_commands(self, ctx: _click.Context) -> list[str]:
        """Every command, loaded or not, in `COMMANDS` order."""
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        """The command if loaded; else, for listing in help, a stub with its one-line help."""
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return self.commands.get(cmd_name)
        return TyperCommand(cmd_name, help=COMMANDS[cmd_name][1])

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        """Load the command about to run (its module only), then resolve it as click does."""
        if args and args[0] in COMMANDS:
            self.load(args[0])
            settle_start_up()
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: _click.Context) -> Any:
        """Run the command; a Ctrl-C it did not answer itself becomes `Interrupted`.

        typer turns a bare KeyboardInterrupt into a silent exit 130 before `main` could say
        so; raised as an ordinary exception, it reaches the one error path and is said.
        """
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted from None

    def load(self, name: str) -> _click.Command:
        """Import `name`'s module (it registers on `app`) and build its click command."""
        if name not in self.commands:
            importlib.import_module(COMMANDS[name][0])
            info = next(i for i in app.registered_commands if _command_name(i) == name)
            self.commands[name] = typer.main.get_command_from_info(
                info,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
            )
        return self.commands[name]

    def main(  # type: ignore[override]
        self,
        args: list[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,  # click's signature
        **extra: Any,
    ) -> Any:
        """Run the command; report any failure in one line; exit (or return) its code."""
        args = list(sys.argv[1:] if args is None else args)
        debug = debug_requested(args)
        args = [arg for arg in args if arg != DEBUG_FLAG]
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except Exception as exc:  # the one place errors become lines
            code = exit_code_for(exc, debug=debug)
        except KeyboardInterrupt as exc:
            code = exit_code_for(exc, debug=debug)
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    name="lambdaflow",
    cls=OneErrorPath,
    help=(
        "Label every image listed in huge S3 manifests, on AWS or on one laptop.\n\n"
        "Start with `lambdaflow demo`, or `lambdaflow scan MANIFEST` to dry-run a manifest.\n\n"
        "Exit codes: 0 done (bad lines and bad images are data, not errors), 1 the work could "
        "not be done (the error line says why), 2 a usage error, 130 interrupted (Ctrl-C)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rendering it with rich costs ~0.3 s of imports
)


def version_line() -> str:
    """What `lambdaflow --version` and `lambdaflow version` print, alike."""
    from pipeline import __version__  # noqa: PLC0415

    return f"lambdaflow {__version__}"


def _print_version(value: bool) -> None:  # typer callback
    if value:
        typer.echo(version_line())
        raise typer.Exit


@app.callback()
def _root(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
    _debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an unexpected error.")
    ] = False,
) -> None:
    """Label every image listed in huge S3 manifests, on AWS or on one laptop."""


def _command_name(info: typer.models.CommandInfo) -> str:
    callback = info.callback
    return info.name or (callback.__name__.replace("_", "-") if callback else "")
