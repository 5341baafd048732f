"""`--stack NAME` resolution against CloudFormation (moto's, over HTTP)."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from pipeline.aws.stack_outputs import REQUIRED_OUTPUTS, describe_deployed_stack
from pipeline.failures import ConfigError

pytestmark = pytest.mark.integration


def _template(outputs: dict[str, str]) -> str:
    return json.dumps(
        {
            "Resources": {"Results": {"Type": "AWS::S3::Bucket"}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
    )


@pytest.fixture
def cloudformation(emulator):
    return boto3.client("cloudformation", endpoint_url=emulator.endpoint_url)


def test_a_deployed_stack_resolves_to_its_outputs(cloudformation):
    name = f"lf-{uuid.uuid4().hex[:8]}"
    outputs = {key: f"{key.lower()}-value" for key in REQUIRED_OUTPUTS}
    cloudformation.create_stack(StackName=name, TemplateBody=_template(outputs))
    stack = describe_deployed_stack(cloudformation, name)
    assert (stack.name, stack.status, stack.region) == (name, "CREATE_COMPLETE", "us-east-1")
    assert dict(stack.outputs) == outputs
    assert stack.output("ResultsBucketName") == "resultsbucketname-value"
    with pytest.raises(ConfigError, match="no Output 'Nope'"):
        stack.output("Nope")


def test_an_unknown_stack_says_how_to_find_it(cloudformation):
    with pytest.raises(ConfigError, match="no stack 'lf-missing' in us-east-1"):
        describe_deployed_stack(cloudformation, "lf-missing")


def test_a_stack_from_an_older_template_names_the_missing_outputs(cloudformation):
    name = f"lf-{uuid.uuid4().hex[:8]}"
    cloudformation.create_stack(StackName=name, TemplateBody=_template({"InputBucketName": "in"}))
    with pytest.raises(ConfigError, match="ResultsBucketName"):
        describe_deployed_stack(cloudformation, name)
