"""`lambdaflow up`: run the embedded local AWS stack in the foreground until Ctrl-C."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from pipeline.classify.model_spec import PRESETS, spec_from_settings
from pipeline.cli.app import app
from pipeline.cli.errors import CliError
from pipeline.cli.stack_target import embedded_stack, stack_info
from pipeline.config import Settings
from pipeline.failures import ConfigError
from pipeline.local.state import (
    STATE_FILE,
    StackInfo,
    clear_state,
    find_running_stack,
    write_state,
)


def _print_human(info: StackInfo) -> None:
    typer.echo(f"lambdaflow local stack {info.name!r} is up at {info.endpoint_url}")
    typer.echo("\nPoint the AWS SDK / CLI at it:")
    for name, value in info.client_env.items():
        typer.echo(f"  export {name}={value}")
    typer.echo("\nBuckets:")
    typer.echo(f"  input   s3://{info.input_bucket}   (drop manifests here)")
    typer.echo(f"  results s3://{info.results_bucket}")
    if info.images_bucket:
        typer.echo(f"  images  s3://{info.images_bucket}   (allowlisted image source)")
    typer.echo("\nOther lambdaflow commands in this directory use this stack. Ctrl-C stops it.")


def model_parameters(model: str | None, labels: str | None) -> dict[str, str]:
    """The template parameters of the workers' model, loaded once here to check it.

    `--model`/`--labels` win over this shell's LAMBDAFLOW_MODEL, _LABELS, _MODEL_SHA256 and the
    preprocessing settings, which are passed on too (the template sets the workers' variables,
    so an exported one would not reach them otherwise). A local path is made absolute. A bad
    spec exits 2 with its one line before any stack starts, instead of in every worker.
    """
    from pipeline.classify.model import load_spec  # noqa: PLC0415  # imports LiteRT
    from pipeline.local.quiet import native_stderr_silenced  # noqa: PLC0415

    given = {"model": model, "labels": labels}
    try:
        settings = Settings.from_env(**{k: _absolute(v) for k, v in given.items() if v})
        with native_stderr_silenced():  # LiteRT's "INFO: Created … delegate" line
            load_spec(spec_from_settings(settings))  # checked, then dropped: workers load it
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    crop = settings.crop_fraction
    return {
        "ModelUri": _absolute(settings.model),
        "LabelsUri": _absolute(settings.labels),
        "ModelSha256": settings.model_sha256,
        "ModelCropFraction": "" if crop is None else str(crop),
        "ModelResizeFilter": settings.resize_filter or "",
        "ModelInputMean": ",".join(map(str, settings.input_mean or ())),
        "ModelInputStd": ",".join(map(str, settings.input_std or ())),
    }


def _absolute(uri: str) -> str:
    if not uri or uri.startswith("s3://") or uri in PRESETS or not Path(uri).exists():
        return uri
    return str(Path(uri).resolve())


def _interrupt(*_: object) -> None:
    """SIGTERM during start-up: stop as Ctrl-C does (what is started is stopped, exit 130)."""
    raise KeyboardInterrupt


def _stop_on_signals() -> threading.Event:
    """Once up: Ctrl-C and SIGTERM set the returned event, so the stack stops between waits.

    Only once up: during start-up a signal must interrupt it (a flag nobody reads yet would be
    ignored until the stack is up, or forever if start-up hangs).
    """
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    return stopping


@app.command()
def up(
    port: Annotated[
        int,
        typer.Option(min=0, max=65535, help="Port for the emulator; 0 picks a free one."),
    ] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON line with the endpoint and buckets.")
    ] = False,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Classify worker processes (default: CPU cores).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="The workers' model: efficientnet-lite0 (default), efficientnet-lite2, or the "
            "path / s3:// URI of a .tflite image classifier (template parameter ModelUri).",
        ),
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option("--labels", help="The model's labels file, one class name a line."),
    ] = None,
) -> None:
    """Run the embedded local AWS stack until Ctrl-C.

    moto on 127.0.0.1 holds template.yaml's resources, and pollers run its functions. The
    other commands run in this directory (or below it) find this stack by themselves.
    """
    parameters = model_parameters(model, labels)
    running = find_running_stack(STATE_FILE)
    if running is not None:
        raise CliError(
            f"a stack is already up here (pid {running.pid}, {running.endpoint_url}): "
            "use it, or stop it with Ctrl-C first"
        )
    from pipeline.local.stack import StackOptions  # noqa: PLC0415  # slow import: see stack_target

    options = StackOptions(parameters=parameters)
    if workers is not None:
        options = StackOptions(parameters=parameters, workers=workers)
    signal.signal(signal.SIGTERM, _interrupt)  # during start-up: as Ctrl-C
    with embedded_stack(options, port=port) as stack:
        info = stack_info(stack)
        stopping = _stop_on_signals()
        write_state(info)
        try:
            if as_json:
                typer.echo(json.dumps(info.to_dict()), nl=True)
            else:
                _print_human(info)
            while not stopping.wait(1.0):
                pass
        finally:
            clear_state()
    if not as_json:
        typer.echo("stopped")
