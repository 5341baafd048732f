"""Stack status handling of `describe_deployed_stack` (a fake client: pure logic)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pipeline.aws.stack_outputs import REQUIRED_OUTPUTS, describe_deployed_stack
from pipeline.failures import ConfigError


class _FakeCloudFormation:
    def __init__(self, status: str) -> None:
        self.meta = SimpleNamespace(region_name="eu-west-1")
        self._status = status

    def describe_stacks(self, StackName):
        outputs = [{"OutputKey": k, "OutputValue": "v"} for k in REQUIRED_OUTPUTS]
        stack = {"StackName": StackName, "StackStatus": self._status, "Outputs": outputs}
        return {"Stacks": [stack]}


@pytest.mark.parametrize(
    "status", ["CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"]
)
def test_completed_stacks_are_usable(status):
    stack = describe_deployed_stack(_FakeCloudFormation(status), "s")
    assert stack.region == "eu-west-1" and stack.status == status


@pytest.mark.parametrize("status", ["CREATE_IN_PROGRESS", "ROLLBACK_COMPLETE", "DELETE_FAILED"])
def test_stacks_mid_deploy_or_failed_are_refused(status):
    with pytest.raises(ConfigError, match=status):
        describe_deployed_stack(_FakeCloudFormation(status), "s")
