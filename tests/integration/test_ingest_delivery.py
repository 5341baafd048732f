"""The ingest rule against real S3 (the emulator): which objects start a run, and the checksum.

The e2e test (`tests/e2e/test_inventory_delivery.py`) drives a whole delivery through the stack;
these pin each decision and its reason, and force the late-checksum interleaving.
"""

from __future__ import annotations

import hashlib

import pytest

from pipeline.ledger.delivery import Action, ChecksumPolicy, decide, skip_reason
from pipeline.ledger.ingest import ManifestObject

BASE = "inv/src-bucket/daily"
FOLDER = f"{BASE}/2026-12-03T01-00Z"
MANIFEST = b'{"fileFormat": "CSV", "fileSchema": "Bucket, Key", "files": []}'


def _put(s3, bucket: str, key: str, body: bytes) -> ManifestObject:
    etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
    return ManifestObject(bucket=bucket, key=key, etag=etag)


class _Clock:
    """A clock that moves only when the policy sleeps, with something to do on the first sleep."""

    def __init__(self, on_first_sleep=None) -> None:
        self.now = 0.0
        self.sleeps = 0
        self._on_first_sleep = on_first_sleep

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        if self.sleeps == 1 and self._on_first_sleep is not None:
            self._on_first_sleep()

    def policy(self, wait_s: float) -> ChecksumPolicy:
        return ChecksumPolicy(wait_s=wait_s, sleep=self.sleep, clock=lambda: self.now)


@pytest.mark.parametrize(
    ("key", "skipped"),
    [
        (f"{BASE}/data/0b8a2c9e-4f1d-4e2a-9c3b-5d6e7f8a9b0c.csv.gz", True),
        (f"{BASE}/data/0B8A2C9E-4F1D-4E2A-9C3B-5D6E7F8A9B0C.parquet", True),
        (f"{BASE}/data/0b8a2c9e-4f1d-4e2a-9c3b-5d6e7f8a9b0c.orc", True),
        (f"{FOLDER}/manifest.checksum", True),
        (f"{BASE}/hive/dt=2026-12-03-01-00/symlink.txt", True),
        ("manifests/", True),
        (f"{FOLDER}/manifest.json", False),
        ("data/my-list.csv.gz", False),  # a user's manifest under data/ still runs
        ("manifests/symlink.txt", False),
        ("photos.csv", False),
    ],
)
def test_the_ingest_rule_skips_only_what_an_inventory_delivery_adds(key, skipped):
    assert (skip_reason(key) is not None) is skipped


def test_inventory_parts_checksum_and_symlink_are_skipped_with_their_reason(s3, bucket):
    for key, word in [
        (f"{BASE}/data/0b8a2c9e-4f1d-4e2a-9c3b-5d6e7f8a9b0c.csv.gz", "data part"),
        (f"{FOLDER}/manifest.checksum", "manifest.checksum"),
        (f"{BASE}/hive/dt=2026-12-03-01-00/symlink.txt", "symlink"),
    ]:
        decision = decide(s3, _put(s3, bucket, key, b"x"), _Clock().policy(0))
        assert decision.action is Action.SKIP
        assert word in decision.reason


def test_a_matching_checksum_starts_the_run(s3, bucket):
    obj = _put(s3, bucket, f"{FOLDER}/manifest.json", MANIFEST)
    digest = hashlib.md5(MANIFEST).hexdigest().upper()  # case does not matter
    _put(s3, bucket, f"{FOLDER}/manifest.checksum", digest.encode() + b"\n")
    decision = decide(s3, obj, _Clock().policy(10))
    assert (decision.action, decision.reason) == (
        Action.START,
        "an S3 Inventory manifest.json, checksum verified",
    )


def test_a_mismatched_checksum_refuses_the_run_and_says_why(s3, bucket):
    obj = _put(s3, bucket, f"{FOLDER}/manifest.json", MANIFEST)
    _put(s3, bucket, f"{FOLDER}/manifest.checksum", b"0" * 32)
    decision = decide(s3, obj, _Clock().policy(10))
    assert decision.action is Action.REFUSE
    assert "0" * 32 in decision.reason
    assert hashlib.md5(MANIFEST).hexdigest() in decision.reason


def test_a_checksum_written_after_the_event_is_waited_for_and_checked(s3, bucket):
    # GIVEN manifest.json whose checksum S3 has not written yet when ingest looks
    obj = _put(s3, bucket, f"{FOLDER}/manifest.json", MANIFEST)
    clock = _Clock(lambda: _put(s3, bucket, f"{FOLDER}/manifest.checksum", b"f" * 32))
    # WHEN ingest decides, and the (wrong) checksum lands while it waits
    decision = decide(s3, obj, clock.policy(10))
    # THEN the late checksum was read and refused the run
    assert clock.sleeps == 1
    assert decision.action is Action.REFUSE


def test_no_checksum_after_the_wait_starts_the_run_unchecked(s3, bucket):
    obj = _put(s3, bucket, f"{FOLDER}/manifest.json", MANIFEST)
    clock = _Clock()
    decision = decide(s3, obj, clock.policy(3))
    assert decision.action is Action.START
    assert "unchecked" in decision.reason
    assert clock.now >= 3  # it waited the whole time, no longer


def test_a_manifest_json_outside_a_dated_folder_does_not_wait(s3, bucket):
    obj = _put(s3, bucket, "lists/manifest.json", b"[]")
    clock = _Clock()
    assert decide(s3, obj, clock.policy(10)).action is Action.START
    assert clock.sleeps == 0


def test_any_other_object_is_a_manifest(s3, bucket):
    obj = _put(s3, bucket, "lists/photos.csv.gz", b"s3://b/k.jpg\n")
    assert decide(s3, obj, _Clock().policy(10)).action is Action.START
