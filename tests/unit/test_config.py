import pytest

from pipeline.config import Settings
from pipeline.failures import ConfigError


def test_defaults_need_no_environment():
    settings = Settings.from_env({})
    assert settings.top_k == 5
    assert settings.source_buckets == frozenset()
    assert settings.model == "efficientnet-lite0"
    assert (settings.labels, settings.model_sha256, settings.crop_fraction) == ("", "", None)


def test_environment_is_parsed_and_overrides_win():
    env = {
        "LAMBDAFLOW_TOP_K": "3",
        "LAMBDAFLOW_SOURCE_BUCKETS": "a, b,,c",
        "LAMBDAFLOW_TRACING": "true",
        "LAMBDAFLOW_MODEL": "/tmp/m.tflite",
        "LAMBDAFLOW_LABELS": "s3://b/labels.txt",
        "LAMBDAFLOW_CROP_FRACTION": "1",
        "LAMBDAFLOW_RESIZE_FILTER": "Bicubic",
        "LAMBDAFLOW_INPUT_MEAN": "123.7,116.3,103.5",
        "LAMBDAFLOW_INPUT_STD": "58",
    }
    settings = Settings.from_env(env, top_k=7)
    assert settings.top_k == 7
    assert settings.source_buckets == {"a", "b", "c"}
    assert settings.is_tracing_enabled is True
    assert (settings.model, settings.labels) == ("/tmp/m.tflite", "s3://b/labels.txt")
    assert (settings.crop_fraction, settings.resize_filter) == (1.0, "bicubic")
    assert (settings.input_mean, settings.input_std) == ((123.7, 116.3, 103.5), (58.0,))


def test_bad_preprocessing_settings_are_reported_together():
    env = {
        "LAMBDAFLOW_CROP_FRACTION": "1.5",
        "LAMBDAFLOW_RESIZE_FILTER": "smooth",
        "LAMBDAFLOW_INPUT_MEAN": "1,2",
        "LAMBDAFLOW_INPUT_STD": "0",
    }
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    message = str(info.value)
    for name in env:
        assert name in message
    assert len(message.splitlines()) == 1


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


def test_a_chunk_size_that_leaves_no_room_under_sqs_s_limit_is_refused():
    assert Settings.from_env({"LAMBDAFLOW_CHUNK_MAX_BYTES": "983040"}).chunk_max_bytes == 983040
    with pytest.raises(ConfigError, match=r"LAMBDAFLOW_CHUNK_MAX_BYTES.*at most 983040"):
        Settings.from_env({"LAMBDAFLOW_CHUNK_MAX_BYTES": str(1024 * 1024)})


def test_more_split_passes_an_execution_than_its_history_holds_are_refused():
    """At 9 events a pass and its pause, 2,000 passes leave room under the 25,000 quota."""
    name = "LAMBDAFLOW_SPLIT_PASSES_PER_EXECUTION"
    assert Settings.from_env({}).split_passes_per_execution == 1000
    assert Settings.from_env({name: "2000"}).split_passes_per_execution == 2000
    with pytest.raises(ConfigError, match=rf"{name}.*at most 2000 .*25000 history events"):
        Settings.from_env({name: "2001"})
