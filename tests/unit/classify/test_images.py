"""Decoding untrusted bytes: the reference preprocessing, every mode, every bad input typed."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline.classify.images import CROP_FRACTION, ImageDecoder
from pipeline.config import Settings
from pipeline.failures import FailureRecord, ImageDecodeError, Stage
from tests import photos

DECODER = ImageDecoder()


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a - b)))


@pytest.mark.parametrize("name", ["chelsea", "coffee"])
@pytest.mark.parametrize("variant", sorted(photos.variants("coffee")))
def test_decode_gives_model_input_for_every_format_and_mode(name, variant):
    # GIVEN a real photo in one of the encodings and modes users upload
    data = photos.variants(name)[variant]
    # WHEN it is decoded
    image = DECODER.decode(data)
    # THEN it is the model's input: float32 224x224 RGB in 0..255, not a blank
    assert image.shape == (224, 224, 3)
    assert image.dtype == np.float32
    assert image.min() >= 0 and image.max() <= 255
    assert image.std() > 20


def test_decode_matches_the_reference_preprocessing():
    # GIVEN the recipe written out step by step with plain Pillow (crop, then resize)
    image = photos.photo("coffee")
    width, height = image.size
    crop = min(width, height) * CROP_FRACTION
    left, top = (width - crop) / 2, (height - crop) / 2
    reference = image.crop((round(left), round(top), round(left + crop), round(top + crop)))
    expected = np.asarray(reference.resize((224, 224), Image.Resampling.BILINEAR), np.float32)
    # WHEN the decoder does it in one pass
    actual = DECODER.decode(photos.photo_bytes("coffee"))
    # THEN the pixels agree up to sub-pixel crop rounding
    assert mean_abs_diff(actual, expected) < 3


def test_decode_applies_exif_orientation():
    upright = DECODER.decode(photos.photo_bytes("chelsea"))
    rotated = DECODER.decode(photos.exif_rotated_jpeg("chelsea"))
    sideways = DECODER.decode(photos.sideways_jpeg("chelsea"))
    assert mean_abs_diff(rotated, upright) < 4
    assert mean_abs_diff(sideways, upright) > 4 * mean_abs_diff(rotated, upright)


def test_decode_keeps_16_bit_levels_instead_of_clipping_to_white():
    grey = DECODER.decode(photos.sixteen_bit_png("coffee"))
    eight_bit = DECODER.decode(photos.variants("coffee")["greyscale"])
    assert mean_abs_diff(grey, eight_bit) < 3


def test_decode_shows_transparent_pixels_on_white():
    data = photos.encode(Image.new("RGBA", (300, 300), (0, 0, 0, 0)), "PNG")
    assert DECODER.decode(data).min() == 255


def test_decode_takes_the_first_frame_of_an_animated_gif():
    first = DECODER.decode(photos.animated_gif("chelsea", "coffee"))
    still = DECODER.decode(photos.variants("chelsea")["gif"])
    assert Image.open(io.BytesIO(photos.animated_gif("chelsea", "coffee"))).n_frames == 2
    assert mean_abs_diff(first, still) < 8


def test_jpeg_draft_decodes_a_large_photo_at_reduced_scale_without_losing_the_crop():
    # GIVEN a 13.5-megapixel JPEG (4500x3000, a real 600x400 photo upscaled)
    big = photos.encode(photos.photo("coffee").resize((4500, 3000)), "JPEG", quality=90)
    # WHEN decoded with draft and without
    drafted = DECODER.decode(big)
    image = Image.open(io.BytesIO(big))
    image.draft("RGB", (256, 256))
    # THEN libjpeg reduced it by 8 and still kept the crop >= 224, with the same picture
    assert image.size == (563, 375)
    assert min(image.size) * CROP_FRACTION >= 224
    assert mean_abs_diff(drafted, DECODER.decode(photos.photo_bytes("coffee"))) < 6


BAD_INPUTS = {
    "zero bytes": (b"", "EmptyObject"),
    "text": (b"hello, this is not an image at all\n" * 10, "NotAnImage"),
    "html error page": (b"<html><body>403 Forbidden</body></html>", "NotAnImage"),
    "jpeg cut in its header": (photos.photo_bytes("chelsea")[:100], "TruncatedImage"),
    "jpeg cut in half": (photos.photo_bytes("chelsea")[:15000], "TruncatedImage"),
    "png cut in half": (photos.variants("coffee")["png"][:50000], "TruncatedImage"),
    "png with a broken header checksum": (photos.png_with_bad_checksum(), "NotAnImage"),
    "png with a corrupt pixel stream": (photos.png_with_corrupt_pixels("coffee"), "TruncatedImage"),
    "bomb over twice pillow's limit": (photos.png_with_size(30_000, 30_000), "TooManyPixels"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_becomes_a_typed_decode_error(case):
    data, code = BAD_INPUTS[case]
    with pytest.raises(ImageDecodeError) as caught:
        DECODER.decode(data)
    assert caught.value.error == code
    record = FailureRecord.from_exception(caught.value, run="r", line=7, bucket="b", key="k")
    assert (record.stage, record.error, record.retryable) == (Stage.DECODE, code, False)


def test_pillow_decompression_bomb_warning_is_an_error_even_under_our_own_limit():
    # GIVEN 100 M pixels: above Pillow's warning threshold (~89 M), below its hard error
    bomb = photos.png_with_size(10_000, 10_000)
    # WHEN our own limit would allow it
    with pytest.raises(ImageDecodeError) as caught:
        ImageDecoder(max_pixels=10**9).decode(bomb)
    # THEN Pillow's warning still refuses it, as an error, before any pixel is decoded
    assert caught.value.error == "TooManyPixels"


def test_pixel_limit_comes_from_the_decoder_settings():
    with pytest.raises(ImageDecodeError) as caught:
        ImageDecoder(max_pixels=100_000).decode(photos.photo_bytes("coffee"))
    assert caught.value.error == "TooManyPixels"
    assert "600x400" in caught.value.message


def test_byte_limit_refuses_before_parsing():
    with pytest.raises(ImageDecodeError) as caught:
        ImageDecoder(max_bytes=1000).decode(photos.photo_bytes("coffee"))
    assert caught.value.error == "ObjectTooLarge"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cut=st.integers(min_value=0, max_value=len(photos.photo_bytes("chelsea"))),
    flips=st.lists(st.tuples(st.integers(0, 30_000), st.integers(1, 255)), max_size=8),
)
def test_damaged_jpeg_decodes_or_raises_decode_error_never_anything_else(cut, flips):
    data = bytearray(photos.photo_bytes("chelsea")[:cut])
    for at, mask in flips:
        if at < len(data):
            data[at] ^= mask
    try:
        image = DECODER.decode(bytes(data))
    except ImageDecodeError as exc:
        assert exc.error in {
            "EmptyObject",
            "NotAnImage",
            "TruncatedImage",
            "CorruptImage",
            "TooManyPixels",
            "UnsupportedImage",
        }
    else:
        assert image.shape == (224, 224, 3)


def test_decoder_limits_come_from_settings():
    settings = Settings.from_env(
        {"LAMBDAFLOW_MAX_IMAGE_PIXELS": "1000", "LAMBDAFLOW_MAX_IMAGE_BYTES": "2000"}
    )
    decoder = ImageDecoder.from_settings(settings, input_size=260)
    assert (decoder.max_pixels, decoder.max_bytes, decoder.input_size) == (1000, 2000, 260)
    assert decoder.pixel_limit == 1000
    assert ImageDecoder(max_pixels=10**12).pixel_limit == Image.MAX_IMAGE_PIXELS
