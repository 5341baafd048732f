"""moto's server CPU per S3 GET of a photo, its dispatcher memo off and on, interleaved.

    .venv/bin/python benchmarks/moto_get.py PHOTOS [--objects 500] [--rounds 4]

The emulator runs in this process exactly as the local stack starts it (`start_emulator`,
which installs `pipeline/local/dispatch_cache.py`); the GETs come from a child process with 4
threads (a classify worker's shape), so this process's CPU-seconds during a pass are the
server's alone. Each round runs one pass with moto's own `get_backend_for_host` and one with
the memoised one, in alternating order; medians of the per-GET server CPU are the result.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from pipeline.local.emulator import start_emulator

BUCKET = "bench-photos"
CLIENT = f"""
import sys, time, boto3
from concurrent.futures import ThreadPoolExecutor
from pipeline.aws.retries import data_path_config
config = data_path_config(max_pool_connections=8, parameter_validation=False)
s3 = boto3.client("s3", config=config)
keys = [f"k/{{i}}" for i in range(int(sys.argv[1]))]
s3.get_object(Bucket="{BUCKET}", Key=keys[0])["Body"].read()
print("ready", flush=True)
sys.stdin.readline()
with ThreadPoolExecutor(4) as pool:
    list(pool.map(lambda k: s3.get_object(Bucket="{BUCKET}", Key=k)["Body"].read(), keys))
print("done", flush=True)
"""


def server_ms_per_get(objects: int) -> float:
    """This process's CPU milliseconds per GET while a child GETs every object once."""
    child = subprocess.Popen(
        [sys.executable, "-c", CLIENT, str(objects)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdout.readline()  # its imports and first request are not the server's per-GET cost
    started = time.process_time()
    child.stdin.write("\n")
    child.stdin.flush()
    child.stdout.readline()
    elapsed = time.process_time() - started
    child.wait()
    return 1000 * elapsed / objects


def main() -> None:
    """Upload --objects photos, then alternate memo off/on for --rounds rounds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path, help="a folder of JPEG photos")
    parser.add_argument("--objects", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    original = DomainDispatcherApplication.get_backend_for_host
    emulator = start_emulator(0)
    memoised = DomainDispatcherApplication.get_backend_for_host
    os.environ.update(emulator.env)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    photos = sorted(args.photos.glob("*.JPEG")) + sorted(args.photos.glob("*.jpg"))
    for i in range(args.objects):
        s3.put_object(Bucket=BUCKET, Key=f"k/{i}", Body=photos[i % len(photos)].read_bytes())
    passes: dict[str, list[float]] = {"original": [], "memoised": []}
    for number in range(args.rounds):
        order = list(passes) if number % 2 == 0 else list(reversed(passes))
        for way in order:
            lookup = memoised if way == "memoised" else original
            DomainDispatcherApplication.get_backend_for_host = lookup
            passes[way].append(server_ms_per_get(args.objects))
            print(f"round {number + 1}: {way:>10} {passes[way][-1]:.2f} ms server CPU per GET")
    DomainDispatcherApplication.get_backend_for_host = memoised
    before, after = (statistics.median(passes[way]) for way in ("original", "memoised"))
    print(
        f"medians: original {before:.2f} ms, memoised {after:.2f} ms server CPU per GET "
        f"({after / before:.2f}x); load average {os.getloadavg()[0]:.1f}"
    )
    emulator.stop()


if __name__ == "__main__":
    main()
