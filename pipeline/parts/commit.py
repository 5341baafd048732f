"""The S3 half of committing a chunk's parts: stage, publish once, clean up, prune after replays.

Every delivery of a chunk writes its parts to `staging/<run>/<stem>/<attempt>/` — outside
`results/` and `failures/`, so a query engine never reads them. The ledger's conditional write
then picks one attempt per chunk (`pipeline/ledger/commit.py`), and only that attempt is
*published*: its staged bytes are put at the part's deterministic key with `If-None-Match: *`.

Why a conditional create and not a CopyObject: publishing is done by the winner, and again by
anyone who finds the chunk counted with its staging still there (the winner died after the
ledger write). A create that only succeeds where no object exists makes every one of them
harmless — the first publish wins, later ones are no-ops — and it never overwrites a part that a
replay has since pruned (`prune_part`). S3 and the local emulator both enforce it on PutObject.

A published part is never deleted, only rewritten (a pruned part with no rows left is an empty
gzip file): "the part exists" only ever goes from false to true, which is what makes a late
publish safe at any moment.
"""

from __future__ import annotations

import random
import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from botocore.exceptions import ClientError
from isal import igzip

from pipeline.aws.errors import error_code, write_error_from
from pipeline.failures import FailureRecord
from pipeline.parts.layout import (
    PartKind,
    PartName,
    StagedPart,
    chunk_part,
    parse_staging_key,
    staging_run_prefix,
)
from pipeline.parts.store import GZIP_LEVEL, iter_part_rows

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any

MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
PRECONDITION_CODES = frozenset({"PreconditionFailed", "412"})
CONFLICT_CODES = frozenset({"ConditionalRequestConflict", "409"})
"""S3 answers 409 while another conditional write to the key is in flight: try again."""
WRITE_ATTEMPTS = 5
PRUNE_ATTEMPTS = 12
PRUNE_PAUSE_S = 0.05
PRUNE_PAUSE_CAP_S = 2.0


def publish_part(client: S3Client, bucket: str, part: PartName, attempt: str) -> bool:
    """Put `attempt`'s staged copy of `part` at its final key, unless a copy is already there.

    Returns False when nothing is staged (already published and cleaned up, or never staged),
    True when the final part exists afterwards (this call created it, or an earlier one did).

    Raises:
        ResultWriteError | ThrottledError: S3 refused the read or the write.
    """
    body = _read_object(client, bucket, part.staging_key(attempt))
    if body is None:
        return False
    for tries in range(WRITE_ATTEMPTS):
        try:
            client.put_object(
                Bucket=bucket,
                Key=part.key,
                Body=body,
                IfNoneMatch="*",
                ContentType="application/gzip",
            )
        except ClientError as exc:
            code = error_code(exc)
            if code in PRECONDITION_CODES:
                return True  # published before: by the winner, or another roll-forward
            if code not in CONFLICT_CODES or tries == WRITE_ATTEMPTS - 1:
                raise write_error_from(exc, f"publishing s3://{bucket}/{part.key}") from exc
            time.sleep(0.05 * 2**tries)
        else:
            return True
    raise AssertionError("unreachable")  # pragma: no cover


def delete_staged(client: S3Client, bucket: str, parts: Collection[PartName], attempt: str) -> None:
    """Delete `attempt`'s staged copies of `parts` (missing ones are fine)."""
    for part in parts:
        key = part.staging_key(attempt)
        try:
            client.delete_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) not in MISSING_CODES:
                raise write_error_from(exc, f"deleting s3://{bucket}/{key}") from exc


def is_staged(client: S3Client, bucket: str, part: PartName, attempt: str) -> bool:
    """Whether `attempt`'s staged copy of `part` still exists (its follow-up is unfinished)."""
    try:
        client.head_object(Bucket=bucket, Key=part.staging_key(attempt))
    except ClientError as exc:
        if error_code(exc) in MISSING_CODES:
            return False
        raise
    return True


def read_staged_failures(
    client: S3Client, bucket: str, part: PartName, attempt: str
) -> list[FailureRecord]:
    """The failure records `attempt` staged for `part` (none if nothing is staged)."""
    rows = iter_part_rows(client, bucket, part.staging_key(attempt))
    return [FailureRecord.from_dict(row) for row in rows]


@dataclass(frozen=True, slots=True)
class StagedObject:
    """One object under `staging/<run>/`, with its age (for sweeping abandoned attempts)."""

    staged: StagedPart
    last_modified_s: float


def iter_staged(client: S3Client, bucket: str, run: str) -> Iterator[StagedObject]:
    """Every staged part of `run` still in S3 (committed and not cleaned up, or lost)."""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=staging_run_prefix(run)):
        for item in page.get("Contents", []):
            staged = parse_staging_key(item["Key"])
            if staged is not None:
                yield StagedObject(staged, item["LastModified"].timestamp())


def prune_part(client: S3Client, bucket: str, key: str, lines: Collection[int]) -> int:
    """Rewrite a failures part without `lines`; return how many rows were removed.

    Read-modify-write guarded by `If-Match` on the ETag that was read, so two pruners of one
    part never lose each other's work (the loser re-reads and applies its lines again). A part
    left with no rows stays as an empty gzip file: published parts are never deleted, so a late
    publish (`publish_part`) can never bring a pruned part back. Idempotent: lines already gone
    remove nothing.
    """
    drop = set(lines)
    for tries in range(PRUNE_ATTEMPTS):
        try:
            found = client.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in MISSING_CODES:
                return 0
            raise
        etag = found["ETag"]
        with igzip.GzipFile(fileobj=found["Body"], mode="rb") as stream:
            rows = [line for line in stream if line.strip()]
        kept = [line for line in rows if int(orjson.loads(line)["line"]) not in drop]
        removed = len(rows) - len(kept)
        if not removed:
            return 0
        body = igzip.compress(b"".join(kept), compresslevel=GZIP_LEVEL)
        try:
            client.put_object(
                Bucket=bucket, Key=key, Body=body, IfMatch=etag, ContentType="application/gzip"
            )
        except ClientError as exc:
            code = error_code(exc)
            if (code not in PRECONDITION_CODES | CONFLICT_CODES) or tries == PRUNE_ATTEMPTS - 1:
                raise write_error_from(exc, f"pruning s3://{bucket}/{key}") from exc
            # someone else rewrote it meanwhile: read it again, after a jittered pause, so the
            # replay chunks pruning one part at once take turns instead of colliding again
            time.sleep(random.uniform(0, min(PRUNE_PAUSE_CAP_S, PRUNE_PAUSE_S * 2**tries)))
            continue
        return removed
    raise AssertionError("unreachable")  # pragma: no cover


def prune_origins(
    client: S3Client,
    bucket: str,
    run: str,
    origins: Iterable[tuple[int, int]],
    lines: Collection[int],
) -> int:
    """Take a published replay chunk's `lines` out of the failure parts they were replayed from.

    `origins` are the (round, chunk) parts its lines' failures were read from (the chunk
    message names them); returns the rows removed. Idempotent, like `prune_part`.
    """
    return sum(
        prune_part(client, bucket, chunk_part(PartKind.FAILURES, run, n, replay_round=r).key, lines)
        for r, n in origins
    )


def part_names(run: str, chunk: int, replay_round: int) -> tuple[PartName, PartName]:
    """The (results, failures) parts of a work chunk or replay chunk."""
    return (
        chunk_part(PartKind.RESULTS, run, chunk, replay_round=replay_round),
        chunk_part(PartKind.FAILURES, run, chunk, replay_round=replay_round),
    )


def _read_object(client: S3Client, bucket: str, key: str) -> bytes | None:
    try:
        return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        if error_code(exc) in MISSING_CODES:
            return None
        raise write_error_from(exc, f"reading s3://{bucket}/{key}") from exc
