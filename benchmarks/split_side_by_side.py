"""`gzip -dc FILE | wc -l` against one whole Split pass of one or more source trees, alternated.

    .venv/bin/python benchmarks/split_side_by_side.py FILE.gz ROUNDS TREE [TREE …]

A TREE is a directory holding a `pipeline` package (this checkout: `.`; the code before a
change: `git archive BASE pipeline | tar -x -C /tmp/base`). Each round runs
`gzip -dc | wc -l`, then, for each tree, a fresh Python process (this interpreter, that tree's
`pipeline`) running `pipeline.split.passes.split_pass` over the whole file with no budget, every
chunk message encoded into a `CountingSink`, as `benchmarks/split_huge.py` does. Prints the
median wall time (process start to exit), the median CPU seconds (user + system), the pass's
own timer, peak RSS, and the ratio `gzip -dc | wc -l` / Split (≥ 1.0x is the target).
Alternating puts every tree under the same load on a shared machine.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_pass(tree: str, path: str) -> dict[str, object]:
    """The child: one Split pass over `path` with `tree`'s code (imported here, after start)."""
    sys.path.insert(0, tree)
    from pipeline.gzip.index_store import LocalIndexStore  # noqa: PLC0415
    from pipeline.gzip.ranged import LocalFileReader  # noqa: PLC0415
    from pipeline.split.passes import SplitOptions, split_pass  # noqa: PLC0415
    from pipeline.split.sinks import CountingSink, MemoryParseFailureWriter  # noqa: PLC0415

    sink = CountingSink()
    with tempfile.TemporaryDirectory(prefix="lambdaflow-split-") as index:
        outcome = split_pass(
            path,
            None,
            run="bench",
            options=SplitOptions(budget_s=None),
            open_reader=LocalFileReader,
            sink=sink,
            failures=MemoryParseFailureWriter(),
            index_store=LocalIndexStore(index),
        )
    assert outcome.is_done, outcome
    hwm = next(
        line for line in Path("/proc/self/status").read_text().splitlines() if "VmHWM" in line
    )
    return {
        "records": sink.items,
        "message_bytes": sink.message_bytes,
        "seconds": outcome.seconds,
        "peak_rss_mb": int(hwm.split()[1]) / 1024,
    }


def main() -> None:
    if sys.argv[1] == "--pass":
        print(json.dumps(one_pass(sys.argv[2], sys.argv[3])))
        return
    path, rounds, *trees = sys.argv[1:]
    commands = {"gzip -dc | wc -l": ["sh", "-c", f"gzip -dc '{path}' | wc -l"]}
    commands |= {tree: [sys.executable, __file__, "--pass", tree, path] for tree in trees}
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    own: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, float] = {}
    reports: dict[str, dict] = {}
    for _ in range(int(rounds)):
        for name, command in commands.items():
            before, started = _cpu_s(), time.perf_counter()
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(_cpu_s() - before)
            if name in trees:
                reports[name] = json.loads(out)
                own[name].append(reports[name]["seconds"])
                rss[name] = max(rss.get(name, 0.0), reports[name]["peak_rss_mb"])
    messages = {(r["records"], r["message_bytes"]) for r in reports.values()}
    assert len(messages) == 1, reports  # every tree sent the same records, the same bytes
    base = statistics.median(wall["gzip -dc | wc -l"])
    for name in commands:
        line = (
            f"{name}: wall {statistics.median(wall[name]):.2f} s (min {min(wall[name]):.2f}), "
            f"CPU {statistics.median(cpu[name]):.2f} s"
        )
        if name in trees:
            line += (
                f", own timer {statistics.median(own[name]):.2f} s, peak RSS {rss[name]:.1f} MB,"
                f" ratio {base / statistics.median(wall[name]):.2f}x"
            )
        print(line, flush=True)


if __name__ == "__main__":
    main()
