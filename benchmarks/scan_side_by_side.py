"""`gzip -dc FILE | wc -l` against `lambdaflow scan FILE --json` of one or more builds, alternated.

    .venv/bin/python benchmarks/scan_side_by_side.py FILE.gz ROUNDS LAMBDAFLOW [LAMBDAFLOW …]

Each round runs `gzip -dc | wc -l`, then each given `lambdaflow` executable (say the main
checkout's and a branch's), as whole processes; prints the median wall time, the median CPU
seconds (user + system of the process tree), scan's own timer and peak RSS, and the ratio
`gzip -dc | wc -l` / scan (≥ 1.0x is the target). Alternating puts every build under the
same load on a shared machine.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    path, rounds, *builds = sys.argv[1:]
    commands = {"gzip -dc | wc -l": ["sh", "-c", f"gzip -dc '{path}' | wc -l"]}
    commands |= {exe: [exe, "scan", path, "--json"] for exe in builds}
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    own: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, float] = {}
    for _ in range(int(rounds)):
        for name, command in commands.items():
            before, started = _cpu_s(), time.perf_counter()
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(_cpu_s() - before)
            if name in builds:
                report = json.loads(out)
                assert report["complete"], report
                own[name].append(report["seconds"])
                rss[name] = max(rss.get(name, 0.0), report["peak_rss_mb"])
    base = statistics.median(wall["gzip -dc | wc -l"])
    for name in commands:
        line = (
            f"{name}: wall {statistics.median(wall[name]):.2f} s (min {min(wall[name]):.2f}), "
            f"CPU {statistics.median(cpu[name]):.2f} s"
        )
        if name in builds:
            line += (
                f", own timer {statistics.median(own[name]):.2f} s, peak RSS {rss[name]} MB, "
                f"ratio {base / statistics.median(wall[name]):.2f}x"
            )
        print(line)


if __name__ == "__main__":
    main()
