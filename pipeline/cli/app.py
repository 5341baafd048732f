"""The `lambdaflow` typer application that every command module registers on.

Its group routes every exception through `pipeline.cli.errors`: one line on stderr, exit 1 or 2,
never a traceback unless `--debug` asks for one.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from pipeline.cli.errors import DEBUG_FLAG, debug_requested, exit_code_for


class OneErrorPath(TyperGroup):
    """A typer group whose `main` turns every exception into one line and an exit code."""

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
        "Start with `lambdaflow demo`, or `lambdaflow scan MANIFEST` to dry-run a manifest."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:  # typer callback
    if value:
        from pipeline import __version__  # noqa: PLC0415

        typer.echo(f"lambdaflow {__version__}")
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
