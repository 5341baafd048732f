from dataclasses import fields

import pytest

from pipeline.failures import (
    FailureRecord,
    ImageDecodeError,
    ImageFetchError,
    ManifestLineError,
    Stage,
    ThrottledError,
)


@pytest.mark.parametrize(
    ("exc", "stage", "error", "retryable"),
    [
        (ManifestLineError("bad csv", error="BadQuoting"), Stage.PARSE, "BadQuoting", False),
        (ImageFetchError("gone", error="NoSuchKey"), Stage.FETCH, "NoSuchKey", False),
        (ImageDecodeError("not an image"), Stage.DECODE, "DecodeFailed", False),
        (
            ThrottledError("slow", stage=Stage.WRITE, error="SlowDown"),
            Stage.WRITE,
            "SlowDown",
            True,
        ),
    ],
)
def test_from_exception_maps_by_type(exc, stage, error, retryable):
    record = FailureRecord.from_exception(exc, run="r1", line=7, bucket="b", key="k")
    assert (record.stage, record.error, record.retryable) == (stage, error, retryable)
    assert record.message == exc.message


def test_unknown_exception_becomes_internal_and_is_logged(caplog):
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError as exc:
        record = FailureRecord.from_exception(exc, run="r", line=3)
    assert record.error == "internal"
    assert record.stage == Stage.CLASSIFY
    assert "ZeroDivisionError" in record.message
    assert record.retryable is True
    assert "Traceback" in caplog.text


def test_record_round_trips_through_its_json_shape():
    record = FailureRecord.from_exception(
        ImageFetchError("gone", error="NoSuchKey"),
        run="r",
        line=9,
        bucket="b",
        key="a b+c",
        attempts=2,
    )
    data = record.to_dict()
    assert next(iter(data)) == "v"
    assert data["stage"] == "fetch"
    assert FailureRecord.from_dict(data) == record


def test_a_version_id_is_kept_only_when_the_manifest_named_one():
    unversioned = FailureRecord.from_exception(
        ImageFetchError("gone", error="NoSuchKey"), run="r", line=9, bucket="b", key="k"
    )
    assert "version_id" not in unversioned.to_dict()
    versioned = FailureRecord.from_exception(
        ImageFetchError("gone", error="NoSuchKey"),
        run="r",
        line=9,
        bucket="b",
        key="k",
        version_id="3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
    )
    data = versioned.to_dict()
    assert list(data) == ["v", *(f.name for f in fields(FailureRecord) if f.name != "v")]
    assert data["version_id"] == "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"
    assert FailureRecord.from_dict(data) == versioned
