from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.failures import ConfigError


def test_defaults_need_no_environment():
    settings = Settings.from_env({})
    assert settings.top_k == 5
    assert settings.source_buckets == frozenset()
    assert settings.model_path.name.endswith(".tflite")


def test_environment_is_parsed_and_overrides_win():
    env = {
        "LAMBDAFLOW_TOP_K": "3",
        "LAMBDAFLOW_SOURCE_BUCKETS": "a, b,,c",
        "LAMBDAFLOW_TRACING": "true",
        "LAMBDAFLOW_MODEL_PATH": "/tmp/m.tflite",
    }
    settings = Settings.from_env(env, top_k=7)
    assert settings.top_k == 7
    assert settings.source_buckets == {"a", "b", "c"}
    assert settings.is_tracing_enabled is True
    assert settings.model_path == Path("/tmp/m.tflite")


def test_every_problem_is_reported_at_once():
    env = {"LAMBDAFLOW_TOP_K": "0", "LAMBDAFLOW_CHUNK_ITEMS": "many", "LAMBDAFLOW_TRACING": "maybe"}
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    message = str(info.value)
    assert "LAMBDAFLOW_TOP_K" in message
    assert "LAMBDAFLOW_CHUNK_ITEMS" in message
    assert "LAMBDAFLOW_TRACING" in message


def test_require_names_missing_variables():
    settings = Settings.from_env({"LAMBDAFLOW_INPUT_BUCKET": "in"})
    settings.require("input_bucket")
    with pytest.raises(ConfigError, match="LAMBDAFLOW_RESULTS_BUCKET"):
        settings.require("input_bucket", "results_bucket")


def test_a_stall_timeout_shorter_than_a_chunk_s_retries_is_refused():
    # a crashing chunk comes back every visibility timeout, maxReceiveCount times
    env = {
        "LAMBDAFLOW_STALL_TIMEOUT_S": "1800",
        "LAMBDAFLOW_WORK_VISIBILITY_TIMEOUT_S": "1800",
        "LAMBDAFLOW_WORK_MAX_RECEIVE_COUNT": "5",
    }
    with pytest.raises(ConfigError, match="must exceed the WorkQueue's visibility timeout"):
        Settings.from_env(env)
    settings = Settings.from_env({**env, "LAMBDAFLOW_STALL_TIMEOUT_S": "9001"})
    assert settings.stall_timeout_s == 9001
