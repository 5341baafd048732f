"""`lambdaflow classify` on N photos, start-up included, vs a single-thread loop, same run.

    .venv/bin/python benchmarks/classify_cli.py PHOTO_FOLDER [--count 200] [--rounds 5]

The loop is the plain way to label photos in one process: the model loaded once (not timed),
then per image read the file, draft-decode it (`ImageDecoder.decode`) and invoke the model, on
one thread. The command is timed as a person sees it: a fresh `lambdaflow classify --json` on the
same files, wall clock from spawn to exit (interpreter start, imports, model load included).
Rounds alternate the two so machine load hits both alike; each round's ratio is loop time over
command time (> 1: the command is faster), and the median ratio is the result.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from pipeline.classify.images import ImageDecoder
from pipeline.classify.model import Classifier
from pipeline.config import DEFAULT_MODEL_PATH

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
LAMBDAFLOW = str(Path(sys.executable).with_name("lambdaflow"))


def photos_in(folder: Path, count: int) -> list[Path]:
    """The first `count` photos of `folder`, by name."""
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
    if len(found) < count:
        raise SystemExit(f"{folder} has {len(found)} photos, {count} wanted")
    return found[:count]


def single_thread_loop(classifier: Classifier, paths: list[Path]) -> float:
    """Seconds to read, draft-decode and classify every path, one after the other."""
    decoder = ImageDecoder(input_size=classifier.input_size)
    started = time.perf_counter()
    for path in paths:
        classifier.classify([decoder.decode(path.read_bytes())], top_k=5)
    return time.perf_counter() - started


def command(paths: list[Path]) -> float:
    """Seconds for `lambdaflow classify --json` on every path, from spawn to exit."""
    started = time.perf_counter()
    done = subprocess.run(
        [LAMBDAFLOW, "classify", "--json", *map(str, paths)],
        capture_output=True,
        check=True,
    )
    elapsed = time.perf_counter() - started
    rows = json.loads(done.stdout)
    labelled = sum(1 for row in rows if "labels" in row)
    if labelled != len(paths):
        raise SystemExit(f"only {labelled} of {len(paths)} photos were labelled")
    return elapsed


def main() -> None:
    """Alternate loop and command for --rounds rounds; print each ratio and the median."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="A folder of photos (JPEG, PNG, WebP).")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    paths = photos_in(args.folder, args.count)
    classifier = Classifier.load(DEFAULT_MODEL_PATH, num_threads=1)
    single_thread_loop(classifier, paths[:5])  # warm the page cache and the interpreter
    ratios = []
    print(f"{'round':>5} {'loop s':>8} {'command s':>10} {'ratio':>6}")
    for round_ in range(1, args.rounds + 1):
        loop_s = single_thread_loop(classifier, paths)
        command_s = command(paths)
        ratios.append(loop_s / command_s)
        print(f"{round_:>5} {loop_s:>8.2f} {command_s:>10.2f} {ratios[-1]:>6.2f}")
    print(f"median ratio (loop / command, > 1 = command faster): {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
