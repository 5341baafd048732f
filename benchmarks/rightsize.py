"""Cost per million images at each Lambda memory size, from the worker measured on 1 and 2 cores.

    .venv/bin/python benchmarks/rightsize.py --images PHOTOS [--model efficientnet-lite2]

Lambda gives one vCPU per 1,769 MB, up to 6 at 10,240 MB, and bills GB-seconds, so a size is
cheaper per image only if its vCPUs do proportionally more work. This machine has 2 cores, so:

- measured: the real `ChunkWorker` (benchmarks/worker.py's harness: moto S3 in its own process,
  --latency-ms on every GET) in a child process pinned to 1 core with 1 interpreter (1,769 MB)
  and to 2 cores with 2 interpreters (3,538 MB); per image: CPU-seconds of the worker, of the
  invoke alone and of the decode alone;
- modelled beyond 2 (say so when quoting): invoke and decode release the GIL, everything else
  (boto3, the result rows, the futures) holds it, so V vCPUs process an image at best every
  max(C / V, G) seconds, C = CPU per image, G = its GIL-held part = C - invoke - decode
  (Amdahl with the GIL as the serial resource). Past V = C / G extra vCPUs are billed and idle.

Cost per million images, all-in = compute (memory GB x $/GB-s x seconds per image x 10^6) +
one S3 GET per image + per-chunk requests (500-image chunks: invocation, two part PUTs, SQS
send/receive/delete, 4 DynamoDB write units) + Split, from `pipeline.observe.prices`. Compute uses
the CPU-seconds (what a dedicated vCPU bills when the pipeline keeps it busy); the wall-clock
figure of this shared machine is printed beside it as an upper bound.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import worker as harness  # benchmarks/worker.py, same directory

from pipeline.observe import prices

SIZES_MB = (1769, 3538, 5307, 7076, 8845, 10240)
CHUNK_ITEMS = 500


def child(args: argparse.Namespace) -> None:
    """Measure the worker pinned to `--cpus` cores; print one JSON line."""
    photos = sorted(args.images.glob("*.JPEG"))[: args.limit]
    bench, proc = harness.setup(photos, cpus=args.cpus, interpreters=args.cpus, model=args.model)
    try:
        bench.latency[0] = args.latency_ms / 1000
        decoder = bench.classifier.decoder(bench.settings)
        blobs = [p.read_bytes() for p in photos]
        ours, bound, decode = [], [], []
        for _ in range(args.repeat):
            ours.append(harness.run_ours(bench, args.concurrency * args.cpus))
            bound.append(harness.run_bound(bench))
            decode.append(harness.timed(len(blobs), lambda: [decoder.decode(b) for b in blobs]))
        print(
            json.dumps(
                {
                    "cpus": args.cpus,
                    "cpu_ms": 1000 / statistics.median(p.per_cpu_s for p in ours),
                    "wall_img_s": statistics.median(p.per_s for p in ours),
                    "invoke_ms": 1000 / statistics.median(p.per_cpu_s for p in bound),
                    "decode_ms": 1000 / statistics.median(p.per_cpu_s for p in decode),
                    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                }
            ),
            flush=True,
        )
    finally:
        proc.terminate()
        proc.wait()


def measure(args: argparse.Namespace, cpus: int) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        f"--cpus={cpus}",
        f"--images={args.images}",
        f"--limit={args.limit}",
        f"--repeat={args.repeat}",
        f"--latency-ms={args.latency_ms}",
        f"--concurrency={args.concurrency}",
        f"--model={args.model}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def per_image_requests_usd() -> float:
    """Everything but compute, per image, at 500-image chunks."""
    per_chunk = (
        prices.LAMBDA_REQUEST_USD
        + 2 * prices.S3_PUT_USD
        + 3 * prices.SQS_REQUEST_USD
        + prices.CHUNK_WRITE_UNITS * prices.DYNAMODB_WRITE_UNIT_USD
    )
    split = prices.Prices().split_usd(1)
    return prices.S3_GET_USD + per_chunk / CHUNK_ITEMS + split


def table(one: dict, two: dict) -> None:
    cpu_s, gil_s = (
        one["cpu_ms"] / 1000,
        (one["cpu_ms"] - one["invoke_ms"] - one["decode_ms"]) / 1000,
    )
    gil_s = max(gil_s, 1e-6)
    print(
        f"\n1 core: {one['cpu_ms']:.2f} ms CPU/img (invoke {one['invoke_ms']:.2f}, decode "
        f"{one['decode_ms']:.2f}, GIL-held {gil_s * 1000:.2f}), {one['wall_img_s']:.1f} img/s wall"
    )
    print(
        f"2 cores: {two['cpu_ms']:.2f} ms CPU/img, {two['wall_img_s']:.1f} img/s wall "
        f"({two['wall_img_s'] / one['wall_img_s']:.2f}x one core; GIL cap {1 / gil_s:.0f} img/s)"
    )
    print(
        f"peak RSS of the worker process: 1 core {one['peak_rss_mib']:.0f} MiB, 2 cores "
        f"{two['peak_rss_mib']:.0f} MiB"
    )
    fixed = per_image_requests_usd() * 1e6
    print(f"\nrequests etc. per million images: ${fixed:.3f}")
    print("MB | vCPU | source | img/s | $/M compute | $/M all-in | $/M all-in (wall, this machine)")
    for mb in SIZES_MB:
        vcpus = mb / prices.MB_PER_VCPU
        measured = {1769: one, 3538: two}.get(mb)
        cpu_per_img = measured["cpu_ms"] / 1000 if measured else cpu_s
        seconds = max(cpu_per_img / vcpus, gil_s)
        gb_s = mb / 1024 * prices.LAMBDA_ARM64_GB_S_USD
        compute = gb_s * seconds * 1e6
        wall = f"{gb_s / measured['wall_img_s'] * 1e6 + fixed:.3f}" if measured else "-"
        source = "measured" if measured else "model"
        print(
            f"{mb:5d} | {vcpus:4.1f} | {source:8} | {1 / seconds:5.0f} | {compute:11.3f} | "
            f"{compute + fixed:10.3f} | {wall}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True, help="a folder of JPEG photos")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=16, help="fetch threads per vCPU")
    parser.add_argument("--cpus", type=int, default=1)
    parser.add_argument("--model", default="efficientnet-lite0", help="preset name or .tflite")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    started = time.perf_counter()
    one, two = measure(args, 1), measure(args, 2)
    table(one, two)
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
