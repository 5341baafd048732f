"""`lambdaflow scan SOURCE [--json]`: dry-run a manifest and say what a run would do and cost.

Streams the manifest exactly as Split will (same reader, same chunk cuts: the batch fast path
`ManifestReader.iter_batches` → `iter_chunk_spans` cuts what `iter_chunks` cuts), counting lines,
records, failures by error code with the first line numbers, bytes, speed, peak memory and
chunks, and estimates the AWS cost. Exit 0 when the manifest was read to its end (bad lines are
data), 1 with one line on stderr when it could not be, or when it is not a manifest at all
(`pipeline/manifest/guard.py`, as Split).
"""

from __future__ import annotations

import resource
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from pipeline.cli.app import app
from pipeline.cli.stack_target import StackOption, use_s3_of
from pipeline.config import Settings
from pipeline.failures import ConfigError, ManifestLineError, ManifestReadError
from pipeline.manifest.guard import refusing_non_manifests
from pipeline.manifest.reader import ManifestReader, RecordBatch
from pipeline.observe.cost import CostEstimate, estimate_cost, sqs_units
from pipeline.split.chunking import iter_chunk_spans

EXAMPLES_PER_ERROR = 5
PROGRESS_EVERY_CHUNKS = 16
SCAN_RUN_ID = "scan0000000000000"
"""Stand-in run id of a run's length, so message sizes (and chunk cuts) match a real run."""


@dataclass(slots=True)
class ScanReport:
    """What `scan` found; `to_dict` is the `--json` output."""

    source: str
    format: str | None = None
    lines: int = 0
    records: int = 0
    failed: int = 0
    failures_by_error: Counter[str] = field(default_factory=Counter)
    failure_examples: dict[str, list[int]] = field(default_factory=dict)
    complete: bool = False
    error: str | None = None
    chunks: int = 0
    chunk_sqs_units: int = 0
    compressed_bytes: int = 0
    uncompressed_bytes: int = 0
    seconds: float = 0.0
    cost: CostEstimate | None = None

    def count_failure(self, failure: ManifestLineError) -> None:
        """Tally a bad line, keeping the first few line numbers of each error code."""
        self.failed += 1
        self.failures_by_error[failure.error] += 1
        examples = self.failure_examples.setdefault(failure.error, [])
        if len(examples) < EXAMPLES_PER_ERROR and failure.line is not None:
            examples.append(failure.line)

    def to_dict(self) -> dict[str, Any]:
        """The `--json` object."""
        data = asdict(self)
        data.pop("cost")
        data["failures_by_error"] = dict(self.failures_by_error)
        data["bytes"] = {
            "compressed": data.pop("compressed_bytes"),
            "uncompressed": data.pop("uncompressed_bytes"),
        }
        data["seconds"] = round(self.seconds, 3)
        data["lines_per_s"] = round(self.lines / self.seconds) if self.seconds else None
        data["peak_rss_mb"] = round(peak_rss_mb(), 1)
        data["est_cost_usd"] = self.cost.to_dict() if self.cost else None
        return data


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _batches(batches: Iterator[RecordBatch], report: ScanReport) -> Iterator[RecordBatch]:
    """Pass record batches on to chunking and tally their failures."""
    for batch in batches:
        for failure in batch.failures:
            report.count_failure(failure)
        yield batch


def scan_manifest(
    source: str, *, settings: Settings, client: Any = None, tick: Any = None
) -> ScanReport:
    """Stream `source` the way Split does and report; never raises for a broken stream."""
    report = ScanReport(source=source)
    started = time.perf_counter()
    reader = ManifestReader(source, client=client, max_line_bytes=settings.max_line_bytes)
    try:
        chunks = iter_chunk_spans(
            _batches(refusing_non_manifests(reader.iter_batches()), report),
            run=SCAN_RUN_ID,
            chunk_items=settings.chunk_items,
            chunk_max_bytes=settings.chunk_max_bytes,
        )
        for chunk in chunks:
            report.chunks += 1
            report.records += chunk.count
            report.chunk_sqs_units += sqs_units(chunk.message_bytes)
            if tick is not None and report.chunks % PROGRESS_EVERY_CHUNKS == 0:
                tick(reader)
        report.complete = True
    except ManifestReadError as exc:
        report.error = exc.message
    finally:
        reader.close()
    report.format = reader.format.value if reader.format else None
    report.lines = reader.lines_read
    report.compressed_bytes = reader.compressed_bytes
    report.uncompressed_bytes = reader.uncompressed_bytes
    report.seconds = time.perf_counter() - started
    report.cost = estimate_cost(
        images=report.records,
        chunks=report.chunks,
        chunk_sqs_units=report.chunk_sqs_units,
        lines=report.lines,  # Split reads bad lines too
    )
    return report


def _scan_with_progress(source: str, settings: Settings) -> ScanReport:
    console = Console(stderr=True)
    columns = (TextColumn("scan"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("scan", total=None)

        def tick(reader: ManifestReader) -> None:
            if bar.tasks[task].total is None:
                bar.update(task, total=reader.size_bytes() or 0)
            bar.update(task, completed=reader.compressed_bytes)

        return scan_manifest(source, settings=settings, tick=tick)


def _print_human(report: ScanReport) -> None:
    console = Console()
    data = report.to_dict()
    console.print(f"[bold]{report.source}[/] ({report.format})")
    for name in ("lines", "records", "failed", "chunks", "bytes", "lines_per_s", "peak_rss_mb"):
        console.print(f"  {name:<12} {data[name]}")
    for code, count in report.failures_by_error.most_common():
        console.print(f"  {code:<20} {count:>10}  first lines {report.failure_examples[code]}")
    if report.cost:
        console.print(f"  est. cost    ${report.cost.total_usd:.4f} ({report.cost.prices_as_of})")


@app.command()
def scan(
    source: Annotated[str, typer.Argument(help="Manifest path or s3://bucket/key")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    stack: StackOption = None,
) -> None:
    """Dry-run a manifest: lines, records, bad lines, chunks, speed and estimated cost."""
    if source.startswith("s3://"):
        use_s3_of(stack)  # the stack found here, without exported variables
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json or not sys.stderr.isatty():
        report = scan_manifest(source, settings=settings)
    else:
        report = _scan_with_progress(source, settings)
    if as_json:
        typer.echo(orjson.dumps(report.to_dict()).decode())
    elif report.format is not None:
        _print_human(report)
    if not report.complete:
        typer.echo(f"error: {report.error}", err=True)
        raise typer.Exit(1)
