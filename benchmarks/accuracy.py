"""Top-1 / top-5 accuracy of a model on labelled photos, its speed and peak memory.

    .venv/bin/python benchmarks/accuracy.py \
        --images PHOTOS --labels PHOTOS.csv [--model efficientnet-lite2|PATH]

The CSV has a `file` column (a path whose file name is looked up in --images) and a
`class_index` column (ImageNet-1k order). Reference with correct preprocessing on the 500-photo
half: top-1 0.888, top-5 0.972. Lower means the preprocessing differs from the model's.
`--model` is a preset name or a .tflite path (with ImageNet-1k outputs); the model's own
preprocessing (the spec's) is used. "ms/image" is decode + inference on one thread, "peak RSS"
the process's maximum resident memory (model, interpreter arena, Python and the libraries).
"""

from __future__ import annotations

import argparse
import csv
import resource
import sys
import time
from pathlib import Path

from pipeline.classify.model import load_spec
from pipeline.classify.model_spec import DEFAULT_MODEL, resolve_spec
from pipeline.config import Settings
from pipeline.failures import PipelineError


def read_labels(path: Path) -> dict[str, int]:
    with path.open(newline="") as f:
        return {Path(row["file"]).name: int(row["class_index"]) for row in csv.DictReader(f)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="preset name or .tflite path")
    args = parser.parse_args()

    truth = read_labels(args.labels)
    classifier = load_spec(resolve_spec(args.model))
    decoder = classifier.decoder(Settings())
    top1 = top5 = failed = 0
    started = time.perf_counter()
    for name, expected in sorted(truth.items()):
        try:
            image = decoder.decode((args.images / name).read_bytes())
        except (OSError, PipelineError) as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            failed += 1
            continue
        labels = classifier.classify([image], top_k=5)[0]
        top1 += labels[0].index == expected
        top5 += expected in {label.index for label in labels}
    n = len(truth)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"model   {classifier.identity.name} sha256 {classifier.identity.sha256}")
    print(f"input   {classifier.input_size} px {classifier.input_dtype}")
    print(f"images  {n} ({failed} failed to decode) in {seconds:.1f} s")
    print(f"speed   {1000 * seconds / n:.1f} ms/image (decode + inference, one thread)")
    print(f"memory  {peak_mib:.0f} MiB peak RSS")
    print(f"top-1   {top1 / n:.3f}   (reference 0.888)")
    print(f"top-5   {top5 / n:.3f}   (reference 0.972)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
