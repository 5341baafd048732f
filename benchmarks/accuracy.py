"""Top-1 / top-5 accuracy of the classifier on labelled photos: checks the preprocessing.

    .venv/bin/python benchmarks/accuracy.py \
        --images PHOTOS --labels PHOTOS.csv

The CSV has a `file` column (a path whose file name is looked up in --images) and a
`class_index` column (ImageNet-1k order). Reference with correct preprocessing on the 500-photo
half: top-1 0.888, top-5 0.972. Lower means the preprocessing differs from the model's.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from pipeline.classify.images import ImageDecoder
from pipeline.classify.model import Classifier
from pipeline.config import DEFAULT_MODEL_PATH
from pipeline.failures import PipelineError


def read_labels(path: Path) -> dict[str, int]:
    with path.open(newline="") as f:
        return {Path(row["file"]).name: int(row["class_index"]) for row in csv.DictReader(f)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    args = parser.parse_args()

    truth = read_labels(args.labels)
    classifier = Classifier.load(args.model)
    decoder = ImageDecoder(input_size=classifier.input_size)
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
    print(f"model   {args.model.name}")
    print(f"images  {n} ({failed} failed to decode) in {seconds:.1f} s")
    print(f"top-1   {top1 / n:.3f}   (reference 0.888)")
    print(f"top-5   {top5 / n:.3f}   (reference 0.972)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
