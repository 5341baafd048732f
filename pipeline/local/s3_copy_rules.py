"""S3's copy rules that moto 5.2.5 lacks: the source's ETag condition, the 5 GB CopyObject limit.

`lambdaflow run s3://…` copies a manifest into the input bucket under a key that names the
source object's ETag, on condition that the source still has it (`CopySourceIfMatch`): AWS
answers 412 otherwise, moto copied whatever was there. And one CopyObject copies at most 5 GB
on AWS (`InvalidRequest` past it; a multipart copy does the rest), which moto never refused, so
a single-call copy of a tens-of-GB manifest passed here and failed there. Both are checked here,
for CopyObject and UploadPartCopy alike, before moto copies; `COPY_MAX_BYTES` is a module value
so a test can lower it instead of writing 5 GB.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from pipeline.local.patches import patch_once

COPY_MAX_BYTES = 5 * 1024**3
"""The most one CopyObject copies on AWS."""


def install_copy_rules() -> None:
    """Hook moto's CopyObject and UploadPartCopy handlers with AWS's checks."""
    from moto.s3.responses import S3Response  # noqa: PLC0415  # moto imports slowly

    patch_once(S3Response, "copy_object", _checked(whole=True), rule=__name__)
    patch_once(S3Response, "upload_part_copy", _checked(whole=False), rule=__name__)


def _checked(*, whole: bool) -> Any:
    def wrap(handler: Any) -> Any:
        @functools.wraps(handler)
        def checked(response: Any) -> Any:
            _check(response, whole=whole)
            return handler(response)

        return checked

    return wrap


def _check(response: Any, *, whole: bool) -> None:
    """Refuse the copy as AWS does: a source whose ETag differs, a whole copy over 5 GB."""
    from moto.s3.exceptions import PreconditionFailed, S3ClientError  # noqa: PLC0415

    source = _source(response)
    if source is None:  # moto answers a missing source itself
        return
    wanted = response.headers.get("x-amz-copy-source-if-match")
    if wanted is not None and wanted.strip('"') != source.etag.strip('"'):
        raise PreconditionFailed("x-amz-copy-source-If-Match")
    if whole and source.size > COPY_MAX_BYTES:
        raise S3ClientError(
            "InvalidRequest",
            "The specified copy source is larger than the maximum allowable size for a copy "
            f"source: {COPY_MAX_BYTES}",
        )


def _source(response: Any) -> Any:
    """The object `x-amz-copy-source` names (moto's own parse of the header), or None."""
    header = response.headers.get("x-amz-copy-source")
    if isinstance(header, bytes):
        header = header.decode()
    if not header:
        return None
    parsed = urlparse(header)
    bucket, _, key = unquote(parsed.path).lstrip("/").partition("/")
    version = parse_qs(parsed.query).get("versionId", [None])[0]
    from moto.s3.exceptions import S3ClientError  # noqa: PLC0415

    try:
        return response.backend.get_object(bucket, key, version_id=version)
    except S3ClientError:  # no such bucket: moto's handler says so itself
        return None
