"""botocore error codes → the pipeline's hierarchy (pure mapping; the S3 calls are in
tests/integration/test_fetch_s3.py)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from urllib3.exceptions import ProtocolError

from pipeline.classify.fetch import fetch_image, map_client_error
from pipeline.failures import (
    FailureRecord,
    ImageFetchError,
    ImageNetworkError,
    Stage,
    ThrottledError,
)


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


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("InternalError", 500),
        ("502", 502),
        ("BadGateway", 502),
        ("504", 504),
        ("RequestTimeout", 400),
    ],
)
def test_s3_server_errors_past_the_sdk_retries_are_retryable_fetch_records(code, status):
    error = map_client_error(client_error(code, status), bucket="b", key="k")
    record = FailureRecord.from_exception(error, run="r", line=1)
    assert (record.stage, record.error, record.retryable) == (Stage.FETCH, code, True)


class _Body:
    def __init__(self, exc: BaseException) -> None:
        self._exc = exc

    def read(self, *_):
        raise self._exc

    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *_): ...


class _Client:
    def __init__(self, *, on_get: BaseException | None = None, on_read=None) -> None:
        self._on_get, self._on_read = on_get, on_read

    def get_object(self, **_):
        if self._on_get is not None:
            raise self._on_get
        return {"Body": _Body(self._on_read), "ContentLength": 10}


@pytest.mark.parametrize(
    ("client", "code"),
    [
        (_Client(on_get=ReadTimeoutError(endpoint_url="http://s3")), "ReadTimeoutError"),
        (_Client(on_get=ConnectionClosedError(endpoint_url="http://s3")), "ConnectionClosedError"),
        (_Client(on_read=ConnectionResetError("reset by peer")), "ConnectionResetError"),
        (_Client(on_read=ProtocolError("Connection broken")), "ProtocolError"),
    ],
)
def test_network_errors_on_an_image_get_are_retryable_fetch_failures(client, code):
    with pytest.raises(ImageNetworkError) as info:
        fetch_image(client, "b", "k.jpg", max_bytes=100)
    record = FailureRecord.from_exception(info.value, run="r", line=1)
    assert (record.stage, record.error, record.retryable) == (Stage.FETCH, code, True)
