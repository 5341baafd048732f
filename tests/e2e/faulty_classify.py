"""The classify handler with faults a test can ask for, chosen by the chunk's image keys.

A chunk holding a key that contains `crash-once` raises on its first delivery only (the
message's ApproximateReceiveCount is 1); one holding `poison` raises on every delivery. Every other
chunk goes to the real `handlers.classify.handler` untouched.
"""

from __future__ import annotations

import importlib
from typing import Any

CRASH_ONCE = "crash-once"
POISON = "poison"


class InjectedCrashError(RuntimeError):
    """A fault the test asked for."""


def handler(event: dict[str, Any], context: Any) -> Any:
    for record in event.get("Records", []):
        body = record.get("body", "")
        if POISON in body:
            raise InjectedCrashError("poison chunk")
        if CRASH_ONCE in body and record["attributes"].get("ApproximateReceiveCount") == "1":
            raise InjectedCrashError("crash on first delivery")
    real = importlib.import_module("handlers.classify")
    return real.handler(event, context)
