"""`lambdaflow scan` against `gzip -dc | wc -l` for every manifest shape, and flat memory.

    .venv/bin/python benchmarks/manifest.py [--mb 184] [--small-mb 16] [--repeat 3] [--only URI]
    .venv/bin/python benchmarks/manifest.py --profile 8 [--only URI]  # a Split pass's time
    .venv/bin/python benchmarks/manifest.py --against TREE [--only URI]  # Split, TREE vs this
    .venv/bin/python benchmarks/manifest.py --inflaters [--only URI]  # what decompressing costs

Generates, in a temp dir, one gzip manifest per shape the contracts accept, at two sizes
(uncompressed): `s3://` URI lines (bare, and each quoted as `csv.writer` with `QUOTE_ALL`
writes them), Batch Operations `bucket,key` CSV and `bucket,key,version` CSV (URL-encoded keys,
S3 version ids), header CSVs with `uri,label` (pandas `to_csv` of a listing), `key,bucket` and
pandas' index column first (`,uri`), a quoted header CSV, an S3 Inventory report
(manifest.json + quoted, URL-encoded CSV parts), JSON Lines with `{"bucket","key"}`, with
`{"key","bucket"}` and with `{"uri"}` objects, JSON Lines as Python's `json.dumps` writes them
(a space after `:` and `,`) and as pandas `to_json` does (every `/` escaped `\\/`), JSON Lines
with other fields (a size, a version id, a label beside a `uri`), and JSON arrays: one
element a line, all on one line or indented (as `json.dump` writes them), and of URIs.
For each file it measures, side by side in this one run and `--repeat` times each (medians):
`gzip -dc FILE | wc -l` (for an Inventory report: its parts) and `lambdaflow scan FILE --json`,
both as whole processes (wall time, the CLI's start-up included), and one whole Split pass in a
fresh process (`pipeline.split.passes.split_pass` from the start to the end, no budget, the
allocator thresholds and the checkpointing reader as the Split handler sets and runs them,
every chunk message encoded into a `CountingSink`, as `benchmarks/split_huge.py` does). Prints
medians, the ratios scan / `gzip -dc | wc -l` and Split / `gzip -dc | wc -l` (≥ 1.0x is the
target), scan's and Split's own timers, and scan's peak RSS at both sizes (flat is the
target). For the large URI manifest it also times Python ISA-L counting newlines in process
(the second target: scan ≥ 0.5x that rate).
`--against TREE` instead alternates, shape by shape at the large size, a Split pass of another
checkout (TREE: say `git worktree add /tmp/before REV`) with one of this checkout and `gzip -dc
| wc -l`, `--repeat` rounds, and prints the medians and the speed-up. `--inflaters` instead
times, in process and alternated, the decompressors under a pass: zlib, ISA-L, indexed_gzip
(zran) as Split opened it before (1 MiB seek-point spacing, 4 MiB reads) and the one-inflate
reader Split opens now, against `gzip -dc | wc -l`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote_plus

from isal import igzip

ROOT = Path(__file__).resolve().parent.parent

BLOCK = 1 << 20
BUCKET = "images-bucket"
FUNCTION_ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
"""A Split pass's process runs in the function's environment (template.yaml's Globals)."""


def _key(n: int) -> str:
    return f"photos/{n % 1000:03d}/{n:09d}-{(n * 2654435761) % 2**32:08x}.jpg"


def _version(n: int) -> str:
    """An S3 version id's length and alphabet (32 URL-safe characters; `+`, `.` and `_` too)."""
    return f"{(n * 0x9E3779B97F4A7C15) % 2**128:032x}"[:24] + f".{n % 97}_+{n % 1000:03d}"


SHAPES: dict[str, tuple[str, Callable[[int], str], str, str]] = {
    # name: (file suffix, line of record n, first line, last line)
    "s3:// URIs": (".csv.gz", lambda n: f"s3://{BUCKET}/{_key(n)}\n", "", ""),
    "bucket,key CSV": (".csv.gz", lambda n: f"{BUCKET},{_key(n)}\n", "", ""),
    "bucket,key,version CSV": (
        ".csv.gz",
        lambda n: f"{BUCKET},{quote_plus(_key(n))},{_version(n)}\n",
        "",
        "",
    ),
    "uri,label header CSV": (
        ".csv.gz",
        lambda n: f"s3://{BUCKET}/{_key(n)},{n % 1000}\n",
        "uri,label\n",
        "",
    ),
    "key,bucket header CSV": (
        ".csv.gz",
        lambda n: f"{_key(n)},{BUCKET}\n",
        "key,bucket\n",
        "",
    ),
    "pandas index,uri header CSV": (
        ".csv.gz",
        lambda n: f"{n - 1},s3://{BUCKET}/{_key(n)}\n",
        ",uri\n",
        "",
    ),
    "quoted URI lines": (
        ".csv.gz",
        lambda n: f'"s3://{BUCKET}/{_key(n)}"\n',
        "",
        "",
    ),
    "quoted header CSV": (
        ".csv.gz",
        lambda n: f'"{BUCKET}","{_key(n)}","{n}"\n',
        '"Bucket","Key","Size"\n',
        "",
    ),
    "Inventory CSV": (
        ".csv.gz",
        lambda n: f'"{BUCKET}","{quote_plus(_key(n) + " x")}","{n}"\n',
        "",
        "",
    ),
    "JSON Lines bucket,key": (
        ".jsonl.gz",
        lambda n: f'{{"bucket":"{BUCKET}","key":"{_key(n)}"}}\n',
        "",
        "",
    ),
    "JSON Lines key,bucket": (
        ".jsonl.gz",
        lambda n: f'{{"key":"{_key(n)}","bucket":"{BUCKET}"}}\n',
        "",
        "",
    ),
    "JSON Lines json.dumps": (
        ".jsonl.gz",
        lambda n: f'{{"bucket": "{BUCKET}", "key": "{_key(n)}"}}\n',
        "",
        "",
    ),
    "JSON Lines pandas": (
        ".jsonl.gz",
        lambda n: f'{{"bucket":"{BUCKET}","key":"{_key(n)}"}}\n'.replace("/", "\\/"),
        "",
        "",
    ),
    "JSON Lines uri": (
        ".jsonl.gz",
        lambda n: f'{{"uri":"s3://{BUCKET}/{_key(n)}"}}\n',
        "",
        "",
    ),
    "JSON array": (
        ".json.gz",
        lambda n: f'{"[" if n == 1 else ","}{{"bucket":"{BUCKET}","key":"{_key(n)}"}}\n',
        "",
        "]\n",
    ),
    "JSON Lines with a size": (
        ".jsonl.gz",
        lambda n: f'{{"bucket":"{BUCKET}","key":"{_key(n)}","size":{n * 7919 % 10**7}}}\n',
        "",
        "",
    ),
    "JSON Lines with a version_id": (
        ".jsonl.gz",
        lambda n: f'{{"bucket":"{BUCKET}","key":"{_key(n)}","version_id":"{_version(n)}"}}\n',
        "",
        "",
    ),
    "JSON Lines uri,label": (
        ".jsonl.gz",
        lambda n: f'{{"uri": "s3://{BUCKET}/{_key(n)}", "label": {n % 1000}}}\n',
        "",
        "",
    ),
    "JSON array on one line": (
        ".json.gz",
        lambda n: f'{"[" if n == 1 else ", "}{{"bucket": "{BUCKET}", "key": "{_key(n)}"}}',
        "",
        "]",
    ),
    "JSON array indented": (
        ".json.gz",
        lambda n: (
            ("[\n" if n == 1 else ",\n")
            + f'  {{\n    "bucket": "{BUCKET}",\n    "key": "{_key(n)}"\n  }}'
        ),
        "",
        "\n]",
    ),
    "JSON array of URIs": (
        ".json.gz",
        lambda n: f'{"[" if n == 1 else ", "}"s3://{BUCKET}/{_key(n)}"',
        "",
        "]",
    ),
}


def generate(path: Path, shape: str, target_bytes: int) -> int:
    """Write a gzip manifest of about `target_bytes` uncompressed; return its record count."""
    _, line, first, last = SHAPES[shape]
    return write_lines(path, line, target_bytes, first=first, last=last)


def write_lines(
    path: Path, line: Callable[[int], str], target_bytes: int, *, first: str = "", last: str = ""
) -> int:
    """Write `first`, lines 1, 2, … to about `target_bytes`, then `last`; return how many lines.

    gzip-compressed by ISA-L at level 3, 20,000 lines a write.
    """
    n, written = 0, 0
    with igzip.open(path, "wb", compresslevel=3) as out:
        out.write(first.encode())
        while written < target_bytes:
            block = "".join(line(i) for i in range(n + 1, n + 20_001)).encode()
            out.write(block)
            n += 20_000
            written += len(block)
        out.write(last.encode())
    return n


def inventory(root: Path, target_bytes: int, name: str) -> tuple[Path, list[Path], int]:
    """An S3 Inventory report: manifest.json and two gzip CSV parts under data/."""
    (root / name / "data").mkdir(parents=True)
    parts = [root / name / "data" / f"part-{i}.csv.gz" for i in range(2)]
    records = sum(generate(p, "Inventory CSV", target_bytes // 2) for p in parts)
    doc = {
        "sourceBucket": BUCKET,
        "destinationBucket": "arn:aws:s3:::inventory",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size",
        "files": [{"key": f"data/{p.name}", "size": p.stat().st_size} for p in parts],
    }
    manifest = root / name / "manifest.json"
    manifest.write_text(json.dumps(doc))
    return manifest, parts, records


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_shell(cmd: str) -> tuple[float, int, float]:
    """Wall seconds, the count printed, CPU seconds of the pipeline's processes."""
    cpu, started = _children_cpu_s(), time.perf_counter()
    out = subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - started, int(out.strip()), _children_cpu_s() - cpu


def timed_scan(path: Path) -> tuple[float, dict, float]:
    """Wall seconds, the `--json` report, CPU seconds of the process."""
    exe = Path(sys.executable).with_name("lambdaflow")
    cpu, started = _children_cpu_s(), time.perf_counter()
    out = subprocess.run(
        [str(exe), "scan", str(path), "--json"], check=True, capture_output=True, text=True
    ).stdout
    return time.perf_counter() - started, json.loads(out), _children_cpu_s() - cpu


def _keep_freed_buffers_if_there() -> None:
    """As the Split handler's cold start does, in a checkout that has it (else as it ran)."""
    try:
        from pipeline.allocator import keep_freed_buffers  # noqa: PLC0415
    except ImportError:
        return
    keep_freed_buffers()


def split_pass_here(path: Path, root: Path = ROOT) -> dict[str, object]:
    """One Split pass over the whole manifest in this process (the `--split-pass` child)."""
    sys.path.insert(0, str(root))
    _keep_freed_buffers_if_there()
    from pipeline.gzip.index_store import LocalIndexStore  # noqa: PLC0415
    from pipeline.gzip.ranged import LocalFileReader  # noqa: PLC0415
    from pipeline.split.passes import SplitOptions, split_pass  # noqa: PLC0415
    from pipeline.split.sinks import CountingSink, MemoryParseFailureWriter  # noqa: PLC0415

    sink = CountingSink()
    with tempfile.TemporaryDirectory(prefix="lambdaflow-split-") as index:
        outcome = split_pass(
            str(path),
            None,
            run="bench",
            options=SplitOptions(budget_s=None),
            open_reader=LocalFileReader,
            sink=sink,
            failures=MemoryParseFailureWriter(),
            index_store=LocalIndexStore(index),
        )
    assert outcome.is_done, outcome
    status = Path("/proc/self/status").read_text().splitlines()
    hwm_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    return {
        "peak_rss_mb": hwm_kb / 1024,
        "records": sink.items,
        "lines": outcome.lines,
        "chunks": sink.chunks,
        "message_bytes": sink.message_bytes,
        "seconds": outcome.seconds,
    }


def timed_split(path: Path, root: Path = ROOT) -> tuple[float, dict, float]:
    """Wall seconds, the pass's report, CPU seconds of a fresh process running one Split pass.

    `root`: the checkout whose `pipeline` the pass runs.
    """
    cpu, started = _children_cpu_s(), time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-P", __file__, "--split-pass", str(path), "--root", str(root)],
        env=FUNCTION_ENV,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return time.perf_counter() - started, json.loads(out), _children_cpu_s() - cpu


def isal_count(path: Path) -> float:
    started = time.perf_counter()
    lines = 0
    with igzip.open(path) as f:
        while block := f.read(BLOCK):
            lines += block.count(b"\n")
    return time.perf_counter() - started


def measure(path: Path, raw_files: list[Path], records: int, repeat: int) -> dict:
    """Medians of `gzip -dc | wc -l`, of `scan` and of a Split pass, alternated run by run."""
    cmd = f"gzip -dc {' '.join(map(str, raw_files))} | wc -l"
    raw_s, scan_s, own_s, raw_cpu, scan_cpu, report = [], [], [], [], [], {}
    split_s, split_own, split_cpu, split_rss = [], [], [], 0.0
    for _ in range(repeat):
        secs, lines, cpu = timed_shell(cmd)
        raw_s.append(secs)
        raw_cpu.append(cpu)
        secs, report, cpu = timed_scan(path)
        scan_s.append(secs)
        scan_cpu.append(cpu)
        own_s.append(report["seconds"])
        assert report["complete"] and report["records"] == records, (path, report)
        secs, split, cpu = timed_split(path)
        split_s.append(secs)
        split_cpu.append(cpu)
        split_own.append(split["seconds"])
        split_rss = max(split_rss, split["peak_rss_mb"])
        assert split["records"] == records, (path, split)
    raw, scan = statistics.median(raw_s), statistics.median(scan_s)
    split_median = statistics.median(split_s)
    return {
        "lines": lines,
        "raw_s": raw,
        "scan_s": scan,
        "own_s": statistics.median(own_s),
        "raw_cpu": statistics.median(raw_cpu),
        "scan_cpu": statistics.median(scan_cpu),
        "ratio": raw / scan,
        "split_s": split_median,
        "split_own_s": statistics.median(split_own),
        "split_cpu": statistics.median(split_cpu),
        "split_ratio": raw / split_median,
        "split_rss": split_rss,
        "rss": report["peak_rss_mb"],
        "gz_mb": sum(p.stat().st_size for p in raw_files) / 1e6,
    }


def profile_split(path: Path, raw_files: list[Path], top: int) -> None:
    """One Split pass in a fresh process under cProfile: the `top` functions by own time.

    Where a pass's time goes beside `gzip -dc | wc -l` on the same file: measure before
    changing. cProfile slows Python calls, not the numpy and bytes methods they make.
    """
    import pstats  # noqa: PLC0415

    raw_s = timed_shell(f"gzip -dc {' '.join(map(str, raw_files))} | wc -l")[0]
    out = path.parent / "split.prof"
    command = [sys.executable, "-m", "cProfile", "-o", str(out), __file__, "--split-pass"]
    report = json.loads(
        subprocess.run([*command, str(path)], check=True, capture_output=True, text=True).stdout
    )
    stats = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]
    rows = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    print(f"Split pass {report['seconds']:.2f} s (own timer), `gzip -dc | wc -l` {raw_s:.2f} s")
    for (file, line, name), (_, calls, own, *_) in rows:
        where = f"{Path(file).name}:{line}({name})" if line else name
        print(f"  {own:6.3f} s  {own / report['seconds']:5.1%}  {calls:>7,} calls  {where}")
    out.unlink()


def profile_shapes(shapes: list[str], mb: int, top: int) -> None:
    """`profile_split` of each shape at the large size."""
    with tempfile.TemporaryDirectory(prefix="lambdaflow-bench-") as tmp:
        for shape in shapes:
            print(f"## {shape}, {mb} MB")
            path, raw_files, _ = build(Path(tmp), shape, mb, "large")
            profile_split(path, raw_files, top)


def against(tree: Path, shapes: list[str], mb: int, repeat: int) -> None:
    """Split passes of `tree` and of this checkout, alternated, a shape at a time: medians."""
    print(
        "| shape | `gzip -dc \\| wc -l` | TREE (own timer) | this (own timer) "
        "| ratio to `gzip` | speed-up |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="lambdaflow-bench-") as tmp:
        for shape in shapes:
            path, raw_files, _ = build(Path(tmp), shape, mb, "large")
            raw, runs = [], {tree: ([], []), ROOT: ([], [])}
            for _ in range(repeat):
                raw.append(timed_shell(f"gzip -dc {' '.join(map(str, raw_files))} | wc -l")[0])
                for root, (wall, own) in runs.items():
                    secs, report, _ = timed_split(path, root)
                    wall.append(secs)
                    own.append(report["seconds"])
            gz = statistics.median(raw)
            (was, was_own), (now, now_own) = (
                tuple(map(statistics.median, runs[r])) for r in (tree, ROOT)
            )
            print(
                f"| {shape} | {gz:.2f} s | {was:.2f} s ({was_own:.2f}) | {now:.2f} s "
                f"({now_own:.2f}) | {gz / was:.2f}x → {gz / now:.2f}x | **{was / now:.2f}x** |",
                flush=True,
            )
            for p in raw_files:
                p.unlink(missing_ok=True)


def fresh_bytecode(*roots: Path) -> None:
    """Compile each checkout's `pipeline` as `make setup` does, before any process is timed.

    A fresh process should import what an installed copy imports: a stale or missing `.pyc`
    (a new worktree, or PYTHONDONTWRITEBYTECODE set) would add ~50-150 ms of compiling to every
    pass measured, more to the side whose modules changed last.
    """
    import compileall  # noqa: PLC0415 (not in the timed child)

    for root in roots:
        compileall.compile_dir(root / "pipeline", quiet=1)


def _inflate_zlib(path: Path) -> None:
    decoder = zlib.decompressobj(31)
    with path.open("rb") as f:
        while block := f.read(BLOCK):
            decoder.decompress(block)


def _inflate_isal(path: Path) -> None:
    with igzip.open(path) as f:
        while f.read(BLOCK):
            pass


def _inflate_zran(path: Path) -> None:
    """As `ZranRaw.open` reads for Split: 1 MiB seek-point spacing, the read-ahead's 4 MiB reads."""
    from indexed_gzip import IndexedGzipFile  # noqa: PLC0415

    buffer = bytearray(4 * BLOCK)
    with IndexedGzipFile(str(path), spacing=BLOCK, readbuf_size=BLOCK, buffer_size=BLOCK) as f:
        while f.readinto(buffer):
            pass


def _inflate_once(path: Path) -> None:
    """As Split reads now (`OneInflateRaw`): 4 MiB spacing and reads, ISA-L CRCs, zran unused."""
    from pipeline.gzip.one_inflate import OneInflateRaw  # noqa: PLC0415
    from pipeline.gzip.ranged import LocalFileReader, RangedRawFile  # noqa: PLC0415

    def no_zran(_index: object, _offset: int) -> io.RawIOBase:
        raise AssertionError("a generated manifest is plain gzip")

    source = RangedRawFile(LocalFileReader(path), block_bytes=BLOCK, cache_bytes=32 * BLOCK)
    raw = OneInflateRaw.open(
        source,
        index=None,
        offset=0,
        spacing_bytes=4 * BLOCK,
        keep_behind_bytes=64 * BLOCK,
        read_bytes=BLOCK,
        hand_over=no_zran,
    )
    buffer = bytearray(4 * BLOCK)
    while raw.readinto(buffer):
        pass
    raw.close()


INFLATERS = {
    "zlib": _inflate_zlib,
    "ISA-L": _inflate_isal,
    "zran (Split before)": _inflate_zran,
    "one inflate (Split)": _inflate_once,
}


def inflaters(shapes: list[str], mb: int, repeat: int) -> None:
    """Medians of decompressing each file, in process, beside `gzip -dc | wc -l` on it.

    zran (indexed_gzip) is what a Split pass read through before; it inflates every byte twice
    (once to lay its seek points, once more from the point before each read). A pass now
    inflates once (`OneInflateRaw`, zlib through ctypes), laying the same seek points.
    """
    print("| shape | `gzip -dc \\| wc -l` | " + " | ".join(INFLATERS) + " | zran / one inflate |")
    print("|---|---:|" + "---:|" * (len(INFLATERS) + 1))
    with tempfile.TemporaryDirectory(prefix="lambdaflow-bench-") as tmp:
        for shape in shapes:
            _, raw_files, _ = build(Path(tmp), shape, mb, "large")
            times: dict[str, list[float]] = {"gzip": [], **{name: [] for name in INFLATERS}}
            for _ in range(repeat):
                times["gzip"].append(
                    timed_shell(f"gzip -dc {' '.join(map(str, raw_files))} | wc -l")[0]
                )
                for name, inflate in INFLATERS.items():
                    started = time.perf_counter()
                    for raw in raw_files:
                        inflate(raw)
                    times[name].append(time.perf_counter() - started)
            med = {name: statistics.median(ts) for name, ts in times.items()}
            cells = " | ".join(f"{med[name]:.2f} s" for name in INFLATERS)
            ratio = med["zran (Split before)"] / med["one inflate (Split)"]
            print(f"| {shape} | {med['gzip']:.2f} s | {cells} | {ratio:.2f}x |", flush=True)


def build(root: Path, shape: str, mb: int, tag: str) -> tuple[Path, list[Path], int]:
    if shape == "Inventory CSV":
        return inventory(root, mb * 2**20, f"inventory-{tag}")
    path = root / f"{re.sub(r'[^A-Za-z0-9]+', '_', shape)}-{tag}"  # a safe shell word
    path = path.with_suffix(SHAPES[shape][0])
    return path, [path], generate(path, shape, mb * 2**20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=184, help="uncompressed size, large files")
    parser.add_argument("--small-mb", type=int, default=16, help="uncompressed size, small")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, medians shown")
    parser.add_argument("--only", default="", help="shapes whose name contains this")
    parser.add_argument("--large-only", action="store_true", help="skip the small size")
    parser.add_argument(
        "--profile", type=int, metavar="N", help="instead: profile one Split pass, top N functions"
    )
    parser.add_argument(
        "--against", type=Path, metavar="TREE", help="instead: Split, TREE's side by side"
    )
    parser.add_argument(
        "--inflaters", action="store_true", help="instead: time the decompressors, in process"
    )
    parser.add_argument("--split-pass", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.split_pass:
        print(json.dumps(split_pass_here(args.split_pass, args.root.resolve())))
        return
    fresh_bytecode(ROOT, *([args.against.resolve()] if args.against else []))
    if args.against:
        shapes = [s for s in SHAPES if args.only.lower() in s.lower()]
        against(args.against.resolve(), shapes, args.mb, args.repeat)
        return
    if args.inflaters:
        inflaters([s for s in SHAPES if args.only.lower() in s.lower()], args.mb, args.repeat)
        return
    if args.profile:
        profile_shapes([s for s in SHAPES if args.only.lower() in s.lower()], args.mb, args.profile)
        return
    shapes = [s for s in SHAPES if args.only.lower() in s.lower()]
    with tempfile.TemporaryDirectory(prefix="lambdaflow-bench-") as tmp:
        need_gb = (args.mb + args.small_mb) * len(shapes) * 0.15 / 1e3 + 0.1
        if shutil.disk_usage(tmp).free / 1e9 < need_gb * 2:
            sys.exit(f"need ~{need_gb:.1f} GB free in {tmp}")
        root = Path(tmp)
        print(
            "| shape | size | lines | gzip -dc \\| wc -l | scan (process) | scan own timer "
            "| scan / gzip -dc \\| wc -l | Split pass (process) | Split own timer "
            "| Split / gzip -dc \\| wc -l | scan M lines/s | peak RSS scan / Split "
            "| CPU s wc / scan / Split |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for shape in shapes:
            sizes = ((args.small_mb, "small"), (args.mb, "large"))
            for mb, tag in sizes[1:] if args.large_only else sizes:
                path, raw_files, records = build(root, shape, mb, tag)
                m = measure(path, raw_files, records, args.repeat)
                print(
                    f"| {shape} | {mb} MB ({m['gz_mb']:.1f} MB gz) | {m['lines']:,} "
                    f"| {m['raw_s']:.2f} s | {m['scan_s']:.2f} s | {m['own_s']:.2f} s "
                    f"| **{m['ratio']:.2f}x** | {m['split_s']:.2f} s | {m['split_own_s']:.2f} s "
                    f"| **{m['split_ratio']:.2f}x** | {m['lines'] / m['scan_s'] / 1e6:.2f} "
                    f"| {m['rss']:.1f} / {m['split_rss']:.1f} MB "
                    f"| {m['raw_cpu']:.2f} / {m['scan_cpu']:.2f} / {m['split_cpu']:.2f} |",
                    flush=True,
                )
                if shape == "s3:// URIs" and tag == "large":
                    isal = statistics.median(isal_count(path) for _ in range(args.repeat))
                    print(
                        f"|  ↳ Python ISA-L line count in process: {isal:.2f} s; scan's own "
                        f"timer / it: {isal / m['own_s']:.2f}x; Split's own timer / it: "
                        f"{isal / m['split_own_s']:.2f}x | | | | | | | | | | | | |",
                        flush=True,
                    )
                for p in raw_files:
                    p.unlink()


if __name__ == "__main__":
    main()
