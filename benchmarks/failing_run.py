"""`lambdaflow run` of manifests whose every image fails, on the embedded stack: linear or not.

    .venv/bin/python benchmarks/failing_run.py [--lines 1000,3000,10000] [--against TREE]

A manifest naming a bucket the stack may not read (a typo, a wrong account) fails every line
at the fetch: each failure is a row of the run's failure parts and one FailureQueue message,
and the run still ends `SUCCEEDED` with every line accounted for. For each size it writes such
a JSON Lines manifest, runs `lambdaflow run MANIFEST --json` in a fresh process (its own
throwaway stack: `run` starts one when no `lambdaflow up` is found), checks the summary
(every line failed, none ok), and prints the run's own seconds and the whole command's wall
time. The baseline is the smallest size in the same run: `x smallest` is (seconds per line at
this size) / (seconds per line at the smallest), 1.0 for a stack whose cost per failure does
not grow with the run. `--against TREE` runs another checkout's `pipeline` (first on
PYTHONPATH, same interpreter and libraries) on the same manifests, for a side-by-side.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from manifest import fresh_bytecode  # same directory

ROOT = Path(__file__).resolve().parent.parent
LAMBDAFLOW_MAIN = "from pipeline.cli import main; raise SystemExit(main())"


def write_manifest(path: Path, lines: int) -> None:
    """`lines` JSON Lines records of a bucket no stack may read."""
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(
            b"".join(
                b'{"bucket":"no-such-bucket-here","key":"photos/%07d.jpg"}\n' % n
                for n in range(lines)
            )
        )


def timed_run(manifest: Path, tree: Path, workdir: Path) -> tuple[float, dict]:
    """Wall seconds of `lambdaflow run MANIFEST --json` with `tree`'s pipeline, and its summary."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-P", "-c", LAMBDAFLOW_MAIN, "run", str(manifest), "--json"],
        check=True,
        capture_output=True,
        text=True,
        cwd=workdir,
        env=env,
    ).stdout
    return time.perf_counter() - started, json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lines", default="1000,3000,10000", help="manifest sizes, comma-separated"
    )
    parser.add_argument("--against", type=Path, help="another checkout to run side by side")
    args = parser.parse_args()
    sizes = sorted(int(n) for n in args.lines.split(","))
    trees = [ROOT] + ([args.against.resolve()] if args.against else [])
    fresh_bytecode(*trees)
    print("| tree | lines | run's seconds | command's wall | failures/s | x smallest |")
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="lambdaflow-failing-") as tmp:
        for tree in trees:
            smallest = None
            for lines in sizes:
                manifest = Path(tmp) / f"failing-{lines}.jsonl.gz"
                if not manifest.exists():
                    write_manifest(manifest, lines)
                wall, summary = timed_run(manifest, tree, Path(tmp))
                assert summary["status"] == "SUCCEEDED", summary
                assert (summary["lines"], summary["failed"], summary["ok"]) == (lines, lines, 0)
                per_line = summary["seconds"] / lines
                smallest = smallest or per_line
                print(
                    f"| {tree} | {lines:,} | {summary['seconds']:.1f} s | {wall:.1f} s "
                    f"| {lines / summary['seconds']:,.0f} | {per_line / smallest:.2f}x |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
