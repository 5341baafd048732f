"""The WorkQueue message: a chunk, and for a replay chunk its round and each line's prior failure.

A replay chunk is an ordinary chunk message (`pipeline.split.chunking.Chunk.to_message`) plus two
fields, so a reader that knows nothing of replays still reads the items:

    {"v":1, "run":…, "chunk":N, "items":[[line,bucket,key[,version_id]],…],
     "replay":R, "prior":[[stage,error,attempts],…],      (prior[i] belongs to items[i])
     "origins":[[round,chunk],…]}                         (the chunks the failures came from)

`origins` lets the ledger count a replay chunk only if every chunk its lines' failures came
from is counted (older messages without it are counted without that check).

Split produces the plain form, as v2 (`pipeline.split.span_message`: `"v":2` and `"pieces"`,
each piece a first line number and its rows, instead of `"items"`) wherever that is smaller,
replay (`pipeline.replay.chunks`) the marked one (always v1 items: `prior[i]` follows them),
and the worker reads all of them through `parse_work_message`: the type lives here, below
both, so neither the worker nor replay reaches sideways for it. Pure: no client, no clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.failures import FailureRecord
from pipeline.ledger.items import ChunkCounts
from pipeline.split.chunking import Chunk

REPLAY_FIELD = "replay"
PRIOR_FIELD = "prior"
ORIGINS_FIELD = "origins"


@dataclass(frozen=True, slots=True)
class PriorFailure:
    """What a replayed line's latest failure record said."""

    stage: str
    error: str
    attempts: int

    def to_list(self) -> list[Any]:
        """The compact message form `[stage, error, attempts]`."""
        return [self.stage, self.error, self.attempts]


@dataclass(frozen=True, slots=True)
class ReplayMark:
    """The replay half of a chunk message: its round and each line's prior failure."""

    replay_round: int
    prior: Mapping[int, PriorFailure] = field(default_factory=dict)
    origins: tuple[tuple[int, int], ...] = ()
    """(round, chunk) of every chunk whose failure parts these lines came from."""

    def attempts_for(self, line: int) -> int:
        """`attempts` of a record written for `line` in this round: previous + 1."""
        previous = self.prior.get(line)
        return (previous.attempts if previous else 0) + 1

    def counts(
        self, *, failures: Iterable[FailureRecord], ok: int, seconds: float, images: int
    ) -> ChunkCounts:
        """The ledger counts of this replay chunk, replacing every line's prior failure."""
        failed = list(failures)
        return ChunkCounts(
            ok=ok,
            failed=len(failed),
            failed_by_stage=dict(Counter(f.stage.value for f in failed)),
            failed_by_error=dict(Counter(f.error for f in failed)),
            seconds=seconds,
            images=images,
            replaced_by_stage=dict(Counter(p.stage for p in self.prior.values())),
            replaced_by_error=dict(Counter(p.error for p in self.prior.values())),
        )


def replay_message(chunk: Chunk, mark: ReplayMark) -> dict[str, Any]:
    """The WorkQueue body of a replay chunk (the chunk message plus `replay` and `prior`)."""
    message = chunk.to_message()
    message[REPLAY_FIELD] = mark.replay_round
    message[PRIOR_FIELD] = [mark.prior[item.line].to_list() for item in chunk.items]
    if mark.origins:
        message[ORIGINS_FIELD] = [list(origin) for origin in mark.origins]
    return message


def parse_work_message(body: dict[str, Any]) -> tuple[Chunk, ReplayMark | None]:
    """Read any WorkQueue body: the chunk, and its replay mark when it is a replay chunk.

    Raises:
        ValueError: a malformed message (a poison message: it fails until the WorkDLQ).
    """
    chunk = Chunk.from_message(body)
    if body.get(REPLAY_FIELD) is None:
        return chunk, None
    replay_round = int(body[REPLAY_FIELD])
    prior = body.get(PRIOR_FIELD) or []
    if replay_round < 1 or len(prior) != len(chunk.items):
        raise ValueError(
            f"replay chunk {chunk.number}: round {replay_round} with {len(prior)} prior records "
            f"for {len(chunk.items)} items"
        )
    by_line = {
        item.line: PriorFailure(str(stage), str(error), int(attempts))
        for item, (stage, error, attempts) in zip(chunk.items, prior, strict=True)
    }
    origins = tuple((int(r), int(c)) for r, c in body.get(ORIGINS_FIELD) or [])
    return chunk, ReplayMark(replay_round, by_line, origins)
