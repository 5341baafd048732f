"""The state machine's state around Split: the run, its manifest, and the checkpoint.

Each Split pass (pipeline/split/passes.py, on AWS through pipeline/split/aws_pass.py) takes this
state and returns it with the next checkpoint in `resume` and `done` set once the manifest was read
to its end (or broke: then `reason` says why and the run is finalized as partial). The state machine
loops Split while `done` is false, so a manifest of any size is split in passes that each fit in
one invocation; it first waits `pause_s` when `paused` says the pass stopped early because the
WorkQueue was full.

Each pass and its pause cost up to 9 history events, and AWS fails a Standard execution outright
at 25,000: a run that pauses for months (a huge manifest at a low concurrency) would die in the
middle. So after `split_passes_per_execution` passes, `continues` tells the state machine to go
on in a new execution of itself, named `<run>-<passes>`, with this state as its input: a run's
length is then bounded by nothing but its manifest. Knows nothing of Lambda.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.failures import SCHEMA_VERSION

if TYPE_CHECKING:
    from pipeline.split.values import SplitOutcome


@dataclass(frozen=True, slots=True)
class SplitState:
    """The state machine's state around Split: the run, the manifest, the checkpoint."""

    run: str
    manifest: dict[str, Any]
    done: bool = False
    paused: bool = False
    pause_s: int = 0
    """Seconds the state machine waits before the next pass when `paused` (a Wait state's)."""
    execution_passes: int = 0
    """Passes this execution ran (`passes` counts the run's, over every execution)."""
    continues: bool = False
    """The next pass runs in a new execution (its input: this state, `execution_passes` 0)."""
    lines: int = 0
    chunks: int = 0
    passes: int = 0
    parse_failures: dict[str, int] = field(default_factory=dict)
    reason: str | None = None
    resume: dict[str, Any] | None = None
    """Where the next pass starts (a seek point); None means "from the start"."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitState:
        """Read the state machine's state (the execution input on the first pass)."""
        split = data.get("split", {})
        return cls(
            run=data["run"],
            manifest=data["manifest"],
            done=bool(data.get("done", False)),
            paused=bool(data.get("paused", False)),
            pause_s=int(data.get("pause_s", 0)),
            execution_passes=int(data.get("execution_passes", 0)),
            continues=bool(data.get("continue", False)),
            lines=int(split.get("lines", 0)),
            chunks=int(split.get("chunks", 0)),
            passes=int(split.get("passes", 0)),
            parse_failures=dict(split.get("parse_failures", {})),
            reason=split.get("reason"),
            resume=split.get("resume"),
        )

    def after(
        self, outcome: SplitOutcome, *, pause_s: int, passes_per_execution: int
    ) -> SplitState:
        """The state once a pass from this one ended with `outcome`.

        The run goes on in a new execution once this one ran `passes_per_execution` passes,
        unless the manifest is done.
        """
        execution_passes = self.execution_passes + 1
        return dataclasses.replace(
            self,
            done=outcome.is_done,
            paused=outcome.is_paused,
            pause_s=pause_s,
            execution_passes=execution_passes,
            continues=not outcome.is_done and execution_passes >= passes_per_execution,
            lines=outcome.lines,
            chunks=outcome.chunks_sent,
            passes=outcome.passes,
            parse_failures=outcome.parse_failures,
            reason=outcome.reason,
            resume=outcome.checkpoint.to_dict(),
        )

    def to_dict(self) -> dict[str, Any]:
        """The state Split returns to the state machine."""
        return {
            "v": SCHEMA_VERSION,
            "run": self.run,
            "manifest": self.manifest,
            "done": self.done,
            "paused": self.paused,
            "pause_s": self.pause_s,
            "execution_passes": self.execution_passes,
            "continue": self.continues,
            "split": {
                "lines": self.lines,
                "chunks": self.chunks,
                "passes": self.passes,
                "parse_failures": self.parse_failures,
                "reason": self.reason,
                "resume": self.resume,
            },
        }
