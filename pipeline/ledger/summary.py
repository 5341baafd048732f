"""The run summary: built from a `RunState`, written beside the results.

`ok + failed == lines`, always: lines the ledger never saw counted (a chunk stuck in the WorkDLQ
when a stall timeout finalized the run) are reported as failed with stage ``unprocessed`` and
error ``NotProcessed`` and make the run PARTIAL, rather than vanishing from the arithmetic.
Exactly one of `_SUCCESS.json` / `_PARTIAL.json` exists for a finished run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from botocore.exceptions import ClientError

from pipeline.aws.errors import error_code, write_error_from
from pipeline.failures import SCHEMA_VERSION
from pipeline.ledger.runs import RunState, RunStatus
from pipeline.observe.prices import CHUNK_WRITE_UNITS, Prices, split_passes, transitions

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any

__all__ = [
    "LedgerInvariantError",
    "Prices",
    "RunSummary",
    "build_summary",
    "estimate_cost",
    "final_status",
    "invariant_problems",
    "read_summary",
    "summary_key",
    "write_summary",
]

UNPROCESSED_STAGE = "unprocessed"
PROGRESS_POLL_S = 15.0
"""The template's default ProgressPollSeconds, for counting the state machine's polls."""
_GET_STAGES = ("fetch", "decode", "classify")
"""Failed items that still made their S3 GET (a 404 bills like a 200)."""
UNPROCESSED_ERROR = "NotProcessed"
SUCCESS_NAME = "_SUCCESS.json"
PARTIAL_NAME = "_PARTIAL.json"


class LedgerInvariantError(ValueError):
    """The ledger counted more lines than were split: something was counted twice."""


@dataclass(frozen=True, slots=True)
class RunSummary:
    """The contract object; `status` picks the file name, `reason` says why a run is partial."""

    run: str
    manifest: str
    status: RunStatus
    lines: int
    ok: int
    failed: int
    failed_by_stage: dict[str, int]
    failed_by_error: dict[str, int]
    chunks: int
    seconds: float
    images_per_s: float
    cost_usd: dict[str, float] = field(default_factory=dict)
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: the documented keys, plus `status` and, when set, `reason`."""
        data: dict[str, Any] = {
            "v": SCHEMA_VERSION,
            "run": self.run,
            "manifest": self.manifest,
            "status": self.status.value,
            "lines": self.lines,
            "ok": self.ok,
            "failed": self.failed,
            "failed_by_stage": self.failed_by_stage,
            "failed_by_error": self.failed_by_error,
            "chunks": self.chunks,
            "seconds": self.seconds,
            "images_per_s": self.images_per_s,
            "cost_usd": self.cost_usd,
        }
        if self.reason:
            data["reason"] = self.reason
        return data


def estimate_cost(
    state: RunState,
    prices: Prices,
    *,
    now: float | None = None,
    poll_s: float = PROGRESS_POLL_S,
) -> dict[str, float]:
    """Dollars by service for what the ledger counted, plus their total.

    From measured figures: Lambda duration is the chunk handlers' own summed seconds
    (`compute_s`, what Lambda bills) plus Split's lines at its measured rate; requests are the
    ledger's counts — one GET per image that reached S3, two part writes, one invocation, one
    send/receive/delete and one 4-unit ledger transaction per chunk, one FailureQueue send per
    failed line (an upper bound: sends are batched) — and Step Functions transitions follow
    from Split's passes and the run's wall time over the poll interval. Keys: ``lambda``,
    ``lambda_requests``, ``s3``, ``sqs``, ``dynamodb``, ``step_functions``, ``total``.
    """
    chunks = state.chunks_done + state.replay_chunks_done
    gets = state.images + sum(state.failed_by_stage.get(stage, 0) for stage in _GET_STAGES)
    passes = split_passes(state.lines)
    end = now if now is not None else (state.finished_at or state.started_at)
    steps = transitions(split_passes=passes, wall_s=state.wall_s(end), poll_s=poll_s)
    cost = {
        "lambda": prices.lambda_usd(state.compute_s) + prices.split_usd(state.lines),
        "lambda_requests": (chunks + passes) * prices.lambda_request,
        "s3": gets * prices.s3_get + 2 * chunks * prices.s3_put,
        "sqs": (3 * chunks + state.failed) * prices.sqs_request,
        "dynamodb": CHUNK_WRITE_UNITS * chunks * prices.dynamodb_write_unit,
        "step_functions": steps * prices.sfn_transition,
    }
    cost = {name: round(value, 6) for name, value in cost.items()}
    cost["total"] = round(sum(cost.values()), 6)
    return cost


def invariant_problems(state: RunState) -> list[str]:
    """What is impossible in the run's counts: each one means a line was counted twice or lost.

    Negative counts, `ok > lines`, `ok + failed > lines`, and — once every chunk is counted and
    nothing else explains it — `ok + failed != lines`.
    """
    ok, failed, lines = state.ok, state.failed, state.lines
    found = []
    if ok < 0 or failed < 0:
        found.append(f"negative counts: ok {ok}, failed {failed}")
    if ok > lines:
        found.append(f"ok {ok} > lines {lines}")
    if ok + failed > lines:
        found.append(f"ok {ok} + failed {failed} > lines {lines}")
    elif state.is_complete and not state.reason and ok + failed != lines:
        found.append(f"every chunk is counted, yet ok {ok} + failed {failed} != lines {lines}")
    return found


def final_status(state: RunState) -> RunStatus:
    """The end state a finished run gets: SUCCEEDED only if every line is accounted for.

    A run whose counts are impossible (`invariant_problems`) is FAILED, never SUCCEEDED.
    """
    if state.status is RunStatus.FAILED or invariant_problems(state):
        return RunStatus.FAILED
    if state.is_complete and state.pending == 0 and not state.reason:
        return RunStatus.SUCCEEDED
    return RunStatus.PARTIAL


def build_summary(state: RunState, *, now: float, prices: Prices | None = None) -> RunSummary:
    """The summary of `state`, with ok + failed == lines.

    A run already marked FAILED (Finalize found its counts impossible) is summarised with its
    raw counts and its reason, so the user sees what is wrong instead of a tidy total.

    Raises:
        LedgerInvariantError: impossible counts in a run not marked FAILED.
    """
    problems = invariant_problems(state)
    if problems and state.status is not RunStatus.FAILED:
        raise LedgerInvariantError(f"run {state.run}: " + "; ".join(problems))
    pending = 0 if problems or state.status is RunStatus.FAILED else max(0, state.pending)
    by_stage, by_error = dict(state.failed_by_stage), dict(state.failed_by_error)
    if pending:
        by_stage[UNPROCESSED_STAGE] = by_stage.get(UNPROCESSED_STAGE, 0) + pending
        by_error[UNPROCESSED_ERROR] = by_error.get(UNPROCESSED_ERROR, 0) + pending
    seconds = round(state.wall_s(now), 3)
    status = final_status(state) if state.status is RunStatus.RUNNING else state.status
    if pending and status is RunStatus.SUCCEEDED:
        status = RunStatus.PARTIAL
    return RunSummary(
        run=state.run,
        manifest=state.manifest,
        status=status,
        lines=state.lines,
        ok=state.ok,
        failed=state.failed + pending,
        failed_by_stage=by_stage,
        failed_by_error=by_error,
        chunks=state.chunks_sent,
        seconds=seconds,
        images_per_s=round(state.images / seconds, 2) if seconds > 0 else 0.0,
        cost_usd=estimate_cost(state, prices or Prices(), now=now),
        reason=state.reason or (f"{pending} lines never counted" if pending else None),
    )


def summary_key(run: str, status: RunStatus) -> str:
    """`results/<run>/_SUCCESS.json` for a succeeded run, `_PARTIAL.json` otherwise."""
    name = SUCCESS_NAME if status is RunStatus.SUCCEEDED else PARTIAL_NAME
    return f"results/{run}/{name}"


def write_summary(client: S3Client, bucket: str, run: str, summary: RunSummary) -> str:
    """Write the summary and remove the other marker, so only one is true; returns the key.

    The new file is written before the old one is deleted: a reader may briefly see both (then
    `_SUCCESS.json` is the newer), never neither.
    """
    key = summary_key(run, summary.status)
    other = summary_key(
        run, RunStatus.PARTIAL if key.endswith(SUCCESS_NAME) else RunStatus.SUCCEEDED
    )
    body = orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2)
    try:
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        client.delete_object(Bucket=bucket, Key=other)
    except ClientError as exc:
        raise write_error_from(exc, f"writing the summary of run {run}") from exc
    return key


def read_summary(client: S3Client, bucket: str, run: str) -> dict[str, Any] | None:
    """The run's summary object (`_SUCCESS.json` preferred), or None before Finalize."""
    for name in (SUCCESS_NAME, PARTIAL_NAME):
        try:
            body = client.get_object(Bucket=bucket, Key=f"results/{run}/{name}")["Body"].read()
        except ClientError as exc:
            if error_code(exc) in {"NoSuchKey", "404"}:
                continue
            raise
        return orjson.loads(body)
    return None
