"""The `lambdaflow` typer application that every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="lambdaflow",
    help=(
        "Label every image listed in huge S3 manifests, on AWS or on one laptop.\n\n"
        "Start with `lambdaflow demo`, or `lambdaflow scan MANIFEST` to dry-run a manifest."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Label every image listed in huge S3 manifests, on AWS or on one laptop."""
