"""Tell a manifest's format from its first decompressed bytes, never from its name.

Split out of `manifest_stream` (which re-exports both names) to keep that module one job.
Knows nothing of gzip, S3 or parsing lines.
"""

from __future__ import annotations

from enum import StrEnum

import orjson

from pipeline.manifest.lines import BOM


class ManifestFormat(StrEnum):
    """The manifest formats README lists, as sniffed from the first decompressed bytes."""

    CSV = "csv"
    JSON_LINES = "jsonl"
    JSON_ARRAY = "json"
    INVENTORY = "inventory"  # an S3 Inventory manifest.json: a list of gzip CSV parts


def sniff_format(head: bytes) -> ManifestFormat:
    """Tell the format from the first decompressed bytes, never from the name.

    `[` starts a JSON array, `{` JSON Lines, unless the first object (or, pretty-printed, the
    head) carries an S3 Inventory `fileSchema`; anything else is CSV.
    """
    text = head.removeprefix(BOM).lstrip()
    if text.startswith(b"["):
        return ManifestFormat.JSON_ARRAY
    if not text.startswith(b"{"):
        return ManifestFormat.CSV
    try:
        first = orjson.loads(text.split(b"\n", 1)[0])
    except orjson.JSONDecodeError:
        is_inventory = b'"fileSchema"' in text
    else:
        is_inventory = isinstance(first, dict) and "fileSchema" in first
    return ManifestFormat.INVENTORY if is_inventory else ManifestFormat.JSON_LINES
