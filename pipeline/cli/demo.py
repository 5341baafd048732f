"""`lambdaflow demo` (what `make demo` runs): the whole flow on real photos, start to finish."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated

import boto3
import typer
from rich.console import Console
from rich.table import Table

from pipeline.cli.app import app
from pipeline.cli.run import run_manifest, stdout_reserved
from pipeline.cli.run_view import summary_table
from pipeline.cli.stack_target import use_stack
from pipeline.local.demo_data import DemoManifest, upload_demo_images, write_demo_manifest
from pipeline.parts.store import iter_failure_records, iter_result_rows

DEMO_MANIFEST = Path(".lambdaflow") / "demo-manifest.csv.gz"


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


def _failures_table(s3: object, bucket: str, run: str, manifest: DemoManifest) -> Table:
    table = Table(title="every failure, with its reason")
    for column in ("line", "planted", "stage", "error", "message"):
        table.add_column(column, overflow="ellipsis", no_wrap=column != "message")
    for record in iter_failure_records(s3, bucket, run):
        planted = manifest.planted.get(record.line, "NOT PLANTED")
        table.add_row(
            str(record.line), planted, record.stage.value, record.error, record.message[:120]
        )
    return table


@app.command()
def demo(
    per_photo: Annotated[
        int, typer.Option(help="Objects per bundled photo (the original + variants).")
    ] = 75,
    workers: Annotated[
        int | None, typer.Option(help="Classify processes of an embedded stack (default: cores).")
    ] = None,
) -> None:
    """Upload real photos + variants, drop a manifest with planted faults, show the whole run."""
    with stdout_reserved() as out, use_stack(start_if_missing=True, workers=workers) as info:
        console = Console(file=out)
        s3 = boto3.client("s3")
        images = info.images_bucket
        if images is None:
            raise typer.BadParameter("the stack has no images bucket (CreateImagesBucket=true)")
        console.print(f"[bold]uploading {4 * per_photo} photos to s3://{images}/ …")
        keys = upload_demo_images(s3, images, per_photo)
        manifest = write_demo_manifest(DEMO_MANIFEST, images, keys)
        console.print(
            f"[bold]manifest[/] {manifest.path}: {manifest.lines} lines, "
            f"{len(manifest.planted)} planted to fail; dropping it into s3://{info.input_bucket}/"
        )
        summary = run_manifest(info, str(manifest.path), console, timeout_s=600)
        console.print(summary_table(summary))
        console.print(_labels_table(s3, info.results_bucket, summary["run"], sample=10))
        console.print(_failures_table(s3, info.results_bucket, summary["run"], manifest))
        console.print(
            f"All rows: `lambdaflow results {summary['run']}`, all failures: "
            f"`lambdaflow failures {summary['run']}` (against a stack kept up by `lambdaflow up`; "
            "without one, the demo's stack stops with it)."
        )
