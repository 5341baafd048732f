"""`lambdaflow classify s3://…` against the moto server over HTTP."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests import photos

pytestmark = pytest.mark.integration


def test_classify_reads_s3_uris_and_reports_missing_keys(s3, bucket):
    s3.put_object(Bucket=bucket, Key="in/chelsea cat.jpg", Body=photos.photo_bytes("chelsea"))
    uris = [f"s3://{bucket}/in/chelsea cat.jpg", f"s3://{bucket}/in/missing.jpg"]
    result = CliRunner().invoke(
        app, ["classify", *uris, str(photos.photo_path("coffee")), "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = orjson.loads(result.stdout)
    assert [row["path"] for row in rows] == [*uris, str(photos.photo_path("coffee"))]
    assert "cat" in rows[0]["labels"][0][0]
    assert (rows[1]["error"], rows[1]["stage"]) == ("NoSuchKey", "fetch")
    assert rows[2]["labels"][0][0] == "espresso"


def test_unreachable_s3_exits_1_with_one_line():
    env = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    result = CliRunner().invoke(app, ["classify", "s3://b/k.jpg"], env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach S3")
