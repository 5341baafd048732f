"""Read one image object from S3 (or a local file) into memory, within a byte limit.

The S3 adapter of the image path, and the only place in the project that catches botocore's
`ClientError` for image reads: each error code becomes an `ImageFetchError` with that code, or a
retryable `ThrottledError` when S3 still says slow down after the SDK's own retries (use the
``standard`` or ``adaptive`` retry mode on the injected client). Knows nothing of decoding.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from urllib3.exceptions import ProtocolError

from pipeline.aws.errors import S3_SERVICE_ERROR_CODES
from pipeline.failures import (
    ImageFetchError,
    ImageNetworkError,
    ImageServiceError,
    Stage,
    ThrottledError,
)

S3Client = Any
"""A boto3 S3 client (typed as Any: no SDK stubs are locked; `types-boto3-s3` would fit here)."""

logger = logging.getLogger(__name__)

OBJECT_TOO_LARGE = "ObjectTooLarge"

THROTTLING_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "503"}
)
"""S3 codes that mean "later will work": the SDK has already backed off and retried them."""

_NOT_FOUND_CODES = {"404": "NoSuchKey", "NotFound": "NoSuchKey", "403": "AccessDenied"}
"""HEAD-style responses carry only the HTTP status as the code: name it like GET would."""

NETWORK_ERRORS = (
    ReadTimeoutError,
    ConnectionClosedError,
    ResponseStreamingError,
    IncompleteReadError,
    ProtocolError,
    ConnectionResetError,
)
"""Transport failures of a GET under way (raised by the call or while streaming the body): the
network broke, not the object. They are fetch failures that a replay can retry, never
`internal`. An endpoint that cannot be reached at all is not one of them: every image would
fail the same way, so it stays an error of the chunk (redelivered), not of its lines
(`CHUNK_ERRORS`)."""
CHUNK_ERRORS = (EndpointConnectionError, ConnectTimeoutError, NoCredentialsError)
"""S3 cannot be reached, or asked, at all: the chunk fails and comes back, its lines untouched
(the worker lets these through instead of writing one failure record a line)."""


def fetch_image(
    client: S3Client,
    bucket: str,
    key: str,
    *,
    max_bytes: int,
    version_id: str | None = None,
) -> bytes:
    """Return the object's bytes, refusing one over `max_bytes` before reading its body.

    The size is checked on ``ContentLength`` from the GET's headers, so a 5 GB object costs one
    request and no transfer; the read is bounded too, in case the header lies.

    Raises:
        ImageFetchError: ``error`` is S3's code (NoSuchKey, AccessDenied, NoSuchBucket,
            NoSuchVersion, InvalidObjectState …) or ObjectTooLarge.
        ImageNetworkError: stage fetch, retryable: a read timeout or a reset connection.
        ThrottledError: stage fetch, when S3 still throttles after the SDK's retries.
    """
    params: dict[str, str] = {"Bucket": bucket, "Key": key}
    if version_id:
        params["VersionId"] = version_id
    try:
        response = client.get_object(**params)
        body = response["Body"]
        size = int(response.get("ContentLength", 0))
        if size > max_bytes:
            body.close()
            raise too_large(bucket, key, size, max_bytes)
        with body:
            data = body.read(max_bytes + 1)
    except ClientError as exc:
        raise map_client_error(exc, bucket=bucket, key=key) from exc
    except NETWORK_ERRORS as exc:
        raise network_error(exc, bucket=bucket, key=key) from exc
    if len(data) > max_bytes:
        raise too_large(bucket, key, len(data), max_bytes)
    return data


def map_client_error(
    exc: ClientError, *, bucket: str, key: str
) -> ImageFetchError | ImageServiceError | ThrottledError:
    """Translate one botocore error into the pipeline's hierarchy, by code (never by text)."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = str(error.get("Code") or status or "Unknown")
    where = f"s3://{bucket}/{key}"
    if code in THROTTLING_CODES or status == 503:  # noqa: PLR2004  # HTTP 503 Service Unavailable
        logger.warning("S3 still throttling after retries: %s (%s)", where, code)
        return ThrottledError(
            f"S3 throttled reading {where} ({code}): replay later", stage=Stage.FETCH, error=code
        )
    if code in S3_SERVICE_ERROR_CODES or (status or 0) >= 500:  # noqa: PLR2004  # HTTP 5xx
        message = error.get("Message") or code
        return ImageServiceError(f"S3 failed reading {where}: {code}: {message}", error=code)
    code = _NOT_FOUND_CODES.get(code, code)
    message = error.get("Message") or code
    return ImageFetchError(f"cannot read {where}: {code}: {message}", error=code)


def network_error(exc: BaseException, *, bucket: str, key: str) -> ImageNetworkError:
    """A transport failure reading s3://bucket/key, named by the exception's type."""
    name = type(exc).__name__
    logger.warning("network error reading s3://%s/%s: %s", bucket, key, name)
    return ImageNetworkError(
        f"reading s3://{bucket}/{key} broke off ({name}: {exc}): replay later", error=name
    )


def too_large(bucket: str, key: str, size: int, max_bytes: int) -> ImageFetchError:
    """The ObjectTooLarge fetch error for s3://bucket/key of `size` bytes."""
    return ImageFetchError(
        f"s3://{bucket}/{key} is {size} bytes, over the {max_bytes}-byte limit "
        "(raise LAMBDAFLOW_MAX_IMAGE_BYTES to accept it)",
        error=OBJECT_TOO_LARGE,
    )


def read_local_image(path: Path, *, max_bytes: int) -> bytes:
    """Read a local image file with the same limit and error codes as an S3 object.

    Raises:
        ImageFetchError: ``error`` NoSuchFile, NotAFile, AccessDenied or ObjectTooLarge.
    """
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ImageFetchError(f"{path} is not a file", error="NotAFile")
        if size > max_bytes:
            raise ImageFetchError(
                f"{path} is {size} bytes, over the {max_bytes}-byte limit "
                "(raise LAMBDAFLOW_MAX_IMAGE_BYTES to accept it)",
                error=OBJECT_TOO_LARGE,
            )
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ImageFetchError(f"{path}: no such file", error="NoSuchFile") from exc
    except PermissionError as exc:
        raise ImageFetchError(f"{path}: permission denied", error="AccessDenied") from exc
