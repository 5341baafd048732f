"""Manifests read from S3 over HTTP (moto server on 127.0.0.1) with an injected client."""

from __future__ import annotations

import gzip
import json

import orjson
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.failures import ManifestReadError
from pipeline.manifest.reader import ManifestFormat, ManifestReader, ManifestRecord, iter_manifest

pytestmark = pytest.mark.integration

LINES = 30_000
CSV = b"".join(b"images,photos/%06d%%20x.jpg\n" % i for i in range(LINES))


def test_gzip_csv_from_s3_streams_every_record(s3, bucket):
    # GIVEN a multi-member gzip CSV manifest in S3 (larger than one read buffer)
    blob = gzip.compress(CSV[: len(CSV) // 3]) + gzip.compress(CSV[len(CSV) // 3 :])
    s3.put_object(Bucket=bucket, Key="in/manifest.csv.gz", Body=blob)
    # WHEN read through the injected client
    reader = ManifestReader(f"s3://{bucket}/in/manifest.csv.gz", client=s3)
    items = list(reader)
    # THEN every line is a record, in order, and the byte counters match the object
    assert len(items) == LINES
    assert items[-1] == ManifestRecord(LINES, "images", f"photos/{LINES - 1:06d} x.jpg")
    assert [r.line for r in items] == list(range(1, LINES + 1))
    assert reader.compressed_bytes == len(blob)
    assert reader.size_bytes() == len(blob)


def test_jsonl_from_s3_with_bad_lines(s3, bucket):
    body = b'{"uri": "s3://images/a.jpg"}\n{broken\n{"bucket": "images", "key": "b"}\n'
    s3.put_object(Bucket=bucket, Key="m.jsonl", Body=body)
    items = list(iter_manifest(f"s3://{bucket}/m.jsonl", client=s3))
    assert [getattr(i, "error", None) for i in items] == [None, "BadJson", None]
    assert [i.line for i in items] == [1, 2, 3]


def test_inventory_manifest_in_s3_streams_its_parts(s3, bucket):
    # GIVEN an S3 Inventory report: manifest.json and two gzip CSV parts in the destination
    keys = ["inv/src/cfg/data/a.csv.gz", "inv/src/cfg/data/b.csv.gz"]
    s3.put_object(Bucket=bucket, Key=keys[0], Body=gzip.compress(b'"src","k%201","v1"\n'))
    s3.put_object(Bucket=bucket, Key=keys[1], Body=gzip.compress(b'"src","k+2",""\n'))
    manifest = {
        "sourceBucket": "src",
        "destinationBucket": f"arn:aws:s3:::{bucket}",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, VersionId",
        "files": [{"key": k} for k in keys],
    }
    s3.put_object(Bucket=bucket, Key="inv/src/cfg/2026/manifest.json", Body=json.dumps(manifest))
    # WHEN read
    reader = ManifestReader(f"s3://{bucket}/inv/src/cfg/2026/manifest.json", client=s3)
    items = list(reader)
    # THEN both parts were streamed in order, keys decoded
    assert reader.format is ManifestFormat.INVENTORY
    assert items == [ManifestRecord(1, "src", "k 1", "v1"), ManifestRecord(2, "src", "k 2")]


def test_truncated_object_in_s3_raises_after_the_lines_before(s3, bucket):
    blob = gzip.compress(CSV)
    s3.put_object(Bucket=bucket, Key="t.csv.gz", Body=blob[: len(blob) // 2])
    got = []
    with pytest.raises(ManifestReadError) as info:
        got.extend(iter_manifest(f"s3://{bucket}/t.csv.gz", client=s3))
    assert got
    assert info.value.line == len(got) + 1
    assert info.value.compressed_offset == len(blob) // 2


def test_missing_object_is_a_read_error_naming_the_s3_code(s3, bucket):
    with pytest.raises(ManifestReadError) as info:
        list(iter_manifest(f"s3://{bucket}/nope.csv", client=s3))
    assert info.value.error == "NoSuchKey"
    assert "nope.csv" in str(info.value)


def test_scan_cli_reads_s3_through_aws_endpoint_url(s3, bucket):
    # GIVEN a manifest in S3 and only AWS_ENDPOINT_URL pointing at the emulator
    s3.put_object(Bucket=bucket, Key="m.csv.gz", Body=gzip.compress(CSV))
    # WHEN `lambdaflow scan s3://… --json` runs
    result = CliRunner().invoke(app, ["scan", f"s3://{bucket}/m.csv.gz", "--json"])
    # THEN it read every line
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert (report["lines"], report["records"], report["complete"]) == (LINES, LINES, True)


def test_inventory_naming_another_bucket_is_refused(s3, bucket):
    manifest = {
        "destinationBucket": "arn:aws:s3:::someone-elses-bucket",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key",
        "files": [{"key": "data/a.csv.gz"}],
    }
    s3.put_object(Bucket=bucket, Key="inv/manifest.json", Body=json.dumps(manifest))
    with pytest.raises(ManifestReadError, match="not the manifest's bucket") as info:
        list(iter_manifest(f"s3://{bucket}/inv/manifest.json", client=s3))
    assert info.value.error == "BadInventory"
