"""The data path's one retry policy: adaptive, bounded, and used by the image fetch client."""

from __future__ import annotations

from pipeline.aws.retries import DATA_PATH_MAX_ATTEMPTS, data_path_config
from pipeline.classify.worker import fetch_client_config
from pipeline.config import Settings


def test_data_path_clients_retry_adaptively_within_a_bounded_budget():
    config = data_path_config()
    assert config.retries == {"mode": "adaptive", "max_attempts": DATA_PATH_MAX_ATTEMPTS}
    assert 3 <= DATA_PATH_MAX_ATTEMPTS <= 10


def test_the_image_fetch_client_uses_the_same_policy_with_a_pool_as_wide_as_its_threads():
    config = fetch_client_config(Settings.from_env({}, fetch_concurrency=32))
    assert config.retries == data_path_config().retries
    assert config.max_pool_connections == 36
