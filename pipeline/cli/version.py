"""`lambdaflow version`."""

from __future__ import annotations

import typer

from pipeline import __version__
from pipeline.cli.app import app


@app.command()
def version() -> None:
    """Print the lambdaflow version."""
    typer.echo(__version__)
