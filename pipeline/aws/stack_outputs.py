"""Find a deployed stack's resources by its name: `--stack NAME` reads its CloudFormation Outputs.

`sam deploy` names every resource it creates; template.yaml publishes the ones a client needs as
Outputs (`InputBucketName`, `ResultsBucketName`, `StateMachineArn`, `RunsTableName`, queue URLs).
The CLI resolves a stack name to those values once per command with one DescribeStacks call, so
it never guesses physical names and needs only `cloudformation:DescribeStacks` beyond the data
permissions. The local stack publishes the same Output keys in its state file, so commands take
either source and see the same shape.

Knows nothing of the CLI: it takes an injected CloudFormation client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from botocore.exceptions import ClientError

from pipeline.failures import ConfigError

REQUIRED_OUTPUTS = ("InputBucketName", "ResultsBucketName", "StateMachineArn", "RunsTableName")
"""What every command may rely on (template.yaml must keep publishing them)."""
_USABLE_STATUSES = frozenset(
    {
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_ROLLBACK_COMPLETE",
        "IMPORT_COMPLETE",
        "IMPORT_ROLLBACK_COMPLETE",
    }
)
"""A stack in one of these has every resource of a completed deploy."""


@dataclass(frozen=True, slots=True)
class DeployedStack:
    """A deployed stack's name, region and Outputs (by OutputKey)."""

    name: str
    region: str
    status: str
    outputs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def output(self, key: str) -> str:
        """One Output's value.

        Raises:
            ConfigError: the stack has no such Output (deployed from an older template?).
        """
        try:
            return self.outputs[key]
        except KeyError:
            raise ConfigError(
                f"stack {self.name!r} has no Output {key!r}: redeploy it from this template.yaml"
            ) from None


def describe_deployed_stack(cloudformation: Any, name: str) -> DeployedStack:
    """Resolve `name` to its Outputs.

    Raises:
        ConfigError: no such stack in the client's region, a stack mid-deploy or failed, or one
            missing an Output every command needs; the message says what to do.
    """
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ValidationError":
            region = cloudformation.meta.region_name
            raise ConfigError(
                f"no stack {name!r} in {region}: check the name (`sam list stack-outputs`) and "
                "the region (AWS_DEFAULT_REGION, or the profile's region)"
            ) from exc
        raise
    stack = stacks[0]
    deployed = DeployedStack(
        name=stack["StackName"],
        region=cloudformation.meta.region_name,
        status=stack["StackStatus"],
        outputs=MappingProxyType(
            {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", ())}
        ),
    )
    if deployed.status not in _USABLE_STATUSES:
        raise ConfigError(
            f"stack {name!r} is {deployed.status}: wait for the deploy to finish, or fix it"
        )
    missing = [key for key in REQUIRED_OUTPUTS if key not in deployed.outputs]
    if missing:
        raise ConfigError(
            f"stack {name!r} lacks the Outputs {missing}: redeploy it from this template.yaml"
        )
    return deployed
