"""The demo's data: real photos and transformed variants, and a manifest with planted faults.

Four bundled CC0 photos (tests/fixtures/images) become a few hundred distinct objects through
deterministic transforms — mirror, rotation, crop, scale, colour — so the model has real work
and real labels to show. The manifest then mixes in what a real manifest holds on a bad day:
keys that do not exist, an object that is not an image, a line that is not an image reference,
and an image in a bucket that is not on the allowlist.

Knows nothing of the CLI: it takes an S3 client and returns what it uploaded.
"""

from __future__ import annotations

import gzip
import io
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageEnhance, ImageOps

PHOTOS_DIR = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "images"
DEMO_PREFIX = "demo"
MALFORMED_LINE = "this line is not an image reference"
MIRROR_PROBABILITY = 0.5


@dataclass(frozen=True, slots=True)
class DemoManifest:
    """The manifest written, and which of its lines were planted to fail (1-based)."""

    path: Path
    lines: int
    planted: dict[int, str]


def variant(photo: Image.Image, rng: random.Random) -> Image.Image:
    """One random-but-reproducible transform of `photo` that keeps what it shows."""
    image = photo.convert("RGB")
    if rng.random() < MIRROR_PROBABILITY:
        image = ImageOps.mirror(image)
    image = image.rotate(rng.uniform(-20, 20), resample=Image.Resampling.BILINEAR, expand=False)
    width, height = image.size
    keep = rng.uniform(0.7, 1.0)
    left = rng.uniform(0, width * (1 - keep))
    top = rng.uniform(0, height * (1 - keep))
    image = image.crop((int(left), int(top), int(left + width * keep), int(top + height * keep)))
    scale = rng.uniform(0.6, 1.2)
    image = image.resize((max(32, int(image.width * scale)), max(32, int(image.height * scale))))
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.75, 1.25))
    return ImageEnhance.Contrast(image).enhance(rng.uniform(0.75, 1.25))


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def demo_photos() -> list[Path]:
    """The bundled photos the demo is made of."""
    photos = sorted(PHOTOS_DIR.glob("*.jpg"))
    if not photos:
        raise FileNotFoundError(f"no demo photos in {PHOTOS_DIR}: run the demo from a checkout")
    return photos


def demo_image(path: Path, index: int, *, seed: int = 7) -> tuple[str, bytes]:
    """(key, JPEG bytes) of object `index` made from `path`: 0 is the photo itself.

    Each variant has its own seeded generator, so objects can be made in any order, in
    parallel, and still be the same bytes on every run.
    """
    if index == 0:
        return f"{DEMO_PREFIX}/{path.stem}/original.jpg", path.read_bytes()
    rng = random.Random(f"{seed}-{path.stem}-{index}")
    with Image.open(path) as photo:
        body = _jpeg(variant(photo, rng))
    return f"{DEMO_PREFIX}/{path.stem}/variant-{index:03d}.jpg", body


def upload_demo_images(s3: Any, bucket: str, per_photo: int) -> list[str]:
    """Make and upload the photos and their variants on threads; return the keys in order."""

    def make_and_put(path: Path, index: int) -> str:
        key, body = demo_image(path, index)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        return key

    tasks = [(path, index) for path in demo_photos() for index in range(per_photo)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(lambda task: make_and_put(*task), tasks))
    s3.put_object(Bucket=bucket, Key=f"{DEMO_PREFIX}/broken/not-a-photo.jpg", Body=b"\xff\xd8\xff")
    return keys


def write_demo_manifest(path: Path, bucket: str, keys: list[str]) -> DemoManifest:
    """A gzip CSV of `s3://` URIs with the planted faults spread through it."""
    uris = [f"s3://{bucket}/{key}" for key in keys]
    faults = [
        (f"s3://{bucket}/{DEMO_PREFIX}/missing/lost-{n}.jpg", "missing key") for n in range(3)
    ]
    faults.append((f"s3://{bucket}/{DEMO_PREFIX}/broken/not-a-photo.jpg", "not an image"))
    faults.append((MALFORMED_LINE, "malformed line"))
    faults.append(("s3://somebody-elses-bucket/secret.jpg", "bucket off the allowlist"))
    step = max(1, len(uris) // (len(faults) + 1))
    lines: list[str] = []
    planted: dict[int, str] = {}
    for index, uri in enumerate(uris, start=1):
        lines.append(uri)
        if index % step == 0 and faults:
            fault, why = faults.pop(0)
            lines.append(fault)
            planted[len(lines)] = why
    for fault, why in faults:
        lines.append(fault)
        planted[len(lines)] = why
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as out:
        out.write("\n".join(lines) + "\n")
    return DemoManifest(path=path, lines=len(lines), planted=planted)
