"""Lambda functions of the local runtime for tests: a test handler behind a function's name."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from pipeline.local.functions import REGISTRY, LocalFunction, install_invoke_dispatch

FAKES = "tests.integration.lambda_fakes"


def fake_function(
    handler: str,
    *,
    name: str = "fake",
    logical_id: str = "Fake",
    env: Mapping[str, str] | None = None,
    **limits: int,
) -> LocalFunction:
    """A function named `name` running `handler`: one of `FAKES`, or a dotted path.

    `limits` are the function's own (`timeout_s`, `memory_mb`).
    """
    return LocalFunction(
        logical_id=logical_id,
        name=name,
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        handler=handler if "." in handler else f"{FAKES}.{handler}",
        env=dict(env or {}),
        **limits,
    )


@contextmanager
def registered(function: LocalFunction) -> Iterator[LocalFunction]:
    """`function`, invokable through the emulator's Lambda API (Step Functions tasks) meanwhile."""
    install_invoke_dispatch()
    REGISTRY.register(function)
    try:
        yield function
    finally:
        REGISTRY.unregister(function)
