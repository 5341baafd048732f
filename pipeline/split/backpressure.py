"""When Split pauses: once the WorkQueue holds about two hours of the workers' work.

Split cuts chunks far faster than classify labels them: 21 GB of manifest in 4 minutes, while its
two billion images take days at the default concurrency. Sent all at once, the last chunks would
wait in the WorkQueue for as long as the whole run, and SQS deletes a message older than the
queue's retention (14 days at most) without a trace: a big run at a low concurrency would lose
lines silently, and the queue-age alarm would ring on every big run. So a pass also stops (at a
chunk boundary, as at its time budget) once the queue holds `max_waiting` chunks, and the state
machine waits `split_pause_s` (30 minutes) before the next pass: a quarter of the queue drains
meanwhile, so the workers never run dry, and a run spends one loop of the state machine (9
history events) per half hour of waiting (a run that waits for months goes on in a new
execution before its history fills: `state.py`). The queue then holds hours of work, never days.
Pure, but for `sqs_depth`, the one call to AWS.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from pipeline.config import Settings

logger = logging.getLogger(__name__)

IMAGES_PER_WORKER_S = 75
"""A classify invocation's rate on one vCPU with S3's GET latency (BENCHMARKS.md: ~75 img/s)."""
QUEUED_WORK_S = 7200
"""How much work, in the workers' time, the WorkQueue may hold before Split pauses."""
CHECK_EVERY_S = 10.0
"""How often a pass asks the queue's depth (one GetQueueAttributes call)."""


def max_waiting_chunks(settings: Settings) -> int:
    """Chunks the WorkQueue may hold: `QUEUED_WORK_S` of work for the classify concurrency."""
    if settings.split_max_waiting_chunks is not None:
        return settings.split_max_waiting_chunks
    images = settings.classify_concurrency * IMAGES_PER_WORKER_S * QUEUED_WORK_S
    return max(1, math.ceil(images / settings.chunk_items))


class QueueGauge:
    """Says when the queue is full, asking its depth at most every `every_s` seconds."""

    def __init__(
        self,
        depth: Callable[[], int],
        max_waiting: int,
        *,
        every_s: float = CHECK_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._depth = depth
        self.max_waiting = max_waiting
        self._every_s = every_s
        self._clock = clock
        self._next_check = -math.inf

    def is_full(self) -> bool:
        """True on a look that finds `max_waiting` chunks or more; False between looks.

        A pass stops at the first True, so it never needs the answer twice.
        """
        now = self._clock()
        if now < self._next_check:
            return False
        self._next_check = now + self._every_s
        return self._depth() >= self.max_waiting


def sqs_depth(sqs: Any, queue_url: str) -> Callable[[], int]:
    """The messages waiting in an SQS queue (visible: not the ones being worked on).

    A depth that cannot be read (SQS unreachable after the SDK's retries, a stack deployed
    without the permission) reads as 0 with a warning: pausing is a safeguard, and failing the
    pass for it would retry, then end the run, over a question the next look may answer.
    """

    def depth() -> int:
        try:
            attributes = sqs.get_queue_attributes(
                QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            return int(attributes["ApproximateNumberOfMessages"])
        except (BotoCoreError, ClientError) as exc:
            logger.warning("cannot read the WorkQueue's depth (%s): split goes on", exc)
            return 0

    return depth
