"""`scan` of `s3://` manifests reads them as Split does, across the wire to the emulator."""

from __future__ import annotations

import gzip
import json

from pipeline.cli.scan import scan_manifest
from pipeline.config import Settings

ROWS = b"".join(b"bkt,k%d.jpg\n" % i for i in range(1_000))


def test_scan_of_an_s3_gzip_counts_what_split_sends(s3, bucket):
    s3.put_object(Bucket=bucket, Key="m.csv.gz", Body=gzip.compress(ROWS))
    report = scan_manifest(
        f"s3://{bucket}/m.csv.gz", settings=Settings.from_env({}, chunk_items=300), client=s3
    )
    assert (report.records, report.chunks, report.complete) == (1_000, 4, True)
    assert report.compressed_bytes == len(gzip.compress(ROWS))


def test_scan_of_an_s3_inventory_reads_its_parts(s3, bucket):
    keys = []
    for i in range(2):
        key = f"inv/src/cfg/data/part-{i}.csv.gz"
        body = b"".join(b'"bkt","p%d-%d.jpg"\n' % (i, n) for n in range(50))
        s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(body))
        keys.append(key)
    doc = {"fileFormat": "CSV", "fileSchema": "Bucket, Key", "files": [{"key": k} for k in keys]}
    s3.put_object(Bucket=bucket, Key="inv/src/cfg/2026-12-03T01-00Z/manifest.json",
                  Body=json.dumps(doc).encode())  # fmt: skip
    report = scan_manifest(
        f"s3://{bucket}/inv/src/cfg/2026-12-03T01-00Z/manifest.json",
        settings=Settings.from_env({}),
        client=s3,
        show=2,
    )
    assert (report.format, report.records, report.lines, report.complete) == (
        "inventory",
        100,
        100,
        True,
    )
    assert [(r.line, r.key) for r in report.shown_records] == [(1, "p0-0.jpg"), (2, "p0-1.jpg")]


def test_scan_of_a_missing_s3_object_says_so(s3, bucket):
    report = scan_manifest(f"s3://{bucket}/nope.csv", settings=Settings.from_env({}), client=s3)
    assert report.complete is False
    assert report.error.startswith("NoSuchKey: cannot open manifest")
