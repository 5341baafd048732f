"""A corpus of odd real-world image files, built here with Pillow and struct (no copied files).

Each entry is (bytes, the decode error code expected, or None when the image must decode).
Truncated files in every common format, decompression bombs in several formats (declared in
the header, or hidden inside a container whose outer header looks small), intact images no
decoder here reads, and EXIF-rotated photos that must decode.
"""

from __future__ import annotations

import functools
import struct
import zlib

from PIL import Image

from tests import photos

SMALL = (64, 48)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int, *, mode_byte: int = 6, idat: bytes = b"") -> bytes:
    """A PNG claiming `width` x `height` (colour type `mode_byte`) with `idat` as its pixels.

    With a big size and an empty or tiny IDAT this is the few-hundred-byte fuzz file that makes
    Pillow allocate the whole image before it finds the data missing.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, mode_byte, 0, 0, 0)
    chunks = _png_chunk(b"IHDR", ihdr)
    if idat:
        chunks += _png_chunk(b"IDAT", idat)
    return b"\x89PNG\r\n\x1a\n" + chunks + _png_chunk(b"IEND", b"")


def fuzz_png(width: int = 9_400, height: int = 9_400) -> bytes:
    """~100 bytes that ask for an 88 M-pixel RGBA image (353 MB) and hold one deflated row."""
    return png_header_only(width, height, idat=zlib.compress(b"\x00" * 64))


def icns_with_png(png: bytes) -> bytes:
    """An Apple icon whose 512x512 ``ic09`` entry is `png`: its header says nothing of its size."""
    entry = b"ic09" + struct.pack(">I", 8 + len(png)) + png
    return b"icns" + struct.pack(">I", 8 + len(entry)) + entry


def ico_with_png(png: bytes) -> bytes:
    """A Windows icon whose one 256x256 entry is `png`."""
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(png), 6 + 16)
    return header + entry + png


def gif_with_screen(width: int, height: int) -> bytes:
    """A small GIF whose logical screen claims `width` x `height`."""
    data = bytearray(photos.encode(Image.new("P", (8, 8)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def tiff_with_size(width: int, height: int) -> bytes:
    """A small TIFF whose first IFD claims `width` x `height`."""
    data = bytearray(photos.encode(Image.new("L", (8, 8)), "TIFF"))
    ifd = struct.unpack("<I", data[4:8])[0]
    count = struct.unpack("<H", data[ifd : ifd + 2])[0]
    for i in range(count):
        at = ifd + 2 + 12 * i
        tag, kind = struct.unpack("<HH", data[at : at + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength
            value = width if tag == 256 else height
            packed = struct.pack("<H", value) + b"\0\0" if kind == 3 else struct.pack("<I", value)
            data[at + 8 : at + 12] = packed
    return bytes(data)


def bmp_with_size(width: int, height: int) -> bytes:
    """A small BMP whose info header claims `width` x `height`."""
    data = bytearray(photos.encode(Image.new("RGB", (8, 8)), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def eps() -> bytes:
    """An intact EPS file: decoding it needs Ghostscript, which is not here."""
    return b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nnewpath\nshowpage\n%%EOF\n"


def wmf() -> bytes:
    """A placeable Windows Metafile header: Pillow reads its size but has no loader."""
    header = struct.pack("<LHhhhhHL", 0x9AC6CDD7, 0, 0, 0, 100, 100, 1440, 0)
    checksum = 0
    for (word,) in struct.iter_unpack("<H", header):
        checksum ^= word
    return header + struct.pack("<H", checksum) + b"\x01\x00\x09\x00\x00\x03" + b"\x00" * 40


def dds_unknown_fourcc() -> bytes:
    """A DDS texture in a pixel format Pillow's plugin does not implement."""
    header = struct.pack("<7I", 124, 0x1007, 64, 64, 0, 0, 0) + b"\0" * 44
    pixel_format = struct.pack("<2I4s5I", 32, 4, b"ABCD", 0, 0, 0, 0, 0)
    return b"DDS " + header + pixel_format + b"\0" * 20 + b"\0" * 4096


def bmp_odd_bitfields() -> bytes:
    """An intact 32-bit BMP with a bit-field layout Pillow does not read."""
    width, height = SMALL
    pixels = b"\x00" * (width * height * 4)
    info = struct.pack("<IiiHHIIiiII", 56, width, height, 1, 32, 3, len(pixels), 0, 0, 0, 0)
    masks = struct.pack("<4I", 0x3FF00000, 0x000FFC00, 0x000003FF, 0)
    offset = 14 + len(info) + len(masks)
    head = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    return head + info + masks + pixels


def truncated(fmt: str, keep: float = 0.5) -> bytes:
    """A real photo saved as `fmt`, cut to `keep` of its bytes."""
    data = photos.encode(photos.photo("chelsea"), fmt)
    return data[: int(len(data) * keep)]


def exif_rotated(orientation: int) -> bytes:
    """The coffee photo as a JPEG whose EXIF says `orientation` (1..8)."""
    image = photos.photo("coffee")
    exif = Image.Exif()
    exif[0x0112] = orientation
    return photos.encode(image, "JPEG", exif=exif.tobytes())


@functools.cache
def corpus() -> dict[str, tuple[bytes, str | None]]:
    """Every odd file, by name: (its bytes, the expected error code or None for a good image)."""
    bomb = png_header_only(500_000, 500_000)
    files: dict[str, tuple[bytes, str | None]] = {
        "fuzz png 88 M pixels, one row of data": (fuzz_png(), "TruncatedImage"),
        "fuzz png greyscale, no data": (
            png_header_only(9_000, 9_000, mode_byte=0),
            "TruncatedImage",
        ),
        "bomb png": (bomb, "TooManyPixels"),
        "bomb icns hiding a 250 G-pixel png": (icns_with_png(bomb), "TooManyPixels"),
        "bomb ico hiding a 250 G-pixel png": (ico_with_png(bomb), "TooManyPixels"),
        "bomb gif screen": (gif_with_screen(65_000, 65_000), "TooManyPixels"),
        "bomb tiff": (tiff_with_size(60_000, 60_000), "TooManyPixels"),
        "bomb bmp": (bmp_with_size(60_000, 60_000), "TooManyPixels"),
        "eps without ghostscript": (eps(), "UnsupportedImage"),
        "wmf": (wmf(), "UnsupportedImage"),
        "dds unknown pixel format": (dds_unknown_fourcc(), "UnsupportedImage"),
        "bmp odd bitfields": (bmp_odd_bitfields(), "UnsupportedImage"),
        "html page": (b"<!doctype html><title>404</title>", "NotAnImage"),
        "empty": (b"", "EmptyObject"),
    }
    for fmt in ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP"):
        files[f"truncated {fmt.lower()}"] = (truncated(fmt), "TruncatedImage")
    for orientation in range(1, 9):
        files[f"exif orientation {orientation}"] = (exif_rotated(orientation), None)
    return files


def png_cut_after_big_rows(side: int = 6_000, keep: float = 0.8) -> bytes:
    """A `side`² RGBA PNG of real (flat) rows whose pixel stream stops at `keep` of its length.

    Pillow allocates and fills most of the image (~side² x 4 bytes) before finding the end: a
    failure that costs real memory, so keeping anything of it per image would show.
    """
    row = b"\x00" + b"\x80\x40\x20\xff" * side
    stream = zlib.compress(row * side, 1)
    return png_header_only(side, side, idat=stream[: int(len(stream) * keep)])
