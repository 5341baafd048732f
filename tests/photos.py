"""The committed real photos, and every variant the tests need, made from them at run time.

Only the four JPEGs in tests/fixtures/images/ are committed; greyscale, CMYK, 16-bit, EXIF
rotated, animated, truncated and bomb versions are derived here, so they cannot drift apart.
"""

from __future__ import annotations

import io
import struct
import zlib
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "images"

CAT_CLASSES = frozenset(range(281, 286))
"""ImageNet's domestic cats: tabby, tiger cat, Persian, Siamese, Egyptian cat."""
ESPRESSO = 967

EXIF_ORIENTATION = 0x0112
ROTATED_90_CW = 6
"""EXIF orientation 6: the stored pixels must be turned 90° clockwise to display upright."""


def photo_path(name: str) -> Path:
    return FIXTURES / f"{name}.jpg"


@cache
def photo_bytes(name: str) -> bytes:
    return photo_path(name).read_bytes()


def photo(name: str) -> Image.Image:
    image = Image.open(io.BytesIO(photo_bytes(name)))
    image.load()
    return image


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def exif_rotated_jpeg(name: str) -> bytes:
    """Pixels stored sideways with the EXIF tag that turns them upright again."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATED_90_CW
    sideways = photo(name).transpose(Image.Transpose.ROTATE_90)
    return encode(sideways, "JPEG", quality=90, exif=exif.tobytes())


def sideways_jpeg(name: str) -> bytes:
    """The same sideways pixels without the tag: what a decoder ignoring EXIF would see."""
    return encode(photo(name).transpose(Image.Transpose.ROTATE_90), "JPEG", quality=90)


def with_alpha(name: str) -> bytes:
    """RGBA PNG whose top rows are fully transparent."""
    rgba = photo(name).convert("RGBA")
    alpha = np.full((rgba.height, rgba.width), 255, np.uint8)
    alpha[:20] = 0
    rgba.putalpha(Image.fromarray(alpha))
    return encode(rgba, "PNG")


def sixteen_bit_png(name: str) -> bytes:
    grey = np.asarray(photo(name).convert("L"), np.uint16) * 257
    return encode(Image.fromarray(grey), "PNG")


def animated_gif(first: str, second: str) -> bytes:
    frames = [photo(first).convert("P"), photo(second).resize(photo(first).size).convert("P")]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


@cache
def variants(name: str) -> dict[str, bytes]:
    """Every encoding/mode that must classify like the original photo (made once per run)."""
    image = photo(name)
    return {
        "jpeg": photo_bytes(name),
        "exif-rotated": exif_rotated_jpeg(name),
        "greyscale": encode(image.convert("L"), "JPEG", quality=90),
        "png": encode(image, "PNG"),
        "cmyk-jpeg": encode(image.convert("CMYK"), "JPEG", quality=90),
        "palette-png": encode(image.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "16-bit-png": sixteen_bit_png(name),
        "alpha-png": with_alpha(name),
        "webp": encode(image, "WEBP", quality=90),
        "gif": encode(image.convert("P"), "GIF"),
        "tiff": encode(image, "TIFF"),
    }


def png_with_size(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header claims `width` x `height` (a decompression bomb)."""
    data = encode(Image.new("L", (8, 8)), "PNG")
    ihdr_at = data.index(b"IHDR")
    fields = struct.pack(">II", width, height) + data[ihdr_at + 12 : ihdr_at + 17]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + fields))
    return data[:ihdr_at] + b"IHDR" + fields + crc + data[ihdr_at + 21 :]


def png_with_bad_checksum() -> bytes:
    """A PNG whose header chunk fails its CRC: Pillow cannot even identify it."""
    data = bytearray(encode(Image.new("RGB", (8, 8)), "PNG"))
    data[data.index(b"IHDR") + 17] ^= 0xFF
    return bytes(data)


def png_with_corrupt_pixels(name: str) -> bytes:
    """A whole PNG whose compressed pixel stream has one byte flipped."""
    data = bytearray(encode(photo(name), "PNG"))
    data[data.index(b"IDAT") + 104] ^= 0xFF
    return bytes(data)
