"""S3 Inventory: manifest.json → its gzip CSV parts, in order, columns from fileSchema."""

from __future__ import annotations

import gzip
import json

import pytest

from pipeline.failures import ManifestReadError
from pipeline.manifest.reader import ManifestReader
from tests.unit.manifest_helpers import as_tuple, read_all

SCHEMA = "Bucket, Key, VersionId, IsLatest, Size"
PREFIX = "inv/src-bucket/daily"


def _inventory(tmp_path, parts: list[bytes], *, schema=SCHEMA, fmt="CSV", pretty=True):
    keys = []
    for i, body in enumerate(parts):
        key = f"{PREFIX}/data/part-{i}.csv.gz"
        path = tmp_path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(body))
        keys.append(key)
    doc = {
        "sourceBucket": "src-bucket",
        "destinationBucket": "arn:aws:s3:::dest-bucket",
        "version": "2016-11-30",
        "fileFormat": fmt,
        "fileSchema": schema,
        "files": [{"key": k, "size": 1, "MD5checksum": "x"} for k in keys],
    }
    manifest = tmp_path / PREFIX / "2026-11-26T00-00Z" / "manifest.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps(doc, indent=2 if pretty else None))
    return manifest


PART0 = b'"src-bucket","a%20b.jpg","v1","true","10"\n"src-bucket","c+d.jpg","","true","3"\n'
PART1 = b'"src-bucket","dir/%C3%A9.jpg","v2","true","7"\n"src-bucket"\n\n'
PART2 = b'"src-bucket","last.jpg","","true","1"\n'


@pytest.mark.parametrize("pretty", [True, False], ids=["pretty", "one_line"])
def test_inventory_streams_every_part_in_order_with_dense_lines(tmp_path, pretty):
    # GIVEN an Inventory report of three gzip CSV parts
    manifest = _inventory(tmp_path, [PART0, PART1, PART2], pretty=pretty)
    # WHEN its manifest.json is read
    reader = ManifestReader(str(manifest))
    items, parts = [], []
    for item in reader:
        items.append(as_tuple(item))
        parts.append(reader.position.part)
    # THEN lines count on across parts, keys are URL-decoded, versions kept, bad rows are data
    assert items == [
        ("ok", 1, "src-bucket", "a b.jpg", "v1"),
        ("ok", 2, "src-bucket", "c d.jpg", None),
        ("ok", 3, "src-bucket", "dir/é.jpg", "v2"),
        ("err", 4, "BadFieldCount"),
        ("ok", 6, "src-bucket", "last.jpg", None),
    ]
    assert parts == [0, 0, 1, 1, 2]
    assert reader.lines_read == 6
    assert (reader.position.line, reader.position.part, reader.position.offset) == (7, 3, 0)
    assert reader.uncompressed_bytes == len(PART0) + len(PART1) + len(PART2)


@pytest.mark.parametrize("fmt", ["ORC", "Parquet"])
def test_inventory_with_orc_or_parquet_parts_is_refused_saying_to_choose_csv(tmp_path, fmt):
    manifest = _inventory(tmp_path, [PART0], fmt=fmt)
    with pytest.raises(ManifestReadError, match=f"{fmt}.*choose CSV") as info:
        read_all(manifest)
    assert info.value.error == "BadInventory"


def test_inventory_schema_without_key_is_refused(tmp_path):
    manifest = _inventory(tmp_path, [PART0], schema="Bucket, Size")
    with pytest.raises(ManifestReadError, match="lacks Bucket and Key"):
        read_all(manifest)


def test_inventory_missing_part_is_a_read_error_after_earlier_parts(tmp_path):
    manifest = _inventory(tmp_path, [PART0, PART2])
    (tmp_path / PREFIX / "data" / "part-1.csv.gz").unlink()
    got = []
    with pytest.raises(ManifestReadError) as info:
        got.extend(as_tuple(x) for x in ManifestReader(str(manifest)))
    assert len(got) == 2
    assert info.value.error == "NoSuchKey"


@pytest.mark.parametrize("key", ["/etc/passwd", "../../outside.csv.gz", "a/../../b.csv.gz"])
def test_inventory_part_keys_cannot_leave_the_report(tmp_path, key):
    manifest = _inventory(tmp_path, [PART0])
    doc = json.loads(manifest.read_text())
    doc["files"] = [{"key": key}]
    manifest.write_text(json.dumps(doc))
    with pytest.raises(ManifestReadError, match="leaves the report") as info:
        read_all(manifest)
    assert info.value.error == "BadInventory"
