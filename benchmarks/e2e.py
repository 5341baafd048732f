"""Images/s of `lambdaflow run` on the embedded stack vs `lambdaflow classify` from local disk.

One command, from the checkout (PHOTOS is a folder of JPEG photos):
`.venv/bin/python benchmarks/e2e.py --photos PHOTOS [--copies 2]`.

Both paths label the same ~1,000 photo objects (the 500 ImageNet sample photos in
PHOTOS, twice, under two prefixes) with the same model, in the same run:

- baseline: `lambdaflow classify PATH...` over the local files (one process, no AWS at all);
- stack: the photos in the stack's images bucket, a manifest PUT into its input bucket, and the
  whole flow (S3 event → ingest → Step Functions → Split → WorkQueue → classify worker processes
  → parts, ledger → Finalize), timed from the PUT until the summary exists.

Reported: images/s for both, the ratio, and CPU-seconds per image for both (the machine is shared,
so CPU per image is the figure that does not depend on neighbours). Stack start-up is one-time
and reported separately.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]
"""Relative to the working directory, like the other benchmarks (run from the checkout)."""


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def baseline(paths: list[Path]) -> tuple[float, float]:
    """Wall seconds and CPU seconds of `lambdaflow classify` over `paths`."""
    cli = Path(sys.executable).parent / "lambdaflow"
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    done = subprocess.run(
        [str(cli), "classify", "--json", *map(str, paths)], capture_output=True, check=True
    )
    wall = time.perf_counter() - started
    assert done.stdout.count(b'"labels"') == len(paths), "baseline did not label every photo"
    return wall, _children_cpu_s() - cpu_before


def stack_run(paths: list[Path], copies: int, workers: int) -> dict:
    from rich.console import Console  # noqa: PLC0415

    from pipeline.cli.run import run_manifest  # noqa: PLC0415  # after the env is set
    from pipeline.cli.stack_target import embedded_stack, stack_info  # noqa: PLC0415
    from pipeline.local.stack import StackOptions  # noqa: PLC0415

    started = time.perf_counter()
    with embedded_stack(StackOptions(workers=workers)) as stack:
        startup_s = time.perf_counter() - started
        info = stack_info(stack)
        s3 = boto3.client("s3")
        objects = [(f"bench/{copy}/{path.name}", path) for copy in range(copies) for path in paths]
        keys = [key for key, _ in objects]

        def upload(item: tuple[str, Path]) -> None:
            s3.put_object(Bucket=info.images_bucket, Key=item[0], Body=item[1].read_bytes())

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(upload, objects))
        manifest = ROOT / ".lambdaflow" / "bench-manifest.csv"
        manifest.parent.mkdir(exist_ok=True)
        manifest.write_text("".join(f"s3://{info.images_bucket}/{k}\n" for k in keys))
        cpu_before = _self_cpu_s() + _children_cpu_s()
        wall_started = time.perf_counter()
        summary = run_manifest(info, str(manifest), Console(stderr=True, quiet=True), 1800)
        wall = time.perf_counter() - wall_started
        # Worker processes are children of this process; their CPU is counted once they exit.
    cpu = _self_cpu_s() + _children_cpu_s() - cpu_before
    assert summary["ok"] == len(keys), summary
    return {"startup_s": startup_s, "wall_s": wall, "cpu_s": cpu, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True, help="a folder of JPEG photos")
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    paths = sorted(args.photos.glob("*.JPEG")) + sorted(args.photos.glob("*.jpg"))
    if not paths:
        parser.error(f"no photos in {args.photos}: pass --photos DIR")
    images = len(paths) * args.copies
    base_wall, base_cpu = baseline(paths * args.copies)
    stack = stack_run(paths, args.copies, args.workers)
    base_rate, stack_rate = images / base_wall, images / stack["wall_s"]
    print(
        f"images: {images} ({len(paths)} photos x {args.copies}), load avg {os.getloadavg()[0]:.1f}"
    )
    print(
        f"baseline  lambdaflow classify (1 process, local disk): {base_rate:6.1f} img/s, "
        f"{1000 * base_cpu / images:.1f} ms CPU/img"
    )
    print(
        f"stack     lambdaflow run ({args.workers} workers, whole flow): {stack_rate:6.1f} img/s, "
        f"{1000 * stack['cpu_s'] / images:.1f} ms CPU/img (incl. moto + Step Functions)"
    )
    print(
        f"ratio     stack / baseline images/s: {stack_rate / base_rate:.2f}x; "
        f"CPU per image: {stack['cpu_s'] / base_cpu:.2f}x"
    )
    print(
        f"stack start-up (one-time): {stack['startup_s']:.1f} s; "
        f"summary images/s (ledger start → finish): {stack['summary']['images_per_s']}"
    )


if __name__ == "__main__":
    main()
