"""Fixtures shared by every layer. The emulator starts only when a test asks for it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest

from pipeline.local.emulator import Emulator, start_emulator


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """A moto server on 127.0.0.1 for the whole session, with the SDK pointed at it."""
    emu = start_emulator()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in emu.env.items():
            mp.setenv(name, value)
        yield emu
    emu.stop()


@pytest.fixture
def s3(emulator: Emulator):
    """A boto3 S3 client that crosses the wire to the emulator."""
    return boto3.client("s3", endpoint_url=emulator.endpoint_url)


@pytest.fixture
def bucket(s3) -> str:
    """A fresh uuid-named bucket, so tests never see each other's objects."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name
