"""The classify handler with faults a test can ask for, chosen by the chunk's image keys.

A chunk holding a key that contains `crash-once` raises on its first delivery only (the
message's ApproximateReceiveCount is 1); one holding `poison` raises on every delivery. Every
other chunk goes to the real `handlers.classify.handler` untouched. Each injected crash leaves a
marker object `test-faults/<run>/chunk-<n>-receive-<count>` in the results bucket, so a test
can prove the crash happened (worker processes share no memory with the test).
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

import boto3

if "LAMBDAFLOW_RESULTS_BUCKET" in os.environ:
    # Loaded as a function's handler (the stack applied its environment): import the real one
    # now, as Lambda's cold start does, so its tracing is on before the first invocation. Tests
    # that import this module only for its constants have no such environment.
    importlib.import_module("handlers.classify")

CRASH_ONCE = "crash-once"
POISON = "poison"


class InjectedCrashError(RuntimeError):
    """A fault the test asked for."""


def _crash(record: dict[str, Any], why: str) -> None:
    chunk = json.loads(record["body"])
    count = record["attributes"]["ApproximateReceiveCount"]
    key = f"test-faults/{chunk['run']}/chunk-{chunk['chunk']}-receive-{count}"
    boto3.client("s3").put_object(
        Bucket=os.environ["LAMBDAFLOW_RESULTS_BUCKET"], Key=key, Body=why.encode()
    )
    raise InjectedCrashError(why)


def handler(event: dict[str, Any], context: Any) -> Any:
    for record in event.get("Records", []):
        body = record.get("body", "")
        if POISON in body:
            _crash(record, "poison chunk")
        if CRASH_ONCE in body and record["attributes"].get("ApproximateReceiveCount") == "1":
            _crash(record, "crash on first delivery")
    real = importlib.import_module("handlers.classify")
    return real.handler(event, context)
