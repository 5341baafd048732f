"""Reading chunk markers back, and pinning a run's chunk plan: the ledger's commit records.

Kept apart from `pipeline/ledger/table.py` (which writes counts) because these reads serve
other jobs: the worker and Finalize roll a committed attempt forward from its marker, Finalize
cross-checks the run's counters against every marker, and Split reads the chunk plan it must
keep for the whole run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from pipeline.ledger.items import CommittedChunk, chunk_marker, committed_from_item, n, run_key

if TYPE_CHECKING:
    from pipeline.ledger.table import RunLedger


def committed_chunk(
    ledger: RunLedger, run: str, chunk: int, *, replay_round: int = 0
) -> CommittedChunk | None:
    """The chunk's marker (read consistently), or None while it is not counted."""
    key = {**run_key(run), "sk": {"S": chunk_marker(chunk, replay_round=replay_round)}}
    item = ledger.client.get_item(TableName=ledger.table, Key=key, ConsistentRead=True).get("Item")
    return committed_from_item(item) if item else None


MARKER_ATTRIBUTES = (
    "sk",
    "ok",
    "failed",
    "replaced",
    "attempt",
    "items",
    "result_rows",
    "failure_rows",
    "live_until",
)
"""What `committed_from_item` reads of a marker: half its bytes, and half the CPU of reading
millions of them (a marker's per-stage and per-error counts stay behind)."""


def iter_committed_chunks(ledger: RunLedger, run: str) -> Iterator[CommittedChunk]:
    """Every chunk marker of the run: first deliveries, then replay chunks by round."""
    paginator = ledger.client.get_paginator("query")
    for prefix in ("CHUNK#", "REPLAY#"):
        pages = paginator.paginate(
            TableName=ledger.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": run_key(run)["pk"], ":prefix": {"S": prefix}},
            ProjectionExpression=", ".join(f"#a{i}" for i in range(len(MARKER_ATTRIBUTES))),
            ExpressionAttributeNames={f"#a{i}": a for i, a in enumerate(MARKER_ATTRIBUTES)},
            ConsistentRead=True,
        )
        for page in pages:
            yield from (committed_from_item(item) for item in page.get("Items", []))


def counted_replay_chunks(ledger: RunLedger, run: str, replay_round: int) -> set[int]:
    """The numbers of round `replay_round`'s chunks counted so far (read consistently)."""
    prefix = chunk_marker(0, replay_round=replay_round).rsplit("#", 1)[0] + "#"
    pages = ledger.client.get_paginator("query").paginate(
        TableName=ledger.table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={":pk": run_key(run)["pk"], ":prefix": {"S": prefix}},
        ProjectionExpression="sk",
        ConsistentRead=True,
    )
    return {int(item["sk"]["S"].rsplit("#", 1)[1]) for page in pages for item in page["Items"]}


def pin_chunk_plan(ledger: RunLedger, run: str, plan: Mapping[str, int]) -> dict[str, int]:
    """Store the run's chunk plan once (the first writer wins); return the plan in force.

    Split cuts every pass — a retried first pass too — with the plan returned here, so a
    redeploy with another chunk size mid-run cannot renumber chunks it already sent.
    """
    names = {f"#k{i}": f"plan_{name}" for i, name in enumerate(plan)}
    values = {f":v{i}": n(value) for i, value in enumerate(plan.values())}
    sets = ", ".join(f"#k{i} = if_not_exists(#k{i}, :v{i})" for i in range(len(plan)))
    response = ledger.client.update_item(
        TableName=ledger.table,
        Key=run_key(run),
        UpdateExpression="SET " + sets,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
        ReturnValues="ALL_NEW",
    )
    stored = response.get("Attributes", {})
    return {
        name: int(stored[f"plan_{name}"]["N"]) if f"plan_{name}" in stored else value
        for name, value in plan.items()
    }
