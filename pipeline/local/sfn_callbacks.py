"""Step Functions callbacks as AWS keeps them, where moto 5.2.5 loses or rescues them.

A `.waitForTaskToken` task's token is valid from the moment the task starts: on AWS a
SendTaskSuccess that arrives while the task's own Lambda is still running (the run's last chunk
counted just then, or the Lambda completing its own token) ends the task. moto stores such an
early outcome, but a task with `HeartbeatSeconds` then waits only for the next heartbeat, on an
endpoint made after the outcome came: the outcome is never looked at, and the task waits on.
moto also gives such a task a 60 s `TimeoutSeconds` when the definition names none, where AWS
gives 99,999,999 s (no timeout): that default then "rescued" the lost outcome a minute later, so
a local run sometimes paused for 60 s and nothing failed. On AWS a task whose signal is really
lost waits for its heartbeat timeout (the stall timeout, 3 hours by default) instead.

This module hooks moto's `CallbackEndpoint.setup_heartbeat_endpoint`, so a heartbeat endpoint
made after the outcome came starts notified (the waiting loop then reads the outcome at once),
and `ExecutionState.from_state_props`, so a task with a heartbeat and no timeout gets AWS's.
"""

from __future__ import annotations

import functools
from typing import Any

from pipeline.local.patches import patch_once

MOTO_DEFAULT_TIMEOUT_S = 60


def install_sfn_callbacks() -> None:
    """Hook moto's callback endpoint and task timeouts (idempotent)."""
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import (  # noqa: PLC0415
        ExecutionState,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import (  # noqa: PLC0415
        CallbackEndpoint,
    )

    patch_once(CallbackEndpoint, "setup_heartbeat_endpoint", _aware_of_outcome, rule=__name__)
    patch_once(ExecutionState, "from_state_props", _aws_default_timeout, rule=__name__)


def _aware_of_outcome(original: Any) -> Any:
    @functools.wraps(original)
    def setup(self: Any, heartbeat_seconds: int) -> Any:
        endpoint = original(self, heartbeat_seconds=heartbeat_seconds)
        if self.get_outcome() is not None:  # it came during the task's own invocation
            endpoint.notify()
        return endpoint

    return setup


def _aws_default_timeout(original: Any) -> Any:
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import (  # noqa: PLC0415
        TimeoutSeconds,
    )

    @functools.wraps(original)
    def from_state_props(self: Any, state_props: Any) -> None:
        original(self, state_props)
        timeout = self.timeout
        if (
            isinstance(timeout, TimeoutSeconds)
            and timeout.is_default
            and timeout.timeout_seconds == MOTO_DEFAULT_TIMEOUT_S
        ):
            self.timeout = TimeoutSeconds(timeout_seconds=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS)

    return from_state_props
