"""`lambdaflow version`."""

from __future__ import annotations

import typer

from pipeline import __version__
from pipeline.cli.app import app


@app.command()
def version() -> None:
    """Print the lambdaflow version.

    The same line as `lambdaflow --version`, so a script may read either.
    """
    typer.echo(f"lambdaflow {__version__}")
