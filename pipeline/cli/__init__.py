"""`lambdaflow`: the command line, one module per command (typer + rich).

Exit codes: 0 done (bad lines and bad images are data, not errors), 1 the work could not be
completed (a broken stream, an unreachable stack), 2 usage errors. Command modules are imported
when their command runs (`pipeline.cli.app.COMMANDS`), so `--help` and `--version` stay fast.
"""

from __future__ import annotations

import gc
import os

from pipeline.allocator import keep_freed_buffers
from pipeline.cli.app import app


def main() -> None:
    """Entry point of the `lambdaflow` console script."""
    keep_freed_buffers()  # `scan` and Split passes free megabyte buffers every block
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy's import: template.yaml
    gc.disable()  # start-up builds only what lives until exit: see `app.settle_start_up`
    app()
