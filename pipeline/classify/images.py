"""Image bytes → the model's input tensor, safely.

One job: turn untrusted bytes into a float32 ``[size, size, 3]`` RGB array in 0..255, with exactly
the preprocessing the model's reference accuracy was measured with (88 % top-1 on ImageNet photos):
JPEG draft decoding, EXIF orientation, RGB, a central crop of 0.875 of the short side, a bilinear
resize. Every way bytes can be unusable becomes an `ImageDecodeError` with a stable ``error`` code,
never a crash and never a silent skip. Knows nothing of S3 (see `pipeline.classify.fetch`) or of
the model.

Past the ~300-line guide on purpose: every way untrusted bytes can fail (bombs in each format,
formats no decoder here reads, truncation) maps to its stable error code in this one place.
"""

from __future__ import annotations

import io
import math
import re
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.classify.decode_budget import DecodeBudget
from pipeline.failures import ImageDecodeError

if TYPE_CHECKING:
    from pipeline.config import Settings

CROP_FRACTION = 0.875
"""Share of the short side kept by the central crop (the EfficientNet/Inception eval recipe)."""

DEFAULT_INPUT_SIZE = 224
DEFAULT_MAX_PIXELS = 100_000_000
DEFAULT_MAX_BYTES = 50 * 1024 * 1024

EMPTY_OBJECT = "EmptyObject"
OBJECT_TOO_LARGE = "ObjectTooLarge"
NOT_AN_IMAGE = "NotAnImage"
CORRUPT_IMAGE = "CorruptImage"
TRUNCATED_IMAGE = "TruncatedImage"
TOO_MANY_PIXELS = "TooManyPixels"
UNSUPPORTED_IMAGE = "UnsupportedImage"

_SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_BACKGROUND_RGB = (255, 255, 255)
"""What transparent pixels are shown on. Their stored RGB is undefined (often black)."""

_HEADER_ERRORS = (SyntaxError, ValueError, struct.error, IndexError, TypeError, KeyError)
"""What Pillow's format plugins raise on a header they recognise but cannot parse."""

_UNSUPPORTED = re.compile(
    r"unsupported|not supported|not available|cannot find loader|ghostscript|unimplemented"
    r"|not implemented|unknown (?:compression|pixel)",
    re.IGNORECASE,
)
"""Pillow's words for an intact image no decoder here reads (it has no exception type for it):
EPS without Ghostscript, WMF/EMF, some BMP bit-field layouts, DDS pixel formats, a codec not
built in."""

_MESSAGE_CHARS = 300
"""Longest exception text kept in a record (some plugins put whole headers in theirs)."""

DECODE_BUDGET_BYTES = 256 * 1024 * 1024
"""Decoded pixels (after JPEG draft, 4 bytes a pixel as Pillow stores them) a process decodes at
once, across its threads (`decode_budget.py`): sixteen 16 M-pixel PNGs at once peaked 1.1 GB
over their bytes; an 80 M-pixel image is decoded alone, which keeps its peak under ~700 MB."""
UNCOUNTED_DECODE_BYTES = 4 * 1024 * 1024
"""Images decoded to at most this (1 M pixels: a 12 MP JPEG draft-decoded, an ImageNet photo)
skip the budget: sixteen of them at once hold ~200 MB with their copies."""
_DECODE_BUDGET = DecodeBudget(DECODE_BUDGET_BYTES)

_ORIENTATION = 0x0112
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
"""EXIF orientation → the transpose that shows it upright (as `ImageOps.exif_transpose` does)."""
REDUCING_GAP = 2
"""A big image is reduced while its crop stays at least this many times the model's input."""
SHRINK_PIXELS = 4_000_000
"""Images with more pixels are reduced before orientation and colour conversion (JPEGs are
already reduced by draft decoding): a 16 M-pixel RGBA PNG cost ~300 MB converted whole."""
_STRIP_ROWS = 32
"""Output rows per strip of `_reduce_in_strips`."""

PILLOW_BLOCK_BYTES = 64 * 1024 * 1024
"""Pillow's image memory block (16 MiB by default), raised over glibc's 32 MiB ceiling for its
dynamic mmap threshold: a big image's blocks are then mmap'd and given back to the system when it
is freed, instead of staying in a per-thread malloc arena (measured: a call over 24 large failing
PNGs peaked at 479 MB with 16 MiB blocks, 325 MB with these, 301 MB for 2 of them)."""
Image.core.set_block_size(PILLOW_BLOCK_BYTES)


@dataclass(frozen=True, slots=True)
class ImageDecoder:
    """Decodes untrusted image bytes into model input, within byte and pixel limits.

    Attributes:
        input_size: Side of the square the model takes (224 for EfficientNet-Lite0).
        max_pixels: Images with more pixels are refused before any pixel is decoded. Pillow's
            own guard (`Image.MAX_IMAGE_PIXELS`, ~89 M by default) applies too: its
            DecompressionBombWarning is this same error, never just a logged warning.
        max_bytes: Larger inputs are refused without being parsed.
        crop_fraction: Share of the short side the central crop keeps (the model's recipe).
        resample: Pillow filter of the resize (the model's recipe).
    """

    input_size: int = DEFAULT_INPUT_SIZE
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES
    crop_fraction: float = CROP_FRACTION
    resample: Image.Resampling = Image.Resampling.BILINEAR

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        input_size: int,
        crop_fraction: float = CROP_FRACTION,
        resample: Image.Resampling = Image.Resampling.BILINEAR,
    ) -> ImageDecoder:
        """The decoder for a model's input and preprocessing, with the limits in `settings`."""
        return cls(
            input_size=input_size,
            max_pixels=settings.max_image_pixels,
            max_bytes=settings.max_image_bytes,
            crop_fraction=crop_fraction,
            resample=resample,
        )

    def decode(self, data: bytes) -> np.ndarray:
        """Decode one image into a float32 ``[input_size, input_size, 3]`` RGB array (0..255).

        Every exception Pillow (or numpy) raises becomes an `ImageDecodeError`, raised outside the
        ``except`` block that caught it: the error carries no ``__cause__`` or ``__context__``,
        so keeping it (or the record made from it) never keeps the decoder's buffers alive.

        Raises:
            ImageDecodeError: with ``error`` one of EmptyObject, ObjectTooLarge, NotAnImage,
                CorruptImage, TruncatedImage, TooManyPixels, UnsupportedImage.
        """
        if not data:
            raise ImageDecodeError("the object is empty (0 bytes)", error=EMPTY_OBJECT)
        if len(data) > self.max_bytes:
            raise ImageDecodeError(
                f"{len(data)} bytes is over the {self.max_bytes}-byte limit "
                "(raise LAMBDAFLOW_MAX_IMAGE_BYTES to accept it)",
                error=OBJECT_TOO_LARGE,
            )
        failure: ImageDecodeError | None = None
        phase = "header"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = self._open(data)
                try:
                    phase = "data"
                    self._draft(image)
                    with _decode_budget(image):
                        image.load()  # a fresh image sits on its first frame: animations too
                        phase = "convert"
                        return self._crop_resize(self._oriented_rgb(image))
                finally:
                    image.close()
        except ImageDecodeError as exc:
            failure = ImageDecodeError(exc.message, error=exc.error)
        except Exception as exc:  # untrusted bytes: any failure is this image's
            failure = decode_failure(exc, phase)
        raise failure

    @property
    def pixel_limit(self) -> int:
        """`max_pixels`, capped by Pillow's own bomb threshold.

        Checking Pillow's threshold ourselves makes its DecompressionBombWarning an error
        deterministically: `warnings.catch_warnings` below is process-global and not thread-safe
        before Python 3.14, so under concurrent decoding it alone could let the warning through.
        """
        pillow_limit = Image.MAX_IMAGE_PIXELS
        return self.max_pixels if pillow_limit is None else min(self.max_pixels, pillow_limit)

    def _open(self, data: bytes) -> Image.Image:
        """Read only the header, and refuse a decompression bomb before any pixel is decoded."""
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        limit = self.pixel_limit
        if width * height > limit:
            image.close()
            raise ImageDecodeError(
                f"{width}x{height} is over the {limit}-pixel limit "
                "(raise LAMBDAFLOW_MAX_IMAGE_PIXELS to accept it)",
                error=TOO_MANY_PIXELS,
            )
        return image

    def _draft(self, image: Image.Image) -> None:
        """Let libjpeg decode at 1/2, 1/4 or 1/8 scale: what matters for speed on big photos.

        12 MP: ~30 vs ~134 ms. Pillow picks the largest reduction that keeps both sides at least
        the requested size, so asking for input_size / 0.875 keeps the crop at least input_size
        pixels: never an upscale.
        """
        if image.format == "JPEG":
            side = math.ceil(self.input_size / self.crop_fraction)
            image.draft("RGB", (side, side))

    def _oriented_rgb(self, image: Image.Image) -> Image.Image:
        """Apply the EXIF orientation and convert the decoded pixels to RGB (big ones reduced)."""
        shrunk = self._shrunk(image)
        if shrunk is None:
            ImageOps.exif_transpose(image, in_place=True)
            return _to_rgb(image)
        return _to_rgb(shrunk)

    def _shrunk(self, image: Image.Image) -> Image.Image | None:
        """A big decoded image reduced by an integer factor (box filter), already oriented.

        Only above `SHRINK_PIXELS`, where orientation and colour conversion would each copy tens
        to hundreds of MB (an 88 M-pixel RGBA PNG peaked at 1.7 GB): reducing first, a strip at
        a time, costs only the strips beyond the decoded pixels. The crop stays at least twice
        the input size, as Pillow's own `reducing_gap=2` does, so the final bilinear resize sees
        the same picture. None when the image is not big enough to shrink.
        """
        width, height = image.size
        factor = int(min(width, height) * CROP_FRACTION) // (REDUCING_GAP * self.input_size)
        if width * height <= SHRINK_PIXELS or factor < REDUCING_GAP:
            return None
        orientation = image.getexif().get(_ORIENTATION, 1)
        reduced = _reduce_in_strips(image, factor)
        method = _ORIENTATION_TRANSPOSE.get(orientation)
        return reduced if method is None else reduced.transpose(method)

    def _crop_resize(self, image: Image.Image) -> np.ndarray:
        """Central crop (0.875 of the short side) and resize (bilinear), in one resampling pass."""
        width, height = image.size
        crop = min(width, height) * self.crop_fraction
        left, top = (width - crop) / 2, (height - crop) / 2
        resized = image.resize(
            (self.input_size, self.input_size),
            self.resample,
            box=(left, top, left + crop, top + crop),
        )
        return np.asarray(resized, dtype=np.float32)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode → RGB, keeping what each mode means.

    16-bit greyscale is scaled (Pillow's own conversion clips it to 255, a white image), and
    transparency is composited on white rather than dropped (hidden pixels are often black).
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _SIXTEEN_BIT_MODES:
        levels = np.clip(np.asarray(image, dtype=np.int64), 0, 65535) >> 8
        return Image.fromarray(levels.astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        levels = np.clip(np.asarray(image, dtype=np.float32), 0, 255)
        return Image.fromarray(levels.astype(np.uint8), "L").convert("RGB")
    if mode in _ALPHA_MODES or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_BACKGROUND_RGB, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _reduce_in_strips(image: Image.Image, factor: int) -> Image.Image:
    """`image.reduce(factor)`, made a strip of rows at a time.

    Pillow's own `reduce` first copies a whole RGBA image into premultiplied RGBa (and a palette
    or 16-bit image must be converted to a reducible mode first): whole-image copies. A strip
    is cropped, converted and reduced on its own, so the extra memory is one strip's.
    """
    width, height = image.size
    rows = factor * _STRIP_ROWS
    out: Image.Image | None = None
    for top in range(0, height, rows):
        strip = _reducible(image.crop((0, top, width, min(top + rows, height)))).reduce(factor)
        if out is None:
            out = Image.new(strip.mode, (-(-width // factor), -(-height // factor)))
        out.paste(strip, (0, top // factor))
    assert out is not None  # height > 0
    return out


def _reducible(image: Image.Image) -> Image.Image:
    """`image` in a mode `Image.reduce` averages meaningfully, keeping what the mode means."""
    mode = image.mode
    if mode in {"P", "PA"}:  # averaging palette indexes would mean nothing
        has_alpha = mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    if mode == "1":
        return image.convert("L")
    if mode in _SIXTEEN_BIT_MODES:
        return image.convert("I")  # the same levels, in a mode `reduce` takes
    return image


@contextmanager
def _decode_budget(image: Image.Image) -> Iterator[None]:
    """Hold the image's decoded size of the process's budget while it is decoded and resized."""
    width, height = image.size
    size = width * height * 4  # Pillow stores up to 4 bytes per pixel
    if size <= UNCOUNTED_DECODE_BYTES:
        yield
        return
    with _DECODE_BUDGET.reserve(size):
        yield


def decode_failure(exc: BaseException, phase: str) -> ImageDecodeError:
    """The typed decode error for whatever Pillow raised, keeping only its text.

    `phase` is where it was raised: ``header`` (opening), ``data`` (decoding the pixels) or
    ``convert`` (orientation and colour conversion). Returned, not raised, so the caller raises it
    outside its ``except`` block, with no chain back to `exc` and its frames.
    """
    text = f"{exc}"[:_MESSAGE_CHARS] or type(exc).__name__
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        code, message = TOO_MANY_PIXELS, text
    elif isinstance(exc, MemoryError):
        code, message = TOO_MANY_PIXELS, "ran out of memory decoding it"
    elif isinstance(exc, UnidentifiedImageError):
        code = NOT_AN_IMAGE
        message = "not an image Pillow can read (JPEG, PNG, WebP, GIF, TIFF, BMP …)"
    elif isinstance(exc, NotImplementedError) or _UNSUPPORTED.search(text):
        code, message = UNSUPPORTED_IMAGE, f"an image format no decoder here reads: {text}"
    elif phase == "convert" and isinstance(exc, OSError | ValueError | _HEADER_ERRORS):
        code, message = UNSUPPORTED_IMAGE, f"cannot convert the image to RGB: {text}"
    elif isinstance(exc, OSError | EOFError):
        where = "header" if phase == "header" else "image data"
        code, message = TRUNCATED_IMAGE, f"truncated or corrupt {where}: {text}"
    elif isinstance(exc, _HEADER_ERRORS):
        code, message = CORRUPT_IMAGE, f"corrupt image: {text}"
    else:
        code, message = CORRUPT_IMAGE, f"corrupt image ({type(exc).__name__}): {text}"
    return ImageDecodeError(message, error=code)
