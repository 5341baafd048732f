"""Test-only Lambda handlers, loaded by name (importlib) exactly like the real ones.

They record what they saw in module state, which the test process can read because in-process
invocations and thread pollers run in it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

calls: list[dict[str, Any]] = []
_lock = threading.Lock()


def crash_on_poison(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Raise when any record's body is "poison"; report records whose body is "bad" as failed."""
    with _lock:
        calls.append(event)
    bodies = [r["body"] for r in event["Records"]]
    if "poison" in bodies:
        raise RuntimeError("poison message")
    failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "bad"]
    return {"batchItemFailures": failures}


def describe(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Prove who ran: the process id, the function's environment and context, a computed value."""
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {
        "pid": os.getpid(),
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "marker": os.environ.get("LAMBDAFLOW_TEST_MARKER"),
        "doubled": [2 * x for x in event.get("numbers", [])],
        "echo": json.dumps(event, sort_keys=True),
    }


def hang_on_hang(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Outlive any test timeout on a "hang" record, as a stuck Lambda would."""
    if any(r["body"] == "hang" for r in event["Records"]):
        time.sleep(600)
    return {"batchItemFailures": []}


HOG_MB = 400


def hog_on_hog(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Hold `HOG_MB` of touched memory for a moment on a "hog" record, then return success."""
    if any(r["body"] == "hog" for r in event["Records"]):
        held = b"x" * (HOG_MB * 1024 * 1024)
        time.sleep(0.2)
        del held
    return {"batchItemFailures": []}


def complete_own_token(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Send SendTaskSuccess for this very task's token, before this invocation returns."""
    import boto3  # noqa: PLC0415  # only this fake calls AWS

    output = json.dumps({"completed_by": "its own invocation"})
    boto3.client("stepfunctions").send_task_success(taskToken=event["token"], output=output)
    return {}
