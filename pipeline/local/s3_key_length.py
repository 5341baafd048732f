"""S3's key length limit, which moto 5.2.5 lacks: at most 1,024 bytes of UTF-8.

AWS refuses a longer key on every call that creates an object — PutObject, CopyObject,
CreateMultipartUpload and its parts — with `KeyTooLongError`; moto stored it. The pipeline
builds keys from user input (`manifests/<digest>/<name>`, part keys under a run id), so a key
that only the emulator accepted would pass every local test and fail on AWS.
"""

from __future__ import annotations

import functools
from typing import Any

from pipeline.local.patches import patch_once
from pipeline.s3_uri import S3_MAX_KEY_BYTES


def install_key_length_rule() -> None:
    """Hook moto's object PUT and POST handlers (every call that creates an object)."""
    from moto.s3.responses import S3Response  # noqa: PLC0415  # moto imports slowly

    patch_once(S3Response, "_key_response_put", _checked(key_at=1), rule=__name__)
    patch_once(S3Response, "_key_response_post", _checked(key_at=4), rule=__name__)


def _checked(*, key_at: int) -> Any:
    """Refuse a long key before the handler (`key_at`: the key name's positional index)."""

    def wrap(handler: Any) -> Any:
        @functools.wraps(handler)
        def checked(response: Any, *args: Any, **kwargs: Any) -> Any:
            key = kwargs["key_name"] if "key_name" in kwargs else args[key_at]
            check_key(key)
            return handler(response, *args, **kwargs)

        return checked

    return wrap


def check_key(key: str) -> None:
    """Raise S3's `KeyTooLongError` for a key over `S3_MAX_KEY_BYTES`."""
    from moto.s3.exceptions import S3ClientError  # noqa: PLC0415

    if len(key.encode("utf-8", "surrogatepass")) > S3_MAX_KEY_BYTES:
        raise S3ClientError("KeyTooLongError", "Your key is too long")
