"""Translate botocore `ClientError`s raised while writing into the pipeline's error hierarchy.

Only adapters catch `ClientError`. The results writers, the failure-queue sender and
the runs ledger all write; they share this one mapping, by error code and never by message text,
so "throttled, try again later" and "broken, look at it" are told apart the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import ClientError

from pipeline.failures import ResultWriteError, Stage, ThrottledError

S3_SERVICE_ERROR_CODES = frozenset({"InternalError", "ServiceUnavailable", "RequestTimeout"})
"""S3's codes for its own trouble (botocore retries them as transient), besides a bare 5xx:
what the SDK's retries did not get past is still S3's, not the object's or the manifest's."""

THROTTLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "ServiceUnavailable",
        "503",
    }
)
"""Codes that mean "AWS is shedding load": retryable, unlike every other write error."""
CONDITION_FAILED = "ConditionalCheckFailedException"


def error_code(exc: ClientError) -> str:
    """The short AWS error code of a `ClientError` (``"SlowDown"``, ``"NoSuchKey"`` …)."""
    return str(exc.response.get("Error", {}).get("Code", "") or "Unknown")


def write_error_from(exc: ClientError, what: str) -> ResultWriteError | ThrottledError:
    """Map a failed write of `what` to `ThrottledError` (retryable) or `ResultWriteError`.

    The caller raises the result ``from exc`` so the SDK's traceback stays attached.
    """
    code = error_code(exc)
    if code in THROTTLE_CODES:
        return ThrottledError(
            f"{what}: AWS still throttled ({code}) after the SDK's retries; replay later",
            stage=Stage.WRITE,
            error=code,
        )
    return ResultWriteError(
        f"{what}: {code}: {exc}; check the bucket/queue/table name and the IAM policy",
        error=code,
    )


def is_applied(write: Callable[[], object], what: str) -> bool:
    """Make a conditional DynamoDB write: True when applied, False when its condition refused it.

    Any other error is mapped by `write_error_from` and raised from the SDK's.
    """
    try:
        write()
    except ClientError as exc:
        if error_code(exc) != CONDITION_FAILED:
            raise write_error_from(exc, what) from exc
        return False
    return True
