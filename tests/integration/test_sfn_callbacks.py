"""Step Functions callbacks on the local stack are kept as AWS keeps them.

A `.waitForTaskToken` task ends as soon as its token is completed, even while its own Lambda
still runs; and a task with `HeartbeatSeconds` and no `TimeoutSeconds` has no timeout of its own.
moto lost such an early outcome and gave the task 60 s, so runs paused for a minute at random.
"""

from __future__ import annotations

import json
import time
import uuid

import boto3
import pytest

from pipeline.local.sfn_callbacks import install_sfn_callbacks
from tests.local_functions import fake_function, registered
from tests.wait import execution_ended

pytestmark = pytest.mark.integration

AWS_DEFAULT_TIMEOUT_S = 99_999_999


def _waiting_task(function_arn: str) -> dict:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": function_arn, "Payload": {"token.$": "$$.Task.Token"}},
        "HeartbeatSeconds": 300,
        "End": True,
    }


def test_a_token_completed_during_its_own_invocation_ends_the_task_at_once(emulator):
    # GIVEN a waiting task (a heartbeat, no timeout) whose Lambda completes its own token
    name = f"own-token-{uuid.uuid4().hex[:8]}"
    function = fake_function("complete_own_token", name=name, logical_id="OwnToken", timeout_s=30)
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=name,
        definition=json.dumps({"StartAt": "Wait", "States": {"Wait": _waiting_task(function.arn)}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    with registered(function):
        # WHEN it runs
        started = time.monotonic()
        arn = sfn.start_execution(stateMachineArn=machine, name=name, input="{}")["executionArn"]
        done = execution_ended(sfn, arn, 90)
        # THEN the task ended with that outcome in seconds, not after moto's 60 s default
        assert done["status"] == "SUCCEEDED", done
        assert json.loads(done["output"]) == {"completed_by": "its own invocation"}
        assert time.monotonic() - started < 20


def test_a_waiting_task_with_a_heartbeat_and_no_timeout_has_none_of_its_own(emulator):
    from moto.stepfunctions.parser.asl.parse.asl_parser import (  # noqa: PLC0415
        AmazonStateLanguageParser,
    )

    install_sfn_callbacks()  # as the emulator does (idempotent)
    definition = {"StartAt": "Wait", "States": {"Wait": _waiting_task("f")}}
    parsed = AmazonStateLanguageParser.parse(json.dumps(definition))
    program = parsed[0] if isinstance(parsed, tuple) else parsed
    assert program.states.states["Wait"].timeout.timeout_seconds == AWS_DEFAULT_TIMEOUT_S
