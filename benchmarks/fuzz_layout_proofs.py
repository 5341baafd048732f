"""Differential fuzz of the layout proofs: the reader with them against the reader without.

    .venv/bin/python benchmarks/fuzz_layout_proofs.py [--runs 20000] [--seed 1]

`scan` proves blocks laid out like their first line or element (`dense_template`,
`dense_csv_template`, `dense_array_template`) instead of reading them record by record. A
proof that took a block the reference reads otherwise would count wrong, silently. Each run
builds a manifest of one of those shapes (`key,bucket,size` and pandas `,uri` header CSVs,
quoted URI lines, JSON Lines with a size, JSON arrays of such objects or of URIs, on one line
or indented), mutates most of them (bytes set, inserted or deleted: quotes, commas, braces,
colons, backslashes, newlines, tabs, digits, invalid UTF-8, brackets), and reads it in blocks
of a random size twice: as `scan` does, and with the three proofs switched off. The records,
line failures, restart points and item sizes (or the error that ends the stream) must be the
same. Prints the runs, the differences (which must be 0) and how many records the proofs took.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.failures import ManifestReadError
from pipeline.manifest import json_array, stream
from pipeline.manifest.dense_array_template import ElementsBatch
from pipeline.manifest.dense_columns import SummedBatch
from pipeline.manifest.reader import ManifestFormat, RecordReader
from tests.unit.manifest_helpers import flatten_batches

PROOFS = ("dense_template_batch", "dense_csv_template_batch", "dense_array_template_batch")
KEYS = ["p/a.jpg", "x y,z", "é/ü", "a}b", "{c}", "k:1", "q"]
SHAPES = ["key,bucket", ",uri", "quoted URIs", "JSON Lines", "JSON array", "URI array"]
NOISE = b'",{}:\\\n\t 0a\xff[]'


def manifest(rng: random.Random, shape: str) -> tuple[ManifestFormat, bytes]:
    """A valid manifest of `shape`, 5-60 records."""
    keys = [rng.choice(KEYS) + str(i) for i in range(rng.randint(5, 60))]
    if shape == "key,bucket":
        rows = "".join(f"{k},bk,{i}\n" for i, k in enumerate(keys))
        return ManifestFormat.CSV, ("key,bucket,size\n" + rows).encode()
    if shape == ",uri":
        rows = "".join(f"{i},s3://bk/{k}\n" for i, k in enumerate(keys))
        return ManifestFormat.CSV, (",uri\n" + rows).encode()
    if shape == "quoted URIs":
        return ManifestFormat.CSV, "".join(f'"s3://bk/{k}"\n' for k in keys).encode()
    objects = [{"bucket": "bk", "key": k, "size": i} for i, k in enumerate(keys)]
    if shape == "JSON Lines":
        return ManifestFormat.JSON_LINES, b"".join(orjson.dumps(o) + b"\n" for o in objects)
    values = objects if shape == "JSON array" else [f"s3://bk/{k}" for k in keys]
    indent = rng.choice([None, 2])
    return ManifestFormat.JSON_ARRAY, json.dumps(values, ensure_ascii=False, indent=indent).encode()


def mutate(rng: random.Random, data: bytes, noise: bytes = NOISE) -> bytes:
    """1-4 bytes set, inserted or deleted (bytes of `noise`)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        roll, at = rng.random(), rng.randrange(len(out) + 1)
        if roll < 0.4 and out:
            out[min(at, len(out) - 1)] = rng.choice(noise)
        elif roll < 0.7:
            out[at:at] = bytes([rng.choice(noise)])
        elif out:
            del out[min(at, len(out) - 1)]
    return bytes(out)


def read(fmt: ManifestFormat, data: bytes, block: int, *, proofs: bool) -> tuple[object, int]:
    """(what the reader gives, records the proofs took), with or without the proofs."""
    off = [] if proofs else [mock.patch.object(stream, name, return_value=None) for name in PROOFS]
    for patch in off:
        patch.start()
    try:
        with mock.patch.object(json_array, "BLOCK_BYTES", block):
            reader = RecordReader(io.BytesIO(data), fmt, block_bytes=block, max_line_bytes=200)
            try:
                batches = list(reader.iter_batches())
            except ManifestReadError as exc:
                return ("error", exc.error), 0
    finally:
        for patch in off:
            patch.stop()
    restarts = [b.resume_after(i) for b in batches for i in range(len(b))]
    sizes = [size for b in batches for size in b.item_sizes(0, len(b))]
    taken = sum(len(b) for b in batches if type(b) in (SummedBatch, ElementsBatch))
    return (flatten_batches(batches), restarts, sizes), taken


Trial = tuple[str, bytes, object, object, int]
"""One run of a differential fuzz: (what was read, the manifest, what the proofs gave, what
the reference gave, records the proofs took)."""


def differential(description: str, trial: Callable[[random.Random], Trial]) -> int:
    """Run `trial` `--runs` times from `--seed`; print the differences (the first 3 in full).

    Returns the exit code: 1 when any run's two readings differ.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    differences = taken = 0
    for _ in range(args.runs):
        label, data, got, expected, proved = trial(rng)
        taken += proved
        if got != expected:
            differences += 1
            if differences <= 3:
                print(f"DIFFERENT ({label}): {data[:300]!r}")
    print(f"runs {args.runs}, differences {differences}, records the proofs took {taken}")
    return 1 if differences else 0


def _trial(rng: random.Random) -> Trial:
    shape = rng.choice(SHAPES)
    fmt, data = manifest(rng, shape)
    if rng.random() < 0.8:
        data = mutate(rng, data)
    block = rng.choice([64, 128, 512, 4096])
    got, proved = read(fmt, data, block, proofs=True)
    expected, _ = read(fmt, data, block, proofs=False)
    return f"{shape}, {block} B blocks", data, got, expected, proved


def main() -> int:
    return differential(__doc__.split("\n\n")[0], _trial)


if __name__ == "__main__":
    raise SystemExit(main())
