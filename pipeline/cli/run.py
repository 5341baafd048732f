"""`lambdaflow run MANIFEST`: drop a manifest into the stack, follow it, print the summary."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TextIO

import boto3
import orjson
import typer
from rich.console import Console

from pipeline.cli.app import app
from pipeline.cli.errors import INTERRUPTED, CliError
from pipeline.cli.local_manifest import not_a_manifest_file
from pipeline.cli.run_view import RunProgress, summary_table
from pipeline.cli.s3_uri import check_s3_uri
from pipeline.cli.stack_target import StackOption, use_stack
from pipeline.ledger.ingest import ManifestObject
from pipeline.ledger.runs import RunStatus
from pipeline.ledger.submit import RunTimeoutError, submit_manifest, watch_run
from pipeline.ledger.table import RunLedger
from pipeline.local.state import StackInfo


@contextmanager
def stdout_reserved() -> Iterator[TextIO]:
    """Keep stdout for the result alone: everything else written to fd 1 goes to stderr.

    Handlers log to stdout (as on Lambda), in this process and in the worker processes it
    spawns; moving fd 1 itself catches them all, so `--json` output stays one clean object.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with os.fdopen(os.dup(saved), "w") as out:
            yield out
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def refuse_wrong_file(path: str) -> None:
    """Refuse a local file that is no manifest (an image, an archive) before any stack is used.

    Split refuses it the same way in its first block; saying so here spares the upload, the run
    and, without a running stack, starting one.

    Raises:
        CliError: what the file is ("a JPEG image, not a manifest").
    """
    from pipeline.failures import ManifestReadError  # noqa: PLC0415
    from pipeline.manifest.guard import refuse_binary  # noqa: PLC0415
    from pipeline.manifest.source import open_decoded  # noqa: PLC0415
    from pipeline.manifest.stream import SNIFF_BYTES  # noqa: PLC0415

    try:
        stream = open_decoded(path)
        try:
            refuse_binary(stream.read(SNIFF_BYTES))
        finally:
            stream.close()
    except ManifestReadError as exc:
        raise CliError(f"{path}: {exc.error}: {exc.message}") from None


def submit(info: StackInfo, manifest: str) -> ManifestObject:
    """Put `manifest` into the stack's input bucket (the real S3 event path starts the run).

    Raises:
        CliError: the manifest could not be read or copied (a missing object, access denied).
    """
    from botocore.exceptions import ClientError  # noqa: PLC0415

    try:
        return submit_manifest(boto3.client("s3"), info.input_bucket, manifest)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "ClientError")
        if code in {"404", "NoSuchKey"}:
            raise CliError(f"{manifest}: no such object (NoSuchKey)") from None
        raise CliError(f"cannot read {manifest}: {code}: {error.get('Message', exc)}") from None


def follow(info: StackInfo, obj: ManifestObject, console: Console, timeout_s: float) -> dict:
    """Follow the run of `obj` to its summary, with a live progress bar."""
    s3 = boto3.client("s3")
    ledger = RunLedger(boto3.client("dynamodb"), info.outputs["RunsTableName"])
    view = RunProgress(console, obj.run)
    with view.shown():
        return watch_run(
            ledger=ledger,
            s3=s3,
            results_bucket=info.results_bucket,
            run=obj.run,
            on_progress=view.update,
            timeout_s=timeout_s,
        )


def run_manifest(info: StackInfo, manifest: str, console: Console, timeout_s: float) -> dict:
    """Submit `manifest` to the stack behind `info` and follow it to its summary."""
    return follow(info, submit(info, manifest), console, timeout_s)


def interrupted(run: str, *, is_throwaway: bool) -> CliError:
    """What Ctrl-C during `run` means for the run, and how to follow it."""
    if is_throwaway:
        return CliError(
            f"interrupted: run {run} stopped with the throwaway stack it ran on; start "
            "`lambdaflow up` in this directory to keep runs going after the command ends",
            INTERRUPTED,
        )
    return CliError(
        f"interrupted: run {run} continues on the stack; follow it with `lambdaflow status "
        f"{run} --watch`, then `lambdaflow results {run}`",
        INTERRUPTED,
    )


def interrupted_upload(manifest: str) -> CliError:
    """What Ctrl-C during the manifest's upload means: a run starts only from a whole object."""
    return CliError(
        f"interrupted during the upload of {manifest}: a run starts only if the upload had "
        "completed; see `lambdaflow status`",
        INTERRUPTED,
    )


@app.command()
def run(
    manifest: Annotated[str, typer.Argument(help="A local manifest file or an s3:// URI.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print only the summary object (_SUCCESS.json).")
    ] = False,
    timeout: Annotated[float, typer.Option(min=0, help="Seconds to wait for the run.")] = 3600.0,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Classify processes of an embedded stack (default: cores)."),
    ] = None,
    stack: StackOption = None,
) -> None:
    """Label every image of MANIFEST on the stack found, or a new one.

    The stack found: --stack (or LAMBDAFLOW_STACK) names a deployed one, else the `lambdaflow
    up` running in this directory (or a parent) is used; with neither, a throwaway embedded
    stack is started now and stopped at the end.

    Exits 0 when every line was read and has a result or a failure record (bad lines and bad
    images are data), 1 when the run is partial (the manifest broke or was not a manifest, or
    the run stalled: the summary says why), failed, or timed out, or the manifest does not
    exist; 130 on Ctrl-C, saying what becomes of the run.
    """
    check_s3_uri(manifest)
    refused = not_a_manifest_file(manifest)
    if refused is not None:
        raise CliError(refused)
    if not manifest.startswith("s3://") and not Path(manifest).is_file():
        raise CliError(f"{manifest}: no such file")
    if not manifest.startswith("s3://"):
        refuse_wrong_file(manifest)
    console = Console(stderr=as_json)
    with (
        stdout_reserved() as out,
        use_stack(start_if_missing=True, workers=workers, stack=stack) as info,
    ):
        try:
            obj = submit(info, manifest)
        except KeyboardInterrupt:
            raise interrupted_upload(manifest) from None
        try:
            summary = follow(info, obj, console, timeout)
        except RunTimeoutError as exc:
            raise CliError(str(exc)) from None
        except KeyboardInterrupt:
            raise interrupted(obj.run, is_throwaway=info.pid == os.getpid()) from None
        if as_json:
            out.write(orjson.dumps(summary).decode() + "\n")
    if not as_json:
        console.print(summary_table(summary))
    status = summary.get("status")
    if status != RunStatus.SUCCEEDED.value:
        # Partial is not "done": a script chaining on `run` must not take it for a full result.
        reason = summary.get("reason") or "see `lambdaflow status`"
        raise CliError(f"run {summary['run']} is {str(status).lower()}: {reason}")
