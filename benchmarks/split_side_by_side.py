"""One whole Split pass (or scan) per build, in fresh processes, against `gzip -dc | wc -l`.

    .venv/bin/python benchmarks/split_side_by_side.py FILE ROUNDS TREE [TREE …]
        [--mode split|scan]

FILE is a gzip manifest or an S3 Inventory `manifest.json` (then `gzip -dc` reads its parts).
Each TREE is a directory holding a `pipeline/` package (say `git archive main pipeline`
unpacked, and this checkout): it goes first on `PYTHONPATH`, so every build runs with the same
interpreter and libraries (`-P`: the current directory never shadows it). Each round runs `gzip
-dc | wc -l`, then one process per build that runs `pipeline.split.passes.split_pass` over FILE
to its end (after `pipeline.allocator.keep_freed_buffers`, as the Split handler, where the build
has it) with a `CountingSink` (every chunk message encoded, nothing sent; its items, chunks
and message bytes are printed; `--mode scan`: the `lambdaflow scan FILE --json` command).
Prints median wall and CPU seconds (the process's own, start-up included) and the ratio
`gzip -dc | wc -l` / it, wall and CPU (`--mode scan`: and the highest peak RSS scan reported);
alternating puts every build under the same load. Compile each TREE first (`python -m
compileall -q TREE/pipeline`): with PYTHONDONTWRITEBYTECODE set, a tree without `__pycache__`
compiles every module at every start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from manifest import FUNCTION_ENV  # same directory; imports nothing of a checkout's pipeline

_PASS = """
import sys
try:  # as the Split handler's cold start does, in a build that has it
    from pipeline.allocator import keep_freed_buffers
    keep_freed_buffers()
except ImportError:
    pass
from pipeline.split.dry_run import Opener, _MemoryIndexStore
from pipeline.split.passes import SplitOptions, split_pass
from pipeline.split.sinks import CountingSink, MemoryParseFailureWriter
sink = CountingSink()
split_pass(sys.argv[1], None, run="bench0000000000000", options=SplitOptions(),
           open_reader=Opener(), sink=sink, failures=MemoryParseFailureWriter(),
           index_store=_MemoryIndexStore())
print(sink.items, sink.chunks, sink.message_bytes)
"""

_SCAN = "from pipeline.cli import main; main()"


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    before, started = _cpu_s(), time.perf_counter()
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - started, _cpu_s() - before, out.strip()


def _raw_files(path: Path) -> list[Path]:
    if path.name != "manifest.json":
        return [path]
    return [path.parent / f["key"] for f in json.loads(path.read_text())["files"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("rounds", type=int)
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--mode", choices=["split", "scan"], default="split")
    args = parser.parse_args()
    raw = " ".join(f"'{p}'" for p in _raw_files(args.path))
    runs: dict[str, list[tuple[float, float]]] = {"gzip -dc | wc -l": []}
    runs |= {tree: [] for tree in args.trees}
    counts: dict[str, str] = {}
    rss: dict[str, float] = {}
    for _ in range(args.rounds):
        wall, cpu, counts["gzip -dc | wc -l"] = _timed(["sh", "-c", f"gzip -dc {raw} | wc -l"])
        runs["gzip -dc | wc -l"].append((wall, cpu))
        for tree in args.trees:
            if args.mode == "scan":  # the command as the tree's entry point sets it up
                env = dict(os.environ, PYTHONPATH=tree)
                command = [sys.executable, "-P", "-c", _SCAN, "scan", str(args.path), "--json"]
            else:  # a pass in the Split function's environment
                env = dict(FUNCTION_ENV, PYTHONPATH=tree)
                command = [sys.executable, "-P", "-c", _PASS, str(args.path)]
            wall, cpu, out = _timed(command, env)
            if args.mode == "scan":
                report = json.loads(out)
                counts[tree] = str(report["records"])
                rss[tree] = max(rss.get(tree, 0.0), report["peak_rss_mb"])
            else:
                counts[tree] = out
            runs[tree].append((wall, cpu))
    base_wall = statistics.median(w for w, _ in runs["gzip -dc | wc -l"])
    base_cpu = statistics.median(c for _, c in runs["gzip -dc | wc -l"])
    print(f"| build | {args.mode} items | wall | CPU | gzip -dc \\| wc -l / it (wall, CPU) |")
    print("|---|---|---|---|---|")
    for name, timings in runs.items():
        label = name.replace("|", "\\|")
        wall = statistics.median(w for w, _ in timings)
        cpu = statistics.median(c for _, c in timings)
        peak = f" (peak RSS {rss[name]:.1f} MB)" if name in rss else ""
        print(
            f"| {label} | {counts[name]} | {wall:.2f} s | {cpu:.2f} s "
            f"| {base_wall / wall:.2f}x, {base_cpu / cpu:.2f}x{peak} |"
        )


if __name__ == "__main__":
    main()
