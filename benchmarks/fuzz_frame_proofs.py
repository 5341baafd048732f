"""Differential fuzz of the frame proofs over many buckets, of halving and of empty lines.

    .venv/bin/python benchmarks/fuzz_frame_proofs.py [--runs 20000] [--seed 1]

`scan` proves whole blocks of URI lines, `bucket,key` rows, quoted rows and JSON Lines by their
frames; past 8 known buckets it looks each line's bucket up in a table (`dense.bucket_lengths`),
and it halves a block a frame proof refuses down to `stream.NARROWEST_RUN` to prove the pieces
around the refused lines, or cuts it around its empty lines (`lines.around_blank_lines`, pieces
of `stream.NARROWEST_PROOF` bytes at least). A proof that took a line the reference reads
otherwise would count it wrong, silently. Each run builds a manifest of one of those shapes over
up to 14 buckets of 3 to 63 bytes, some a byte from another (so many runs use the table), with
LF or CRLF line ends and, in a third of them, empty lines here and there; mutates most of them
(bytes set, inserted or deleted: a bucket's or a key's bytes, `/`, `,`, quotes, CR, newlines,
invalid UTF-8), and reads it twice in blocks of a random size, with halving down to a random
size: as `scan` does, and with every proof switched off (line by line). The records, line
failures, restart points and item sizes (or the error that ends the stream) must be the same.
Prints the runs, the differences (which must be 0) and how many records the proofs took.
"""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path
from unittest import mock

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.failures import ManifestReadError
from pipeline.manifest import stream
from pipeline.manifest.batch import DenseBatch
from pipeline.manifest.lines import LineRun
from pipeline.manifest.reader import ManifestFormat, RecordReader
from tests.unit.manifest_helpers import flatten_batches

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_layout_proofs import Trial, differential, mutate  # same directory

BUCKETS = [
    "abc",
    "abd",
    "bkt-1",
    "bkt-10",
    "images-0",
    "images-00",
    "photos.example",
    "photos.example-2",
    "bucket-00.example-data",
    "bucket-01.example-data",
    "bucket-00.example-datb",
    "a" * 40,
    "a" * 39 + "b",
    "x" * 63,
]
KEYS = ["p/a.jpg", "x y", "é/ü", "k%41+", "q", "IMG_0001.JPG"]
SHAPES = ["URIs", "bucket,key", "quoted", "JSON Lines", "JSON Lines uri", "JSON Lines key first"]
NOISE = b'/,"\r\n\t a-.0x\xff\xc3{}:'


def row(shape: str, bucket: str, key: str, n: int) -> bytes:
    if shape == "URIs":
        return f"s3://{bucket}/{key}".encode()
    if shape == "bucket,key":
        return f"{bucket},{key}".encode()
    if shape == "quoted":
        return f'"{bucket}","{key}","{n}"'.encode()
    if shape == "JSON Lines":
        return orjson.dumps({"bucket": bucket, "key": key})
    if shape == "JSON Lines uri":
        return orjson.dumps({"uri": f"s3://{bucket}/{key}"})
    return orjson.dumps({"key": key, "bucket": bucket})


def manifest(rng: random.Random, shape: str) -> tuple[ManifestFormat, bytes]:
    """A valid manifest of `shape`, 20-400 records over 1 to all of `BUCKETS`."""
    buckets = rng.sample(BUCKETS, rng.randint(1, len(BUCKETS)))
    rows = [
        row(shape, rng.choice(buckets), rng.choice(KEYS) + str(n), n)
        for n in range(rng.randint(20, 400))
    ]
    fmt = ManifestFormat.JSON_LINES if shape.startswith("JSON") else ManifestFormat.CSV
    eol = b"\r\n" if rng.random() < 0.2 else b"\n"
    if rng.random() < 0.3:  # empty lines, alone or a few together
        for at in sorted(rng.sample(range(len(rows)), rng.randint(1, 6)), reverse=True):
            rows[at:at] = [b""] * rng.randint(1, 3)
    return fmt, eol.join(rows) + eol


class _LineByLine(RecordReader):
    """The reference: the same reader with every proof switched off."""

    def _shape(self, run: LineRun) -> None:
        return None


def read(
    reader_type: type[RecordReader], fmt: ManifestFormat, data: bytes, block: int
) -> tuple[object, int]:
    """What the reader gives (items, restart points, item sizes, or the error that ends it),
    and how many records the frame proofs took."""
    reader = reader_type(io.BytesIO(data), fmt, block_bytes=block, max_line_bytes=300)
    try:
        batches = list(reader.iter_batches())
    except ManifestReadError as exc:
        return ("error", exc.error), 0
    restarts = [b.resume_after(i) for b in batches for i in range(len(b.records(0, len(b))))]
    sizes = [size for b in batches for size in b.item_sizes(0, len(b))]
    taken = sum(len(b) for b in batches if isinstance(b, DenseBatch))
    return (flatten_batches(batches), restarts, sizes, reader.position), taken


def _trial(rng: random.Random) -> Trial:
    shape = rng.choice(SHAPES)
    fmt, data = manifest(rng, shape)
    if rng.random() < 0.7:
        data = mutate(rng, data, NOISE)
    block = rng.choice([256, 1024, 4096, 16384])
    narrowest = rng.choice([16, 64, 256, 1024])
    with (
        mock.patch.object(stream, "NARROWEST_RUN", narrowest),
        mock.patch.object(stream, "NARROWEST_PROOF", narrowest),
    ):
        got, proved = read(RecordReader, fmt, data, block)
    expected, _ = read(_LineByLine, fmt, data, block)
    return f"{shape}, {block} B blocks", data, got, expected, proved


def main() -> int:
    return differential(__doc__.split("\n\n")[0], _trial)


if __name__ == "__main__":
    raise SystemExit(main())
