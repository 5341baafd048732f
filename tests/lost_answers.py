"""Lose the answer to a request that succeeded, so botocore sends the very same request again.

What a reset connection or a read timeout does to a call the server has already applied: a
`needs-retry` handler asks botocore for one more try after the first successful response. The
retry is botocore's own (same parameters, same idempotency token), not the test's.
"""

from __future__ import annotations

from typing import Any


def lose_first_answer(client: Any, operation: str) -> list[int]:
    """Make `client` resend its first successful `operation` once; returns the attempts made."""
    attempts_made: list[int] = []

    def lose(attempts: int, response: Any, **_: Any) -> float | None:
        attempts_made.append(attempts)
        succeeded = response is not None and response[0].status_code == 200
        return 0 if attempts == 1 and succeeded else None

    service = client.meta.service_model.service_name
    client.meta.events.register_first(f"needs-retry.{service}.{operation}", lose)
    return attempts_made
