"""Encode result parts: our PartWriter (orjson + isal level 1, 1 MiB buffer) vs the naive path.

Baseline, measured in the same run: `json.dumps` per row into `gzip.GzipFile` at its default
level 9 (what `gzip.open` and smart_open's writer do). The S3 PUT is replaced by a client that
only reads the body, so this measures the encoding the classify handler pays per chunk.

    .venv/bin/python benchmarks/results_write.py [--rows 200000] [--with-model]

`--with-model` names the model and its sha256 on every row (what the worker writes): it shows
what the repeat costs in the part after gzip, and in raw JSON.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import time

from pipeline.parts.layout import ResultRow, RowModel
from pipeline.parts.store import PartWriter


class NullS3:
    def __init__(self) -> None:
        self.bytes = 0

    def put_object(self, *, Body, **_):  # boto3's parameter name
        self.bytes = len(Body.read())


MODEL = RowModel(
    "efficientnet-lite0", "db4f4e7448643aaf5d249a7253a7b35634917a0d4da120bad8e1104e2df103f8"
)


def make_rows(n: int, *, with_model: bool = False) -> list[dict]:
    labels = (
        ("tabby", 0.8123),
        ("tiger cat", 0.1012),
        ("Egyptian cat", 0.0503),
        ("lynx", 0.0101),
        ("remote control", 0.0022),
    )
    return [
        ResultRow(
            i,
            "images-bucket",
            f"photos/2026/11/{i:09d}.jpg",
            labels,
            model=MODEL if with_model else None,
        ).to_dict()
        for i in range(1, n + 1)
    ]


def baseline(rows: list[dict]) -> int:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as out:
        for row in rows:
            out.write((json.dumps(row) + "\n").encode())
    return len(buffer.getvalue())


def ours(rows: list[dict]) -> int:
    client = NullS3()
    with PartWriter(client, "b", "results/r/part-00000000.jsonl.gz") as writer:
        for row in rows:
            writer.write(row)
    return client.bytes


def timed(fn, rows) -> tuple[float, int]:
    best, size = float("inf"), 0
    for _ in range(3):
        start = time.perf_counter()
        size = fn(rows)
        best = min(best, time.perf_counter() - start)
    return best, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--with-model", action="store_true", help="model name + sha256 per row")
    args = parser.parse_args()
    rows = make_rows(args.rows, with_model=args.with_model)
    raw = sum(len(json.dumps(row, separators=(",", ":"))) + 1 for row in rows)
    base_s, base_bytes = timed(baseline, rows)
    our_s, our_bytes = timed(ours, rows)
    print(f"rows: {len(rows):,}  raw JSON Lines: {raw:,} B")
    print(f"baseline json + gzip level 9 : {len(rows) / base_s:12,.0f} rows/s  {base_bytes:,} B")
    print(f"orjson + isal level 1 (ours) : {len(rows) / our_s:12,.0f} rows/s  {our_bytes:,} B")
    print(f"speed-up: {base_s / our_s:.1f}x   size ratio: {our_bytes / base_bytes:.2f}")


if __name__ == "__main__":
    main()
