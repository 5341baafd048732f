"""Odd real-world files: each one a typed decode error or a decoded image, never a crash."""

from __future__ import annotations

import pytest

from pipeline.classify.images import ImageDecoder
from pipeline.failures import ImageDecodeError
from tests import odd_images

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
