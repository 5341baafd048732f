"""Resumable split of a huge gzip CSV manifest: many passes, each a fresh process.

    python benchmarks/huge_manifest.py --size-gb 1            # generate, run, delete
    python benchmarks/huge_manifest.py --size-gb 21 --keep --path /tmp/huge/manifest-21gb.csv.gz
    python benchmarks/huge_manifest.py --size-gb 1 --s3   # through the moto S3 server instead

Generates a gzip CSV manifest of N GB (compressed), streamed to disk, then reads it through
the resumable reader (`pipeline.gzip.checkpoint`) over the same ranged-reader seam the S3 path uses,
backed by the local file (moto loads a whole object into RAM per GET). Each pass is a new Python
process that resumes from the stored checkpoint, counts lines into a null sink until its time
budget is spent, and checkpoints at the end of its last whole line. Reports passes, lines/s,
compressed MB/s, the peak RSS of a pass, bytes fetched / object size, and `gzip -dc FILE | wc -l`
on the same file side by side (target: ours >= 0.8x its lines/s). With ``--s3`` the manifest is put
into the embedded stack's S3 (moto on 127.0.0.1) and each pass reads it with one streaming GET
and stores its checkpoint index there (keep that <= ~1 GB: moto loads the object per GET).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from isal import isal_zlib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.gzip.checkpoint import Checkpoint, open_resumable, take_checkpoint  # noqa: E402
from pipeline.gzip.index_store import LocalIndexStore, S3IndexStore  # noqa: E402
from pipeline.gzip.ranged import LocalFileReader, S3ObjectReader  # noqa: E402

GB = 1_000_000_000
MB = 1_000_000
READ_BYTES = 1 << 20


def _template(lines: int = 65_536) -> bytes:
    """A block of S3 Batch Operations-style rows; `XXXXXXXX` becomes the block number."""
    rng = random.Random(20)
    return b"".join(
        b"bucket-%d,images/XXXXXXXX/%06d-%010x.jpg\n" % (i % 7, i, rng.getrandbits(40))
        for i in range(lines)
    )


def generate(path: Path, size_bytes: int) -> int:
    """Stream a gzip manifest of about ``size_bytes`` compressed to ``path``; return its lines.

    isal (level 2, ~400 MB/s) instead of gzip -6 so a 21 GB file takes minutes, not an hour;
    the ratio (~4.3x) and zran's inflate speed are the same as for a gzip -6 file of such rows.
    """
    free = shutil.disk_usage(path.parent).free
    if free < size_bytes * 1.2 + GB:
        raise SystemExit(f"not enough disk: {free / GB:.1f} GB free, need {size_bytes / GB:.1f}")
    template, written, block, lines = _template(), 0, 0, 0
    comp = isal_zlib.compressobj(2, isal_zlib.DEFLATED, 31)
    with path.open("wb") as out:
        while written < size_bytes:
            data = comp.compress(template.replace(b"XXXXXXXX", b"%08d" % block))
            written += out.write(data)
            lines += 65_536
            block += 1
        out.write(comp.flush())
    return lines


def _open_source(path: Path, state: Path, s3_url: str | None) -> tuple[object, object]:
    """The reader and index store of one pass: the local file, or s3://bucket/key on moto."""
    if s3_url is None:
        return LocalFileReader(path), LocalIndexStore(state / "index")
    import boto3  # noqa: PLC0415 - only the --s3 mode needs a client

    bucket, key = s3_url.removeprefix("s3://").split("/", 1)
    client = boto3.client("s3")
    reader = S3ObjectReader(client, bucket, key, streaming=True)
    return reader, S3IndexStore(client, bucket, "runs/bench/checkpoints")


def run_pass(path: Path, state: Path, budget_s: float, s3_url: str | None) -> dict[str, object]:
    """One Split-like pass in this process: resume, count lines until the budget, checkpoint."""
    started = time.monotonic()
    saved = state / "checkpoint.json"
    checkpoint = Checkpoint.from_dict(json.loads(saved.read_text())) if saved.exists() else None
    reader, store = _open_source(path, state, s3_url)
    opening = time.monotonic()
    stream = open_resumable(reader, checkpoint, index_store=store)
    resumed_s = time.monotonic() - opening  # index GET + import + seek (+ the first GET)
    line = checkpoint.next_line if checkpoint else 1
    position = done_offset = checkpoint.uncompressed_offset if checkpoint else 0
    deadline = started + budget_s
    while True:
        chunk = stream.read(READ_BYTES)
        if not chunk:
            break
        line += chunk.count(b"\n")  # the null sink: lines are counted, not parsed
        last_newline = chunk.rfind(b"\n")
        if last_newline >= 0:
            done_offset = position + last_newline + 1  # the counted end of the last line
        position += len(chunk)
        if time.monotonic() >= deadline:
            break
    next_checkpoint = take_checkpoint(
        stream, next_line=line, uncompressed_offset=done_offset, next_chunk=0
    )
    is_done = not chunk
    tmp = state / "checkpoint.json.tmp"
    tmp.write_text(json.dumps(next_checkpoint.to_dict()))
    tmp.replace(saved)
    return {
        "lines": line - (checkpoint.next_line if checkpoint else 1),
        "fetched": reader.bytes_fetched,
        "resume_s": resumed_s,
        "seconds": time.monotonic() - started,
        "peak_rss_mb": _peak_rss_mb(),
        "done": is_done,
        "next_line": line,
    }


def _peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM, since ru_maxrss counts the parent's RSS at fork too."""
    status = Path("/proc/self/status")
    if status.exists():
        return int(status.read_text().split("VmHWM:")[1].split()[0]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_chain(path: Path, budget_s: float, s3_url: str | None = None) -> dict[str, float]:
    """Run passes, each a fresh interpreter, until the manifest is done; aggregate them."""
    with tempfile.TemporaryDirectory(prefix="huge-state-") as state:
        passes: list[dict[str, object]] = []
        started = time.monotonic()
        while not passes or not passes[-1]["done"]:
            command = [sys.executable, __file__, "--pass", "--path", str(path)]
            command += ["--state", state, "--budget-s", str(budget_s)]
            command += ["--s3-url", s3_url] if s3_url else []
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            passes.append(json.loads(out))
            print(f"  pass {len(passes)}: {passes[-1]}", file=sys.stderr)
        wall_s = time.monotonic() - started
    size = path.stat().st_size
    return {
        "passes": len(passes),
        "lines": sum(p["lines"] for p in passes),
        "wall_s": wall_s,
        "lines_per_s": sum(p["lines"] for p in passes) / wall_s,
        "compressed_mb_per_s": size / MB / wall_s,
        "peak_rss_mb": max(p["peak_rss_mb"] for p in passes),
        "fetched_over_size": sum(p["fetched"] for p in passes) / size,
        "max_resume_s": max(p["resume_s"] for p in passes[1:]) if len(passes) > 1 else 0.0,
    }


def run_chain_via_s3(path: Path, budget_s: float) -> dict[str, float]:
    """Put the manifest into the embedded stack's S3 and run the chain against it."""
    import os  # noqa: PLC0415 - the passes inherit the emulator's endpoint and credentials

    import boto3  # noqa: PLC0415

    from pipeline.local.emulator import start_emulator  # noqa: PLC0415

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access line per GET otherwise
    emulator = start_emulator()
    os.environ.update(emulator.env)
    try:
        client = boto3.client("s3")
        client.create_bucket(Bucket="bench")
        with path.open("rb") as body:
            client.put_object(Bucket="bench", Key="huge.csv.gz", Body=body)
        return run_chain(path, budget_s, "s3://bench/huge.csv.gz")
    finally:
        emulator.stop()


def gzip_baseline(path: Path) -> tuple[int, float]:
    """`gzip -dc FILE | wc -l`: its line count and wall seconds."""
    started = time.monotonic()
    out = subprocess.run(
        f"gzip -dc '{path}' | wc -l", shell=True, check=True, capture_output=True, text=True
    ).stdout
    return int(out.strip()), time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--path", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the manifest")
    parser.add_argument("--budget-s", type=float, default=5.0, help="time budget of one pass")
    parser.add_argument("--s3", action="store_true", help="read through the moto S3 server")
    parser.add_argument("--pass", dest="one_pass", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--s3-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_pass:
        print(json.dumps(run_pass(args.path, args.state, args.budget_s, args.s3_url)))
        return
    path = args.path or Path(tempfile.gettempdir()) / f"huge-{args.size_gb:g}gb.csv.gz"
    if not (args.keep and path.exists()):
        started = time.monotonic()
        expected = generate(path, int(args.size_gb * GB))
        print(
            f"generated {path} ({path.stat().st_size / GB:.2f} GB, {expected:,} lines) "
            f"in {time.monotonic() - started:.0f} s",
            file=sys.stderr,
        )
    size_gb = path.stat().st_size / GB
    try:
        ours = run_chain_via_s3(path, args.budget_s) if args.s3 else run_chain(path, args.budget_s)
        base_lines, base_s = gzip_baseline(path)
    finally:
        if not args.keep:
            path.unlink()
    report = {
        "size_gb": round(size_gb, 3),
        "budget_s": args.budget_s,
        **{k: round(v, 3) for k, v in ours.items()},
        "gzip_dc_wc_l_lines_per_s": round(base_lines / base_s),
        "lines_match_gzip": ours["lines"] == base_lines,
        "ratio_vs_gzip_dc": round(ours["lines_per_s"] / (base_lines / base_s), 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
