"""`lambdaflow results RUN` and `lambdaflow failures RUN`: a run's rows as JSON Lines."""

from __future__ import annotations

import itertools
import sys
from typing import Annotated

import boto3
import orjson
import typer

from pipeline.cli.app import app
from pipeline.cli.stack_target import use_stack
from pipeline.parts.store import iter_failure_records, iter_result_rows

_Limit = Annotated[int | None, typer.Option(help="Print at most this many rows.")]


@app.command()
def results(run: Annotated[str, typer.Argument(help="The run id.")], limit: _Limit = None) -> None:
    """Print RUN's result rows as JSON Lines, in line order (each line once)."""
    with use_stack(start_if_missing=False) as info:
        rows = iter_result_rows(boto3.client("s3"), info.results_bucket, run)
        for row in itertools.islice(rows, limit):
            sys.stdout.write(orjson.dumps(row.to_dict()).decode() + "\n")


@app.command()
def failures(run: Annotated[str, typer.Argument(help="The run id.")], limit: _Limit = None) -> None:
    """Print RUN's failure records as JSON Lines, in line order (the latest per line)."""
    with use_stack(start_if_missing=False) as info:
        records = iter_failure_records(boto3.client("s3"), info.results_bucket, run)
        for record in itertools.islice(records, limit):
            sys.stdout.write(orjson.dumps(record.to_dict()).decode() + "\n")
