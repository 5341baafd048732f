"""Chunk numbers reserved before they are sent: how far a retried pass must go before it stops.

A pass's chunks depend on where it starts and on the blocks it reads from there: Split sends
some blocks unparsed, so a malformed line is a line of its chunk in one pass and a line of
Split's parse part in another (`pipeline/split/passes.py`). A pass that dies after sending
chunks is retried from the same checkpoint and cuts the same chunks again, but only as far as
the retry itself goes. A retry that stops earlier (its queue check now counts the dead
attempt's chunks, or its clock runs otherwise) leaves the next pass to cut the numbers the dead
attempt sent from a later checkpoint, with other lines: workers keep the first copy of a
number and the parse parts the last, so one line lands twice and another nowhere, with every
total still right.

So a pass reserves chunk numbers before it hands them to the sink, in a record that only grows
(the run's ledger item), and never stops short of what an earlier attempt of the same pass
reserved. The reservation is keyed by the pass's first chunk: what a previous pass reserved past
its own stop was never sent, and binds no one.

Reserving ahead keeps the writes few: the step doubles with the pass's chunks, from one up to
`MAX_AHEAD`, so a pass writes ~12 times in its first 4,096 chunks and then once every
`MAX_AHEAD` chunks (~1,000 writes over 21 GB of manifest), and a retry runs at most that far past
where the dead attempt got: twice as far for a short one, never `MAX_AHEAD` chunks more. Pure:
the store is injected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

MAX_AHEAD = 4096
"""The step's cap: ~2 M lines at 500 a chunk, seconds of a pass at most."""


class SplitOverlapError(RuntimeError):
    """A pass starting later than this one has reserved chunks: two splits of one run at once."""


class ChunkReservations(Protocol):
    """Where reservations are kept (the ledger on AWS and on the local stack)."""

    def reserve_chunks(self, run: str, *, first_chunk: int, below: int) -> tuple[int, int] | None:
        """Record that the pass starting at `first_chunk` may send chunks numbered below `below`.

        Only ever raises what is kept. Returns what was kept before, as (first_chunk, below),
        None if nothing was.
        """
        ...


def earlier_bound(first_chunk: int, kept: tuple[int, int] | None) -> int:
    """How far earlier attempts of the pass starting at `first_chunk` may have sent chunks."""
    if kept is None or kept[0] < first_chunk:  # nothing, or an earlier pass's: never sent
        return first_chunk
    if kept[0] > first_chunk:
        raise SplitOverlapError(
            f"a pass from chunk {kept[0]} has already reserved chunks, "
            f"so this pass from chunk {first_chunk} would cut them again: is the run split twice?"
        )
    return max(first_chunk, kept[1])


@dataclass(slots=True)
class PassReservation:
    """One pass's reservations: reserve before each send, and say when it may stop."""

    store: ChunkReservations | None
    run: str
    first_chunk: int
    must_reach: int = 0
    """Chunks below this may have been sent by an earlier attempt: the pass goes past them."""
    below: int = 0
    """What this pass has reserved so far."""

    def before_sending(self, number: int) -> None:
        """Reserve `number` (and a step ahead) unless it is reserved already."""
        if self.store is None or number < self.below:
            return
        ahead = min(max(1, number - self.first_chunk), MAX_AHEAD)
        kept = self.store.reserve_chunks(
            self.run, first_chunk=self.first_chunk, below=number + ahead
        )
        earlier = earlier_bound(self.first_chunk, kept)
        if self.below == 0:  # the pass's first reservation: what earlier attempts left
            self.must_reach = earlier
        self.below = max(number + ahead, earlier)

    def may_stop_before(self, next_chunk: int) -> bool:
        """Whether the pass may stop with `next_chunk` as the next pass's first chunk."""
        return next_chunk >= self.must_reach
