"""Where `lambdaflow run` puts a manifest in the input bucket (pure: the key from the name)."""

from __future__ import annotations

from pipeline.ledger.submit import _target
from pipeline.s3_uri import S3_MAX_KEY_BYTES


def test_a_manifest_s_key_names_its_digest_and_keeps_its_name():
    assert _target(b"a", "m.csv.gz") != _target(b"b", "m.csv.gz")
    assert _target(b"a", "m.csv.gz") == _target(b"a", "m.csv.gz")
    assert _target(b"a", "m.csv.gz").endswith("/m.csv.gz")


def test_a_name_too_long_for_an_s3_key_keeps_its_end():
    # S3 keys hold at most 1,024 bytes of UTF-8: a long name (of 3-byte characters) keeps
    # its end, where the extensions say the format
    key = _target(b"a", "é" * 600 + "中" * 300 + ".csv.gz")
    assert len(key.encode()) <= S3_MAX_KEY_BYTES
    assert key.endswith("中.csv.gz")
    assert len(key.encode()) > S3_MAX_KEY_BYTES - 3
