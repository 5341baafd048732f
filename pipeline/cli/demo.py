"""`lambdaflow demo` (what `make demo` runs): the whole flow on real photos, start to finish."""

from __future__ import annotations

import contextlib
import itertools
import os
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated

import boto3
import typer
from rich.console import Console
from rich.table import Table

from pipeline.cli.app import app
from pipeline.cli.errors import CliError
from pipeline.cli.run import run_manifest, stdout_reserved
from pipeline.cli.run_view import summary_table
from pipeline.cli.stack_target import use_stack
from pipeline.failures import FailureRecord
from pipeline.local.demo_data import DemoManifest, upload_demo_images, write_demo_manifest
from pipeline.local.state import StackInfo
from pipeline.parts.store import iter_failure_records, iter_result_rows

DEMO_MANIFEST = Path(".lambdaflow") / "demo-manifest.csv.gz"
MESSAGE_CHARS = 160
"""A failure message longer than this is shortened at a word, with an ellipsis (then wrapped)."""


def _labels_table(s3: object, bucket: str, run: str, sample: int) -> Table:
    table = Table(title="a sample of the labels (top-3)")
    for column in ("line", "object", "labels"):
        table.add_column(column)
    rows = iter_result_rows(s3, bucket, run)
    for row in itertools.islice(rows, 0, None, 37):  # spread over the photos
        labels = ", ".join(f"{name.split(',')[0]} {score:.2f}" for name, score in row.labels[:3])
        table.add_row(str(row.line), row.key, labels)
        sample -= 1
        if sample == 0:
            break
    return table


def short_message(text: str) -> str:
    """`text`, or when longer than `MESSAGE_CHARS`, cut at a word with an ellipsis."""
    return textwrap.shorten(text, MESSAGE_CHARS, placeholder=" …")


def failures_table(records: Iterable[FailureRecord], planted: Mapping[int, str]) -> Table:
    """Every failure beside the fault planted on its line: whole, at any terminal width."""
    table = Table(title="every failure, with its reason")
    table.add_column("line", no_wrap=True)
    table.add_column("planted", max_width=16)  # wrapped at words
    table.add_column("stage", no_wrap=True)
    table.add_column("error", overflow="fold")
    table.add_column("message", overflow="fold", ratio=1)  # the room left, wrapped at words
    for record in records:
        table.add_row(
            str(record.line),
            planted.get(record.line, "NOT PLANTED"),
            record.stage.value,
            record.error,
            short_message(record.message),
        )
    return table


@app.command()
def demo(
    per_photo: Annotated[
        int, typer.Option(min=1, help="Objects per bundled photo (the original + variants).")
    ] = 75,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Classify processes of an embedded stack (default: cores)."),
    ] = None,
) -> None:
    """Run real photos with planted faults through the local stack.

    It uploads the bundled photos and variants of them, drops a manifest with planted faults,
    and shows the whole run.
    """
    Console().print("[bold]lambdaflow demo[/]: the whole flow on the embedded local AWS stack")
    with stdout_reserved() as out, contextlib.ExitStack() as stack:
        console = Console(file=out)
        with console.status("starting the local AWS stack (moto + template.yaml) …"):
            target = use_stack(start_if_missing=True, workers=workers, announce=False)
            info = stack.enter_context(target)
        is_throwaway = info.pid == os.getpid()
        console.print(
            f"stack up at {info.endpoint_url or 'AWS'}"
            + (" (started for the demo: it stops with it)" if is_throwaway else "")
        )
        summary, manifest = _run_demo(info, console, per_photo)
        _show(info, console, summary, manifest, is_throwaway=is_throwaway)


def _run_demo(info: StackInfo, console: Console, per_photo: int) -> tuple[dict, DemoManifest]:
    """Upload the photos, write the manifest with its planted faults, run it to its summary."""
    s3 = boto3.client("s3")
    images = info.images_bucket
    if images is None:
        raise CliError("the stack has no images bucket (deploy it with CreateImagesBucket=true)")
    with console.status(f"making {4 * per_photo} photos and uploading them to s3://{images}/ …"):
        keys = upload_demo_images(s3, images, per_photo)
    console.print(f"uploaded {len(keys)} photos to s3://{images}/")
    manifest = write_demo_manifest(DEMO_MANIFEST, images, keys)
    console.print(
        f"[bold]manifest[/] {manifest.path}: {manifest.lines} lines, "
        f"{len(manifest.planted)} planted to fail; dropping it into s3://{info.input_bucket}/"
    )
    return run_manifest(info, str(manifest.path), console, timeout_s=600), manifest


def _show(
    info: StackInfo, console: Console, summary: dict, manifest: DemoManifest, *, is_throwaway: bool
) -> None:
    """The summary, a sample of labels, every failure, and commands that work afterwards."""
    s3 = boto3.client("s3")
    run = summary["run"]
    console.print(summary_table(summary))
    console.print(_labels_table(s3, info.results_bucket, run, sample=10))
    records = iter_failure_records(s3, info.results_bucket, run)
    console.print(failures_table(records, manifest.planted))
    if is_throwaway:
        console.print(  # a command a line: never wrapped in the middle
            "The demo's stack stopped with it, and its results with it. To keep a stack and "
            "explore the rows:\n"
            "  lambdaflow up                in one terminal; then in another, same directory:\n"
            "  lambdaflow demo\n"
            "  lambdaflow results RUN       (and failures, status, traces, replay)"
        )
    else:
        console.print(  # a command a line: never wrapped in the middle
            f"all rows:      lambdaflow results {run}\n"
            f"all failures:  lambdaflow failures {run}\n"
            f"the run:       lambdaflow status {run}"
        )
