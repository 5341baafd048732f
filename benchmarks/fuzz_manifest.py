"""Fuzz the manifest parser: ≥ 100,000 inputs, 0 unexpected exceptions; plus one 2 GB line.

    .venv/bin/python benchmarks/fuzz_manifest.py                    # atheris, 100,000 runs
    .venv/bin/python benchmarks/fuzz_manifest.py --engine mutate    # seeded random mutation
    .venv/bin/python benchmarks/fuzz_manifest.py --huge-line-gb 2   # only the 2 GB line check

Each input is written as a manifest file (its name's suffix and the line limit are taken from
the input's first bytes, so every format's sniffing and the gzip path are reached) and read to
the end through `pipeline.manifest.reader.iter_manifest` — the record reader Split and `scan` use.
Allowed: records and `ManifestLineError` items with strictly increasing line numbers, and at most
one `ManifestReadError` at the end (a truncated or corrupt stream). Anything else is an unexpected
exception: the input is saved to `fuzz-crashes/` and the run fails.

Engines: `atheris` (coverage-guided libFuzzer, `pipeline.manifest.reader*` instrumented, seeded with
valid manifests of every format) when it imports; else `mutate` — byte flips, splices, cuts,
inserted newlines / NULs / invalid UTF-8, gzip wrapping and truncation of valid manifests, from
a fixed seed (reproducible).
"""

from __future__ import annotations

import argparse
import atexit
import gzip
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path

SUFFIXES = (".csv", ".csv.gz", ".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".txt")
WORK = Path(
    tempfile.mkdtemp(prefix="fuzz-manifest-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
)
atexit.register(shutil.rmtree, WORK, ignore_errors=True)
CRASHES = Path("fuzz-crashes")
STARTED = time.perf_counter()
STATS = {"inputs": 0, "records": 0, "line_errors": 0, "read_errors": 0, "unexpected": 0}


def seeds() -> list[bytes]:
    """Valid manifests of every format (and their gzip), the mutation starting points."""
    keys = ["a.jpg", "dir/b c.png", "ü/ß.jpg", "x+y%20.jpg", "k,with,commas.jpg"]
    uri = "".join(f"s3://bkt-1/{k}\n" for k in keys).encode()
    batch = "".join(f"bkt-1,{k.replace(' ', '+')}\n" for k in keys).encode()
    header = b"bucket,key,size\n" + b"".join(f'"bkt-1","{k}",1\n'.encode() for k in keys)
    jsonl = "".join(json.dumps({"bucket": "bkt-1", "key": k}) + "\n" for k in keys).encode()
    array = json.dumps([f"s3://bkt-1/{k}" for k in keys]).encode()
    plain = [uri, batch, header, jsonl, array]
    return plain + [gzip.compress(p) for p in plain]


def check_one(data: bytes) -> None:
    """Read `data` as a manifest; raise AssertionError/anything on an unexpected outcome."""
    from pipeline.failures import ManifestLineError, ManifestReadError  # noqa: PLC0415
    from pipeline.manifest.reader import ManifestRecord, iter_manifest  # noqa: PLC0415

    selector = data[0] if data else 0
    path = WORK / f"m{SUFFIXES[selector % len(SUFFIXES)]}"
    path.write_bytes(data)
    limit = (1, 16, 200, 64 * 1024)[(selector >> 3) % 4]
    previous = 0
    STATS["inputs"] += 1
    try:
        for item in iter_manifest(str(path), max_line_bytes=limit):
            if isinstance(item, ManifestRecord):
                STATS["records"] += 1
            elif isinstance(item, ManifestLineError):
                STATS["line_errors"] += 1
            else:
                raise AssertionError(f"unexpected item {item!r}")
            if item.line is None or item.line <= previous:
                raise AssertionError(f"line {item.line} after {previous}")
            previous = item.line
    except ManifestReadError:
        STATS["read_errors"] += 1


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    """One random structural or byte-level mutation of `data`."""
    buf = bytearray(data)
    choice = rng.randrange(9)
    if choice == 0 and buf:  # flip bytes
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif choice == 1:  # insert troublesome bytes
        at = rng.randint(0, len(buf))
        buf[at:at] = rng.choice(
            [b"\n", b"\r\n", b"\x00", b"\xff\xfe", b'"', b",", b"[", b"{", b"\\"]
        )
    elif choice == 2 and buf:  # cut
        del buf[rng.randint(0, len(buf)) :]
    elif choice == 3:  # splice two seeds
        other = rng.choice(pool)
        buf = buf[: rng.randint(0, len(buf))] + other[rng.randint(0, len(other)) :]
    elif choice == 4:  # gzip, maybe truncated
        packed = gzip.compress(bytes(buf))
        buf = bytearray(packed[: rng.randint(10, len(packed))] if rng.random() < 0.5 else packed)
    elif choice == 5 and buf:  # duplicate a slice
        a = rng.randrange(len(buf))
        buf[a:a] = buf[a : a + rng.randint(1, 64)] * rng.randint(1, 50)
    elif choice == 6:  # a long line
        buf += b"s3://bkt-1/" + b"k" * rng.randint(10, 100_000)
    elif choice == 7:  # random bytes
        buf = bytearray(rng.randbytes(rng.randint(0, 512)))
    return bytes(buf)


def run_mutate(count: int, seed: int) -> None:
    rng = random.Random(seed)
    pool = seeds()
    current = list(pool)
    for n in range(count):
        data = mutate(rng, rng.choice(current), pool)
        guarded(data)
        if n % 97 == 0 and len(data) < 20_000:
            current.append(data)
            if len(current) > 500:
                current.pop(rng.randrange(len(pool), len(current)))


def guarded(data: bytes) -> None:
    try:
        check_one(data)
    except Exception as exc:
        STATS["unexpected"] += 1
        CRASHES.mkdir(exist_ok=True)
        (CRASHES / f"crash-{STATS['unexpected']}.bin").write_bytes(data)
        print(f"UNEXPECTED {type(exc).__name__}: {exc}", file=sys.stderr)


def run_atheris(count: int) -> None:
    import atheris  # noqa: PLC0415

    with atheris.instrument_imports(include=["pipeline"]):
        import pipeline.manifest.reader  # noqa: F401, PLC0415

    corpus = WORK / "corpus"
    corpus.mkdir()
    for i, seed_bytes in enumerate(seeds()):
        (corpus / f"seed-{i}").write_bytes(seed_bytes)

    def one(data: bytes) -> None:
        guarded(data)
        if STATS["inputs"] >= count:
            report("atheris")
            shutil.rmtree(WORK, ignore_errors=True)  # os._exit skips atexit
            os._exit(1 if STATS["unexpected"] else 0)  # libFuzzer treats SystemExit as a crash

    atheris.Setup(
        [sys.argv[0], f"-runs={count * 2}", "-max_len=4096", "-rss_limit_mb=2048", str(corpus)],
        one,
    )
    atheris.Fuzz()


def huge_line(gigabytes: float) -> dict[str, float]:
    """A gzip manifest: a line, one `gigabytes` line without a newline, a line — streamed."""
    from pipeline.manifest.reader import iter_manifest  # noqa: PLC0415

    size = int(gigabytes * 1024**3)
    path = WORK / "huge-line.csv.gz"
    block = b"k" * (8 * 1024 * 1024)
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    with path.open("wb") as out:
        out.write(compressor.compress(b"s3://bkt-1/first.jpg\ns3://bkt-1/"))
        for _ in range(size // len(block)):
            out.write(compressor.compress(block))
        out.write(compressor.compress(b".jpg\ns3://bkt-1/last.jpg\n") + compressor.flush())
    started = time.perf_counter()
    items = list(iter_manifest(str(path)))
    seconds = time.perf_counter() - started
    got = [(i.line, type(i).__name__, getattr(i, "error", "")) for i in items]
    assert got == [
        (1, "ManifestRecord", ""),
        (2, "ManifestLineError", "LineTooLong"),
        (3, "ManifestRecord", ""),
    ], got
    return {
        "line_gb": gigabytes,
        "compressed_mb": round(path.stat().st_size / 1e6, 2),
        "seconds": round(seconds, 2),
        "decompressed_mb_per_s": round(size / 1e6 / seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def report(engine: str) -> None:
    seconds = round(time.perf_counter() - STARTED, 1)
    print(json.dumps({"engine": engine, **STATS, "seconds": seconds}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["atheris", "mutate"], default=None)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--huge-line-gb", type=float, default=0.0)
    args = parser.parse_args()
    if args.huge_line_gb:
        print(json.dumps(huge_line(args.huge_line_gb)), flush=True)
        return 0
    engine = args.engine
    if engine is None:
        try:
            import atheris  # noqa: F401, PLC0415

            engine = "atheris"
        except ImportError:
            engine = "mutate"
    if engine == "atheris":
        run_atheris(args.runs)
    run_mutate(args.runs, args.seed)
    report(engine)
    return 1 if STATS["unexpected"] else 0


if __name__ == "__main__":
    sys.exit(main())
