"""template.yaml's model parameters: ModelUri/LabelsUri/ModelSha256 reach the classify function,
and an S3 model or labels file is readable by it: exactly that object, and only when on S3."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.classify.model_spec import PRESETS, Preprocessing, spec_from_settings
from pipeline.config import Settings
from pipeline.local.intrinsics import Resolver
from pipeline.local.template import translate_template

MODEL_VARIABLES = (
    "LAMBDAFLOW_MODEL",
    "LAMBDAFLOW_LABELS",
    "LAMBDAFLOW_MODEL_SHA256",
    "LAMBDAFLOW_CROP_FRACTION",
    "LAMBDAFLOW_RESIZE_FILTER",
    "LAMBDAFLOW_INPUT_MEAN",
    "LAMBDAFLOW_INPUT_STD",
)
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}


def _resolved_classify(parameters: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The classify function's environment and its role's statements, as deployed."""
    template = translate_template(parameters=parameters)
    defaults = {k: v.get("Default", "") for k, v in template["Parameters"].items()}
    resolver = Resolver({**PSEUDO, **defaults, **parameters}, template.get("Conditions", {}))
    resources = template["Resources"]
    env = resources["ClassifyFunction"]["Properties"]["Environment"]["Variables"]
    model_env = {k: resolver.resolve(env[k]) for k in MODEL_VARIABLES}
    statements = []
    for policy in resources["ClassifyFunctionRole"]["Properties"]["Policies"]:
        if "Fn::If" not in policy:
            continue
        condition, chosen, _ = policy["Fn::If"]
        if not resolver.condition(condition) or "PolicyDocument" not in chosen:
            continue
        for statement in chosen["PolicyDocument"]["Statement"]:
            if statement.get("Sid") in {"ReadModel", "ReadLabels"}:
                statements.append(resolver.resolve(statement))
    return model_env, statements


def test_a_preset_needs_no_s3_read_and_its_empty_preprocessing_means_the_presets():
    env, statements = _resolved_classify({})
    assert env == dict.fromkeys(MODEL_VARIABLES, "") | {"LAMBDAFLOW_MODEL": "efficientnet-lite0"}
    assert statements == []
    settings = Settings.from_env(env)
    assert spec_from_settings(settings).preprocessing == PRESETS["efficientnet-lite0"].preprocessing


def test_a_user_models_preprocessing_parameters_reach_its_spec():
    parameters = {
        "ModelCropFraction": "1.0",
        "ModelResizeFilter": "bicubic",
        "ModelInputMean": "123.7,116.3,103.5",
        "ModelInputStd": "58.4",
    }
    env, _ = _resolved_classify(parameters)
    preprocessing = spec_from_settings(Settings.from_env(env)).preprocessing
    assert preprocessing == Preprocessing(1.0, "bicubic", (123.7, 116.3, 103.5), (58.4,))


@pytest.mark.parametrize("labels", ["", "s3://labels-bucket/my/labels.txt"])
def test_an_s3_model_and_labels_are_fetched_with_a_read_of_exactly_those_objects(labels):
    parameters = {
        "ModelUri": "s3://models-bucket/classifiers/mine.tflite",
        "LabelsUri": labels,
        "ModelSha256": "a" * 64,
    }
    env, statements = _resolved_classify(parameters)
    assert env == dict.fromkeys(MODEL_VARIABLES, "") | {
        "LAMBDAFLOW_MODEL": parameters["ModelUri"],
        "LAMBDAFLOW_MODEL_SHA256": "a" * 64,
        "LAMBDAFLOW_LABELS": labels,
    }
    expected = [
        {
            "Sid": "ReadModel",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::models-bucket/classifiers/mine.tflite",
        }
    ]
    if labels:
        expected.append(
            {
                "Sid": "ReadLabels",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::labels-bucket/my/labels.txt",
            }
        )
    assert statements == expected
