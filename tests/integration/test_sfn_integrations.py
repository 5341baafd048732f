"""A Step Functions task that starts an execution works on the local stack as on AWS.

moto handed `StateMachineArn`, `Name` and `Input` to boto3 as written, so every
`states:startExecution` task failed with `States.Runtime`; a run that goes on in a new execution
(`ContinueAsNew`) would have ended as partial locally and succeeded on AWS.
"""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from tests.wait import execution_ended

pytestmark = pytest.mark.integration

EXISTS = "StepFunctions.ExecutionAlreadyExistsException"


def _machine(sfn, name: str) -> str:
    """A state machine that, given `again: true`, starts itself once more, named `<name>-2`."""
    start_again = {
        "Type": "Task",
        "Resource": "arn:aws:states:::states:startExecution",
        "Parameters": {
            "StateMachineArn.$": "$$.StateMachine.Id",
            "Name.$": "States.Format('{}-{}', $.name, $.n)",
            "Input": {"again": False, "name.$": "$.name", "n.$": "$.n"},
        },
        "ResultPath": None,
        "Catch": [{"ErrorEquals": [EXISTS], "ResultPath": "$.error", "Next": "Exists"}],
        "End": True,
    }
    definition = {
        "StartAt": "Again",
        "States": {
            "Again": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.again", "BooleanEquals": True, "Next": "StartAgain"}],
                "Default": "Done",
            },
            "StartAgain": start_again,
            "Exists": {"Type": "Pass", "End": True},
            "Done": {"Type": "Succeed"},
        },
    }
    return sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]


def test_a_start_execution_task_starts_the_execution_it_names(emulator):
    # GIVEN a state machine whose task starts a new execution of itself
    sfn = boto3.client("stepfunctions")
    name = f"again-{uuid.uuid4().hex[:8]}"
    machine = _machine(sfn, name)
    # WHEN it runs
    arn = sfn.start_execution(
        stateMachineArn=machine, name=name, input=json.dumps({"again": True, "name": name, "n": 2})
    )["executionArn"]
    # THEN it succeeded, and the execution it started ran with the input it was given
    assert execution_ended(sfn, arn, 30)["status"] == "SUCCEEDED"
    child = arn.rsplit(":", 1)[0] + f":{name}-2"
    started = execution_ended(sfn, child, 30)
    assert started["status"] == "SUCCEEDED"
    assert json.loads(started["input"]) == {"again": False, "name": name, "n": 2}
    # AND a second start of that name, the execution ended, fails with AWS's error for a Catch
    twin = sfn.start_execution(
        stateMachineArn=machine,
        name=f"{name}-twin",
        input=json.dumps({"again": True, "name": name, "n": 2}),
    )["executionArn"]
    ended = execution_ended(sfn, twin, 30)
    assert ended["status"] == "SUCCEEDED"
    assert json.loads(ended["output"])["error"]["Error"] == EXISTS
