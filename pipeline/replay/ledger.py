"""The replay's own attributes on a run's ledger item: the round claim and its progress.

Run item attributes (beside `pipeline/ledger/table.py`'s):

    replay_round        the last claimed replay round (1, 2, …)
    replay_chunks_sent  replay chunks sent over all rounds: each claim sets it to the chunks
                        counted so far plus its own
    replay_chunks_done  replay chunks counted (ADDed by `RunLedger.record_replay_chunk`)
    replay_pruned       the last round whose lines were removed from the earlier failure parts
    replay_claim        the id of the claim that took the last round (a random one per claim);
                        it also names the round's chunks, kept in S3 before the claim
                        (`pipeline/replay/round_store.py`), so a round can always be sent again

A round is claimed only on a finished run (status not RUNNING: every counted chunk's parts are
published, so the failure view is final) and only once the previous round is pruned, so a
replay that crashed after its chunks were counted is finished — pruned — before the next one.

One replay per run at a time: a claim is one conditional UpdateItem that takes round
`replay_round + 1` only if every replay chunk sent before was counted. Two replays of the same
lines in flight at once would each move the lines out of the same failure and count them twice;
the claim makes that impossible, and it makes round numbers dense and unique without reading
the parts. An unfinished round is sent again by the next replay rather than followed by
another (`pipeline/replay/replayer.py`).

A claim names itself (`replay_claim`): when its answer is lost and botocore sends the same
UpdateItem again (a reset connection), the repeat fails its own condition, and the claim that did
take the round is recognised as this one instead of read as another replay in progress (which
would have left the round claimed, its chunks never sent, and every later replay refused).
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pipeline.aws.errors import CONDITION_FAILED, error_code, is_applied, write_error_from
from pipeline.ledger.items import n, run_key, status_of
from pipeline.ledger.runs import RunStatus
from pipeline.replay.drain_lease import DrainLease

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any


class ReplayInProgressError(RuntimeError):
    """A replay of this run is unfinished: wait for it, or replay the WorkDLQ first."""


class RunStillRunningError(RuntimeError):
    """The run has not finished: its failure parts are not final, so its lines cannot replay."""


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    """How far the run's replays got."""

    replay_round: int
    sent: int
    done: int
    pruned: int = 0
    claim: str | None = None
    """The id of the claim that took the last round (None: no round yet, or an old one)."""

    @property
    def is_pruned(self) -> bool:
        """The last round's lines are gone from the earlier failure parts."""
        return self.pruned >= self.replay_round

    @property
    def is_settled(self) -> bool:
        """Every replay chunk sent so far has been counted."""
        return self.done >= self.sent


class ReplayLedger:
    """Claims replay rounds and reads their progress, on the ledger's table."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def drain_lease(self) -> DrainLease:
        """A turn at draining the FailureQueue, kept on this table (one drain at a time)."""
        return DrainLease(self._client, self._table)

    def progress(self, run: str) -> ReplayProgress:
        """The run's replay round and chunk counts, read consistently."""
        item = self._client.get_item(
            TableName=self._table,
            Key=run_key(run),
            ConsistentRead=True,
            ProjectionExpression=(
                "replay_round, replay_chunks_sent, replay_chunks_done, replay_pruned, replay_claim"
            ),
        ).get("Item", {})
        return _progress_of(item)

    def claim_round(self, run: str, *, chunks: int, claim: str | None = None) -> int:
        """Take the next replay round for `chunks` replay chunks; return its number.

        `claim` names the claim (a new random id when None): the replayer stores the round's
        chunks under it first, so a round whose send broke can be sent again.

        Raises:
            RunStillRunningError: the run has not finished (the guard is in the condition).
            ReplayInProgressError: a previous round still has chunks not counted, or is not
                pruned yet.
            ResultWriteError | ThrottledError: DynamoDB refused the write.
        """
        current = self.progress(run)
        if not (current.is_settled and current.is_pruned):
            raise _in_progress(run, current)
        condition = (
            "attribute_exists(pk) AND #status <> :running AND "
            "(attribute_not_exists(replay_round) OR replay_round = :previous) AND "
            "(attribute_not_exists(replay_pruned) OR replay_pruned = :previous) AND "
            "(attribute_not_exists(replay_chunks_sent) OR replay_chunks_sent <= :done)"
        )
        claim = claim or uuid.uuid4().hex
        next_round = current.replay_round + 1
        try:
            self._client.update_item(
                TableName=self._table,
                Key=run_key(run),
                # sent = done + chunks, not sent + chunks: a surplus of counts over claims (a
                # round claimed before claims counted the origin-split cut) would otherwise let
                # this round read as settled before its own chunks are all counted
                UpdateExpression=(
                    "SET replay_round = :round, replay_pruned = :previous, replay_claim = :claim, "
                    "replay_chunks_sent = if_not_exists(replay_chunks_done, :zero) + :chunks"
                ),
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":round": n(next_round),
                    ":previous": n(current.replay_round),
                    ":chunks": n(chunks),
                    ":zero": n(0),
                    ":done": n(current.done),
                    ":running": {"S": RunStatus.RUNNING.value},
                    ":claim": {"S": claim},
                },
                # a refusal carries the item that refused it: no second read to say why
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise write_error_from(exc, f"claiming a replay round of run {run}") from exc
            refusing = exc.response.get("Item", {})
            if not _is_claimed_by(refusing, claim, next_round):
                raise _refusal(run, refusing) from exc
        return next_round

    def mark_pruned(self, run: str, replay_round: int) -> None:
        """Record that round `replay_round`'s lines are gone from the earlier failure parts."""
        self._update_once(  # refused: marked already
            run,
            "SET replay_pruned = :round",
            "attribute_not_exists(replay_pruned) OR replay_pruned < :round",
            {":round": n(replay_round)},
            what=f"marking round {replay_round} of {run} pruned",
        )

    def _update_once(
        self, run: str, update: str, condition: str, values: dict[str, Any], *, what: str
    ) -> None:
        """Update the run item unless `condition` says this update was applied already."""
        write = functools.partial(
            self._client.update_item,
            TableName=self._table,
            Key=run_key(run),
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
        )
        is_applied(write, what)


def _int(item: dict[str, Any], name: str) -> int:
    attr = item.get(name)
    return int(attr["N"]) if attr else 0


def _progress_of(item: dict[str, Any]) -> ReplayProgress:
    replay_round = _int(item, "replay_round")
    return ReplayProgress(
        replay_round=replay_round,
        sent=_int(item, "replay_chunks_sent"),
        done=_int(item, "replay_chunks_done"),
        # a run replayed before rounds were pruned has no attribute: count it as pruned
        pruned=_int(item, "replay_pruned") if "replay_pruned" in item else replay_round,
        claim=item.get("replay_claim", {}).get("S"),
    )


def _is_claimed_by(item: dict[str, Any], claim: str, replay_round: int) -> bool:
    """Whether the run item says `claim` took round `replay_round`: its own earlier try, applied."""
    claimed = item.get("replay_claim", {}).get("S")
    return claimed == claim and _int(item, "replay_round") == replay_round


def _refusal(run: str, item: dict[str, Any]) -> Exception:
    """Why the run item refused a claim: the run still runs, or a round is unfinished."""
    if status_of(item) is RunStatus.RUNNING:
        return still_running(run)
    return _in_progress(run, _progress_of(item))


def still_running(run: str) -> RunStillRunningError:
    """The one-line refusal for a run that has not finished."""
    return RunStillRunningError(
        f"run {run} is still running: its lines can be replayed once it has finished "
        "(`lambdaflow status`), or pass --wait to wait for it"
    )


def unkept_round(run: str, progress: ReplayProgress) -> ReplayInProgressError:
    """The refusal for an unfinished round with no copy of its chunks to send again."""
    return ReplayInProgressError(
        f"run {run}: replay round {progress.replay_round} is unfinished ({progress.done} of "
        f"{progress.sent} replay chunks counted) and no copy of its chunks is kept to send "
        "again (an older lambdaflow claimed it): wait for them, or replay the WorkDLQ "
        "(`lambdaflow replay --source dlq`) if a replay chunk was parked there"
    )


def _in_progress(run: str, progress: ReplayProgress) -> ReplayInProgressError:
    return ReplayInProgressError(
        f"run {run}: replay round {progress.replay_round} is unfinished ({progress.done} of "
        f"{progress.sent} replay chunks counted); wait for it, or replay the WorkDLQ "
        "(`lambdaflow replay --source dlq`) if a replay chunk was parked there"
    )
