"""The state machine's check around its wait: is every chunk counted, or has the run stalled?

Progress runs once when Split is done and again whenever the wait for the last chunk ends (a
worker completed it, or its heartbeat timed out: pipeline/ledger/completion.py). It returns the
state with `complete`, `stalled` and `heartbeat_s` (the wait task's `HeartbeatSecondsPath`: the
stall timeout). Stall detection needs memory between checks, and the state machine's state is
that memory: `progress.counted` and `progress.changed_at` ride along, so the check stays a pure
function of (state, ledger reading, clock). `poll_s` stays in the output for older definitions.

Knows nothing of Lambda: the handler passes the ledger's `RunState` and the time.
"""

from __future__ import annotations

import math
from typing import Any

from pipeline.ledger.runs import RunState


def check_progress(
    state: dict[str, Any], run_state: RunState, *, now: float, stall_timeout_s: float, poll_s: int
) -> dict[str, Any]:
    """The next state: the input plus `complete`, `stalled`, `poll_s` and `progress`."""
    counted = run_state.ok + run_state.failed
    previous = state.get("progress") or {}
    changed_at = previous.get("changed_at", now)
    if counted != previous.get("counted"):
        changed_at = now
    complete = run_state.is_complete
    stalled = not complete and now - changed_at >= stall_timeout_s
    return {
        **state,
        "complete": complete,
        "stalled": stalled,
        "poll_s": poll_s,
        "heartbeat_s": max(1, math.ceil(stall_timeout_s)),
        "progress": {
            "counted": counted,
            "changed_at": changed_at,
            "lines": run_state.lines,
            "chunks_done": run_state.chunks_done,
            "chunks_sent": run_state.chunks_sent,
            "ok": run_state.ok,
            "failed": run_state.failed,
        },
    }
