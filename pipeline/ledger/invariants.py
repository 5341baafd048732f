"""Cross-check a run's counters against its chunk markers: which chunk disagrees, if any.

Each chunk marker holds what was counted for the chunk *and* the row counts of the parts its
winning attempt committed (`ChunkCommit`). The run item's counters are sums of the chunks'
deltas. If the two disagree, a line was counted twice or lost somewhere: Finalize then refuses
to call the run SUCCEEDED and names the chunk. Pure: takes a `RunState` and the markers.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.ledger.items import CommittedChunk
from pipeline.ledger.runs import RunState

MAX_NAMED = 5
"""At most this many disagreeing chunks are named (the reason must stay readable)."""


def marker_problems(state: RunState, markers: Iterable[CommittedChunk]) -> list[str]:
    """Every disagreement between the markers and the run's counters (empty: consistent)."""
    problems: list[str] = []
    ok = failed = items = first = replays = 0
    for marker in markers:
        if len(problems) < MAX_NAMED:
            problems.extend(marker.problems())
        if marker.replay_round:
            replays += 1
            failed += marker.failed - marker.replaced
        else:
            first += 1
            items += marker.items
            failed += marker.failed
            if state.is_split_done and marker.chunk >= state.chunks_sent:
                problems.append(
                    f"{marker.label} is counted but Split sent only {state.chunks_sent}"
                )
        ok += marker.ok
    parse = state.split_parse_failed  # a worker's parse failures are in its chunk's marker
    if (ok, failed + parse) != (state.ok, state.failed):
        problems.append(
            f"the run counts ok {state.ok} failed {state.failed}, its chunk markers "
            f"ok {ok} failed {failed + parse}"
        )
    if (first, replays) != (state.chunks_done, state.replay_chunks_done):
        problems.append(
            f"the run counts {state.chunks_done} chunks and {state.replay_chunks_done} replay "
            f"chunks done, the ledger holds {first} and {replays} markers"
        )
    if state.is_complete and items + parse != state.lines:
        problems.append(f"the counted chunks hold {items + parse} lines, Split split {state.lines}")
    return problems
