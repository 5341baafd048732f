"""Fixtures shared by every layer. The emulator starts only when a test asks for it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import pytest

from pipeline.ledger.items import table_definition
from pipeline.local.emulator import Emulator, start_emulator

if TYPE_CHECKING:
    from pipeline.local.stack import LocalStack


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


LOCAL_STACK_PARAMETERS = {
    # Short timeouts so a crashed chunk comes back in seconds (visibility = 6 x timeout).
    "ClassifyTimeoutSeconds": "10",
    "WorkVisibilityTimeoutSeconds": "60",
    "StallTimeoutSeconds": "330",  # > visibility x maxReceiveCount (60 x 5), as Settings requires
    "ChunkItems": "4",  # several chunks from a dozen lines
}


@pytest.fixture(scope="session")
def local_stack(emulator: Emulator) -> Iterator[LocalStack]:
    """The embedded stack built from template.yaml, shared by the integration and e2e tests.

    Classify runs through `tests.e2e.faulty_classify`, a wrapper that delegates to the real
    handler and crashes only on chunks a test marks, so faults are injected without touching
    production code; Split through `tests.e2e.budgeted_split`, which leaves marked manifests no
    time, so they are split one chunk a pass. Failed batches come back after 1 s instead of
    the visibility timeout.
    Imported here: samtranslator is slow to import, and unit-only runs never need it.
    """
    from pipeline.local.poller import PollerOptions  # noqa: PLC0415
    from pipeline.local.stack import LocalStack, StackOptions  # noqa: PLC0415

    options = StackOptions(
        name="lf-test",
        parameters=LOCAL_STACK_PARAMETERS,
        workers=2,
        handler_overrides={
            "ClassifyFunction": "tests.e2e.faulty_classify.handler",
            "SplitFunction": "tests.e2e.budgeted_split.handler",
        },
        poller=PollerOptions(redelivery_delay_s=1),
    )
    with pytest.MonkeyPatch.context() as mp:
        stack = LocalStack.start(options, emulator=emulator)
        for name, value in stack.function_env.items():
            mp.setenv(name, value)  # restored at the end: in-process handlers import with these
        yield stack
        stack.stop()


@pytest.fixture
def sqs(emulator: Emulator):
    """A boto3 SQS client that crosses the wire to the emulator."""
    return boto3.client("sqs", endpoint_url=emulator.endpoint_url)


@pytest.fixture
def dynamodb(emulator: Emulator):
    """A boto3 DynamoDB client that crosses the wire to the emulator."""
    return boto3.client("dynamodb", endpoint_url=emulator.endpoint_url)


@pytest.fixture
def table(dynamodb) -> str:
    """A fresh runs table with the ledger's schema (the one template.yaml declares)."""
    name = f"runs-{uuid.uuid4().hex[:10]}"
    dynamodb.create_table(**table_definition(name))
    return name


@pytest.fixture
def visible_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times moto read any SQS message's visibility (a pass over a queue reads each).

    `visible_reads[0]` counts; a test sets it to 0 before what it measures.
    """
    from moto.sqs.models import Message  # noqa: PLC0415  # moto imports slowly

    reads = [0]
    original = Message.visible

    def counted(self: Message) -> bool:
        reads[0] += 1
        return original.fget(self)  # type: ignore[misc]

    monkeypatch.setattr(Message, "visible", property(counted))
    return reads
