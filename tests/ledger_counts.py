"""Count a chunk in the ledger as a worker would, its failures missing images."""

from __future__ import annotations

from pipeline.ledger.items import ChunkCommit
from pipeline.ledger.table import RunLedger


def count_chunk(
    ledger: RunLedger,
    run: str,
    chunk: int,
    *,
    ok: int,
    missing: int = 0,
    attempt: str | None = None,
    result_rows: int | None = None,
    failure_rows: int | None = None,
) -> bool:
    """`RunLedger.record_chunk` for `ok` labelled lines and `missing` NoSuchKey fetch failures.

    `attempt` commits the count to that delivery's parts, as a worker does (the marker then
    holds the parts' row counts, which settling checks against the run's counters); their rows
    are `ok` and `missing` unless `result_rows` or `failure_rows` say otherwise (parts that
    disagree with the count).
    """
    commit = None
    if attempt is not None:
        commit = ChunkCommit(
            attempt,
            items=ok + missing,
            result_rows=ok if result_rows is None else result_rows,
            failure_rows=missing if failure_rows is None else failure_rows,
        )
    return ledger.record_chunk(
        run,
        chunk,
        ok=ok,
        failed=missing,
        failed_by_stage={"fetch": missing} if missing else {},
        failed_by_error={"NoSuchKey": missing} if missing else {},
        seconds=1.5,
        images=ok + missing,
        commit=commit,
    )
