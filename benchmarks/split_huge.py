"""The real Split over a huge gzip manifest: many passes, each a fresh process, a counting sink.

    python benchmarks/split_huge.py --path /tmp/huge/manifest-21gb.csv.gz --budget-s 120
    python benchmarks/split_huge.py --size-gb 1 --keep --path /tmp/huge-1gb.csv.gz --s3

Each pass is a new Python process running `pipeline.split.passes.split_pass` (decompress, parse,
cut chunks, encode each chunk message) from the checkpoint the previous pass stored, through
the same ranged-reader seam the S3 path uses: backed by the local file (moto cannot serve
20 GB) or, with ``--s3``, by the embedded stack's S3 (keep that <= ~1 GB). The
sender is swapped for `CountingSink` (it encodes each message and counts it). Reports passes,
lines/s, compressed MB/s, the peak RSS of a pass, bytes fetched / object size, whether the run
completed, how many passes resumed with their gzip member's CRC-32 so far (so the whole member
is checked at its trailer), and the same machine's `gzip -dc | wc -l` lines/s on the same file
(``--baseline-gb N``: on its first N GB only, to save time on a 21 GB file). The manifest is made
by `huge_manifest.generate`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from huge_manifest import GB, MB, _peak_rss_mb, generate  # noqa: E402
from manifest import FUNCTION_ENV  # noqa: E402  # each pass in the Split function's environment

from pipeline.allocator import keep_freed_buffers  # noqa: E402
from pipeline.gzip.checkpoint import Checkpoint  # noqa: E402
from pipeline.gzip.index_store import LocalIndexStore, S3IndexStore  # noqa: E402
from pipeline.gzip.ranged import LocalFileReader, S3ObjectReader  # noqa: E402
from pipeline.split.passes import SplitOptions, split_pass  # noqa: E402
from pipeline.split.sinks import CountingSink, MemoryParseFailureWriter  # noqa: E402


def run_pass(source: str, state: Path, budget_s: float) -> dict[str, object]:
    """One Split pass in this process, resuming from (and storing) `state/checkpoint.json`."""
    keep_freed_buffers()  # as the Split handler's cold start does
    started = time.monotonic()
    saved = state / "checkpoint.json"
    checkpoint = Checkpoint.from_dict(json.loads(saved.read_text())) if saved.exists() else None
    if source.startswith("s3://"):
        import boto3  # noqa: PLC0415 - only the --s3 mode needs a client

        client = boto3.client("s3")
        bucket = source.removeprefix("s3://").split("/", 1)[0]

        def open_reader(location: str) -> S3ObjectReader:
            b, key = location.removeprefix("s3://").split("/", 1)
            return S3ObjectReader(client, b, key, streaming=True)

        store = S3IndexStore(client, bucket, "checkpoints/bench")
    else:
        open_reader, store = LocalFileReader, LocalIndexStore(state / "index")
    sink, failures = CountingSink(), MemoryParseFailureWriter()
    outcome = split_pass(
        source,
        checkpoint,
        run="bench",
        options=SplitOptions(budget_s=budget_s),
        open_reader=open_reader,
        sink=sink,
        failures=failures,
        index_store=store,
    )
    tmp = state / "checkpoint.json.tmp"
    tmp.write_text(json.dumps(outcome.checkpoint.to_dict()))
    tmp.replace(saved)
    return {
        "pass": outcome.passes,
        "lines": outcome.pass_lines,
        "chunks": outcome.pass_chunks,
        "message_mb": round(sink.message_bytes / MB, 1),
        "fetched": outcome.bytes_fetched,
        "seconds": round(time.monotonic() - started, 2),
        "split_s": round(outcome.seconds, 2),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "cpu_s": round(sum(os.times()[:2]), 2),
        "done": outcome.is_done,
        "total_lines": outcome.lines,
        "reason": outcome.reason,
        "resumed_with_member_crc": checkpoint is not None and checkpoint.member_crc is not None,
    }


def run_chain(source: str, size: int, budget_s: float, log: Path | None) -> dict[str, float]:
    """Run passes, each a fresh interpreter, until the split is done; aggregate them."""
    with tempfile.TemporaryDirectory(prefix="split-huge-") as state:
        passes: list[dict[str, object]] = []
        started = time.monotonic()
        while not passes or not passes[-1]["done"]:
            command = [sys.executable, __file__, "--pass", "--source", source]
            command += ["--state", state, "--budget-s", str(budget_s)]
            out = subprocess.run(
                command, env=FUNCTION_ENV, check=True, capture_output=True, text=True
            ).stdout
            passes.append(json.loads(out))
            line = f"pass {len(passes)} at {time.monotonic() - started:.0f} s: {passes[-1]}"
            print(line, file=sys.stderr, flush=True)
            if log is not None:
                with log.open("a") as f:
                    f.write(line + "\n")
        wall_s = time.monotonic() - started
    lines = sum(p["lines"] for p in passes)
    return {
        "passes": len(passes),
        "lines": lines,
        "chunks": sum(p["chunks"] for p in passes),
        "wall_s": wall_s,
        "lines_per_s": lines / wall_s,
        "compressed_mb_per_s": size / MB / wall_s,
        "peak_rss_mb": max(p["peak_rss_mb"] for p in passes),
        "fetched_over_size": sum(p["fetched"] for p in passes) / size,
        "lines_per_cpu_s": lines / sum(p.get("cpu_s", 0.0) for p in passes),
        "passes_resumed_with_member_crc": sum(bool(p["resumed_with_member_crc"]) for p in passes),
        "complete": passes[-1]["reason"] is None,
    }


def gzip_baseline(path: Path, limit_bytes: int | None) -> tuple[int, float, float]:
    """`gzip -dc | wc -l` (on the first `limit_bytes` of the file when given).

    Returns its lines, wall seconds and CPU seconds (all its processes: on a busy machine the
    CPU rate is the fairer comparison).
    """
    reader = f"head -c {limit_bytes} '{path}'" if limit_bytes else f"cat '{path}'"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    out = subprocess.run(
        f"{reader} | (gzip -dc 2>/dev/null; true) | wc -l",
        shell=True,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    wall_s = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return int(out.strip()), wall_s, cpu_s


def _with_s3(path: Path, budget_s: float, log: Path | None) -> dict[str, float]:
    """Put the manifest into the embedded stack's S3 (moto on 127.0.0.1), run the chain on it."""
    import logging  # noqa: PLC0415

    import boto3  # noqa: PLC0415

    from pipeline.local.emulator import start_emulator  # noqa: PLC0415

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    emulator = start_emulator()
    os.environ.update(emulator.env)  # the pass processes inherit endpoint and credentials
    try:
        client = boto3.client("s3")
        client.create_bucket(Bucket="bench")
        with path.open("rb") as body:
            client.put_object(Bucket="bench", Key=path.name, Body=body)
        return run_chain(f"s3://bench/{path.name}", path.stat().st_size, budget_s, log)
    finally:
        emulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, required=False)
    parser.add_argument("--size-gb", type=float, default=1.0, help="generate this size if absent")
    parser.add_argument("--keep", action="store_true", help="keep a generated manifest")
    parser.add_argument("--budget-s", type=float, default=60.0, help="time budget of one pass")
    parser.add_argument("--baseline-gb", type=float, help="gzip -dc baseline on the first N GB")
    parser.add_argument("--s3", action="store_true", help="read through the moto S3 server")
    parser.add_argument("--log", type=Path, help="append each pass's line here")
    parser.add_argument("--pass", dest="one_pass", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_pass:
        print(json.dumps(run_pass(args.source, args.state, args.budget_s)))
        return
    path = args.path or Path(tempfile.gettempdir()) / f"huge-{args.size_gb:g}gb.csv.gz"
    generated = not path.exists()
    if generated:
        generate(path, int(args.size_gb * GB))
    size = path.stat().st_size
    try:
        ours = (
            _with_s3(path, args.budget_s, args.log)
            if args.s3
            else run_chain(str(path), size, args.budget_s, args.log)
        )
        limit = int(args.baseline_gb * GB) if args.baseline_gb else None
        base_lines, base_s, base_cpu_s = gzip_baseline(path, limit)
    finally:
        if generated and not args.keep:
            path.unlink()
    base_rate = base_lines / base_s
    report = {
        "source": "moto S3" if args.s3 else "local file",
        "size_gb": round(size / GB, 3),
        "budget_s": args.budget_s,
        **{k: v if isinstance(v, bool) else round(v, 3) for k, v in ours.items()},
        "gzip_dc_wc_l_lines_per_s": round(base_rate),
        "gzip_dc_wc_l_on_gb": round((limit or size) / GB, 3),
        "ratio_vs_gzip_dc": round(ours["lines_per_s"] / base_rate, 3),
        "gzip_dc_wc_l_lines_per_cpu_s": round(base_lines / base_cpu_s),
        "cpu_ratio_vs_gzip_dc": round(ours["lines_per_cpu_s"] * base_cpu_s / base_lines, 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
