"""End the execution's wait when the last chunk is counted: a history that does not grow.

A Standard execution fails outright at 25,000 history events, and a Wait → Progress → Choice
poll adds ~9 a loop, so polling caps a run at hours. Instead, once Split is done the state
machine parks in one `lambda:invoke.waitForTaskToken` task (6 events however long it waits).
Its Lambda (`arm`) stores the task token in the run item and then reads the counters; every
chunk worker, after counting, reads the token and the counters (`after_chunk`). Both write first
and read second, consistently, so whichever of them sees the last chunk counted — the arm when
every chunk was counted before Split finished, else the worker that counted the last one — sends
SendTaskSuccess. Sending twice is harmless (the second gets `InvalidToken`).

Stall detection is kept by the task's `HeartbeatSeconds` (the stall timeout): workers that count
chunks send SendTaskHeartbeat, at most once per `heartbeat_every_s` per process, so a run that
moves never times out and one that stops does; the timeout goes to Progress, which re-arms if the
counters moved after all or finalizes the run as stalled.

Signalling never fails a chunk: it is already counted, and a missed signal only delays the end
to the next heartbeat timeout, when Progress finds the run complete.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws.errors import error_code
from pipeline.ledger.table import RunLedger

logger = logging.getLogger(__name__)

HEARTBEATS_PER_STALL_TIMEOUT = 4
"""A moving run heartbeats ~4 times per stall timeout per worker process: a few missed (a slow
chunk, a cold start) never stall it, and 1,000 workers at the 1,800 s default send ~2 a second."""
_GONE = frozenset({"InvalidToken", "TaskTimedOut", "TaskDoesNotExist"})
"""The token's task already ended (completed by someone else, timed out, execution over)."""


class WaitNotArmed(RuntimeError):
    """The wait's token could not be stored, or the run read, this time: try again.

    A name of its own, so the AwaitChunks task retries it: caught as any other failure, it
    finalized a run whose chunks were still being counted as partial, for good.
    """


class CompletionSignal:
    """Sends the waiting execution SendTaskSuccess or SendTaskHeartbeat from the ledger's view."""

    def __init__(
        self,
        ledger: RunLedger,
        sfn: Any,
        *,
        stall_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ledger = ledger
        self._sfn = sfn
        self._heartbeat_every_s = stall_timeout_s / HEARTBEATS_PER_STALL_TIMEOUT
        self._clock = clock
        self._last_beat: dict[str, float] = {}

    def arm(self, run: str, token: str) -> bool:
        """Store the token, then complete it at once if every chunk is already counted.

        Raises:
            WaitNotArmed: DynamoDB failed past the SDK's retries; the task retries on it.
        """
        try:
            self._ledger.store_wait_token(run, token)
            is_complete = self._ledger.get_run(run).is_complete
        except (ClientError, BotoCoreError) as exc:
            raise WaitNotArmed(f"arming the wait of run {run}: {exc}") from exc
        if is_complete:
            return self._succeed(run, token)
        return False

    def after_chunk(self, run: str) -> bool:
        """After a chunk was counted: True if this call ended the wait (the run is complete)."""
        token = self._ledger.wait_token(run)
        if token is None:  # Split is still going, or the run is finished
            return False
        if self._ledger.get_run(run).is_complete:
            return self._succeed(run, token)
        now = self._clock()
        if now - self._last_beat.get(run, -self._heartbeat_every_s) >= self._heartbeat_every_s:
            self._last_beat[run] = now
            self._send(run, "send_task_heartbeat", taskToken=token)
        return False

    def _succeed(self, run: str, token: str) -> bool:
        output = json.dumps({"run": run, "complete": True})
        return self._send(run, "send_task_success", taskToken=token, output=output)

    def _send(self, run: str, operation: str, **kwargs: str) -> bool:
        try:
            getattr(self._sfn, operation)(**kwargs)
        except ClientError as exc:
            level = logging.INFO if error_code(exc) in _GONE else logging.WARNING
            logger.log(level, "%s for run %s: %s", operation, run, exc, extra={"run": run})
            return False
        return True
