"""Image fetch against real S3 semantics: the moto server over HTTP on 127.0.0.1."""

from __future__ import annotations

import pytest

from pipeline.classify.fetch import fetch_image
from pipeline.classify.images import ImageDecoder
from pipeline.classify.model import get_classifier
from pipeline.config import Settings
from pipeline.failures import FailureRecord, ImageDecodeError, ImageFetchError, Stage
from tests import photos

pytestmark = pytest.mark.integration

MAX_BYTES = 1024 * 1024


def test_fetch_returns_the_object_bytes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="photos/coffee 1.jpg", Body=photos.photo_bytes("coffee"))
    data = fetch_image(s3, bucket, "photos/coffee 1.jpg", max_bytes=MAX_BYTES)
    assert data == photos.photo_bytes("coffee")


def test_fetched_photo_classifies_as_espresso(s3, bucket):
    s3.put_object(Bucket=bucket, Key="coffee.jpg", Body=photos.photo_bytes("coffee"))
    data = fetch_image(s3, bucket, "coffee.jpg", max_bytes=MAX_BYTES)
    labels = get_classifier(Settings.from_env({})).classify([ImageDecoder().decode(data)])[0]
    assert labels[0].index == photos.ESPRESSO


def test_fetch_reads_the_requested_version(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket=bucket, Key="k.jpg", Body=photos.photo_bytes("chelsea"))
    s3.put_object(Bucket=bucket, Key="k.jpg", Body=photos.photo_bytes("coffee"))
    data = fetch_image(s3, bucket, "k.jpg", max_bytes=MAX_BYTES, version_id=old["VersionId"])
    assert data == photos.photo_bytes("chelsea")
    assert fetch_image(s3, bucket, "k.jpg", max_bytes=MAX_BYTES) == photos.photo_bytes("coffee")


def test_missing_key_is_a_no_such_key_record(s3, bucket):
    with pytest.raises(ImageFetchError) as caught:
        fetch_image(s3, bucket, "missing.jpg", max_bytes=MAX_BYTES)
    record = FailureRecord.from_exception(caught.value, run="r", line=3, bucket=bucket, key="k")
    assert (record.stage, record.error, record.retryable) == (Stage.FETCH, "NoSuchKey", False)
    assert f"s3://{bucket}/missing.jpg" in record.message


def test_missing_bucket_is_a_no_such_bucket_error(s3):
    with pytest.raises(ImageFetchError) as caught:
        fetch_image(s3, "no-such-bucket-lambdaflow", "a.jpg", max_bytes=MAX_BYTES)
    assert caught.value.error == "NoSuchBucket"


def test_missing_version_is_a_fetch_error(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="k.jpg", Body=b"x")
    with pytest.raises(ImageFetchError) as caught:
        fetch_image(s3, bucket, "k.jpg", max_bytes=MAX_BYTES, version_id="nonexistentversion")
    assert caught.value.error == "NoSuchVersion"


def test_object_over_the_byte_limit_is_refused(s3, bucket):
    s3.put_object(Bucket=bucket, Key="big.jpg", Body=photos.photo_bytes("coffee"))
    with pytest.raises(ImageFetchError) as caught:
        fetch_image(s3, bucket, "big.jpg", max_bytes=10_000)
    assert caught.value.error == "ObjectTooLarge"
    assert str(len(photos.photo_bytes("coffee"))) in caught.value.message


def test_empty_and_corrupt_objects_fail_at_decode_not_fetch(s3, bucket):
    s3.put_object(Bucket=bucket, Key="empty.jpg", Body=b"")
    s3.put_object(Bucket=bucket, Key="cut.jpg", Body=photos.photo_bytes("coffee")[:20_000])
    decoder = ImageDecoder()
    codes = []
    for key in ("empty.jpg", "cut.jpg"):
        with pytest.raises(ImageDecodeError) as caught:
            decoder.decode(fetch_image(s3, bucket, key, max_bytes=MAX_BYTES))
        codes.append(caught.value.error)
    assert codes == ["EmptyObject", "TruncatedImage"]
