"""The classify worker vs the inference-only bound vs a naive worker, on the embedded S3.

    .venv/bin/python benchmarks/worker.py --images PHOTOS

One command, every figure side by side in the same run (passes interleaved, medians):

- GIL: does `Interpreter.invoke` / `ImageDecoder.decode` release the GIL? Measured by running
  20 calls on a thread while the main thread spins Python with a 50 ms switch interval: a call
  that releases the GIL hands it to the spinner, which keeps it ~50 ms each time (20 calls take
  ~1 s+); one that holds it finishes in its own CPU time (pure Python control: ~0.1-0.3 s).
  Independent of neighbours' load, unlike a wall-clock speed-up on a shared 2-core machine.
- bound: inference only (`Classifier.predict`, one image per invoke) on tensors decoded
  beforehand, one interpreter, one thread.
- ours: `ChunkWorker.process` on one chunk of --limit photo objects in a moto S3 bucket: GETs,
  decode, invoke on the worker's pool, the gzip results part, the ledger write. Its image GETs
  are the lean signed GETs (`SignedGetter`, the default; the route learned before timing, as a
  warm Lambda has it).
- ours-sdk: the same, every image GET through boto3 (`SdkGetter`): the worker before the lean
  GET, measured side by side.
- naive: the same objects, one after the other: GET, full decode (no draft), per-image invoke,
  then the same results part (`write_result_part`).

The moto server runs in its own process, pinned to the core the worker does not use (--cpus 1
emulates a 1-vCPU Lambda, 1,769 MB, with S3 elsewhere), so the worker's CPU-seconds are its own.
`--latency-ms` adds an S3 first-byte latency to every image GET (a sleep on the GET's thread
before it is sent: no CPU), because moto on localhost answers in ~2 ms where S3 takes tens of
ms; every way gets the same latency. `--sweep` sizes the fetch pool: wall images/s of `ours` per
pool width at the largest latency.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classify import naive_decode  # benchmarks/classify.py, same directory

from pipeline.classify.images import ImageDecoder
from pipeline.classify.model import Classifier, load_spec
from pipeline.classify.model_spec import DEFAULT_MODEL, resolve_spec
from pipeline.classify.signed_get import ImageGetter, SdkGetter, SignedGetter
from pipeline.classify.worker import ChunkWorker, fetch_client_config
from pipeline.config import Settings
from pipeline.ledger.items import table_definition
from pipeline.ledger.table import RunLedger
from pipeline.manifest.reader import ManifestRecord
from pipeline.parts.layout import ResultRow
from pipeline.parts.store import write_result_part
from pipeline.split.chunking import Chunk

EMULATOR_CODE = (
    "import threading; from pipeline.local.emulator import start_emulator; "
    "e = start_emulator(); print(e.port, flush=True); threading.Event().wait()"
)


@dataclass(frozen=True, slots=True)
class Bench:
    """What every way shares: the clients, the photo objects, the model."""

    s3: object
    sqs: object
    ledger: RunLedger
    settings: Settings
    items: tuple[ManifestRecord, ...]
    classifier: Classifier
    tensors: tuple
    latency: list  # one mutable cell: the current GET latency in seconds
    getters: dict  # way -> ImageGetter, built once (a warm Lambda keeps its getter)


@dataclass(frozen=True, slots=True)
class Delayed:
    """An image getter that waits `latency[0]` seconds first, on the GET's own thread."""

    getter: ImageGetter
    latency: list

    def get(self, bucket: str, key: str, *, max_bytes: int, version_id: str | None) -> bytes:
        if self.latency[0]:
            time.sleep(self.latency[0])
        return self.getter.get(bucket, key, max_bytes=max_bytes, version_id=version_id)


@dataclass(frozen=True, slots=True)
class Pass:
    """One pass of one way: images, wall seconds, CPU-seconds of this process."""

    images: int
    wall_s: float
    cpu_s: float

    @property
    def per_cpu_s(self) -> float:
        return self.images / self.cpu_s

    @property
    def per_s(self) -> float:
        return self.images / self.wall_s


def timed(images: int, run: Callable[[], object]) -> Pass:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return Pass(images, time.perf_counter() - wall, time.process_time() - cpu)


def start_moto(cpu: int | None) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", EMULATOR_CODE], stdout=subprocess.PIPE, text=True
    )
    port = int(proc.stdout.readline())
    if cpu is not None:
        os.sched_setaffinity(proc.pid, {cpu})
    return proc, f"http://127.0.0.1:{port}"


def setup(
    photos: list[Path], *, cpus: int, interpreters: int, model: str = DEFAULT_MODEL
) -> tuple[Bench, subprocess.Popen]:
    allowed = sorted(os.sched_getaffinity(0))
    mine, rest = allowed[:cpus], allowed[cpus:]
    proc, url = start_moto(rest[0] if rest else None)
    os.sched_setaffinity(0, set(mine))
    os.environ.update(
        AWS_ENDPOINT_URL=url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    name = f"bench-{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env(
        {},
        results_bucket=name,
        source_buckets=frozenset({name}),
        runs_table=name,
        interpreters=interpreters,
    )
    s3 = boto3.client("s3", config=fetch_client_config(replace(settings, fetch_concurrency=64)))
    s3.create_bucket(Bucket=name)
    sqs = boto3.client("sqs")
    settings = replace(settings, failure_queue_url=sqs.create_queue(QueueName=name)["QueueUrl"])
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(**table_definition(name))
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(lambda p: s3.put_object(Bucket=name, Key=p.name, Body=p.read_bytes()), photos)
        )
    items = tuple(ManifestRecord(n, name, p.name) for n, p in enumerate(photos, 1))
    classifier = load_spec(resolve_spec(model), replicas=interpreters)
    decoder = classifier.decoder(settings)
    tensors = tuple(decoder.decode(p.read_bytes()) for p in photos)
    latency = [0.0]
    signed = SignedGetter(s3, pool_size=68)
    signed.get(name, photos[0].name, max_bytes=settings.max_image_bytes, version_id=None)
    assert signed.route(name) is not None, "the lean GET's route was not learned"
    getters = {"ours": Delayed(signed, latency), "ours-sdk": Delayed(SdkGetter(s3), latency)}
    ledger = RunLedger(dynamodb, name)
    bench = Bench(s3, sqs, ledger, settings, items, classifier, tensors, latency, getters)
    return bench, proc


def run_ours(bench: Bench, fetch_concurrency: int, way: str = "ours") -> Pass:
    settings = replace(bench.settings, fetch_concurrency=fetch_concurrency)
    run = f"ours-{uuid.uuid4().hex[:8]}"
    bench.ledger.start_run(run, manifest="bench")
    getter = bench.getters[way]
    with ThreadPoolExecutor(fetch_concurrency) as pool:
        worker = ChunkWorker(
            bench.s3, bench.sqs, bench.ledger, bench.classifier, settings, pool, getter=getter
        )
        result = timed(len(bench.items), lambda: worker.process(Chunk(run, 0, bench.items)))
    return result


def run_naive(bench: Bench) -> Pass:
    def body() -> None:
        rows = []
        for item in bench.items:
            if bench.latency[0]:
                time.sleep(bench.latency[0])
            data = bench.s3.get_object(Bucket=item.bucket, Key=item.key)["Body"].read()
            (labels,) = bench.classifier.classify([naive_decode(data)])
            pairs = tuple((label.name, round(label.score, 5)) for label in labels)
            rows.append(ResultRow(item.line, item.bucket, item.key, pairs))
        write_result_part(bench.s3, bench.settings.results_bucket, "naive", 0, rows)

    return timed(len(bench.items), body)


def run_bound(bench: Bench) -> Pass:
    return timed(len(bench.tensors), lambda: [bench.classifier.predict([t]) for t in bench.tensors])


def gil_probe(call: Callable[[], object], calls: int = 20) -> float:
    """Seconds `calls` calls take on a thread while the main thread spins Python."""
    sys.setswitchinterval(0.05)
    done, took = threading.Event(), []

    def body() -> None:
        started = time.perf_counter()
        for _ in range(calls):
            call()
        took.append(time.perf_counter() - started)
        done.set()

    thread = threading.Thread(target=body)
    thread.start()
    while not done.is_set():
        pass
    thread.join()
    sys.setswitchinterval(0.005)
    return took[0]


def report_gil(bench: Bench, photos: list[Path]) -> None:
    data = photos[0].read_bytes()
    decoder = ImageDecoder()

    def spin_5ms() -> None:
        until = time.perf_counter() + 0.005
        while time.perf_counter() < until:
            pass

    print("GIL probe: 20 calls on a thread beside a spinning Python thread (switch 50 ms)")
    for name, call in (
        ("Interpreter.invoke", lambda: bench.classifier.predict([bench.tensors[0]])),
        ("ImageDecoder.decode", lambda: decoder.decode(data)),
        ("control: 5 ms of pure Python", spin_5ms),
    ):
        print(f"  {name:30} {gil_probe(call):6.2f} s   (holds the GIL: ~0.1-0.3 s)")


def jpeg_paths(decoder: ImageDecoder) -> dict[str, Callable[[bytes], object]]:
    """Pillow + draft (ours) and the optional libjpeg-turbo wrappers, each ending in the same
    crop + bilinear resize, so only the JPEG decode differs."""
    from PIL import Image  # noqa: PLC0415

    paths: dict[str, Callable[[bytes], object]] = {"Pillow + draft (ours)": decoder.decode}
    try:
        import simplejpeg  # noqa: PLC0415  # optional: `uv pip install simplejpeg`
    except ImportError:
        print("  simplejpeg: not installed (uv pip install simplejpeg to compare)")
    else:
        for name, fast in (("simplejpeg", False), ("simplejpeg fastdct+fastupsample", True)):
            paths[name] = lambda data, fast=fast: decoder._crop_resize(
                Image.fromarray(simplejpeg.decode_jpeg(data, "RGB", fast, fast))
            )
    try:
        from turbojpeg import TurboJPEG  # noqa: PLC0415  # optional: `uv pip install pyturbojpeg`

        turbo = TurboJPEG()
    except (ImportError, RuntimeError, OSError) as exc:
        print(f"  PyTurboJPEG: not usable here ({str(exc).splitlines()[0]})")
    else:
        paths["PyTurboJPEG"] = lambda data: decoder._crop_resize(
            Image.fromarray(turbo.decode(data)[..., ::-1])
        )
    return paths


def report_jpeg(photos: list[Path], repeat: int) -> float:
    """Print each decode path's ms CPU per image; return the fastest's."""
    print("\nJPEG decode to the 224 px tensor, ms CPU per image (median of passes)")
    blobs = [p.read_bytes() for p in photos]
    paths = jpeg_paths(ImageDecoder())
    runs: dict[str, list[Pass]] = {name: [] for name in paths}
    for _ in range(repeat):
        for name, decode in paths.items():
            runs[name].append(timed(len(blobs), lambda d=decode: [d(b) for b in blobs]))
    rates = {name: statistics.median(p.per_cpu_s for p in passes) for name, passes in runs.items()}
    ours = rates["Pillow + draft (ours)"]
    for name, rate in rates.items():
        print(f"  {name:34} {1000 / rate:5.2f} ms  ({rate / ours:.2f}x ours)")
    return 1000 / max(rates.values())


def compare(bench: Bench, latencies_ms: list[float], repeat: int, concurrency: int) -> float:
    """Print every way's rates per latency; return the bound's ms CPU per image (the last)."""
    print(
        f"\n{len(bench.items)} photo objects, {repeat} interleaved passes, medians; "
        f"fetch pool {concurrency}, {bench.classifier.replicas} interpreter(s), "
        f"cpus {sorted(os.sched_getaffinity(0))}"
    )
    header = (
        "latency | way      | img/CPU-s | ms CPU/img | img/s wall | x bound (CPU) | x naive (wall)"
    )
    print(header)
    for latency_ms in latencies_ms:
        bench.latency[0] = latency_ms / 1000
        passes: dict[str, list[Pass]] = {"bound": [], "ours": [], "ours-sdk": [], "naive": []}
        for n in range(repeat):
            passes["bound"].append(run_bound(bench))
            for way in ("ours", "ours-sdk") if n % 2 == 0 else ("ours-sdk", "ours"):
                passes[way].append(run_ours(bench, concurrency, way))
            passes["naive"].append(run_naive(bench))
        med = {
            way: (
                statistics.median(p.per_cpu_s for p in ps),
                statistics.median(p.per_s for p in ps),
            )
            for way, ps in passes.items()
        }
        for way, (per_cpu, per_s) in med.items():
            print(
                f"{latency_ms:5.0f} ms | {way:8} | {per_cpu:9.1f} | {1000 / per_cpu:10.2f} | "
                f"{per_s:10.1f} | {per_cpu / med['bound'][0]:13.2f} | "
                f"{per_s / med['naive'][1]:14.2f}"
            )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 1000 / med["bound"][0]


def report_ceiling(bound_ms: float, decode_ms: float) -> None:
    """The most a worker can reach per core when its decode (with crop and resize) is the only
    cost beside invoke: no GET, no results, no thread hand-over."""
    print(
        f"\nceiling per core with the fastest decode above and nothing else: "
        f"{bound_ms:.2f} / ({bound_ms:.2f} + {decode_ms:.2f}) = "
        f"{bound_ms / (bound_ms + decode_ms):.2f}x the bound"
    )


def sweep(bench: Bench, widths: list[int], latency_ms: float) -> None:
    bench.latency[0] = latency_ms / 1000
    print(f"\nfetch pool sizing at {latency_ms:.0f} ms GET latency: ours, median of 2 passes")
    for width in widths:
        passes = [run_ours(bench, width) for _ in range(2)]
        rate = statistics.median(p.per_s for p in passes)
        cpu_ms = 1000 / statistics.median(p.per_cpu_s for p in passes)
        print(f"  {width:3d} threads: {rate:7.1f} img/s wall, {cpu_ms:5.2f} ms CPU/img")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True, help="a folder of JPEG photos")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=1, help="cores the worker may use")
    parser.add_argument("--interpreters", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16, help="fetch pool width")
    parser.add_argument("--latency-ms", default="0,30,60", help="comma list of GET latencies")
    parser.add_argument("--sweep", default="1,2,4,8,16,32", help="pool widths ('' to skip)")
    args = parser.parse_args()
    photos = sorted(args.images.glob("*.JPEG"))[: args.limit]
    bench, proc = setup(photos, cpus=args.cpus, interpreters=args.interpreters)
    try:
        report_gil(bench, photos)
        decode_ms = report_jpeg(photos, args.repeat)
        latencies = [float(x) for x in args.latency_ms.split(",")]
        report_ceiling(compare(bench, latencies, args.repeat, args.concurrency), decode_ms)
        if args.sweep:
            sweep(bench, [int(x) for x in args.sweep.split(",")], max(latencies))
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
