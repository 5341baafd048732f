"""Submit a manifest to a stack and follow its run to the summary.

Submitting is an ordinary PUT into the input bucket — the same S3 event path a user's own upload
takes — so `lambdaflow run` exercises the whole flow rather than calling the state machine. The
run id follows from the stored object (bucket, key, ETag), exactly as ingest derives it.

Knows nothing of the CLI or of the local stack: it works against AWS as well.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.ledger.ingest import ManifestObject
from pipeline.ledger.runs import RunState
from pipeline.ledger.summary import read_summary
from pipeline.ledger.table import RunLedger, UnknownRunError
from pipeline.s3_uri import S3_MAX_KEY_BYTES, split_s3_uri

MANIFEST_PREFIX = "manifests/"
DIGEST_CHARS = 16
"""Hex digits of the digest in a submitted manifest's key (64 bits: no two manifests meet)."""
SINGLE_PUT_BYTES = 8 * 2**20
"""Below this (s3transfer's multipart threshold) a manifest is one PutObject in this thread:
no transfer threads, so a Ctrl-C ends the command at once (s3transfer cancels its threads'
requests and waits for them, which botocore may retry: boto/botocore#3268)."""


class RunTimeoutError(TimeoutError):
    """The run did not finish in time; it goes on: follow it with `lambdaflow status RUN`."""


def submit_manifest(s3: Any, input_bucket: str, source: str) -> ManifestObject:
    """Put a local file (or copy an `s3://` object) into the input bucket; return the object.

    An `s3://` URI already in the input bucket is taken as it is: its upload already started
    its run. Anything else goes to `manifests/<digest>/<name>`, the digest of what it is (the
    file's bytes; the source object's bucket, key and ETag): the same manifest submitted again
    lands on the same object, so it follows the same run, and two manifests of one name (from
    two folders, or a file changed since) never overwrite each other, which would end the
    first one's run as `ManifestChanged`.
    """
    if source.startswith("s3://"):
        bucket, key = split_s3_uri(source)
        if bucket != input_bucket:
            etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
            target = _target(f"s3://{bucket}/{key} {etag}".encode(), key.rsplit("/", 1)[-1])
            # boto3's managed copy: one CopyObject up to its threshold, a multipart copy past
            # it (one CopyObject takes at most 5 GB), each call on the ETag the digest names
            s3.copy(
                {"Bucket": bucket, "Key": key},
                input_bucket,
                target,
                ExtraArgs={"CopySourceIfMatch": etag},
            )
            key = target
    else:
        path = Path(source)
        with path.open("rb") as file:
            key = _target(hashlib.file_digest(file, "sha256").digest(), path.name)
        if path.stat().st_size < SINGLE_PUT_BYTES:
            with path.open("rb") as body:
                s3.put_object(Bucket=input_bucket, Key=key, Body=body)
        else:
            s3.upload_file(str(path), input_bucket, key)
    head = s3.head_object(Bucket=input_bucket, Key=key)
    return ManifestObject(
        bucket=input_bucket,
        key=key,
        etag=head["ETag"].strip('"'),
        version_id=head.get("VersionId"),
        size=head.get("ContentLength"),
    )


def _target(identity: bytes, name: str) -> str:
    """The input bucket's key for a manifest named `name` whose identity is `identity`.

    A name that would take the key past S3's 1,024 bytes keeps its end (its extensions say
    the format): the digest already tells manifests apart.
    """
    key = f"{MANIFEST_PREFIX}{hashlib.sha256(identity).hexdigest()[:DIGEST_CHARS]}/"
    room = S3_MAX_KEY_BYTES - len(key.encode())
    while len(name.encode()) > room:
        name = name[1:]
    return key + name


def watch_run(
    *,
    ledger: RunLedger,
    s3: Any,
    results_bucket: str,
    run: str,
    on_progress: Callable[[RunState | None], None],
    poll_s: float = 0.25,
    progress_every_s: float = 1.0,
    timeout_s: float = 3600.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Look for the run's summary every `poll_s`; report the ledger every `progress_every_s`.

    The ledger state goes to `on_progress` once more at the end (the final counts), and the
    summary is returned.

    Two cadences because the two reads differ: the summary (an S3 GET or two) is what ends the
    command's wait, so it is looked for often (every `lambdaflow run` lasts half a poll longer
    than its run, on average), while the ledger reading behind the progress bar is a consistent
    read of every counter shard of the run — the dearest request a local stack serves — and a
    person reads a progress bar about once a second.

    Raises:
        RunTimeoutError: no summary after `timeout_s`.
    """
    deadline = clock() + timeout_s
    next_progress = clock()
    while clock() < deadline:
        summary = read_summary(s3, results_bucket, run)
        if summary is not None or clock() >= next_progress:
            next_progress = clock() + progress_every_s
            try:
                on_progress(ledger.get_run(run))
            except UnknownRunError:
                on_progress(None)  # Split has not started the run yet
        if summary is not None:
            return summary
        sleep(poll_s)
    raise RunTimeoutError(f"run {run} did not finish within {timeout_s:.0f}s")
