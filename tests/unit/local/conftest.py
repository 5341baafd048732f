"""moto's own SQS backend, in process, and a fresh queue on it: what the emulator's hooks act on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from moto.sqs.models import SQSBackend, sqs_backends

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture
def sqs_backend() -> SQSBackend:
    return sqs_backends[ACCOUNT][REGION]


@pytest.fixture
def queue_name(sqs_backend: SQSBackend) -> Iterator[str]:
    name = f"hooks-{uuid.uuid4().hex[:8]}"
    sqs_backend.create_queue(name)
    yield name
    sqs_backend.delete_queue(name)
