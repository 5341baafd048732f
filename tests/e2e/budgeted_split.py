"""The real Split handler, left no time for manifests marked `ONE_CHUNK_PASSES`.

Such a manifest is split one chunk a pass (a pass always sends at least one chunk), so the state
machine must loop Split once per chunk; every other manifest gets the real context. Production
code is untouched: this only shortens the remaining time the handler sees, or, for manifests
marked `FULL_QUEUE`, sets the WorkQueue depth at which a pass pauses to zero (and the pause
to 1 s), so every pass pauses after its first chunk; manifests marked `CONTINUED` go on in a new
execution every `CONTINUED_PASSES` passes. Markers combine.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

ONE_CHUNK_PASSES = "one-chunk-passes"
FULL_QUEUE = "full-queue"
"""Manifests marked so find the WorkQueue always full: each pass pauses after its first chunk."""
CONTINUED = "continued"
"""Manifests marked so change execution every `CONTINUED_PASSES` passes."""
CONTINUED_PASSES = 1


class _NoTimeLeft:
    """A Lambda context whose remaining time is exactly the handler's safety margin."""

    def __init__(self, context: Any, margin_s: float) -> None:
        self._context = context
        self._margin_s = margin_s

    def get_remaining_time_in_millis(self) -> int:
        return int(self._margin_s * 1000)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # Imported here, as the local stack imports handlers: with the function's environment set.
    real = importlib.import_module("handlers.split")
    key = event.get("manifest", {}).get("key", "")
    if ONE_CHUNK_PASSES in key:
        context = _NoTimeLeft(context, real.BUDGET_MARGIN_S)
    changes: dict[str, int] = {}
    if FULL_QUEUE in key:
        changes.update(split_max_waiting_chunks=0, split_pause_s=1)
    if CONTINUED in key:
        changes.update(split_passes_per_execution=CONTINUED_PASSES)
    if changes:
        settings = dataclasses.replace(real.split.settings, **changes)
        return real.handle(event, context, dataclasses.replace(real.split, settings=settings))
    return real.handler(event, context)
