"""A replay round's chunks, kept in S3 from before the round is claimed until it is pruned.

A claimed round is settled only once every chunk it claimed is counted. A replay whose send
broke part way (Ctrl-C, a killed process, SQS failing past the SDK's retries, or a call whose
answer was lost after SQS had stored it) used to give back the chunks it believed unsent; a
lost answer made that belief wrong (the next round then replayed lines still in flight, and
counted them twice), and a kill left the round claimed for good, every later replay refused.
Kept here, the round can instead always be sent again: the next `lambdaflow replay` of the run
re-sends every chunk of the round not counted yet. A chunk sent twice is harmless: its ledger
marker refuses the second count, and parts are published once.

The object is named by the claim's id (`replay_claim` on the run item), written before the
claim, so two replays racing for one round never overwrite each other's chunks; one whose
claim loses leaves an object no claim names, deleted with the round's own once it is pruned.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from isal import igzip

from pipeline.replay.chunks import ReplayChunk
from pipeline.split.work_message import parse_work_message

ROUNDS_PREFIX = "replays"
ORPHAN_AGE_S = 3600.0
"""A kept round no claim names is deleted once this old (see `delete_rounds`)."""


def round_key(run: str, claim: str) -> str:
    """The key of the chunks of the round claimed as `claim`."""
    return f"{ROUNDS_PREFIX}/{run}/{claim}.jsonl.gz"


def write_round(s3: Any, bucket: str, run: str, claim: str, chunks: list[ReplayChunk]) -> None:
    """Keep `chunks` (their messages, one a line) under the claim's name."""
    body = b"".join(orjson.dumps(chunk.to_message()) + b"\n" for chunk in chunks)
    s3.put_object(Bucket=bucket, Key=round_key(run, claim), Body=igzip.compress(body, 1))


def read_round(s3: Any, bucket: str, run: str, claim: str | None) -> list[ReplayChunk] | None:
    """The chunks kept under the claim's name; None if there are none (a round from before)."""
    if claim is None:
        return None
    try:
        body = s3.get_object(Bucket=bucket, Key=round_key(run, claim))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    chunks = []
    for line in igzip.decompress(body).splitlines():
        chunk, mark = parse_work_message(orjson.loads(line))
        if mark is None:
            raise ValueError(f"{round_key(run, claim)}: chunk {chunk.number} is no replay chunk")
        chunks.append(ReplayChunk(chunk, mark))
    return chunks


def delete_rounds(
    s3: Any, bucket: str, run: str, claim: str | None, *, now: float | None = None
) -> int:
    """Drop the pruned round's chunks, and any the run's lost claims left; return how many.

    A claim that lost its race, or a replayer that stopped between the prune and this, left
    an object no unfinished round names. One written within `ORPHAN_AGE_S` may be a replay
    about to claim the next round: it is left for the next prune.
    """
    now = time.time() if now is None else now
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{ROUNDS_PREFIX}/{run}/"
    )
    stale = [
        obj["Key"]
        for page in pages
        for obj in page.get("Contents", [])
        if (claim and obj["Key"] == round_key(run, claim))
        or now - obj["LastModified"].timestamp() > ORPHAN_AGE_S
    ]
    for key in stale:
        s3.delete_object(Bucket=bucket, Key=key)
    return len(stale)
