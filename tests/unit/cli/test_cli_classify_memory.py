"""`lambdaflow classify` over many failing images: every file answered, peak memory flat.

Each file is a big PNG whose pixel stream stops at 80 %: Pillow fills ~140 MB before it fails.
Run as a real process (peak RSS of the child, measured by a fresh parent), once with 2 copies
and once with 16: a call that kept anything of each failure would grow by ~100 MB per file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from tests import odd_images, photos

MB = 1024 * 1024
PROBE = """
import resource, subprocess, sys
out = subprocess.run(sys.argv[1:], capture_output=True, check=False)
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stdout.write(f"{out.returncode} {peak_kb}\\n")
sys.stdout.write(out.stdout.decode())
"""
LAMBDAFLOW = str(Path(sys.executable).with_name("lambdaflow"))


def classify_peak(paths: list[Path]) -> tuple[int, list[dict], int]:
    """Run `lambdaflow classify --json` on `paths`: (exit code, rows, peak RSS in bytes)."""
    command = [sys.executable, "-c", PROBE, LAMBDAFLOW, "classify", "--json", *map(str, paths)]
    out = subprocess.run(command, capture_output=True, check=True, timeout=300).stdout.decode()
    head, _, body = out.partition("\n")
    code, peak_kb = map(int, head.split())
    return code, orjson.loads(body), peak_kb * 1024


def test_many_failing_images_keep_peak_memory_flat(tmp_path):
    data = odd_images.png_cut_after_big_rows(side=6_000)
    paths = []
    for i in range(16):
        path = tmp_path / f"cut-{i}.png"
        path.write_bytes(data)
        paths.append(path)
    good = photos.photo_path("coffee")
    code_few, rows_few, peak_few = classify_peak([*paths[:2], good])
    code_many, rows_many, peak_many = classify_peak([*paths, good])
    assert (code_few, code_many) == (0, 0)
    assert len(rows_few) == 3
    assert [row.get("error") for row in rows_many] == ["TruncatedImage"] * 16 + [None]
    assert rows_many[-1]["labels"][0][0] == "espresso"
    assert peak_many < 1024 * MB
    assert peak_many - peak_few < 80 * MB, (peak_few // MB, peak_many // MB)
