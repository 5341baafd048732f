"""How fast any Python process could scan a small manifest: the floor under `lambdaflow scan`.

    .venv/bin/python benchmarks/startup_floor.py [--mb 16] [--rounds 21]

Writes a gzip manifest of `s3://` URIs (`--mb` uncompressed, benchmarks/manifest.py's shape),
then alternates, as whole processes: `gzip -dc FILE | wc -l`, an interpreter that does nothing,
one that imports only ISA-L (what inflates) and one that also inflates the file and counts its
lines, the same two with numpy imported too (what the fast path proves lines with), and
`lambdaflow scan FILE --json`. Prints each one's median wall time and its ratio to
`gzip -dc | wc -l` (the target: ≥ 1.0x for scan). A row under 1.0x is a floor: no scan that
imports those modules can meet the target on that file, whatever it does after.

Then, in this process, what proving the lines without numpy would cost on the inflated bytes:
one `re` match of a (simplified) URI line pattern over the whole buffer, and a split with one
`startswith` a line; against the time a bare count leaves within `gzip -dc | wc -l`'s.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import isal.igzip
from manifest import generate

PYTHON = sys.executable
LAMBDAFLOW = str(Path(PYTHON).with_name("lambdaflow"))
BASELINE = "gzip -dc | wc -l"
URI_LINES = re.compile(rb"(?:s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\n]+\n)*")
"""Bucket rules and a non-empty key only: less than scan checks, so a floor."""
COUNT_LINES = (
    "import sys, isal.igzip\n"
    "n = 0\n"
    "with isal.igzip.open(sys.argv[1], 'rb') as f:\n"
    "    while block := f.read(1 << 20):\n"
    "        n += block.count(b'\\n')\n"
    "print(n)\n"
)


def _commands(path: Path) -> dict[str, list[str]]:
    return {
        BASELINE: ["sh", "-c", f"gzip -dc '{path}' | wc -l"],
        "python, nothing imported": [PYTHON, "-c", "pass"],
        "python + ISA-L imported": [PYTHON, "-c", "import isal.igzip"],
        "python + ISA-L, lines counted": [PYTHON, "-c", COUNT_LINES, str(path)],
        "python + ISA-L + numpy imported": [PYTHON, "-c", "import numpy, isal.igzip"],
        "python + ISA-L + numpy, lines counted": [
            PYTHON,
            "-c",
            "import numpy\n" + COUNT_LINES,
            str(path),
        ],
        "lambdaflow scan --json": [LAMBDAFLOW, "scan", str(path), "--json"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=16, help="uncompressed size of the manifest")
    parser.add_argument("--rounds", type=int, default=21, help="alternated rounds (medians)")
    args = parser.parse_args()
    env_note = "OPENBLAS_NUM_THREADS=1 (as the lambdaflow entry point sets it)"
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "uris.csv.gz"
        lines = generate(path, "s3:// URIs", args.mb * 2**20)
        commands = _commands(path)
        wall: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, command in commands.items():
                started = time.perf_counter()
                subprocess.run(
                    command,
                    check=True,
                    capture_output=True,
                    env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
                )
                wall[name].append(time.perf_counter() - started)
            data = isal.igzip.decompress(path.read_bytes())
    base = statistics.median(wall[BASELINE])
    print(f"{lines:,} s3:// URIs, {args.mb} MB; {args.rounds} alternated rounds; {env_note}")
    print(f"{'process':40} {'median wall':>12} {'x gzip -dc | wc -l':>20}")
    for name, times in wall.items():
        median = statistics.median(times)
        print(f"{name:40} {median * 1000:>9.1f} ms {base / median:>19.2f}x")
    left = base - statistics.median(wall["python + ISA-L, lines counted"])
    print(f"\nin process, on the inflated bytes (a bare count leaves {left * 1000:.1f} ms):")
    proofs = {
        "re: every line a URI, one match": lambda: URI_LINES.fullmatch(data) is not None,
        "split, one startswith a line": lambda: all(
            line.startswith(b"s3://") for line in data.split(b"\n")[:-1]
        ),
    }
    for name, proof in proofs.items():
        times = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            assert proof()
            times.append(time.perf_counter() - started)
        print(f"{name:40} {statistics.median(times) * 1000:>9.1f} ms")


if __name__ == "__main__":
    main()
