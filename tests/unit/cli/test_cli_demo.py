"""The demo's failure messages: whole words, an ellipsis when shortened."""

from __future__ import annotations

from pipeline.cli.demo import MESSAGE_CHARS, short_message


def test_a_long_message_is_cut_at_a_word_with_an_ellipsis():
    words = ["cannot", "read", "s3://bucket/key.jpg:", "NoSuchKey:"] + ["the specified key"] * 20
    long = " ".join(words)
    short = short_message(long)
    assert len(short) <= MESSAGE_CHARS < len(long)
    assert short.endswith(" …")
    kept = short.removesuffix(" …")
    assert long.startswith(kept)
    assert long[len(kept)] == " "  # the cut fell between words


def test_a_short_message_is_kept_whole():
    assert short_message("cannot read s3://b/k.jpg: NoSuchKey") == (
        "cannot read s3://b/k.jpg: NoSuchKey"
    )
