"""`lambdaflow scan SOURCE [--json] [--show N]`: dry-run a manifest: what a run would do, cost.

Runs Split's own pass over the manifest (`pipeline/split/dry_run.py`: the same ranged reader,
indexed_gzip, record reader, not-a-manifest guard and chunk cuts), with sinks that count instead
of sending, so scan's lines, records, failures and chunks are what Split would produce, a
truncated manifest included. Scan parses every line (it counts records), where Split sends
blocks no frame proof takes unparsed for their workers to parse (`manifest/raw_lines.py`); so
Split's chunks can also hold the malformed lines of such blocks, a few chunks more than
scan's count when a manifest has many. Reports failures by error code with the first line
numbers, bytes, speed, peak memory and chunks, and estimates the AWS cost; `--show N` prints
the first N records exactly as Split would send them, and the first N failures, as JSON Lines.
Exit 0 when the manifest was read to its end (bad lines are data), 1 with one line on stderr
when it could not be, or when it is not a manifest at all (`pipeline/manifest/guard.py`, as Split).
"""

from __future__ import annotations

import resource
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

import orjson
import typer

from pipeline.cli.app import app
from pipeline.cli.local_manifest import not_a_manifest_file
from pipeline.cli.s3_uri import check_s3_uri
from pipeline.cli.stack_target import StackOption, use_s3_of
from pipeline.config import Settings
from pipeline.failures import ConfigError, FailureRecord, ManifestReadError
from pipeline.manifest.parse import ManifestRecord
from pipeline.manifest.source import source_size
from pipeline.observe.cost import CostEstimate, estimate_cost
from pipeline.s3_uri import S3_SCHEME
from pipeline.split.dry_run import DRY_RUN_ID, EXAMPLES_PER_ERROR, DryRun, dry_run
from pipeline.split.values import SplitOptions

SCAN_RUN_ID = DRY_RUN_ID
__all__ = ["EXAMPLES_PER_ERROR", "SCAN_RUN_ID", "ScanReport", "scan_manifest"]
PROGRESS_EVERY_CHUNKS = 16
BAR_AFTER_S = 0.5
"""A scan on a terminal draws its progress bar only once it has run this long."""


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
    warnings: list[str] = field(default_factory=list)
    shown_records: list[ManifestRecord] = field(default_factory=list)
    shown_failures: list[FailureRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The `--json` object."""
        data = asdict(self)
        for name in ("cost", "shown_records", "shown_failures"):
            data.pop(name)
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


def scan_manifest(
    source: str, *, settings: Settings, client: Any = None, tick: Any = None, show: int = 0
) -> ScanReport:
    """Run Split's pass over `source`, sending nothing, and report; never raises for a break.

    `tick(compressed_bytes)` is called every few chunks; `show` records and failures are kept.
    """
    report = ScanReport(source=source)
    started = time.perf_counter()

    def each_chunk(chunks: int, fetched: int) -> None:
        if chunks % PROGRESS_EVERY_CHUNKS == 0:
            tick(fetched)

    options = SplitOptions.from_settings(settings, budget_s=None)
    on_chunk = each_chunk if tick is not None else None  # no per-chunk call when nobody draws
    report.error = not_a_manifest_file(source)  # a pipe would read as empty: a wrong answer
    if report.error is None:
        try:
            done = dry_run(source, options=options, client=client, show=show, tick=on_chunk)
        except ManifestReadError as exc:  # a transient read error: Split would retry the pass
            report.error = f"{exc.error}: {exc.message}"
        else:
            _fill(report, done)
    report.seconds = time.perf_counter() - started
    report.cost = estimate_cost(
        images=report.records,
        chunks=report.chunks,
        chunk_sqs_units=report.chunk_sqs_units,
        lines=report.lines,  # Split reads bad lines too
    )
    return report


def _fill(report: ScanReport, done: DryRun) -> None:
    """Copy a dry run's counts into the report."""
    outcome, chunks, failures = done.outcome, done.chunks, done.failures
    report.format = done.format
    report.lines = done.lines
    report.records = chunks.records
    report.chunks = chunks.chunks
    report.chunk_sqs_units = chunks.sqs_units
    report.failed = sum(failures.by_error.values())
    report.failures_by_error = failures.by_error
    report.failure_examples = failures.examples
    report.complete = outcome.reason is None
    report.error = outcome.reason
    report.compressed_bytes = outcome.bytes_fetched
    report.uncompressed_bytes = outcome.pass_bytes_decoded
    report.warnings = list(done.warnings)
    report.shown_records = chunks.shown
    report.shown_failures = failures.shown


def _s3_client(source: str) -> Any:
    """A client for an `s3://` source (standard retries ride out 503 SlowDown), else None."""
    if not source.startswith(S3_SCHEME):
        return None
    import boto3  # noqa: PLC0415  # lazy: a local manifest needs no AWS SDK (a third of start-up)
    from botocore.config import Config  # noqa: PLC0415

    return boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def _scan_with_progress(source: str, settings: Settings, show: int = 0) -> ScanReport:
    """`scan_manifest` with a progress bar on the terminal, once it runs long enough."""
    client = _s3_client(source)
    bar = _LateBar(source, client)
    try:
        return scan_manifest(source, settings=settings, client=client, tick=bar.tick, show=show)
    finally:
        bar.close()


class _LateBar:
    """A transient progress bar on stderr, drawn from the first tick after `BAR_AFTER_S`.

    A scan that ends sooner draws nothing: a bar that flashes for a tenth of a second tells
    nothing, and rich's import alone is a tenth of `scan`'s start-up. `--json` and pipes never
    draw at all (`scan`).
    """

    def __init__(self, source: str, client: Any) -> None:
        self._source, self._client = source, client
        self._since = time.monotonic()
        self._progress: Any = None
        self._task: Any = None

    def tick(self, fetched: int) -> None:
        """The compressed bytes read so far: draw them, once the scan has run long enough."""
        if self._progress is None:
            if time.monotonic() - self._since < BAR_AFTER_S:
                return
            self._start()
        self._progress.update(self._task, completed=fetched)

    def close(self) -> None:
        """Take the bar off the terminal, if it was drawn."""
        if self._progress is not None:
            self._progress.stop()

    def _start(self) -> None:
        from rich.console import Console  # noqa: PLC0415  # lazy: see the class docstring
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        columns = (TextColumn("scan"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
        self._progress = Progress(*columns, console=Console(stderr=True), transient=True)
        total = source_size(self._source, client=self._client) or 0
        self._task = self._progress.add_task("scan", total=total)
        self._progress.start()


def shown_lines(report: ScanReport) -> list[bytes]:
    """`--show`: the records as Split sends them, then the failures, as JSON Lines."""
    rows: list[bytes] = [
        orjson.dumps({"line": r.line, "bucket": r.bucket, "key": r.key, "version": r.version_id})
        for r in report.shown_records
    ]
    rows += [
        orjson.dumps({"line": f.line, "error": f.error, "message": f.message})
        for f in report.shown_failures
    ]
    return rows


def _print_human(report: ScanReport, *, stderr: bool = False) -> None:
    """The report as aligned lines, through click: rich's import is a tenth of start-up."""
    data = report.to_dict()
    sizes = data["bytes"]
    lines = [f"{typer.style(report.source, bold=True)} ({report.format})"]
    lines += [f"  {name:<12} {data[name]:,}" for name in ("lines", "records", "failed", "chunks")]
    lines += [
        f"  {'bytes':<12} {sizes['compressed']:,} read, {sizes['uncompressed']:,} decompressed",
        f"  {'speed':<12} {data['lines_per_s'] or 0:,} lines/s",
        f"  {'peak memory':<12} {data['peak_rss_mb']} MB (RSS)",
    ]
    for code, count in report.failures_by_error.most_common():
        lines.append(f"  {code:<20} {count:>10,}  first lines {report.failure_examples[code]}")
    lines += [f"  warning      {warning}" for warning in report.warnings]
    if report.cost:
        lines.append(f"  est. cost    ${report.cost.total_usd:.4f} ({report.cost.prices_as_of})")
    typer.echo("\n".join(lines), err=stderr)


@app.command()
def scan(
    source: Annotated[str, typer.Argument(help="Manifest path or s3://bucket/key")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    show: Annotated[
        int,
        typer.Option(
            "--show",
            min=0,
            help="Print the first N records (line, bucket, key, version) and the first N "
            "failures as JSON Lines; the summary goes to stderr (with --json: a last line)",
        ),
    ] = 0,
    stack: StackOption = None,
) -> None:
    """Dry-run a manifest: lines, bad lines, chunks, speed and cost.

    It reads the manifest as Split would and counts its records. The cost is an estimate for
    labelling them on AWS.
    """
    check_s3_uri(source)
    if source.startswith("s3://"):
        use_s3_of(stack)  # the stack found here, without exported variables
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json or show or not sys.stderr.isatty():
        report = scan_manifest(source, settings=settings, client=_s3_client(source), show=show)
    else:
        report = _scan_with_progress(source, settings)
    for row in shown_lines(report):
        typer.echo(row.decode())
    if as_json:
        typer.echo(orjson.dumps(report.to_dict()).decode())
    elif report.format is not None:
        _print_human(report, stderr=bool(show))
    if not report.complete:
        typer.echo(f"error: {report.error}", err=True)
        raise typer.Exit(1)
