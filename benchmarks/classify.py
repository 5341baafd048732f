"""Images/s per core: decode + classify vs inference alone (the bound) vs a naive loop.

    .venv/bin/python benchmarks/classify.py --images ../shared/data/imagenet-samples

Everything runs on one thread with `num_threads=1` (one Lambda vCPU); image bytes are read into
memory first, so S3/disk time is not counted. Two workloads, each measured side by side:

- mix: the photos in --images as they are (ImageNet's typical ~500x375 JPEGs);
- 12mp: --big-count of them upscaled to 4000x3000 JPEGs in a temporary directory.

Rows: `bound` = inference only on tensors decoded beforehand; `ours` = `ImageDecoder.decode`
(JPEG draft) + `Classifier.classify`; `naive` = full decode without draft, then the same crop,
resize and a per-image invoke. Targets (issue 4): ours >= 0.8x bound on the mix, >= 3x naive on
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

from pipeline.config import DEFAULT_MODEL_PATH
from pipeline.images import CROP_FRACTION, ImageDecoder
from pipeline.model import Classifier

BIG_SIZE = (4000, 3000)


def naive_decode(data: bytes, size: int = 224) -> np.ndarray:
    """The obvious Pillow code: full-size decode, orientation, RGB, crop, resize."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    width, height = image.size
    crop = min(width, height) * CROP_FRACTION
    left, top = (width - crop) / 2, (height - crop) / 2
    image = image.crop((round(left), round(top), round(left + crop), round(top + crop)))
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def images_per_s(run: Callable[[], None], count: int, repeat: int) -> float:
    """Median throughput over `repeat` timed passes (after one untimed warm-up image)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return count / statistics.median(times)


def measure(blobs: Sequence[bytes], classifier: Classifier, repeat: int) -> dict[str, float]:
    decoder = ImageDecoder()
    tensors = [decoder.decode(b) for b in blobs]
    classifier.classify(tensors[:1])

    def bound() -> None:
        for tensor in tensors:
            classifier.classify([tensor])

    def ours() -> None:
        for blob in blobs:
            classifier.classify([decoder.decode(blob)])

    def naive() -> None:
        for blob in blobs:
            classifier.classify([naive_decode(blob)])

    def decode_only() -> None:
        for blob in blobs:
            decoder.decode(blob)

    n = len(blobs)
    return {
        "bound": images_per_s(bound, n, repeat),
        "ours": images_per_s(ours, n, repeat),
        "naive": images_per_s(naive, n, repeat),
        "decode only": images_per_s(decode_only, n, repeat),
    }


def measure_batching(blobs: Sequence[bytes], repeat: int) -> dict[int, float]:
    decoder = ImageDecoder()
    tensors = [decoder.decode(b) for b in blobs]
    result = {}
    for batch_size in (1, 4, 8, 16, 32):
        classifier = Classifier.load(DEFAULT_MODEL_PATH, batch_size=batch_size)
        classifier.predict(tensors[:batch_size])
        result[batch_size] = images_per_s(
            lambda c=classifier: c.predict(tensors), len(tensors), repeat
        )
    return result


def make_big_jpegs(sources: Sequence[Path], out_dir: Path) -> list[bytes]:
    blobs = []
    for source in sources:
        image = ImageOps.exif_transpose(Image.open(source)).convert("RGB").resize(BIG_SIZE)
        path = out_dir / f"{source.stem}_12mp.jpg"
        image.save(path, quality=90)
        blobs.append(path.read_bytes())
    return blobs


def report(title: str, rates: dict[str, float]) -> None:
    print(f"\n{title}")
    print(f"  {'':12} {'img/s':>8} {'ms/img':>8} {'x bound':>8} {'x naive':>8}")
    for name, rate in rates.items():
        print(
            f"  {name:12} {rate:8.1f} {1000 / rate:8.1f} "
            f"{rate / rates['bound']:8.2f} {rate / rates['naive']:8.2f}"
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
    print("\nbatching: inference only on the mix's tensors, num_threads=1")
    for batch_size, rate in measure_batching(mix[:128], args.repeat).items():
        print(f"  batch {batch_size:3d}  {rate:8.1f} img/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
