"""An S3 Inventory report delivered into the input bucket the way S3 writes it is one run.

S3 writes the data parts first, then `manifest.json`, `manifest.checksum` and the Hive
`symlink.txt`; every one of them is an ObjectCreated event on the real notification path. Only
manifest.json may start a run, and that run labels each listed image exactly once.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid
from pathlib import Path
from urllib.parse import quote

import boto3
import pytest

from pipeline.ledger.ingest import ManifestObject
from pipeline.ledger.summary import read_summary
from pipeline.parts.store import iter_failure_records, iter_result_rows
from tests.queues import messages_held
from tests.wait import wait_until

pytestmark = pytest.mark.e2e

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "images"
RUN_TIMEOUT_S = 120
SCHEMA = "Bucket, Key, Size, LastModifiedDate"


def _put(s3, bucket: str, key: str, body: bytes) -> ManifestObject:
    etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
    return ManifestObject(bucket=bucket, key=key, etag=etag)


def _deliver(stack, images: list[tuple[str, str]], *, bad_checksum: bool = False) -> dict:
    """Write one Inventory report in S3's order; return every object written, by role."""
    s3 = boto3.client("s3")
    dest = stack.outputs["InputBucketName"]
    source = images[0][0]
    base = f"inventory/{source}/daily-{uuid.uuid4().hex[:8]}"
    halves = [images[: len(images) // 2], images[len(images) // 2 :]]
    parts = []
    for rows in halves:  # the data parts, first
        body = "".join(f'"{b}","{quote(k)}","123","2026-12-02T00:00:00.000Z"\n' for b, k in rows)
        key = f"{base}/data/{uuid.uuid4()}.csv.gz"
        parts.append((key, _put(s3, dest, key, gzip.compress(body.encode()))))
    doc = {
        "sourceBucket": source,
        "destinationBucket": f"arn:aws:s3:::{dest}",
        "version": "2016-11-30",
        "creationTimestamp": "1764720000000",
        "fileFormat": "CSV",
        "fileSchema": SCHEMA,
        "files": [{"key": k, "size": 1, "MD5checksum": "0" * 32} for k, _ in parts],
    }
    manifest_body = json.dumps(doc, indent=2).encode()
    folder = f"{base}/2026-12-03T01-00Z"
    manifest = _put(s3, dest, f"{folder}/manifest.json", manifest_body)
    digest = hashlib.md5(manifest_body + (b" " if bad_checksum else b"")).hexdigest()
    checksum = _put(s3, dest, f"{folder}/manifest.checksum", digest.encode() + b"\n")
    symlink_body = "".join(f"s3://{dest}/{k}\n" for k, _ in parts).encode()
    symlink = _put(s3, dest, f"{base}/hive/dt=2026-12-03-01-00/symlink.txt", symlink_body)
    return {
        "parts": [obj for _, obj in parts],
        "manifest": manifest,
        "checksum": checksum,
        "symlink": symlink,
    }


@pytest.fixture
def images(local_stack) -> list[tuple[str, str]]:
    """Six photos (two with keys that need URL-encoding) in the allowlisted images bucket."""
    s3 = boto3.client("s3")
    bucket, prefix = local_stack.outputs["ImagesBucketName"], f"inv-{uuid.uuid4().hex[:8]}"
    listed = []
    for i, path in enumerate(sorted(PHOTOS.glob("*.jpg")) * 2):
        key = f"{prefix}/{'a photo ' if i % 3 == 0 else ''}{i}-{path.name}"
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        listed.append((bucket, key))
    return listed[:6]


def _executions(stack) -> set[str]:
    sfn = boto3.client("stepfunctions")
    arn = stack.outputs["StateMachineArn"]
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=arn)
    return {e["name"] for page in pages for e in page["executions"]}


def _ingest_drained(stack) -> bool:
    return messages_held(boto3.client("sqs"), stack.outputs["IngestQueueUrl"]) == 0


def test_an_inventory_delivery_in_s3_order_is_one_run_labelling_each_image_once(
    local_stack, images
):
    # GIVEN an Inventory report written the way S3 writes it: parts, manifest, checksum, symlink
    written = _deliver(local_stack, images)
    manifest = written["manifest"]
    # WHEN the notifications of all five objects have been handled
    summary = wait_until(
        lambda: read_summary(
            boto3.client("s3"), local_stack.outputs["ResultsBucketName"], manifest.run
        ),
        RUN_TIMEOUT_S,
        interval_s=0.3,
    )
    wait_until(lambda: _ingest_drained(local_stack), 30, what="the IngestQueue to drain")
    # THEN manifest.json's run is the only run any of the five objects started
    others = [*written["parts"], written["checksum"], written["symlink"]]
    started = _executions(local_stack)
    assert manifest.run in started
    assert not {obj.run for obj in others} & started
    # AND that run labelled every listed image exactly once, and nothing else
    s3, results_bucket = boto3.client("s3"), local_stack.outputs["ResultsBucketName"]
    rows = list(iter_result_rows(s3, results_bucket, manifest.run))
    assert list(iter_failure_records(s3, results_bucket, manifest.run)) == []
    assert sorted((r.bucket, r.key) for r in rows) == sorted(images)
    assert sorted(r.line for r in rows) == list(range(1, len(images) + 1))
    assert all(r.labels for r in rows)
    assert summary["status"] == "SUCCEEDED"
    assert (summary["lines"], summary["ok"], summary["failed"]) == (len(images), len(images), 0)


def test_an_inventory_delivery_whose_checksum_does_not_match_starts_no_run(local_stack, images):
    sqs, dlq = boto3.client("sqs"), local_stack.outputs["IngestDLQUrl"]
    parked_before = messages_held(sqs, dlq)
    # GIVEN a delivery whose manifest.checksum is not the MD5 of its manifest.json
    written = _deliver(local_stack, images, bad_checksum=True)
    # WHEN every notification has been handled (none is left to retry)
    wait_until(lambda: _ingest_drained(local_stack), 60, what="the IngestQueue to drain")
    # THEN no object of the delivery started a run, manifest.json included
    every = [written["manifest"], *written["parts"], written["checksum"], written["symlink"]]
    assert not {obj.run for obj in every} & _executions(local_stack)
    # AND nothing was parked as a failure: a refusal is a decision, not a crash
    assert messages_held(sqs, dlq) == parked_before


def test_a_parquet_inventory_is_one_run_refused_with_a_reason_to_choose_csv(local_stack):
    # GIVEN a Parquet report (its parts are never read: the manifest says what they are)
    s3 = boto3.client("s3")
    dest = local_stack.outputs["InputBucketName"]
    base = f"inventory/src/parquet-{uuid.uuid4().hex[:8]}"
    part = f"{base}/data/{uuid.uuid4()}.parquet"
    _put(s3, dest, part, b"PAR1 not really parquet PAR1")
    doc = {
        "fileFormat": "Parquet",
        "fileSchema": "message s3.inventory { }",
        "files": [{"key": part}],
    }
    body = json.dumps(doc).encode()
    manifest = _put(s3, dest, f"{base}/2026-12-03T01-00Z/manifest.json", body)
    _put(
        s3,
        dest,
        f"{base}/2026-12-03T01-00Z/manifest.checksum",
        hashlib.md5(body).hexdigest().encode(),
    )
    # THEN its one run ends partial at once, saying to choose CSV
    summary = wait_until(
        lambda: read_summary(s3, local_stack.outputs["ResultsBucketName"], manifest.run),
        RUN_TIMEOUT_S,
        interval_s=0.3,
    )
    assert summary["status"] == "PARTIAL"
    assert "choose CSV" in summary["reason"]
    assert summary["lines"] == 0
