"""After a replay round is counted: take its lines out of the earlier failure parts, in S3.

Users read `failures/<run>/*.jsonl.gz` raw (Athena, DuckDB, Spark). Once round R's chunks are
counted, every line it replayed is either a result (`results/<run>/replay-R-…`) or a newer
failure (`failures/<run>/replay-R-…`), so the record it was replayed from must leave the older
failure parts, or the raw failure view would show a labelled line, or a line twice.

Each replay chunk's delivery already prunes its own lines from the parts its chunk message
names, right after publishing (`pipeline/parts/commit.py` `prune_origins`): the raw view is
right within moments of each count, whether or not the rest of the round is ever counted. This
round-wide prune, by the replayer once the round settles, is what makes it certain: it also
covers a commit that was rolled forward for a dead delivery (which prunes nothing). Each
rewrite is guarded by the ETag it read (`pipeline.parts.commit.prune_part`), so the two never
lose each other's work. Idempotent and recorded in the ledger (`replay_pruned`): a replay that
crashed before pruning is pruned by the next `lambdaflow replay` of the run, before it claims
a new round.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pipeline.parts.commit import prune_part
from pipeline.parts.layout import PartKind, PartName, Series
from pipeline.parts.store import iter_part_rows, list_parts


def round_lines(s3: Any, bucket: str, run: str, replay_round: int) -> set[int]:
    """Every line round `replay_round` labelled or failed again (read from its own parts)."""
    lines: set[int] = set()
    for kind in (PartKind.RESULTS, PartKind.FAILURES):
        for part in list_parts(s3, bucket, kind, run):
            if part.series is Series.REPLAY and part.round == replay_round:
                lines.update(int(row["line"]) for row in iter_part_rows(s3, bucket, part.key))
    return lines


def earlier_failure_parts(s3: Any, bucket: str, run: str, replay_round: int) -> list[PartName]:
    """The failure parts a line of round `replay_round` can have come from (parse: never)."""
    return [
        part
        for part in list_parts(s3, bucket, PartKind.FAILURES, run)
        if part.series is Series.PART
        or (part.series is Series.REPLAY and part.round < replay_round)
    ]


def prune_round(
    s3: Any, bucket: str, run: str, replay_round: int, *, keys: Collection[str] | None = None
) -> int:
    """Remove round `replay_round`'s lines from the earlier failure parts; return rows removed.

    `keys` narrows the rewrite to the parts the round's records were read from (the replayer
    knows them); without it every earlier failure part is checked (finishing a crashed replay).
    """
    lines = round_lines(s3, bucket, run, replay_round)
    if not lines:
        return 0
    parts = earlier_failure_parts(s3, bucket, run, replay_round)
    if keys is not None:
        parts = [part for part in parts if part.key in keys]
    return sum(prune_part(s3, bucket, part.key, lines) for part in parts)
