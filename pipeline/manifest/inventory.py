"""Read an S3 Inventory `manifest.json`: which gzip CSV parts to stream, in order, and how.

The manifest is small (a list of part keys) and is parsed whole, within a byte cap; its parts are
streamed by the caller. `fileSchema` says which columns hold Bucket, Key and VersionId; keys in
Inventory parts are URL-encoded (https://docs.aws.amazon.com/AmazonS3/latest/userguide/storage-inventory-location.html).
Line identity across parts is the line number in the parts read one after another, as if they
were one file: dense, and stable because the part order is fixed by the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from pipeline.failures import ManifestReadError
from pipeline.manifest.parse import CsvKind, CsvLayout, layout_from_names
from pipeline.s3_uri import S3_SCHEME, split_s3_uri

MAX_INVENTORY_JSON_BYTES = 16 * 1024 * 1024
"""A manifest.json lists one small entry per part; anything bigger is not one."""

_ARN_PREFIX = "arn:aws:s3:::"


@dataclass(frozen=True, slots=True)
class InventoryManifest:
    """What an Inventory manifest.json says: the part keys, their bucket and their columns."""

    destination_bucket: str
    layout: CsvLayout
    part_keys: tuple[str, ...]


def _bad(message: str) -> ManifestReadError:
    return ManifestReadError(f"S3 Inventory manifest.json: {message}", error="BadInventory")


def parse_inventory(data: bytes) -> InventoryManifest:
    """Parse manifest.json.

    Raises:
        ManifestReadError: not JSON, not CSV parts, or a schema without Bucket and Key.
    """
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise _bad("not a JSON object")
    if str(doc.get("fileFormat", "CSV")).upper() != "CSV":
        raise _bad(
            f"fileFormat {doc.get('fileFormat')!r}: only CSV inventories are read; choose CSV as "
            "the Inventory configuration's output format (Parquet and ORC are refused)"
        )
    names = str(doc.get("fileSchema", "")).split(",")
    layout = layout_from_names(names, kind=CsvKind.SCHEMA, is_key_encoded=True)
    if layout is None or layout.uri_col is not None:
        raise _bad(f"fileSchema {doc.get('fileSchema')!r} lacks Bucket and Key")
    files = doc.get("files")
    if not isinstance(files, list) or not all(
        isinstance(f, dict) and isinstance(f.get("key"), str) for f in files
    ):
        raise _bad("`files` must be a list of objects with a `key`")
    destination = str(doc.get("destinationBucket", "")).removeprefix(_ARN_PREFIX)
    return InventoryManifest(destination, layout, tuple(f["key"] for f in files))


def read_bounded(head: bytes, read: object) -> bytes:
    """Read the rest of a small JSON document after `head`, refusing more than the cap."""
    chunks, total = [head], len(head)
    while data := read(1024 * 1024):  # type: ignore[operator]
        chunks.append(data)
        total += len(data)
        if total > MAX_INVENTORY_JSON_BYTES:
            raise _bad(f"larger than {MAX_INVENTORY_JSON_BYTES} bytes")
    return b"".join(chunks)


def part_source(manifest_source: str, inventory: InventoryManifest, key: str) -> str:
    """Where part `key` lives: beside manifest.json in its bucket, or in a local copy of the tree.

    S3 Inventory writes manifest.json and its parts to the same destination bucket, so parts are
    read only from the manifest's own bucket: an uploaded manifest.json naming another bucket
    must not make us read it (the source-bucket allowlist). Locally, the part is looked for as `key`
    under each ancestor of manifest.json (a downloaded destination prefix), then beside it and
    in a `data/` folder beside it; absolute keys and `..` are refused.

    Raises:
        ManifestReadError: for a part outside the manifest's bucket or tree, or not found.
    """
    if manifest_source.startswith(S3_SCHEME):
        bucket = split_s3_uri(manifest_source)[0]
        if inventory.destination_bucket not in ("", bucket):
            raise _bad(
                f"destinationBucket {inventory.destination_bucket!r} is not the manifest's bucket "
                f"{bucket!r}; read the report from its destination bucket"
            )
        return f"{S3_SCHEME}{bucket}/{key}"
    relative = Path(key)
    if relative.is_absolute() or ".." in relative.parts:
        raise _bad(f"part key {key!r} leaves the report's folder")
    here = Path(manifest_source).resolve().parent
    candidates = [p / relative for p in (here, *here.parents)]
    candidates += [here / relative.name, here / "data" / relative.name]
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    raise ManifestReadError(
        f"S3 Inventory part {key} not found near {manifest_source}; download the whole report",
        error="NoSuchKey",
    )
