"""`s3://bucket/key` URIs: the one place that takes them apart, and how long a key may be.

A leaf with no imports of its own, so that the CLI can check its arguments with it before any
heavy module loads; the manifest reader, Split, a model spec and `lambdaflow run` use the same.
"""

from __future__ import annotations

S3_SCHEME = "s3://"
S3_MAX_KEY_BYTES = 1024
"""The longest object key S3 takes, in UTF-8 bytes (longer: `KeyTooLongError`)."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` → (bucket, key); either is empty when the URI lacks it."""
    bucket, _, key = uri.removeprefix(S3_SCHEME).partition("/")
    return bucket, key
