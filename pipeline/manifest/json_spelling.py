"""How a writer spells a plain JSON record: where its spaces go, and so its fixed frames.

orjson, pandas and most tools write `{"bucket":"B","key":"K"}`; Python's `json.dumps` writes
`{"bucket": "B", "key": "K"}` (a space after each `:` and `,`), which is what JSON Lines
written by a Python loop look like. The dense JSON proofs (`pipeline.manifest.dense_json`) work
on the fixed bytes around bucket and key, so a spelling is those frames, built here once for
each. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

_ITEM_FRAME = len('[,"",""]')
"""An item `[n,"b","k"]` is b + k + this + n's digits."""


@dataclass(frozen=True, slots=True)
class JsonSpelling:
    """The fixed bytes of plain records in one spelling (compact shown; `%b` is the bucket).

    Attributes:
        bucket_open: `{"bucket":"%b","key":"`, a bucket-first record's start.
        key_open: `{"key":"`, a key-first record's start.
        key_first_end: `","bucket":"%b"}`, a key-first record's end (its line end follows).
        uri_head: `{"uri":"s3://`, a uri record's start (the bucket and `/` follow).
    """

    bucket_open: bytes
    key_open: bytes
    key_first_end: bytes
    uri_head: bytes

    @classmethod
    def of(cls, colon: bytes, comma: bytes) -> JsonSpelling:
        """The frames of records written with `colon` after a name and `comma` between fields."""
        bucket_head = b'{"bucket"' + colon + b'"'
        key_field = b'"' + comma + b'"key"' + colon + b'"'
        return cls(
            bucket_open=bucket_head + b"%b" + key_field,
            key_open=b'{"key"' + colon + b'"',
            key_first_end=b'"' + comma + b'"bucket"' + colon + b'"%b"}',
            uri_head=b'{"uri"' + colon + b'"s3://',
        )

    @property
    def row_item_delta(self) -> int:
        """Item size less row size for `{"bucket":"b","key":"k` rows (and key-first ones)."""
        return _ITEM_FRAME - len(self.bucket_open % b"")

    @property
    def uri_item_delta(self) -> int:
        """Item size less row size for `{"uri":"s3://b/k` rows."""
        return _ITEM_FRAME - len(self.uri_head) - len(b"/")


COMPACT = JsonSpelling.of(b":", b",")
SPACED = JsonSpelling.of(b": ", b", ")
"""Python's `json.dumps` with its default separators."""


def spelling_of(data: bytes) -> JsonSpelling:
    """The spelling of a block's first record: spaced when a space follows its first colon."""
    colon = data.find(b":")
    return SPACED if data[colon + 1 : colon + 2] == b" " else COMPACT
