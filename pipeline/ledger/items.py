"""How ledger values become DynamoDB items and back (pure: no client, no clock).

Breakdown counters are flat attributes (`stage#fetch`, `error#NoSuchKey`) rather than maps:
`ADD` on a flat attribute needs nothing to exist first, and a replay can subtract from one.
Parse failures are kept apart (`parse_failed`, `parse_error#<code>`) because Split writes them as
absolute totals while chunks add deltas; reading the item adds the two together.

Past the ~300-line guide: every item shape of the ledger (run, counter shards, chunk and replay
markers) lives here, so the table's schema reads whole in one file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.failures import Stage
from pipeline.ledger.runs import RunState, RunStatus

STAGE_PREFIX = "stage#"
ERROR_PREFIX = "error#"
PARSE_ERROR_PREFIX = "parse_error#"

COUNTER_SHARDS = 16
"""Counter items per run. Chunk completions ADD to shard `chunk % COUNTER_SHARDS`, so 1,000
concurrent functions meet on one item ~60 times less often than on a single run item (DynamoDB
cancels two transactions on one item at once with `TransactionConflict`), and each shard lives
under its own partition key. Fixed, not a setting: every reader must sum the same shards for the
run's whole life. Summing them is one BatchGetItem of 17 keys (the limit is 100)."""
SUMMED_COUNTERS = ("ok", "failed", "images", "compute_s", "chunks_done", "replay_chunks_done")
"""Numeric attributes a shard carries, besides the `stage#`/`error#` breakdowns."""


@dataclass(frozen=True, slots=True)
class ChunkCounts:
    """What one chunk produced; a replay chunk also says which failures its lines had."""

    ok: int
    failed: int
    failed_by_stage: Mapping[str, int] = field(default_factory=dict)
    failed_by_error: Mapping[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    images: int = 0
    replaced_by_stage: Mapping[str, int] = field(default_factory=dict)
    replaced_by_error: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ok < 0 or self.failed < 0 or self.images < 0 or self.seconds < 0:
            raise ValueError(f"negative chunk counts: {self!r}")
        for name in ("failed_by_stage", "failed_by_error"):
            if sum(getattr(self, name).values()) != self.failed:
                raise ValueError(
                    f"{name} sums to {sum(getattr(self, name).values())}, not failed={self.failed}"
                )
        if sum(self.replaced_by_stage.values()) != sum(self.replaced_by_error.values()):
            raise ValueError("replaced_by_stage and replaced_by_error disagree")

    @property
    def replaced_total(self) -> int:
        """How many earlier failures this (replay) chunk supersedes."""
        return sum(self.replaced_by_stage.values())

    def to_item(self, now: float) -> dict[str, Any]:
        """The chunk marker's attributes (besides its key)."""
        return {
            "ok": n(self.ok),
            "failed": n(self.failed),
            "failed_by_stage": _count_map(self.failed_by_stage),
            "failed_by_error": _count_map(self.failed_by_error),
            "seconds": n(self.seconds),
            "images": n(self.images),
            "replaced": n(self.replaced_total),
            "recorded_at": n(now),
        }


@dataclass(frozen=True, slots=True)
class ChunkCommit:
    """Which delivery's parts a chunk marker commits, and the rows those parts hold.

    Written into the marker by the same conditional Put that counts the chunk, so the ledger
    names exactly one attempt per chunk (its staged parts are the ones published) and Finalize
    can check the counts against the parts' row counts without reading the parts.
    """

    attempt: str
    items: int
    result_rows: int
    failure_rows: int
    live_until: float | None = None
    """Epoch seconds by which the committing delivery has certainly ended (its invocation's
    deadline), None when it has none: a later delivery that finds the commit unfinished after
    it knows the winner died and finishes it at once, instead of waiting for it."""

    def to_item(self) -> dict[str, Any]:
        """The marker attributes of the commit."""
        item = {
            "attempt": {"S": self.attempt},
            "items": n(self.items),
            "result_rows": n(self.result_rows),
            "failure_rows": n(self.failure_rows),
        }
        if self.live_until is not None:
            item["live_until"] = n(round(self.live_until, 3))
        return item


@dataclass(frozen=True, slots=True)
class CommittedChunk:
    """A chunk marker read back: what was counted and which attempt's parts are the product.

    `attempt` is "" for a marker written before markers named their attempt.
    """

    chunk: int
    replay_round: int
    ok: int
    failed: int
    replaced: int
    attempt: str
    items: int
    result_rows: int
    failure_rows: int
    live_until: float | None = None
    """The committing delivery's deadline (`ChunkCommit.live_until`), None if unknown."""

    @property
    def label(self) -> str:
        """How messages name it: `chunk 7` or `replay round 2 chunk 0`."""
        if self.replay_round:
            return f"replay round {self.replay_round} chunk {self.chunk}"
        return f"chunk {self.chunk}"

    def problems(self) -> list[str]:
        """Where the counted values disagree with the committed parts or the chunk's lines."""
        found = []
        if self.ok != self.result_rows or self.failed != self.failure_rows:
            found.append(
                f"{self.label} counted ok {self.ok} failed {self.failed} but its committed parts "
                f"hold {self.result_rows} result and {self.failure_rows} failure rows"
            )
        if self.ok + self.failed != self.items:
            found.append(
                f"{self.label} counted {self.ok + self.failed} lines but holds {self.items}"
            )
        return found


def committed_from_item(item: Mapping[str, Any]) -> CommittedChunk:
    """A `CommittedChunk` from a marker item (`CHUNK#…` or `REPLAY#…`)."""
    parts = item["sk"]["S"].split("#")
    replay_round, chunk = (
        (int(parts[1]), int(parts[2])) if parts[0] == "REPLAY" else (0, int(parts[1]))
    )
    ok, failed = int(_num(item, "ok")), int(_num(item, "failed"))
    return CommittedChunk(
        chunk=chunk,
        replay_round=replay_round,
        ok=ok,
        failed=failed,
        replaced=int(_num(item, "replaced")),
        attempt=item.get("attempt", {}).get("S", ""),
        items=int(_num(item, "items", ok + failed)),
        result_rows=int(_num(item, "result_rows", ok)),
        failure_rows=int(_num(item, "failure_rows", failed)),
        live_until=float(item["live_until"]["N"]) if "live_until" in item else None,
    )


def n(value: float) -> dict[str, str]:
    """A DynamoDB number attribute."""
    return {"N": repr(value) if isinstance(value, float) else str(int(value))}


def run_key(run: str) -> dict[str, dict[str, str]]:
    """The primary key of a run's item."""
    return {"pk": {"S": f"RUN#{run}"}, "sk": {"S": "META"}}


def shard_key(run: str, shard: int) -> dict[str, dict[str, str]]:
    """The primary key of one of the run's counter shards (its own partition key)."""
    return {"pk": {"S": f"RUN#{run}#SHARD#{shard:02d}"}, "sk": {"S": "COUNTS"}}


def shard_of(chunk: int) -> int:
    """The shard a chunk's counts go to: by its number, so a redelivery hits the same one."""
    return chunk % COUNTER_SHARDS


def sum_shards(meta: Mapping[str, Any], shards: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The run item with its shards' counters added in.

    Runs written before sharding keep their counters on the run item itself: those are the
    starting values.
    """
    totals = {name: _num(meta, name) for name in meta if _is_summed(name)}
    for shard in shards:
        for name in shard:
            if _is_summed(name):
                totals[name] = totals.get(name, 0) + _num(shard, name)
    return {**meta, **{name: n(value) for name, value in totals.items()}}


def _is_summed(name: str) -> bool:
    return name in SUMMED_COUNTERS or name.startswith((STAGE_PREFIX, ERROR_PREFIX))


def chunk_marker(chunk: int, *, replay_round: int = 0) -> str:
    """The sort key of a chunk marker (`CHUNK#…` or `REPLAY#<round>#…`)."""
    if replay_round:
        return f"REPLAY#{replay_round:04d}#{chunk:08d}"
    return f"CHUNK#{chunk:08d}"


def _count_map(counts: Mapping[str, int]) -> dict[str, Any]:
    return {"M": {name: n(count) for name, count in counts.items()}}


def _delta(new: Mapping[str, int], old: Mapping[str, int]) -> dict[str, int]:
    keys = set(new) | set(old)
    deltas = {k: new.get(k, 0) - old.get(k, 0) for k in sorted(keys)}
    return {k: v for k, v in deltas.items() if v}


def counter_update(
    key: Mapping[str, Any], counts: ChunkCounts, extra: Mapping[str, int], now: float
) -> dict[str, Any]:
    """The `Update` half of the record transaction: ADD the chunk's deltas to the run item."""
    adds = {
        "ok": counts.ok,
        "failed": counts.failed - counts.replaced_total,
        "images": counts.images,
        **extra,
    }
    for stage, count in _delta(counts.failed_by_stage, counts.replaced_by_stage).items():
        adds[STAGE_PREFIX + stage] = count
    for code, count in _delta(counts.failed_by_error, counts.replaced_by_error).items():
        adds[ERROR_PREFIX + code] = count
    names = {f"#a{i}": name for i, name in enumerate(adds)}
    values: dict[str, Any] = {f":a{i}": n(count) for i, count in enumerate(adds.values())}
    values[":s"], values[":now"] = n(float(counts.seconds)), n(now)
    clauses = [f"#a{i} :a{i}" for i in range(len(adds))] + ["compute_s :s"]
    return {
        "Key": dict(key),
        "UpdateExpression": "ADD " + ", ".join(clauses) + " SET updated_at = :now",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def _num(item: Mapping[str, Any], name: str, default: float = 0) -> float:
    attr = item.get(name)
    return float(attr["N"]) if attr else default


def _prefixed(item: Mapping[str, Any], prefix: str) -> dict[str, int]:
    return {k[len(prefix) :]: int(_num(item, k)) for k in item if k.startswith(prefix)}


def _merge(*counts: Mapping[str, int]) -> dict[str, int]:
    total: dict[str, int] = {}
    for mapping in counts:
        for name, count in mapping.items():
            total[name] = total.get(name, 0) + count
    return {k: v for k, v in sorted(total.items()) if v}


def status_of(item: Mapping[str, Any]) -> RunStatus:
    """The status a run item holds; an item with none yet is still running (not yet split)."""
    return RunStatus(item.get("status", {}).get("S", RunStatus.RUNNING.value))


def state_from_item(item: Mapping[str, Any]) -> RunState:
    """A `RunState` from a run item; chunk and parse failures added together."""
    parse_failed = int(_num(item, "parse_failed"))
    return RunState(
        run=item["run"]["S"],
        manifest=item.get("manifest", {}).get("S", ""),
        status=status_of(item),
        started_at=_num(item, "started_at"),
        finished_at=_num(item, "finished_at") if "finished_at" in item else None,
        lines_split=int(_num(item, "lines_split")),
        chunks_sent=int(_num(item, "chunks_sent")),
        is_split_done=bool(item.get("is_split_done", {}).get("BOOL", False)),
        is_split_paused=bool(item.get("split_paused", {}).get("BOOL", False)),
        chunks_done=int(_num(item, "chunks_done")),
        replay_chunks_done=int(_num(item, "replay_chunks_done")),
        ok=int(_num(item, "ok")),
        failed=int(_num(item, "failed")) + parse_failed,
        failed_by_stage=_merge(_prefixed(item, STAGE_PREFIX), {Stage.PARSE.value: parse_failed}),
        failed_by_error=_merge(_prefixed(item, ERROR_PREFIX), _prefixed(item, PARSE_ERROR_PREFIX)),
        compute_s=_num(item, "compute_s"),
        images=int(_num(item, "images")),
        reason=item.get("reason", {}).get("S"),
        split_reason=item.get("split_reason", {}).get("S"),
        settle_version=int(_num(item, "settle_version")),
        markers_checked=item.get("markers_checked", {}).get("S"),
        split_parse_failed=parse_failed,
        wait_token=item.get("wait_token", {}).get("S"),
    )


def table_definition(name: str) -> dict[str, Any]:
    """`CreateTable` arguments for the ledger table; template.yaml declares the same schema."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "kind", "AttributeType": "S"},
            {"AttributeName": "started_at", "AttributeType": "N"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "ByKind",
                "KeySchema": [
                    {"AttributeName": "kind", "KeyType": "HASH"},
                    {"AttributeName": "started_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }
