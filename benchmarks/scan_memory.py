"""`lambdaflow scan`'s peak memory as the manifest grows to tens of GB: flat is the target.

    .venv/bin/python benchmarks/scan_memory.py [--gb 2,18,54] [--against TREE] [--repeat 1]
    .venv/bin/python benchmarks/scan_memory.py --gb '' --warm 40

Builds, in a temp dir, one gzip member of `s3://` URI lines (~2 GB uncompressed, as
`benchmarks/manifest.py` writes them) and, for each size in `--gb`, a manifest of that many
such members one after another (a valid multi-member gzip that scan reads to its end, as a
concatenated export would be). Each is scanned by `lambdaflow scan --json` in a fresh process,
with this checkout and, alternated, with `--against TREE`'s (another checkout: say `git
worktree add /tmp/before REV`). Prints, per size and tree (medians of `--repeat` runs): the
lines, scan's wall time (and each run's), its peak RSS (its own `peak_rss_mb`), and the
process's CPU time and minor page faults. Needs ~0.43 GB of disk a 2 GB member.

`--warm N`: one process (of each tree) scans a manifest of 800 MB uncompressed N times in a row, as
a warm Lambda runs pass after pass, each shorter than the 1 GiB of input at which a pass gives
its free pages back (so none does). Prints the RSS after each scan: does a warm process's heap
grow from one short pass to the next?
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from manifest import fresh_bytecode, generate  # same directory

ROOT = Path(__file__).resolve().parent.parent
MEMBER_MB = 2000
WARM_MB = 800
SCAN = "import sys; sys.path.insert(0, sys.argv[1]); from pipeline.cli import main; \
sys.argv = ['lambdaflow', 'scan', '--json', sys.argv[2]]; main()"
"""`lambdaflow scan --json FILE` run from the checkout in argv[1]."""
WARM = """
import sys
sys.path.insert(0, sys.argv[1])
from pipeline import allocator
from pipeline.cli.scan import scan_manifest
from pipeline.config import Settings

path, scans = sys.argv[2], int(sys.argv[3])
allocator.keep_freed_buffers()  # as `lambdaflow`'s entry point and the Split handler do
settings = Settings.from_env({})
for _ in range(scans):
    scan_manifest(path, settings=settings)
    with open("/proc/self/status") as status:
        print(next(line.split()[1] for line in status if line.startswith("VmRSS")), flush=True)
"""
"""N scans of argv[2] in one process: its RSS in KiB after each."""


def build(root: Path, member: Path, members: int) -> Path:
    """`members` copies of the gzip `member`, one after another."""
    path = root / f"uris-{members}x.csv.gz"
    with path.open("wb") as out:
        for _ in range(members):
            with member.open("rb") as one:
                shutil.copyfileobj(one, out, 16 << 20)
    return path


def timed_scan(tree: Path, path: Path) -> dict[str, float]:
    """Wall seconds, peak RSS, CPU seconds and minor faults of one `scan --json` of `tree`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-P", "-c", SCAN, str(tree), str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    wall_s = time.perf_counter() - started
    report, after = json.loads(out), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall_s": wall_s,
        "lines": report["lines"],
        "peak_rss_mb": report["peak_rss_mb"],
        "user_s": after.ru_utime - before.ru_utime,
        "sys_s": after.ru_stime - before.ru_stime,
        "faults": after.ru_minflt - before.ru_minflt,
    }


def warm_scans(tree: Path, path: Path, scans: int) -> list[float]:
    """RSS in MB after each of `scans` scans of `path` in one process of `tree`'s code."""
    out = subprocess.run(
        [sys.executable, "-P", "-c", WARM, str(tree), str(path), str(scans)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [int(kib) / 1024 for kib in out.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", default="2,18,54", help="sizes, in 2 GB members: 2, 4, 6, …")
    parser.add_argument("--against", type=Path, metavar="TREE", help="another checkout, alternated")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, medians shown")
    parser.add_argument("--warm", type=int, default=0, help="scans of 800 MB, one process")
    args = parser.parse_args()
    trees = {"this": ROOT, **({"against": args.against.resolve()} if args.against else {})}
    fresh_bytecode(*trees.values())
    sizes = [max(1, round(int(gb) * 1000 / MEMBER_MB)) for gb in args.gb.split(",") if gb]
    with tempfile.TemporaryDirectory(prefix="lambdaflow-scan-memory-") as tmp:
        root = Path(tmp)
        if args.warm:
            warm = root / "warm.csv.gz"
            generate(warm, "s3:// URIs", WARM_MB * 2**20)
            print(f"| tree | RSS after each of {args.warm} scans, one process |")
            print("|---|---|")
            for name, tree in trees.items():
                rss = ", ".join(f"{mb:.1f}" for mb in warm_scans(tree, warm, args.warm))
                print(f"| {name} | {rss} MB |", flush=True)
        if not sizes:
            return
        member = root / "member.csv.gz"
        generate(member, "s3:// URIs", MEMBER_MB * 2**20)
        need = member.stat().st_size * max(sizes)
        if shutil.disk_usage(tmp).free < need * 1.2:
            sys.exit(f"need ~{need / 1e9:.1f} GB free in {tmp}")
        print("| size | lines | tree | scan wall (runs) | peak RSS | CPU user / sys | faults |")
        print("|---|---:|---|---:|---:|---:|---:|")
        for members in sizes:
            path = build(root, member, members)
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
            for _ in range(args.repeat):
                for name, tree in trees.items():
                    runs[name].append(timed_scan(tree, path))
            for name, measured in runs.items():
                med = {k: statistics.median(m[k] for m in measured) for k in measured[0]}
                each = ", ".join(f"{m['wall_s']:.1f}" for m in measured)
                print(
                    f"| {members * MEMBER_MB / 1000:.0f} GB | {med['lines']:,.0f} | {name} "
                    f"| {med['wall_s']:.1f} s ({each}) | {med['peak_rss_mb']:.1f} MB "
                    f"| {med['user_s']:.1f} / {med['sys_s']:.1f} s | {med['faults']:,.0f} |",
                    flush=True,
                )
            path.unlink()


if __name__ == "__main__":
    main()
