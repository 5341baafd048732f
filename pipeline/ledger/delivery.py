"""Which created objects of the input bucket start a run: the ingest rule, and S3 Inventory.

An S3 Inventory report arrives as many objects, in this order
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/storage-inventory-location.html):

    <prefix>/<source-bucket>/<config-id>/data/<uuid>.csv.gz        the parts, first
    <prefix>/<source-bucket>/<config-id>/<YYYY-MM-DDTHH-MMZ>/manifest.json
    <prefix>/<source-bucket>/<config-id>/<YYYY-MM-DDTHH-MMZ>/manifest.checksum
    <prefix>/<source-bucket>/<config-id>/hive/dt=<YYYY-MM-DD-HH-MM>/symlink.txt

Only `manifest.json` starts a run (it lists the parts; Split reads them through it). The parts,
the checksum and the Hive symlink are recognised by their key and skipped: each is logged, none
is a failure or a run. Folder markers (keys ending in `/`) are skipped too. Every other object is
a manifest and starts its run: the format is sniffed from the bytes, never from the name.

`manifest.checksum` (the MD5 hex of manifest.json) is written just after manifest.json, so a
manifest.json in a dated Inventory folder waits a few seconds for it; when it is there it must
match, or the run is refused with the reason. A manifest.json with no checksum by then (a report
copied by hand without it) starts unchecked, and says so in the log.

Knows nothing of Lambda: it takes an S3 client (HeadObject/GetObject on the input bucket).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from pipeline.ledger.ingest import ManifestObject, StartedRun, iter_created_objects, start_run
from pipeline.manifest.inventory import MAX_INVENTORY_JSON_BYTES

INVENTORY_MANIFEST = "manifest.json"
INVENTORY_CHECKSUM = "manifest.checksum"
MAX_INVENTORY_CHECKSUM_BYTES = 1024
"""The checksum object is 32 hex digits (and maybe a newline); more is not one."""

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_DATA_PART = re.compile(rf"(?:^|/)data/{_UUID}\.(?:csv\.gz|orc|parquet)$", re.IGNORECASE)
_HIVE_SYMLINK = re.compile(r"(?:^|/)hive/dt=[^/]+/symlink\.txt$")
_DATED_FOLDER = re.compile(r"(?:^|/)\d{4}-\d{2}-\d{2}T\d{2}-\d{2}Z/manifest\.json$")
_CHECKSUM_POLL_S = 0.5


class Action(StrEnum):
    """What ingest does with one created object."""

    START = "start"
    SKIP = "skip"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class Decision:
    """One created object, what ingest does with it, and why (logged either way)."""

    obj: ManifestObject
    action: Action
    reason: str


def skip_reason(key: str) -> str | None:
    """Why the object at `key` never starts a run, or None when it is a manifest."""
    if key.endswith("/"):
        return "a folder marker, not a manifest"
    if key.rsplit("/", 1)[-1] == INVENTORY_CHECKSUM:
        return "an S3 Inventory manifest.checksum: checked when its manifest.json starts the run"
    if _HIVE_SYMLINK.search(key):
        return "an S3 Inventory Hive symlink.txt: the run reads the report through manifest.json"
    if _DATA_PART.search(key):
        return "an S3 Inventory data part: read when its report's manifest.json starts the run"
    return None


def is_inventory_manifest_key(key: str) -> bool:
    """True for `…/<YYYY-MM-DDTHH-MMZ>/manifest.json`, where S3 Inventory writes its manifest."""
    return _DATED_FOLDER.search(key) is not None


def checksum_key(manifest_key: str) -> str:
    """The key of the `manifest.checksum` beside a `manifest.json`."""
    return manifest_key.removesuffix(INVENTORY_MANIFEST) + INVENTORY_CHECKSUM


@dataclass(frozen=True, slots=True)
class ChecksumPolicy:
    """How long a dated Inventory manifest.json waits for its checksum, and how to wait."""

    wait_s: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


def decide(s3: Any, obj: ManifestObject, policy: ChecksumPolicy | None = None) -> Decision:
    """The ingest rule for one created object: start its run, skip it, or refuse it.

    Raises:
        botocore.exceptions.ClientError: S3 failed other than "no such checksum" (retryable).
    """
    reason = skip_reason(obj.key)
    if reason is not None:
        return Decision(obj, Action.SKIP, reason)
    if obj.key.rsplit("/", 1)[-1] != INVENTORY_MANIFEST:
        return Decision(obj, Action.START, "a manifest")
    policy = policy or ChecksumPolicy()
    wait_s = policy.wait_s if is_inventory_manifest_key(obj.key) else 0.0
    expected = _read_checksum(s3, obj.bucket, checksum_key(obj.key), wait_s, policy)
    if expected is None:
        return Decision(obj, Action.START, "a manifest.json without manifest.checksum: unchecked")
    actual = _manifest_md5(s3, obj)
    if actual is None:
        return Decision(obj, Action.SKIP, "manifest.json was replaced or deleted since the event")
    if actual != expected:
        return Decision(
            obj,
            Action.REFUSE,
            f"manifest.checksum says MD5 {expected} but manifest.json has MD5 {actual}: "
            "the report is incomplete or was altered; deliver it again",
        )
    return Decision(obj, Action.START, "an S3 Inventory manifest.json, checksum verified")


def _read_checksum(
    s3: Any, bucket: str, key: str, wait_s: float, policy: ChecksumPolicy
) -> str | None:
    """The checksum's hex digest (lower case), polling up to `wait_s` for it to appear."""
    deadline = policy.clock() + wait_s
    while True:
        try:
            body = s3.get_object(
                Bucket=bucket, Key=key, Range=f"bytes=0-{MAX_INVENTORY_CHECKSUM_BYTES - 1}"
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise
            if policy.clock() >= deadline:
                return None
            policy.sleep(_CHECKSUM_POLL_S)
            continue
        return body["Body"].read().decode("ascii", "replace").strip().lower()


def _manifest_md5(s3: Any, obj: ManifestObject) -> str | None:
    """MD5 hex of the manifest.json version the event named; None when it is gone or replaced.

    Read within a range one byte past the Inventory cap: a bigger object hashes to a digest no
    checksum of a real manifest.json has, so it is refused as a mismatch, never read whole.
    """
    try:
        kwargs: dict[str, Any] = {
            "Bucket": obj.bucket,
            "Key": obj.key,
            "Range": f"bytes=0-{MAX_INVENTORY_JSON_BYTES}",
        }
        if obj.version_id:
            kwargs["VersionId"] = obj.version_id
        elif obj.etag:
            kwargs["IfMatch"] = f'"{obj.etag}"'
        body = s3.get_object(**kwargs)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404", "PreconditionFailed", "412", "NoSuchVersion"):
            return None
        raise
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class Ingested:
    """One object's decision and, when it started one, its run."""

    decision: Decision
    started: StartedRun | None = None


def ingest_notification(
    s3: Any,
    sfn: Any,
    state_machine_arn: str,
    notification: dict[str, Any],
    policy: ChecksumPolicy | None = None,
) -> list[Ingested]:
    """Apply the ingest rule to every created object of one S3 notification.

    Raises:
        botocore.exceptions.ClientError: S3 or Step Functions failed (the notification is retried;
            starting a run twice is harmless, see `start_run`).
    """
    done: list[Ingested] = []
    for obj in iter_created_objects(notification):
        decision = decide(s3, obj, policy)
        started = None
        if decision.action is Action.START:
            started = start_run(sfn, state_machine_arn, obj)
        done.append(Ingested(decision, started))
    return done
