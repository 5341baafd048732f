"""The DynamoDB run ledger: one item per run, one marker per counted chunk, counts added once.

Table schema (template.yaml must match; PAY_PER_REQUEST):

    KeySchema    pk (S, HASH), sk (S, RANGE)
    GSI "ByKind" kind (S, HASH), started_at (N, RANGE), projection ALL — sparse: only run items
                 carry `kind`, so listing runs never scans chunk markers.

    run item     pk="RUN#<run>"  sk="META"   kind="run", manifest, status, started_at, split
                                             progress, Split's chunk reservation
                                             (`reserved_from`, `reserved_below`), `wait_token`
                                             once the execution waits
    counter shard pk="RUN#<run>#SHARD#<k:02d>" sk="COUNTS"   ok, failed, breakdowns, chunks_done…
    chunk marker pk="RUN#<run>"  sk="CHUNK#<n:08d>"                 first delivery of chunk n
    replay mark  pk="RUN#<run>"  sk="REPLAY#<round:04d>#<n:08d>"    replay round R, chunk n

Exactly-once counting: a chunk's counts go to its counter shard (`items.shard_of(chunk)`, never
the one run item every chunk would fight over; a replay chunk's go to the run item, where its
round's claim reads them) in one transaction with the conditional Put of its marker, so a
redelivered (or concurrently duplicated) chunk is refused whole and `record_chunk` returns
False. Readers sum the shards into the run item (`items.sum_shards`). The marker also names the
delivery (`attempt`) whose staged parts are committed, with their row counts (`ChunkCommit`):
only that attempt's parts are ever published (`pipeline/ledger/commit.py`). A replay chunk is
counted only if the chunks its lines came from are counted (a `ConditionCheck` on each origin
marker). A transaction cancelled by `TransactionConflict` (another one held the item) is
retried here with jittered backoff: botocore does not retry it. Split progress is written as
absolute values guarded by a monotonic condition, so a Split retried from an older checkpoint
cannot move it backwards.

Longer than the house's ~300 lines on purpose: it is the one DynamoDB adapter of the ledger, and
every write with its conflict retry lives here so the exactly-once protocol reads in one place
(the marker reads are in `pipeline/ledger/markers.py`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pipeline.aws.errors import CONDITION_FAILED, error_code, write_error_from
from pipeline.failures import Stage, ThrottledError
from pipeline.ledger.items import (
    COUNTER_SHARDS,
    ChunkCommit,
    ChunkCounts,
    chunk_marker,
    counter_update,
    n,
    run_key,
    shard_key,
    shard_of,
    state_from_item,
    status_of,
    sum_shards,
)
from pipeline.ledger.runs import RunState, RunStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

RUNS_INDEX = "ByKind"
TRANSACTION_ATTEMPTS = 16
"""Tries of a write that meets `TransactionConflict`; with the backoff below that is ~10 s of
jittered waiting at worst, far past any contention 16 shards see (RELIABILITY.md measures it)."""
BACKOFF_BASE_S = 0.01
BACKOFF_CAP_S = 1.0


class UnknownRunError(LookupError):
    """No run item exists for the id: check it with `lambdaflow status` (lists every run)."""


class OriginNotCountedError(RuntimeError):
    """A replay chunk names lines of a chunk the ledger has not counted: it must not count yet.

    Raised instead of counting, so the replay chunk's message comes back (and, if the origin is
    never counted, ends in the WorkDLQ) rather than counting a line twice.
    """


Origin = tuple[int, int]
"""(replay round, chunk) of the chunk a replayed line's failure came from (round 0: first)."""


class RunLedger:
    """The ledger adapter over an injected low-level boto3 DynamoDB client."""

    def __init__(
        self, client: DynamoDBClient, table: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._table = table
        self._clock = clock
        self.conflict_retries = 0
        """`TransactionConflict`s met and retried by this ledger (for measurements and logs)."""

    @property
    def client(self) -> DynamoDBClient:
        """The DynamoDB client (for the marker reads in `pipeline/ledger/markers.py`)."""
        return self._client

    @property
    def table(self) -> str:
        """The table's name."""
        return self._table

    def start_run(self, run: str, *, manifest: str) -> bool:
        """Create the run item (RUNNING); True if new, False if it already existed."""
        now = n(self._clock())
        response = self._update(
            run_key(run),
            "SET kind = :kind, #run = :run, manifest = if_not_exists(manifest, :manifest), "
            "started_at = if_not_exists(started_at, :now), "
            "#status = if_not_exists(#status, :running), updated_at = :now",
            {"#run": "run", "#status": "status"},
            {
                ":kind": {"S": "run"},
                ":run": {"S": run},
                ":manifest": {"S": manifest},
                ":now": now,
                ":running": {"S": RunStatus.RUNNING.value},
            },
            ReturnValues="ALL_OLD",
        )
        return "started_at" not in response.get("Attributes", {})

    def record_split_progress(
        self,
        run: str,
        *,
        lines_split: int,
        chunks_sent: int,
        is_done: bool,
        parse_failures_by_error: Mapping[str, int] | None = None,
        reason: str | None = None,
        is_paused: bool = False,
    ) -> bool:
        """Store the split's cumulative progress; False if a newer pass wrote more, or it ended.

        The run's end refuses it too: a pass still running once the run is finished writes
        nothing.

        All values are totals since the start of the manifest (what the checkpoint carries),
        so writing them twice changes nothing. Parse failures count as failed lines.
        The last pass also keeps its `reason` (or "" when the manifest was read to its end) in
        `split_reason`, which no later reason overwrites: `reason` is the run's, and a stall or
        a failed execution replaces it.
        `is_paused`: the pass stopped because the WorkQueue was full (until the next pass).
        """
        parse = dict(parse_failures_by_error or {})
        names = {"#ls": "lines_split"}
        values: dict[str, Any] = {
            ":ls": n(lines_split),
            ":cs": n(chunks_sent),
            ":done": {"BOOL": is_done},
            ":paused": {"BOOL": is_paused},
            ":pf": n(sum(parse.values())),
            ":now": n(self._clock()),
        }
        sets = ["#ls = :ls", "chunks_sent = :cs", "is_split_done = :done", "parse_failed = :pf"]
        sets += ["split_paused = :paused", "updated_at = :now"]
        for i, (code, count) in enumerate(sorted(parse.items())):
            names[f"#p{i}"], values[f":p{i}"] = f"parse_error#{code}", n(count)
            sets.append(f"#p{i} = :p{i}")
        if reason is not None:
            sets.append("reason = :reason")
            values[":reason"] = {"S": reason}
        if is_done:
            sets.append("split_reason = :split_reason")
            values[":split_reason"] = {"S": reason or ""}
        names["#status"], values[":running"] = "status", {"S": RunStatus.RUNNING.value}
        try:
            self._update(
                run_key(run),
                "SET " + ", ".join(sets),
                names,
                values,
                # a pass still running once the run was finished (a zombie attempt) writes
                # nothing: its reason would replace the settled one, impossible counts included
                ConditionExpression="(attribute_not_exists(#ls) OR #ls <= :ls) AND "
                "(attribute_not_exists(#status) OR #status = :running)",
            )
        except _AlreadyDone:
            return False
        return True

    def reserve_chunks(self, run: str, *, first_chunk: int, below: int) -> tuple[int, int] | None:
        """Raise the run's chunk reservation (`pipeline/split/reservations.py`); the one before.

        Kept on the run item as (`reserved_from`, `reserved_below`): a pass starting later
        replaces it, an attempt of the same pass only raises it. A condition that fails leaves
        it as it was, and one consistent read says what that is.
        """
        names = {"#from": "reserved_from", "#below": "reserved_below"}
        try:
            response = self._update(
                run_key(run),
                "SET #from = :from, #below = :below",
                names,
                {":from": n(first_chunk), ":below": n(below)},
                ConditionExpression="attribute_not_exists(#from) OR #from < :from "
                "OR (#from = :from AND #below < :below)",
                ReturnValues="ALL_OLD",  # UPDATED_OLD may leave out an unchanged `reserved_from`
            )
            kept = response.get("Attributes", {})
        except _AlreadyDone:
            kept = self._client.get_item(
                TableName=self._table,
                Key=run_key(run),
                ConsistentRead=True,
                ProjectionExpression="reserved_from, reserved_below",
            ).get("Item", {})
        if "reserved_from" not in kept:
            return None
        return int(kept["reserved_from"]["N"]), int(kept["reserved_below"]["N"])

    def record_chunk(
        self,
        run: str,
        chunk: int,
        *,
        ok: int,
        failed: int,
        failed_by_stage: Mapping[str, int],
        failed_by_error: Mapping[str, int],
        seconds: float,
        images: int,
        commit: ChunkCommit | None = None,
    ) -> bool:
        """Count a first-delivery chunk once; False if it was already counted.

        `commit` names the delivery whose staged parts this count commits.

        Raises:
            ValueError: `failed` disagrees with the breakdowns.
            ResultWriteError | ThrottledError: DynamoDB refused the write.
        """
        counts = ChunkCounts(
            ok=ok,
            failed=failed,
            failed_by_stage=dict(failed_by_stage),
            failed_by_error=dict(failed_by_error),
            seconds=seconds,
            images=images,
        )
        shard = shard_key(run, shard_of(chunk))
        return self._record(
            run, shard, chunk_marker(chunk), counts, {"chunks_done": 1}, commit=commit
        )

    def record_replay_chunk(
        self,
        run: str,
        replay_round: int,
        chunk: int,
        counts: ChunkCounts,
        *,
        commit: ChunkCommit | None = None,
        origins: Sequence[Origin] = (),
    ) -> bool:
        """Count a replay chunk once, moving its lines from their previous failures.

        A replayed line was counted failed under its old record's stage and error: this removes
        it there (`counts.replaced_by_*`, whose total must equal `ok + failed`) and adds it as
        ok, or as failed under its new stage and error. `failed` and `lines` never double.
        The count is conditional on every marker in `origins` existing: a line is moved only
        out of a failure the ledger has counted.

        Raises:
            OriginNotCountedError: an origin chunk is not counted (yet).
        """
        if replay_round < 1:
            raise ValueError("replay rounds start at 1")
        if counts.replaced_total != counts.ok + counts.failed:
            raise ValueError(
                f"replay chunk {chunk}: {counts.ok + counts.failed} lines but "
                f"{counts.replaced_total} replaced failures; pass the records' stage/error counts"
            )
        marker = chunk_marker(chunk, replay_round=replay_round)
        checks = [chunk_marker(c, replay_round=r) for r, c in sorted(set(origins))]
        # On the run item, not a shard: a replay round's claim (pipeline/replay/ledger.py) is
        # conditioned on `replay_chunks_done` there, and replays are far fewer than chunks.
        return self._record(
            run,
            run_key(run),
            marker,
            counts,
            {"replay_chunks_done": 1},
            commit=commit,
            checks=checks,
        )

    def is_chunk_counted(self, run: str, chunk: int, *, replay_round: int = 0) -> bool:
        """Whether the chunk's marker exists (read consistently).

        A delivery of a counted chunk has nothing left to do: its parts were written before it
        was counted. Re-doing it would only cost a classify, and where the world changed in
        between (an image uploaded since) it would rewrite parts the counts no longer match.
        """
        key = {**run_key(run), "sk": {"S": chunk_marker(chunk, replay_round=replay_round)}}
        found = self._client.get_item(
            TableName=self._table, Key=key, ConsistentRead=True, ProjectionExpression="sk"
        )
        return "Item" in found

    def get_run(self, run: str) -> RunState:
        """The run's state, read consistently.

        Raises:
            UnknownRunError: no run item has this id.
        """
        items = self._get_consistent([run_key(run), *_shard_keys(run)])
        meta = items.pop(_key_id(run_key(run)), None)
        if meta is None or "started_at" not in meta:
            raise UnknownRunError(f"no run {run!r} in table {self._table}")
        return state_from_item(sum_shards(meta, items.values()))

    def iter_runs(self) -> Iterator[RunState]:
        """Every run, newest first.

        The sparse `ByKind` index only lists the runs; each one's state is then read from the
        table, consistently. A global secondary index is eventually consistent on AWS (moto's is
        not): read from it, a run that has just finished could still say it runs, and
        `lambdaflow replay` would skip it.
        """
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table,
            IndexName=RUNS_INDEX,
            KeyConditionExpression="kind = :kind",
            ExpressionAttributeValues={":kind": {"S": "run"}},
            ProjectionExpression="#run",
            ExpressionAttributeNames={"#run": "run"},
            ScanIndexForward=False,
        )
        for page in pages:
            for listed in page.get("Items", []):
                yield self.get_run(listed["run"]["S"])

    def list_runs(self) -> list[RunState]:
        """Every run, newest first."""
        return list(self.iter_runs())

    def store_wait_token(self, run: str, token: str) -> None:
        """Keep the task token the execution now waits on in the run item.

        A newer one replaces it: each re-armed wait has its own token.
        """
        self._update(
            run_key(run),
            "SET #token = :token, updated_at = :now",
            {"#token": "wait_token"},
            {":token": {"S": token}, ":now": n(self._clock())},
        )

    def wait_token(self, run: str) -> str | None:
        """The task token the run's execution waits on, if it waits yet (one consistent read)."""
        item = self._client.get_item(
            TableName=self._table,
            Key=run_key(run),
            ConsistentRead=True,
            ProjectionExpression="wait_token, #status",
            ExpressionAttributeNames={"#status": "status"},
        ).get("Item", {})
        if status_of(item) is not RunStatus.RUNNING:
            return None
        return item.get("wait_token", {}).get("S")

    def mark_finished(
        self,
        run: str,
        status: RunStatus,
        *,
        reason: str | None = None,
        clear_reason: bool = False,
        settled_as: int | None = None,
        markers_checked: str | None = None,
    ) -> bool:
        """Set the end status (the first finish time is kept, so wall time survives replays).

        `clear_reason` removes a reason that no longer holds (a stall since counted past).
        `settled_as`: the `settle_version` the decision was made from; the write then applies
        only if no other settler wrote since (returns False if one did, and the caller decides
        again from what that one wrote), so a decision made from an older view never lands on
        a newer one. `markers_checked`: the counts the chunk markers were checked against for
        this decision (a later settle at the same counts need not read them again).
        """
        values: dict[str, Any] = {":status": {"S": status.value}, ":now": n(self._clock())}
        expression = "SET #status = :status, finished_at = if_not_exists(finished_at, :now)"
        if markers_checked is not None:
            expression += ", markers_checked = :checked"
            values[":checked"] = {"S": markers_checked}
        condition = "attribute_exists(pk)"
        if settled_as is not None:
            expression += ", settle_version = :next"
            values[":next"], values[":seen"] = n(settled_as + 1), n(settled_as)
            seen = "settle_version = :seen"
            if not settled_as:
                seen = f"(attribute_not_exists(settle_version) OR {seen})"
            condition += f" AND {seen}"
        if reason is not None:
            expression += ", reason = :reason"
            values[":reason"] = {"S": reason}
        elif clear_reason:
            expression += " REMOVE reason"
        try:
            self._update(
                run_key(run),
                expression,
                {"#status": "status"},
                values,
                ConditionExpression=condition,
            )
        except _AlreadyDone as exc:
            if settled_as is None:
                raise UnknownRunError(f"no run {run!r} in table {self._table}") from exc
            self.get_run(run)  # raises UnknownRunError if there is none
            return False
        return True

    def _record(
        self,
        run: str,
        counter: Mapping[str, Any],
        marker: str,
        counts: ChunkCounts,
        extra: Mapping[str, int],
        *,
        commit: ChunkCommit | None = None,
        checks: Sequence[str] = (),
    ) -> bool:
        """The marker's conditional Put and the ADD to the `counter` item, in one transaction."""
        now = self._clock()
        update = counter_update(counter, counts, extra, now)
        item = {**run_key(run), "sk": {"S": marker}, **counts.to_item(now)}
        put = {
            "TableName": self._table,
            "Item": {**item, **(commit.to_item() if commit else {})},
            "ConditionExpression": "attribute_not_exists(sk)",
        }
        update["TableName"] = self._table
        items: list[dict[str, Any]] = [{"Put": put}, {"Update": update}]
        items += [{"ConditionCheck": self._exists(run, sk)} for sk in checks]
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                self._client.transact_write_items(TransactItems=items)
            except ClientError as exc:
                outcome = _cancellation(exc)
                if outcome == "counted":
                    return False
                if outcome == "origin":
                    raise OriginNotCountedError(
                        f"{marker} of run {run}: a chunk its lines came from is not counted"
                    ) from exc
                if outcome != "conflict" or attempt == TRANSACTION_ATTEMPTS - 1:
                    raise write_error_from(exc, f"recording {marker} of run {run}") from exc
                self.conflict_retries += 1
                _backoff(attempt)  # another chunk's transaction holds the shard
            else:
                return True
        raise AssertionError("unreachable")  # pragma: no cover

    def _exists(self, run: str, sk: str) -> dict[str, Any]:
        return {
            "TableName": self._table,
            "Key": {**run_key(run), "sk": {"S": sk}},
            "ConditionExpression": "attribute_exists(sk)",
        }

    def _get_consistent(self, keys: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Items by key id, read consistently with BatchGetItem (unprocessed keys retried)."""
        found: dict[str, dict[str, Any]] = {}
        request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(TRANSACTION_ATTEMPTS):
            response = self._client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self._table, []):
                found[_key_id(item)] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
            _backoff(attempt)
        raise ThrottledError(f"DynamoDB kept keys of {self._table} unprocessed", stage=Stage.WRITE)

    def _update(
        self,
        key: Mapping[str, Any],
        expression: str,
        names: Mapping[str, str],
        values: Mapping[str, Any],
        **kwargs: Any,
    ) -> Any:
        """UpdateItem, retrying a conflict with a concurrent transaction on the same item."""
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                return self._client.update_item(
                    TableName=self._table,
                    Key=dict(key),
                    UpdateExpression=expression,
                    ExpressionAttributeNames=dict(names),
                    ExpressionAttributeValues=dict(values),
                    **kwargs,
                )
            except ClientError as exc:
                code = error_code(exc)
                if code == CONDITION_FAILED:
                    raise _AlreadyDone from exc
                if code != "TransactionConflictException" or attempt == TRANSACTION_ATTEMPTS - 1:
                    raise write_error_from(exc, f"updating {key} in {self._table}") from exc
                self.conflict_retries += 1
                _backoff(attempt)
        raise AssertionError("unreachable")  # pragma: no cover


def _backoff(attempt: int) -> None:
    """Full-jitter exponential backoff (10 ms doubling, capped), so conflicting writers spread."""
    time.sleep(random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)))


def _shard_keys(run: str) -> list[dict[str, Any]]:
    return [shard_key(run, shard) for shard in range(COUNTER_SHARDS)]


def _key_id(item: Mapping[str, Any]) -> str:
    return f"{item['pk']['S']}\0{item['sk']['S']}"


class _AlreadyDone(Exception):
    """A conditional update found newer data (internal; never leaves this module)."""


def _cancellation(exc: ClientError) -> str:
    """Why a transaction was cancelled: "counted", "origin", "conflict" or "other".

    "counted": the marker exists; "origin": an origin marker of a replay chunk is missing.

    Read from `CancellationReasons`, in item order (the marker Put first, the run item's Update,
    then the origin checks), never from text.
    """
    if error_code(exc) != "TransactionCanceledException":
        return "other"
    codes = [r.get("Code", "") for r in exc.response.get("CancellationReasons", [])]
    if codes and codes[0] == "ConditionalCheckFailed":
        return "counted"
    if "ConditionalCheckFailed" in codes[2:]:
        return "origin"
    if "TransactionConflict" in codes:
        return "conflict"
    return "other"
