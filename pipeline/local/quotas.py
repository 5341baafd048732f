"""AWS's hard Step Functions quotas, enforced on moto's executor (moto 5.2.5 has none).

A Standard execution on AWS fails outright when its history reaches 25,000 events, and a state
whose input or output is over 256 KiB fails with `States.DataLimitExceeded`; no Catch of the
definition sees either. moto records every event and passes any payload, so a design that would
die on AWS after 11 hours of polling passed every local test. This module hooks moto's
`EventManager.add_event` (every history event goes through it): past the quota, the execution is
failed the way AWS fails it, so a test of a long wait meets what AWS would do.

`LIMITS.max_history_events` comes from `Settings.local_max_history_events`
(`LAMBDAFLOW_LOCAL_MAX_HISTORY_EVENTS`, default AWS's 25,000); tests lower it to reach the quota
in seconds instead of hours.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from pipeline.config import MAX_HISTORY_EVENTS
from pipeline.local.patches import patch_once

MAX_STATE_PAYLOAD_BYTES = 256 * 1024
"""AWS Step Functions: a state's input or output, UTF-8 (hard quota)."""
HISTORY_QUOTA_ERROR = "States.Runtime"
PAYLOAD_QUOTA_ERROR = "States.DataLimitExceeded"
_DETAILS_ARG = 2
"""`EventManager.add_event(context, event_type, event_details, …)`: where the details sit."""


@dataclass(slots=True)
class StepFunctionsLimits:
    """The quotas the hooked executor enforces (mutable: tests lower them for a while)."""

    max_history_events: int = MAX_HISTORY_EVENTS
    max_state_payload_bytes: int = MAX_STATE_PAYLOAD_BYTES


LIMITS = StepFunctionsLimits()


def install_step_functions_quotas(max_history_events: int = MAX_HISTORY_EVENTS) -> None:
    """Make moto's executor fail executions past AWS's quotas (idempotent; sets the limit)."""
    from moto.stepfunctions.parser.asl.eval.environment import Environment  # noqa: PLC0415
    from moto.stepfunctions.parser.asl.eval.event.event_manager import (  # noqa: PLC0415
        EventManager,
    )

    LIMITS.max_history_events = max_history_events
    patch_once(Environment, "__init__", _keeping_its_env, rule=__name__)
    patch_once(EventManager, "add_event", _failing_past_quota, rule=__name__)


def _keeping_its_env(original_init: Any) -> Any:
    @functools.wraps(original_init)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        # Frames replace their manager with their parent's, which keeps the root's env.
        self.event_manager.lambdaflow_env = self

    return init


def _failing_past_quota(original_add: Any) -> Any:
    @functools.wraps(original_add)
    def add_event(self: Any, *args: Any, **kwargs: Any) -> int:
        event_id = original_add(self, *args, **kwargs)
        env = getattr(self, "lambdaflow_env", None)
        if env is not None and env.is_running():
            reason = _over_quota(len(self._history_event_list), args, kwargs)
            if reason is not None:
                _fail(env, *reason)
        return event_id

    return add_event


def _over_quota(
    events: int, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, str] | None:
    if events >= LIMITS.max_history_events:
        return HISTORY_QUOTA_ERROR, (
            f"The execution reached the maximum number of history events "
            f"({LIMITS.max_history_events})."
        )
    details = kwargs.get("event_details", args[_DETAILS_ARG] if len(args) > _DETAILS_ARG else None)
    for detail in (details or {}).values():
        for field in ("input", "output"):
            payload = detail.get(field) if isinstance(detail, dict) else None
            if isinstance(payload, str) and len(payload.encode()) > LIMITS.max_state_payload_bytes:
                return PAYLOAD_QUOTA_ERROR, (
                    f"The state/task returned a result with a size exceeding the maximum number "
                    f"of bytes service limit ({LIMITS.max_state_payload_bytes})."
                )
    return None


def _fail(env: Any, error: str, cause: str) -> None:
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails  # noqa: PLC0415

    env.set_error(ExecutionFailedEventDetails(error=error, cause=cause))
