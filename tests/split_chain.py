"""Drive `split_pass` the way the state machine does: pass after pass, each from a fresh reader.

Each checkpoint goes through its JSON form (Step Functions state) before the next pass. Sinks
here record what was sent, and can be told to die after some chunks, as a pass killed mid-way.
"""

from __future__ import annotations

import gzip
import itertools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pipeline.failures import ManifestReadError
from pipeline.gzip.checkpoint import Checkpoint
from pipeline.gzip.index_store import IndexStore, LocalIndexStore
from pipeline.gzip.ranged import LocalFileReader
from pipeline.split.chunking import Chunk
from pipeline.split.passes import SplitOptions, SplitOutcome, split_pass
from pipeline.split.reservations import ChunkReservations
from pipeline.split.sinks import ChunkMessage, CountingSink, MemoryParseFailureWriter
from pipeline.split.source import TRANSIENT_READ_ERRORS, OpenReader, ReaderKnobs

SMALL_KNOBS = ReaderKnobs(
    spacing_bytes=64 * 1024, block_bytes=64 * 1024, cache_bytes=1024 * 1024,
    read_buffer_bytes=128 * 1024, read_ahead_block_bytes=48 * 1024,
)  # fmt: skip
"""Small reader sizes so a test manifest of ~1 MB spans many seek points and blocks (and zran
inflates on its thread a few small blocks ahead, as Split's passes do)."""


class SinkDied(RuntimeError):
    """Raised by `RecordingSink` to play a pass killed after sending some chunks."""


class RecordingSink(CountingSink):
    """Keeps every chunk sent, in order; with `die_after`, raises once that many were sent."""

    def __init__(self, log: list[ChunkMessage], *, die_after: int | None = None) -> None:
        super().__init__()
        self.log = log
        self.die_after = die_after

    def send(self, message: ChunkMessage) -> None:
        if self.die_after is not None and self.chunks >= self.die_after:
            raise SinkDied(f"killed after {self.chunks} chunks")
        super().send(message)
        self.log.append(message)


@dataclass
class MemoryReservations:
    """The ledger's chunk reservations (`RunLedger.reserve_chunks`), kept in a dict."""

    kept: dict[str, tuple[int, int]] = field(default_factory=dict)

    def reserve_chunks(self, run: str, *, first_chunk: int, below: int) -> tuple[int, int] | None:
        kept = self.kept.get(run)
        if kept is None or kept[0] < first_chunk or (kept[0] == first_chunk and kept[1] < below):
            self.kept[run] = (first_chunk, below)
        return kept


def tick_clock(step: float = 1.0) -> Callable[[], float]:
    """A clock that advances `step` per call: a budget of N allows about N clock reads."""
    counter = itertools.count()
    return lambda: next(counter) * step


@dataclass
class Chain:
    """Every chunk sent (re-sends included), every pass's outcome, the parse parts."""

    sent: list[ChunkMessage] = field(default_factory=list)
    outcomes: list[SplitOutcome] = field(default_factory=list)
    failures: MemoryParseFailureWriter = field(default_factory=MemoryParseFailureWriter)
    deaths: int = 0

    @property
    def read_chunks(self) -> dict[int, Chunk]:
        """Chunk number → the chunk its worker reads; asserts a re-sent chunk was the same."""
        by_number: dict[int, Chunk] = {}
        for message in self.sent:
            body = orjson.loads(message.body)
            chunk = Chunk.from_message(body)
            assert body["chunk"] == message.number
            assert chunk.lines == message.count
            # the last physical line: a CSV record spanning lines ends after its own number
            assert max(_lines(chunk)) <= message.last_line
            assert by_number.setdefault(message.number, chunk) == chunk, message.number
        return by_number

    @property
    def chunks(self) -> dict[int, tuple[int, ...]]:
        """Chunk number → its lines: records, and raw lines that its worker finds no record."""
        return {number: _lines(chunk) for number, chunk in self.read_chunks.items()}

    @property
    def lines(self) -> list[int]:
        """Every record line over the distinct chunks (each once if nothing doubled)."""
        chunks = sorted(self.read_chunks.items())
        return [record.line for _, chunk in chunks for record in chunk.items]

    @property
    def chunk_failures(self) -> dict[int, list[tuple[int, str]]]:
        """Chunk number → the raw lines its worker finds no record, as (line, error)."""
        return {
            number: [(error.line, error.error) for error in chunk.parse_failures]  # type: ignore[misc]
            for number, chunk in self.read_chunks.items()
            if chunk.parse_failures
        }

    @property
    def failed(self) -> list[int]:
        """Every line that is no record, from Split's parse parts and the chunks, sorted."""
        split = [line for part in self.parse_parts.values() for line, _ in part]
        workers = [line for part in self.chunk_failures.values() for line, _ in part]
        return sorted(split + workers)

    @property
    def parse_parts(self) -> dict[int, list[tuple[int, str]]]:
        return {
            n: [(r.line, r.error) for r in records] for n, records in self.failures.parts.items()
        }


def run_chain(
    source: str,
    open_reader: OpenReader,
    store: IndexStore,
    options: SplitOptions,
    *,
    kill: dict[int, int] | None = None,
    clock: Callable[[], float] | None = None,
    pause: Callable[[], bool] | None = None,
    max_passes: int = 500,
    reservations: MemoryReservations | None = None,
) -> Chain:
    """Split `source` to the end; `kill` maps a pass number to the chunks it sends before dying.

    A killed pass, or one whose read broke transiently (`TRANSIENT_READ_ERRORS`), is retried
    from the same checkpoint (as Step Functions' Retry does). Chunk
    reservations are kept as the ledger keeps them (`reservations`, a new store by default).
    """
    chain, checkpoint = Chain(), None
    reservations = reservations if reservations is not None else MemoryReservations()
    kill = dict(kill or {})
    for pass_no in range(max_passes):
        sink = RecordingSink(chain.sent, die_after=kill.pop(pass_no, None))
        kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
        if pause is not None:
            kwargs["pause"] = pause
        try:
            outcome = split_pass(
                source,
                checkpoint,
                run="run-1",
                options=options,
                open_reader=open_reader,
                sink=sink,
                failures=chain.failures,
                index_store=store,
                reservations=reservations,
                **kwargs,
            )
        except SinkDied:
            chain.deaths += 1
            continue
        except ManifestReadError as exc:  # S3 broke a read: the pass fails, and is retried
            if exc.error not in TRANSIENT_READ_ERRORS:
                raise
            chain.deaths += 1
            continue
        chain.outcomes.append(outcome)
        checkpoint = Checkpoint.from_dict(json.loads(json.dumps(outcome.checkpoint.to_dict())))
        if outcome.is_done:
            return chain
    raise AssertionError(f"no end after {max_passes} passes")


def _lines(chunk: Chunk) -> tuple[int, ...]:
    """The lines of a chunk: its records' and its parse failures', in line order."""
    return tuple(sorted([r.line for r in chunk.items] + [e.line for e in chunk.parse_failures]))  # type: ignore[misc]


EARLY_RETRY_ITEMS = 100
EARLY_RETRY_LINES = 12_000
EARLY_RETRY_SENDS = 40
"""The chunks the dead attempt sends before it dies, in `split_with_an_early_retry`."""


def split_with_an_early_retry(
    tmp_path: Path,
    *,
    retry_stops: str,
    reservations: ChunkReservations | None,
    run: str = "run-1",
) -> Chain:
    """A forced interleaving: pass 0 dies after `EARLY_RETRY_SENDS` chunks, and its retry is told
    at its first chunk to stop (`retry_stops`: "paused", a full queue, or "out of budget"); then
    passes go on to the end.

    The manifest: `bucket,key` rows, 1 % malformed, and the line right after the first chunk
    malformed, so a pass that starts there reads its first block otherwise than one that read
    on into it (parsed by Split, not sent unparsed).
    """
    rng = random.Random(7)
    rows = []
    for i in range(1, EARLY_RETRY_LINES + 1):
        bad = rng.random() < 0.01 or i == EARLY_RETRY_ITEMS + 1
        rows.append(
            b"bad row %d" % i if bad else b"bkt-%d,k/%08d.jpg" % (i % 3, rng.getrandbits(30))
        )
    path = tmp_path / "m.csv.gz"
    path.write_bytes(gzip.compress(b"\n".join(rows) + b"\n", mtime=0))
    store, chain = LocalIndexStore(tmp_path / "idx"), Chain()

    def one_pass(
        checkpoint: Checkpoint | None, *, die_after: int | None = None, **kwargs: Any
    ) -> SplitOutcome:
        return split_pass(
            str(path),
            checkpoint,
            run=run,
            options=kwargs.pop("options", SplitOptions(EARLY_RETRY_ITEMS)),
            open_reader=LocalFileReader,
            sink=RecordingSink(chain.sent, die_after=die_after),
            failures=chain.failures,
            index_store=store,
            reservations=reservations,
            **kwargs,
        )

    try:
        one_pass(None, die_after=EARLY_RETRY_SENDS)
    except SinkDied:
        chain.deaths += 1
    if retry_stops == "paused":
        outcome = one_pass(None, pause=lambda: True)
    else:  # the budget spent at the first look at the clock after a chunk
        budget = SplitOptions(EARLY_RETRY_ITEMS, budget_s=0.5)
        outcome = one_pass(None, options=budget, clock=tick_clock())
    chain.outcomes.append(outcome)
    while not outcome.is_done:
        checkpoint = Checkpoint.from_dict(json.loads(json.dumps(outcome.checkpoint.to_dict())))
        outcome = one_pass(checkpoint)
        chain.outcomes.append(outcome)
    return chain
