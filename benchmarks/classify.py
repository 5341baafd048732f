"""Images/s per core: decode + classify vs inference alone (the bound) vs a naive loop.

    .venv/bin/python benchmarks/classify.py --images PHOTOS

Everything runs on one thread with `num_threads=1` (one Lambda vCPU); image bytes are read into
memory first, so S3/disk time is not counted. Two workloads, each measured side by side:

- mix: the photos in --images as they are (ImageNet's typical ~500x375 JPEGs);
- 12mp: --big-count of them upscaled to 4000x3000 JPEGs in a temporary directory.

Rows: `bound` = inference only on tensors decoded beforehand; `ours` = `ImageDecoder.decode`
(JPEG draft) + `Classifier.classify`; `naive` = full decode without draft, then the same crop,
resize and a per-image invoke. Targets: ours >= 0.8x bound on the mix, >= 3x naive on
12 MP. A last table compares invoking per image with batched invokes (resized input tensor).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from pipeline.classify.images import CROP_FRACTION, ImageDecoder
from pipeline.classify.model import Classifier
from pipeline.config import DEFAULT_MODEL_PATH

BIG_SIZE = (4000, 3000)
BATCH_SIZES = (1, 4, 8, 16, 32)


def naive_decode(data: bytes, size: int = 224) -> np.ndarray:
    """The obvious Pillow code: full-size decode, orientation, RGB, crop, resize."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    width, height = image.size
    crop = min(width, height) * CROP_FRACTION
    left, top = (width - crop) / 2, (height - crop) / 2
    image = image.crop((round(left), round(top), round(left + crop), round(top + crop)))
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def timed(run: Callable[[], object]) -> float:
    """CPU seconds of this process for one pass: "per core", and robust to other processes
    sharing the machine (wall time is printed alongside as a check)."""
    started = time.process_time()
    run()
    return time.process_time() - started


def measure(
    blobs: Sequence[bytes], classifier: Classifier, repeat: int
) -> dict[str, tuple[float, float]]:
    """Images per CPU-second and per wall-second of each way, passes interleaved, medians."""
    decoder = ImageDecoder()
    tensors = [decoder.decode(b) for b in blobs]
    classifier.classify(tensors[:1])
    ways: dict[str, Callable[[], object]] = {
        "bound": lambda: [classifier.classify([t]) for t in tensors],
        "ours": lambda: [classifier.classify([decoder.decode(b)]) for b in blobs],
        "naive": lambda: [classifier.classify([naive_decode(b)]) for b in blobs],
        "decode only": lambda: [decoder.decode(b) for b in blobs],
    }
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    wall: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeat):  # interleaved, so a noisy neighbour hurts every way alike
        for name, run in ways.items():
            started = time.perf_counter()
            cpu[name].append(timed(run))
            wall[name].append(time.perf_counter() - started)
    n = len(blobs)
    return {
        name: (n / statistics.median(cpu[name]), n / statistics.median(wall[name])) for name in ways
    }


def measure_batching(blobs: Sequence[bytes], repeat: int) -> dict[int, float]:
    """Images per CPU-second of inference alone, by images per invoke."""
    decoder = ImageDecoder()
    tensors = [decoder.decode(b) for b in blobs]
    classifiers = {bs: Classifier.load(DEFAULT_MODEL_PATH, batch_size=bs) for bs in BATCH_SIZES}
    times: dict[int, list[float]] = {bs: [] for bs in BATCH_SIZES}
    for classifier in classifiers.values():
        classifier.predict(tensors[: classifier.batch_size])
    for _ in range(repeat):
        for bs, classifier in classifiers.items():
            times[bs].append(timed(lambda c=classifier: c.predict(tensors)))
    return {bs: len(tensors) / statistics.median(t) for bs, t in times.items()}


def make_big_jpegs(sources: Sequence[Path], out_dir: Path) -> list[bytes]:
    blobs = []
    for source in sources:
        image = ImageOps.exif_transpose(Image.open(source)).convert("RGB").resize(BIG_SIZE)
        path = out_dir / f"{source.stem}_12mp.jpg"
        image.save(path, quality=90)
        blobs.append(path.read_bytes())
    return blobs


def report(title: str, rates: dict[str, tuple[float, float]]) -> None:
    print(f"\n{title}")
    header = (
        f"{'img/CPU-s':>10} {'ms CPU/img':>10} {'x bound':>8} {'x naive':>8} {'img/wall-s':>10}"
    )
    print(f"  {'':12} {header}")
    bound, naive = rates["bound"][0], rates["naive"][0]
    for name, (rate, wall_rate) in rates.items():
        print(
            f"  {name:12} {rate:10.1f} {1000 / rate:10.1f} "
            f"{rate / bound:8.2f} {rate / naive:8.2f} {wall_rate:10.1f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True, help="a folder of JPEG photos")
    parser.add_argument("--limit", type=int, default=500, help="photos of the mix to use")
    parser.add_argument("--big-count", type=int, default=8, help="12-MP JPEGs to make")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes; the median counts")
    args = parser.parse_args()

    paths = sorted(args.images.glob("*.[jJ][pP]*[gG]"))[: args.limit]
    if not paths:
        print(f"no JPEG photos in {args.images}", file=sys.stderr)
        return 2
    classifier = Classifier.load(DEFAULT_MODEL_PATH, num_threads=1)
    mix = [p.read_bytes() for p in paths]
    report(f"mix: {len(mix)} photos from {args.images}", measure(mix, classifier, args.repeat))
    with tempfile.TemporaryDirectory() as tmp:
        step = max(1, len(paths) // args.big_count)
        big = make_big_jpegs(paths[::step][: args.big_count], Path(tmp))
    report(f"12mp: {len(big)} photos upscaled to 4000x3000", measure(big, classifier, args.repeat))
    print("\nbatching: inference only on 128 of the mix's tensors, num_threads=1")
    for batch_size, rate in measure_batching(mix[:128], args.repeat).items():
        print(f"  batch {batch_size:3d}  {rate:8.1f} img/CPU-s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
