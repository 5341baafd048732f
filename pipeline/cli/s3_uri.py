"""`s3://BUCKET/KEY` arguments, checked alike by every command that takes one.

A URI without a bucket or a key is a usage error (exit 2) said in the command's words, before
any stack is found or started; handed to the SDK, it came back as botocore's parameter
validation, with its regular expressions, as if AWS had refused the work.
"""

from __future__ import annotations

import typer

from pipeline.s3_uri import S3_SCHEME, split_s3_uri


def s3_bucket_key(text: str) -> tuple[str, str]:
    """The bucket and key of `text`, an ``s3://`` URI.

    Raises:
        typer.BadParameter: the URI has no bucket or no key.
    """
    bucket, key = split_s3_uri(text)
    if not bucket or not key:
        raise typer.BadParameter(f"{text!r} is not s3://BUCKET/KEY")
    return bucket, key


def check_s3_uri(text: str) -> None:
    """Refuse `text` when it is an ``s3://`` URI without a bucket or a key (a path passes).

    Raises:
        typer.BadParameter: see `s3_bucket_key`.
    """
    if text.startswith(S3_SCHEME):
        s3_bucket_key(text)
