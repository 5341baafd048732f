"""Step Functions' own service integration as AWS runs it, where moto 5.2.5 cannot call it.

A `arn:aws:states:::states:startExecution` task names its parameters as the API reference does
(`StateMachineArn`, `Name`, `Input`), and AWS maps them onto the call. moto hands them to boto3
as they are, where the SDK's members are `stateMachineArn`, `name` and `input`: every such task
fails with `States.Runtime` and a bare `'StateMachineArn'` as its cause. A run long enough to go
on in a new execution (`ContinueAsNew`, statemachine/pipeline.asl.json) would then have been
finalized as partial locally and succeeded on AWS.

This module hooks moto's `StateTaskServiceSfn._normalise_parameters` so that, after moto's own
step (which encodes a JSON `Input` as a string), each parameter is renamed to the SDK member it
names, with moto's own renaming (the one its other integrations use).
"""

from __future__ import annotations

import functools
from typing import Any

from pipeline.local.patches import patch_once


def install_sfn_integrations() -> None:
    """Hook moto's Step Functions integration (idempotent)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (  # noqa: PLC0415
        state_task_service_sfn,
    )

    patch_once(
        state_task_service_sfn.StateTaskServiceSfn,
        "_normalise_parameters",
        _sdk_member_names,
        rule=__name__,
    )


def _sdk_member_names(original: Any) -> Any:
    @functools.wraps(original)
    def normalise(
        self: Any,
        parameters: dict[str, Any],
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        original(self, parameters, boto_service_name, service_action_name)
        action = self._get_boto_service_action(service_action_name)
        self._to_boto_request(parameters, _input_shape(action))

    return normalise


@functools.cache
def _input_shape(action: str) -> Any:
    """The request shape of a Step Functions operation, by its boto3 method name."""
    import botocore  # noqa: PLC0415
    import botocore.session  # noqa: PLC0415

    model = botocore.session.get_session().get_service_model("stepfunctions")
    names = {botocore.xform_name(name): name for name in model.operation_names}
    return model.operation_model(names[action]).input_shape
