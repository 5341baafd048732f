"""`lambdaflow`: the command line, one module per command (typer + rich).

Exit codes: 0 done (bad lines and bad images are data, not errors), 1 the work could not be
completed (a broken stream, an unreachable stack), 2 usage errors.
"""

from __future__ import annotations

from pipeline.cli import classify as _classify  # noqa: F401  # registers its command
from pipeline.cli import demo as _demo  # noqa: F401  # registers its command
from pipeline.cli import replay as _replay  # noqa: F401  # registers its command
from pipeline.cli import results as _results  # noqa: F401  # registers results + failures
from pipeline.cli import run as _run  # noqa: F401  # registers its command
from pipeline.cli import scan as _scan  # noqa: F401  # registers its command
from pipeline.cli import traces as _traces  # noqa: F401  # registers its command
from pipeline.cli import up as _up  # noqa: F401  # registers its command
from pipeline.cli import version as _version  # noqa: F401  # registers its command
from pipeline.cli.app import app


def main() -> None:
    """Entry point of the `lambdaflow` console script."""
    app()
