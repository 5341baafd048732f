"""`lambdaflow run` on a running `lambdaflow up` vs a plain single-process loop, same photos.

One command, from the checkout (PHOTOS is a folder of JPEG photos):

    .venv/bin/python benchmarks/e2e.py --photos PHOTOS [--images 1200] [--rounds 5]

The stack is used the way the README tells people to use it: `lambdaflow up` runs in the
background (started once, in a scratch directory, before any timing: its start-up is not paid
per run and is reported apart), the photos sit in its images bucket under `copy-<n>/` prefixes
(--images cycles the folder's photos: 1,200 = 500 + 500 + 200), and each round times a fresh
`lambdaflow run MANIFEST --json` from spawn to exit: interpreter start, imports, the manifest's
PUT, the S3 event → ingest → Step Functions → Split → WorkQueue → classify worker processes →
parts + ledger → Finalize, and the command seeing `_SUCCESS.json`. Every round gets its own
manifest file (a new run id), so no round reuses another's work.

The baseline is the plain way to label the same photos in one process, with no AWS at all: the
model loaded once (not timed), then per image read the local file, draft-decode it
(`ImageDecoder.decode`, the workers' own Pillow decode) and invoke the model, on one thread.

Rounds alternate which goes first; each round's ratio is loop seconds / run seconds (> 1: the
stack is faster) and the medians are the result. CPU-seconds per round: the loop's (this
process), and the whole stack's (the `up` process tree: moto, Step Functions, the ingest poller,
the classify workers) plus the `run` command's own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import boto3
import psutil

from pipeline.classify.images import ImageDecoder
from pipeline.classify.model import Classifier
from pipeline.config import DEFAULT_MODEL_PATH

LAMBDAFLOW = str(Path(sys.executable).with_name("lambdaflow"))
PHOTO_SUFFIXES = {".jpg", ".jpeg"}


@dataclass(frozen=True, slots=True)
class Round:
    """One round's two timings (wall and CPU seconds)."""

    loop_s: float
    loop_cpu_s: float
    run_s: float
    run_cpu_s: float
    stack_images_per_s: float

    @property
    def ratio(self) -> float:
        """Loop seconds over run seconds: > 1 when the stack is faster."""
        return self.loop_s / self.run_s


def photos_in(folder: Path) -> list[Path]:
    """Every JPEG of `folder`, by name."""
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
    if not found:
        raise SystemExit(f"no JPEG photos in {folder}")
    return found


def objects_for(paths: list[Path], images: int) -> list[tuple[str, Path]]:
    """`images` (key, file) pairs: the photos cycled, copy n under `copy-<n>/`."""
    return [
        (f"copy-{i // len(paths)}/{paths[i % len(paths)].name}", paths[i % len(paths)])
        for i in range(images)
    ]


def start_up(workdir: Path, workers: int | None) -> tuple[subprocess.Popen[str], dict]:
    """Start `lambdaflow up --json` in `workdir`; return the process and its JSON line."""
    extra = [] if workers is None else ["--workers", str(workers)]
    up = subprocess.Popen(
        [LAMBDAFLOW, "up", "--json", *extra],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert up.stdout is not None
    for line in up.stdout:
        if line.startswith("{"):
            return up, json.loads(line)
    raise SystemExit("lambdaflow up ended without printing its JSON line")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a live process and every live descendant."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_command(
    workdir: Path, manifest: Path, up_pid: int, expected: int
) -> tuple[float, float, dict]:
    """Wall and CPU seconds of `lambdaflow run MANIFEST --json`, and its summary."""
    cpu_before = tree_cpu_s(up_pid) + children_cpu_s()
    started = time.perf_counter()
    done = subprocess.run(
        [LAMBDAFLOW, "run", str(manifest), "--json"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    cpu = tree_cpu_s(up_pid) + children_cpu_s() - cpu_before
    if done.returncode != 0:
        raise SystemExit(f"lambdaflow run failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    if summary["ok"] != expected:
        raise SystemExit(f"only {summary['ok']} of {expected} lines labelled: {summary}")
    return wall, cpu, summary


def single_thread_loop(classifier: Classifier, paths: list[Path]) -> tuple[float, float]:
    """Wall and CPU seconds to read, draft-decode and classify every path, one after another."""
    decoder = ImageDecoder(input_size=classifier.input_size)
    cpu_before = self_cpu_s()
    started = time.perf_counter()
    for path in paths:
        classifier.classify([decoder.decode(path.read_bytes())], top_k=5)
    return time.perf_counter() - started, self_cpu_s() - cpu_before


def write_manifest(workdir: Path, name: str, bucket: str, keys: list[str]) -> Path:
    manifest = workdir / name
    manifest.write_text("".join(f"s3://{bucket}/{key}\n" for key in keys))
    return manifest


def main() -> None:
    """Start the stack, upload, then alternate loop and command for --rounds rounds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True, help="a folder of JPEG photos")
    parser.add_argument("--images", type=int, default=1200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None, help="lambdaflow up --workers")
    args = parser.parse_args()
    objects = objects_for(photos_in(args.photos), args.images)
    classifier = Classifier.load(DEFAULT_MODEL_PATH, num_threads=1)
    with tempfile.TemporaryDirectory(prefix="lambdaflow-e2e-") as scratch:
        workdir = Path(scratch)
        started = time.perf_counter()
        up, info = start_up(workdir, args.workers)
        startup_s = time.perf_counter() - started
        try:
            os.environ.update(info["env"])
            s3 = boto3.client("s3")
            bucket = info["images_bucket"]
            with ThreadPoolExecutor(8) as pool:
                list(
                    pool.map(
                        lambda o: s3.put_object(Bucket=bucket, Key=o[0], Body=o[1].read_bytes()),
                        objects,
                    )
                )
            keys = [key for key, _ in objects]
            # Warm-up, untimed: the workers' model load and the first-use costs of every path.
            warm = write_manifest(workdir, "warm-up.csv", bucket, keys[:40])
            run_command(workdir, warm, up.pid, 40)
            single_thread_loop(classifier, [p for _, p in objects[:20]])
            rounds = []
            print(
                f"{'round':>5} {'loop s':>7} {'run s':>7} {'ratio':>6} "
                f"{'loop CPU s':>10} {'stack CPU s':>11} {'ledger img/s':>12}"
            )
            for number in range(1, args.rounds + 1):
                manifest = write_manifest(workdir, f"round-{number}.csv", bucket, keys)
                loop_first = number % 2 == 1
                if loop_first:
                    loop_s, loop_cpu = single_thread_loop(classifier, [p for _, p in objects])
                run_s, run_cpu, summary = run_command(workdir, manifest, up.pid, len(keys))
                if not loop_first:
                    loop_s, loop_cpu = single_thread_loop(classifier, [p for _, p in objects])
                rounds.append(Round(loop_s, loop_cpu, run_s, run_cpu, summary["images_per_s"]))
                r = rounds[-1]
                print(
                    f"{number:>5} {r.loop_s:>7.2f} {r.run_s:>7.2f} {r.ratio:>6.2f} "
                    f"{r.loop_cpu_s:>10.2f} {r.run_cpu_s:>11.2f} {r.stack_images_per_s:>12}"
                )
        finally:
            os.killpg(up.pid, signal.SIGINT)
            up.wait(60)
    median = statistics.median
    print(
        f"images: {len(objects)}; stack start-up (once, not timed per run): {startup_s:.1f} s; "
        f"load average now {os.getloadavg()[0]:.1f}"
    )
    print(
        f"median loop {median(r.loop_s for r in rounds):.2f} s, "
        f"median run {median(r.run_s for r in rounds):.2f} s, "
        f"median ratio (loop / run, > 1 = stack faster) {median(r.ratio for r in rounds):.2f}"
    )
    print(
        f"CPU ms per image: loop {1000 * median(r.loop_cpu_s for r in rounds) / len(objects):.1f}, "
        f"stack + command {1000 * median(r.run_cpu_s for r in rounds) / len(objects):.1f}"
    )


if __name__ == "__main__":
    main()
