"""Waiting on conditions with a deadline, never a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout_s: float, *, interval_s: float = 0.1, what: str = ""
) -> T:
    """Return the first truthy value of `predicate()`; fail the test when `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what or predicate}")
        time.sleep(interval_s)


def execution_ended(
    sfn: Any, arn: str, timeout_s: float, *, interval_s: float = 0.1
) -> dict[str, Any]:
    """The execution's description once it no longer runs; fail the test past `timeout_s`."""

    def ended() -> dict[str, Any] | None:
        described = sfn.describe_execution(executionArn=arn)
        return None if described["status"] == "RUNNING" else described

    return wait_until(ended, timeout_s, interval_s=interval_s, what=f"execution {arn} to end")
