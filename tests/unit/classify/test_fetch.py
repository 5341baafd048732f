"""botocore error codes → the pipeline's hierarchy (pure mapping; the S3 calls are in
tests/integration/test_fetch_s3.py)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from pipeline.classify.fetch import map_client_error
from pipeline.failures import FailureRecord, ImageFetchError, Stage, ThrottledError


def client_error(code: str, status: int) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": f"{code} happened"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetObject")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, "NoSuchKey"),
        ("AccessDenied", 403, "AccessDenied"),
        ("NoSuchBucket", 404, "NoSuchBucket"),
        ("InvalidObjectState", 403, "InvalidObjectState"),
        ("404", 404, "NoSuchKey"),
        ("403", 403, "AccessDenied"),
    ],
)
def test_client_errors_become_fetch_errors_named_by_code(code, status, expected):
    error = map_client_error(client_error(code, status), bucket="b", key="k.jpg")
    assert isinstance(error, ImageFetchError)
    record = FailureRecord.from_exception(error, run="r", line=1)
    assert (record.stage, record.error, record.retryable) == (Stage.FETCH, expected, False)
    assert "s3://b/k.jpg" in record.message


@pytest.mark.parametrize(
    ("code", "status"),
    [("SlowDown", 503), ("Throttling", 400), ("RequestLimitExceeded", 400), ("Busy", 503)],
)
def test_throttling_becomes_a_retryable_fetch_record(code, status):
    error = map_client_error(client_error(code, status), bucket="b", key="k")
    assert isinstance(error, ThrottledError)
    record = FailureRecord.from_exception(error, run="r", line=1)
    assert (record.stage, record.retryable) == (Stage.FETCH, True)
    assert record.error == code
