"""`lambdaflow version`."""

from __future__ import annotations

import typer

from pipeline.cli.app import app, version_line


@app.command()
def version() -> None:
    """Print the lambdaflow version.

    The same line as `lambdaflow --version`, so a script may read either.
    """
    typer.echo(version_line())
