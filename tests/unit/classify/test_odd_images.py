"""Odd real-world files: each one a typed decode error or a decoded image, never a crash."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.classify.images import ImageDecoder, _reduce_in_strips
from pipeline.failures import ImageDecodeError
from tests import odd_images, photos

DECODER = ImageDecoder()
CORPUS = odd_images.corpus()


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_odd_file_is_an_answer(name):
    data, expected = CORPUS[name]
    if expected is None:
        assert DECODER.decode(data).shape == (224, 224, 3)
        return
    with pytest.raises(ImageDecodeError) as caught:
        DECODER.decode(data)
    assert caught.value.error == expected, caught.value.message
    assert len(caught.value.message) <= 400


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_a_decode_error_keeps_nothing_of_the_decoder(name):
    # GIVEN a file that fails to decode
    data, expected = CORPUS[name]
    if expected is None:
        return
    with pytest.raises(ImageDecodeError) as caught:
        DECODER.decode(data)
    # THEN the error is not chained to Pillow's exception (whose frames hold the pixel buffers)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


def test_exif_orientation_variants_are_the_same_picture_turned():
    upright = DECODER.decode(odd_images.exif_rotated(1))
    turned = DECODER.decode(odd_images.exif_rotated(3))  # stored upright, EXIF says "turn 180°"
    assert float(abs(upright[::-1, ::-1] - turned).mean()) < 6
    assert float(abs(upright - turned).mean()) > 30


def test_a_big_image_failing_midway_is_a_truncated_image():
    with pytest.raises(ImageDecodeError) as caught:
        DECODER.decode(odd_images.png_cut_after_big_rows(side=3_000))
    assert caught.value.error == "TruncatedImage"


def _big(mode: str, orientation: int = 1) -> tuple[bytes, np.ndarray]:
    """A 4,200 px square photo (17.6 M pixels: a heavy decode) in `mode`, and its small twin."""
    base = photos.photo("coffee").resize((4_200, 4_200), Image.Resampling.BILINEAR)
    photo = base
    if mode == "P":
        photo = base.quantize(64)
    elif mode == "I;16":
        base = base.convert("L")
        photo = Image.fromarray(np.asarray(base, dtype=np.uint16) * 257)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = photos.encode(photo, "PNG", exif=exif.tobytes(), compress_level=1)
    small = (photo if mode == "P" else base).convert("RGB").resize((1_050, 1_050))
    turn = {1: None, 3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_270}[orientation]
    upright = small if turn is None else small.transpose(turn)
    return data, DECODER.decode(photos.encode(upright, "PNG"))


@pytest.mark.parametrize(("mode", "orientation"), [("RGB", 6), ("P", 1), ("I;16", 3)])
def test_a_big_image_is_reduced_first_and_shows_the_same_upright_picture(mode, orientation):
    # GIVEN a heavy image (reduced before its colour conversion, to bound memory)
    data, small_twin = _big(mode, orientation)
    # WHEN it is decoded THEN it is the same picture, upright, as its small twin
    decoded = DECODER.decode(data)
    assert decoded.shape == (224, 224, 3)
    assert float(np.abs(decoded - small_twin).mean()) < 8


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_reducing_in_strips_is_pillows_reduce(mode):
    image = photos.photo("chelsea").convert(mode).resize((1_001, 703))
    if mode == "RGBA":
        image.putalpha(Image.linear_gradient("L").resize(image.size))
    whole = image.reduce(3)
    strips = _reduce_in_strips(image, 3)
    assert (strips.mode, strips.size) == (whole.mode, whole.size)
    assert np.array_equal(np.asarray(strips), np.asarray(whole))
