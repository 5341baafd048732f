"""Finish a run: settle its end status in the ledger and write its summary beside the results.

A run that stalled, or whose execution failed past its retries (the state carries `error`), is
PARTIAL with the reason; otherwise the ledger decides (`pipeline.ledger.summary.final_status`). The
summary always has ok + failed == lines: lines never counted are reported as unprocessed.

Knows nothing of Lambda: the ledger, the S3 client and the clock are passed in.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pipeline.ledger.runs import RunStatus
from pipeline.ledger.summary import build_summary, final_status, write_summary
from pipeline.ledger.table import RunLedger, UnknownRunError

logger = logging.getLogger(__name__)


def _partial_reason(state: dict[str, Any]) -> str | None:
    """Why the state machine says the run is partial, if it does."""
    if state.get("error"):
        error = state["error"]
        cause = str(error.get("Cause", "")) if isinstance(error, dict) else ""
        name = error.get("Error", "error") if isinstance(error, dict) else str(error)
        return f"the run's execution failed: {name}: {_cause_message(cause)[:300]}"
    if state.get("stalled"):
        return "stalled: no chunk was counted within the stall timeout (see the WorkDLQ)"
    return None


def _cause_message(cause: str) -> str:
    try:
        return str(json.loads(cause).get("errorMessage", cause))
    except (ValueError, AttributeError):
        return cause


def finalize_run(
    state: dict[str, Any], *, ledger: RunLedger, s3: Any, results_bucket: str, now: float
) -> dict[str, Any]:
    """Write `_SUCCESS.json` or `_PARTIAL.json`; return the summary object."""
    run = state["run"]
    try:
        run_state = ledger.get_run(run)
    except UnknownRunError:  # Split failed before it could start the run
        ledger.start_run(run, manifest=state["manifest"]["uri"])
        run_state = ledger.get_run(run)
    reason = _partial_reason(state)
    status = RunStatus.PARTIAL if reason else final_status(run_state)
    ledger.mark_finished(run, status, reason=reason or run_state.reason)
    summary = build_summary(ledger.get_run(run), now=now)
    key = write_summary(s3, results_bucket, run, summary)
    logger.info("run finished %s: %s", summary.status, key, extra={"run": run})
    return summary.to_dict()
