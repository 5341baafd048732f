"""`lambdaflow traces RUN`: where the time of a run went, from its stored X-Ray traces."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import boto3
import typer
from rich.console import Console
from rich.table import Table

from pipeline.cli.app import app
from pipeline.cli.errors import CliError
from pipeline.cli.stack_target import StackOption, find_stack
from pipeline.observe.trace_search import load_run_traces
from pipeline.observe.traces import Breakdown, RunTraces

_AWS_DOMAIN = ".amazonaws.com"
_CLOCK_SKEW = timedelta(minutes=5)


def is_aws_endpoint(endpoint_url: str) -> bool:
    """True for X-Ray itself; False for the local emulator (which cannot filter traces)."""
    host = endpoint_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return host.endswith(_AWS_DOMAIN) or host.endswith(_AWS_DOMAIN + ".cn")


def _stage_table(title: str, breakdown: Breakdown) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("span", no_wrap=True)
    table.add_column("count", justify="right")
    table.add_column("wall s", justify="right")
    table.add_column("% of root", justify="right")
    table.add_column("faults", justify="right")
    table.add_column("metadata (summed)")
    roots = {path[0]: totals.seconds for path, totals in breakdown.stages.items() if len(path) == 1}
    for path, totals in sorted(breakdown.stages.items()):
        root_s = roots.get(path[0]) or 0.0
        share = f"{100 * totals.seconds / root_s:.1f}" if root_s else "-"
        meta = ", ".join(f"{k}={v:g}" for k, v in sorted(totals.metadata.items()))
        table.add_row(
            "  " * (len(path) - 1) + path[-1],
            str(totals.spans),
            f"{totals.seconds:.3f}",
            share,
            str(totals.faults) if totals.faults else "",
            meta,
        )
    return table


def _busy_table(breakdown: Breakdown) -> Table | None:
    if not breakdown.busy:
        return None
    table = Table(
        title=(
            "time per stage, summed over threads (they overlap; classify includes waiting for a "
            "free interpreter)"
        ),
        title_justify="left",
    )
    table.add_column("stage")
    table.add_column("items", justify="right")
    table.add_column("busy s", justify="right")
    table.add_column("ms / item", justify="right")
    table.add_column("share", justify="right")
    total_s = sum(v["s"] for v in breakdown.busy.values()) or 1.0
    for name, values in sorted(breakdown.busy.items(), key=lambda kv: -kv[1]["s"]):
        per_item = 1000 * values["s"] / values["n"] if values["n"] else 0.0
        table.add_row(
            name,
            str(int(values["n"])),
            f"{values['s']:.3f}",
            f"{per_item:.2f}",
            f"{100 * values['s'] / total_s:.1f}%",
        )
    return table


def _chunks_table(traces: RunTraces) -> Table:
    table = Table(title="chunks", title_justify="left")
    table.add_column("chunk", justify="right")
    table.add_column("wall s", justify="right")
    table.add_column("slowest stage")
    for number in sorted(traces.chunks):
        breakdown = traces.chunks[number]
        slowest = max(breakdown.busy.items(), key=lambda kv: kv[1]["s"], default=None)
        label = f"{slowest[0]} ({slowest[1]['s']:.3f} s busy)" if slowest else ""
        table.add_row(str(number), f"{breakdown.seconds:.3f}", label)
    return table


def render(traces: RunTraces, chunk: int | None, console: Console) -> None:
    """Print the breakdown of one chunk, or the overall one with a line per chunk."""
    if chunk is not None:
        breakdown = traces.chunks[chunk]
        header = f"run {traces.run}, chunk {chunk}: {breakdown.seconds:.3f} s"
    else:
        breakdown = traces.overall()
        header = (
            f"run {traces.run}: {len(traces.chunks)} chunks in {len(traces.trace_ids)} traces, "
            f"{breakdown.seconds:.3f} s of chunk work"
        )
    console.print(header)
    console.print(_stage_table("where the time went (subsegments)", breakdown))
    busy = _busy_table(breakdown)
    if busy is not None:
        console.print(busy)
    if chunk is None:
        if traces.run_level.stages:
            console.print(_stage_table("run-level work (split, finalize)", traces.run_level))
        console.print(_chunks_table(traces))


def read_traces(client: Any, run: str, since_hours: float) -> RunTraces:
    """The run's traces of the last `since_hours`, filtered on the server where it can."""
    now = datetime.now(UTC)
    return load_run_traces(
        client,
        run,
        start=now - timedelta(hours=since_hours),
        end=now + _CLOCK_SKEW,
        is_server_filtered=is_aws_endpoint(client.meta.endpoint_url),
    )


def xray_client_for(stack: str | None) -> Any:
    """The X-Ray client for a command: a deployed stack's, the local stack's, or the SDK's.

    With `stack` (or LAMBDAFLOW_STACK), X-Ray in that stack's region; else the emulator of the
    `lambdaflow up` running in this directory or a parent; else whatever the SDK's own
    configuration says (AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, a profile).

    Raises:
        ConfigError: `stack` is not a usable deployed stack.
    """
    info = find_stack(stack)  # a local stack's endpoint and credentials are applied here
    if info is not None and info.endpoint_url is None:
        return boto3.client("xray", region_name=info.region)
    return boto3.client("xray")


@app.command()
def traces(
    run: Annotated[str, typer.Argument(help="The run id (as `lambdaflow run` printed it).")],
    chunk: Annotated[int | None, typer.Option(min=0, help="Only this chunk.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the breakdown as JSON.")] = False,
    since_hours: Annotated[
        float, typer.Option(help="How far back to look for the run's traces.", min=0.01)
    ] = 24.0,
    stack: StackOption = None,
) -> None:
    """Show where a run's time went (fetch, decode, classify, write).

    It reads the spans from X-Ray: the deployed stack's region with --stack, else the
    `lambdaflow up` running in this directory, else the SDK's own settings (AWS_ENDPOINT_URL,
    AWS_DEFAULT_REGION).
    """
    client = xray_client_for(stack)  # a ConfigError is one line, exit 1, as every error
    result = read_traces(client, run, since_hours)
    if not result.trace_ids:
        raise CliError(
            f"no traces of run {run!r} in the last {since_hours:g} h: is tracing on "
            "(LAMBDAFLOW_TRACING) and the run id right? Traces can take a minute to appear."
        )
    if chunk is not None and chunk not in result.chunks:
        raise CliError(f"run {run!r} has no traced chunk {chunk}; traced: {sorted(result.chunks)}")
    if as_json:
        data = result.to_dict()
        if chunk is not None:
            data = {"run": run, "chunk": result.chunks[chunk].to_dict()}
        typer.echo(json.dumps(data))
        return
    render(result, chunk, Console())
