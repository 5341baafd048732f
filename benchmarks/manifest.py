"""Manifest scan speed against the fastest raw `decompress | count lines`, and flat memory.

    .venv/bin/python benchmarks/manifest.py [--mb 1024]

Generates a ~1 GB (uncompressed) gzip Batch-Operations CSV and a gzip JSON Lines manifest in a
temp dir, then measures side by side, in this one run: `gzip -dc | wc -l`, `pigz -dc | wc -l`
(when pigz is installed), Python ISA-L and zlib block reads counting newlines, and
`lambdaflow scan --json` (each scan in a fresh process, so its peak RSS is its own). Prints
lines/s, the scan/fastest-raw ratio (wall time of the whole process, and scan's own timer, which
leaves out the CLI's import time), and the peak RSS of a 10 MB vs the 1 GB manifest. Use a
smaller `--mb` for quick runs while iterating.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from isal import igzip

BLOCK = 1 << 20
SMALL_MB = 10


def _csv_line(n: int) -> bytes:
    return b"images-bucket,photos/%03d/%09d-%08x.jpg\n" % (n % 1000, n, (n * 2654435761) % 2**32)


def _jsonl_line(n: int) -> bytes:
    key = b"photos/%03d/%09d-%08x.jpg" % (n % 1000, n, (n * 2654435761) % 2**32)
    return b'{"bucket":"images-bucket","key":"' + key + b'"}\n'


def generate(path: Path, line: Callable[[int], bytes], target_bytes: int) -> int:
    """Write a gzip manifest of about `target_bytes` uncompressed; return its line count."""
    n, written = 0, 0
    with igzip.open(path, "wb", compresslevel=3) as out:
        while written < target_bytes:
            block = b"".join(line(i) for i in range(n + 1, n + 20_001))
            out.write(block)
            n += 20_000
            written += len(block)
    return n


def timed_shell(cmd: str) -> tuple[float, int]:
    started = time.perf_counter()
    out = subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - started, int(out.strip())


def timed_python(opener: Callable[[Path], object], path: Path) -> tuple[float, int]:
    started = time.perf_counter()
    lines = 0
    with opener(path) as f:
        while block := f.read(BLOCK):
            lines += block.count(b"\n")
    return time.perf_counter() - started, lines


def timed_scan(path: Path) -> tuple[float, int, dict]:
    exe = Path(sys.executable).with_name("lambdaflow")
    started = time.perf_counter()
    out = subprocess.run(
        [str(exe), "scan", str(path), "--json"], check=True, capture_output=True, text=True
    ).stdout
    report = json.loads(out)
    return time.perf_counter() - started, report["lines"], report


def measure(path: Path) -> dict[str, tuple[float, int]]:
    results = {"gzip -dc | wc -l": timed_shell(f"gzip -dc {path} | wc -l")}
    if shutil.which("pigz"):
        results["pigz -dc | wc -l"] = timed_shell(f"pigz -dc {path} | wc -l")
    results["python isal igzip"] = timed_python(igzip.open, path)
    results["python zlib gzip"] = timed_python(gzip.open, path)
    return results


def report_file(name: str, path: Path, lines: int) -> dict:
    print(f"\n## {name}: {path.stat().st_size / 1e6:.0f} MB gzip, {lines:,} lines")
    raw = measure(path)
    seconds, scanned, scan = timed_scan(path)
    assert scanned == lines, (scanned, lines)
    for label, (secs, counted) in raw.items():
        assert counted == lines, (label, counted, lines)
        print(f"  {label:<22} {secs:7.2f} s {lines / secs / 1e6:7.2f} M lines/s")
    best_label, (best_s, _) = min(raw.items(), key=lambda kv: kv[1][0])
    print(f"  {'lambdaflow scan':<22} {seconds:7.2f} s {lines / seconds / 1e6:7.2f} M lines/s")
    inner = scan["lines_per_s"] / 1e6
    print(f"  {'  (its own timer)':<22} {scan['seconds']:7.2f} s {inner:7.2f} M lines/s")
    gzip_s = raw["gzip -dc | wc -l"][0]
    print(f"  scan / fastest raw ({best_label}): {best_s / seconds:.3f}x", end="")
    print(f" (own timer, without the ~1-2 s CLI start: {best_s / scan['seconds']:.3f}x)")
    print(f"  scan / gzip -dc | wc -l: {gzip_s / seconds:.3f}x", end="")
    print(f" (own timer: {gzip_s / scan['seconds']:.3f}x)")
    print(f"  scan peak RSS {scan['peak_rss_mb']} MB, {scan['chunks']:,} chunks")
    return scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1024, help="uncompressed size of each manifest")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lambdaflow-bench-") as tmp:
        free_gb = shutil.disk_usage(tmp).free / 1e9
        need_gb = args.mb * 2 * 0.3 / 1e3 + 0.1
        if free_gb < need_gb * 2:
            sys.exit(f"need ~{need_gb:.1f} GB free in {tmp}, have {free_gb:.1f} GB")
        root = Path(tmp)
        print(f"generating 2 x {args.mb} MB manifests (+ {SMALL_MB} MB) in {tmp} ...")
        small = root / "small.csv.gz"
        generate(small, _csv_line, SMALL_MB * 2**20)
        big_csv, big_jsonl = root / "big.csv.gz", root / "big.jsonl.gz"
        csv_lines = generate(big_csv, _csv_line, args.mb * 2**20)
        jsonl_lines = generate(big_jsonl, _jsonl_line, args.mb * 2**20)
        big = report_file("Batch Operations CSV", big_csv, csv_lines)
        report_file("JSON Lines", big_jsonl, jsonl_lines)
        _, _, tiny = timed_scan(small)
        growth = big["peak_rss_mb"] - tiny["peak_rss_mb"]
        print(
            f"\n## scan peak RSS: {SMALL_MB} MB manifest {tiny['peak_rss_mb']} MB, "
            f"{args.mb} MB manifest {big['peak_rss_mb']} MB: growth {growth:.1f} MB"
        )


if __name__ == "__main__":
    main()
