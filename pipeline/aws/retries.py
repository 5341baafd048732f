"""The one retry policy of the data path: botocore's `adaptive` mode with a bounded budget.

S3 answers 503 SlowDown while a prefix re-partitions and SQS/DynamoDB throttle under bursts:
`adaptive` retries those with exponential backoff *and* a client-side token bucket
that slows the whole client down while the service sheds load, so a burst of image GETs backs
off together instead of hammering. The budget is bounded: what still fails after
`DATA_PATH_MAX_ATTEMPTS` tries becomes a retryable failure record (`ThrottledError`), which
`lambdaflow replay --retryable-only` picks up later. Every data-path client is built with this
config, so the policy changes in one place.
"""

from __future__ import annotations

from typing import Any

from botocore.config import Config

DATA_PATH_MAX_ATTEMPTS = 6
"""Total tries per call (first + 5 retries): ~0.2^6 = 6e-5 residual for a 20 % 503 rate."""


def data_path_config(**options: Any) -> Config:
    """The botocore config for S3/SQS/DynamoDB clients that move chunks, images and results.

    `options` are further `botocore.config.Config` options (pool size, validation).
    """
    return Config(retries={"mode": "adaptive", "max_attempts": DATA_PATH_MAX_ATTEMPTS}, **options)
