"""AWS prices and measured rates behind every cost figure: one module, documented constants.

Both estimates use it: `pipeline.observe.cost` (what `lambdaflow scan` predicts before a run) and
`pipeline.ledger.summary` (what the run summary and `lambdaflow status` report from the ledger's
measured durations and counts). Prices are AWS list prices for **us-east-1**, Lambda on
**arm64**, read from the public pricing pages on **2026-11-26**, without free tiers; pass your
own `Prices` for another region or architecture. Pure values: knows nothing of runs or clients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PRICES_AS_OF = "2026-11-26, us-east-1, arm64"

LAMBDA_ARM64_GB_S_USD = 0.0000133334
"""Lambda arm64 compute per GB-second, first tier (x86_64: 0.0000166667)."""
LAMBDA_REQUEST_USD = 0.20 / 1_000_000
"""Per Lambda invocation (either architecture)."""
S3_GET_USD = 0.40 / 1_000_000
"""S3 Standard GET, per request: one per image, a missing key bills too."""
S3_PUT_USD = 5.00 / 1_000_000
"""S3 Standard PUT/LIST, per request: result and failure parts, checkpoints."""
SQS_REQUEST_USD = 0.40 / 1_000_000
"""SQS standard queue, per request; each started 64 KiB of a payload bills as one request."""
SQS_BILLING_UNIT_BYTES = 64 * 1024
SFN_TRANSITION_USD = 25.00 / 1_000_000
"""Step Functions standard workflow, per state transition."""
DYNAMODB_WRITE_UNIT_USD = 0.625 / 1_000_000
"""DynamoDB on-demand, per write request unit (a 2-item transaction of small items is 4)."""

MB_PER_VCPU = 1769
"""Lambda allocates one vCPU per 1,769 MB, up to 6 at 10,240 MB."""
CLASSIFY_MEMORY_MB = 1769
"""The classify function's memory: the cheapest size measured (BENCHMARKS.md "Right-sizing":
every size costs the same per image until the GIL-serial share caps threads, so one vCPU)."""
SPLIT_MEMORY_MB = 1024
"""The split function's memory (template.yaml)."""

IMAGES_PER_VCPU_S = 65.0
"""MEASURED: images one vCPU labels per second in the whole classify worker — GET, decode,
invoke, result part, ledger — on the ImageNet sample mix: 64.9 per CPU-second at 30 ms GET
latency (benchmarks/worker.py, 2026-11-26; 63-70 over four runs; BENCHMARKS.md "Classify
worker"). The model alone does ~103: inference is two thirds of the bill."""
SPLIT_LINES_PER_S = 210_000.0
"""MEASURED: manifest lines per second one Split pass turns into chunks with the per-line reader
and `iter_chunks` it uses today (BENCHMARKS.md "Manifest scan", history: 0.21 M lines/s). Scan's
block fast path runs 1.8-2.5 M lines/s; a Split on it would then be bound by its sequential
SendMessageBatch calls (~40/s x 5,000 lines), about this same rate (see "The billion-line plan")."""
SPLIT_PASS_S = 720.0
"""One Split invocation's time budget (~12 minutes), i.e. one state-machine loop."""

TRANSITIONS_PER_SPLIT_PASS = 2
"""Split, IsSplitDone (statemachine/pipeline.asl.json)."""
TRANSITIONS_WAIT = 5
"""Progress, AreChunksDone, AwaitChunks (one callback task however long it waits), Progress,
AreChunksDone: the wait no longer polls (pipeline/ledger/completion.py)."""
TRANSITIONS_FIXED = 3
"""Start (the Choice a continued run pauses at), Finalize (or FinalizePartial) and the end state;
a run that goes on in a new execution every 1,000 passes adds 3 a time: a rounding error."""
CHUNK_WRITE_UNITS = 4
"""The ledger's per-chunk transaction: chunk marker + run counters, 2 items x 2 units."""


@dataclass(frozen=True, slots=True)
class Prices:
    """The prices an estimate uses; defaults are the constants above (us-east-1, arm64)."""

    lambda_gb_s: float = LAMBDA_ARM64_GB_S_USD
    memory_mb: int = CLASSIFY_MEMORY_MB
    s3_get: float = S3_GET_USD
    s3_put: float = S3_PUT_USD
    sqs_request: float = SQS_REQUEST_USD
    dynamodb_write_unit: float = DYNAMODB_WRITE_UNIT_USD
    lambda_request: float = LAMBDA_REQUEST_USD
    sfn_transition: float = SFN_TRANSITION_USD
    split_memory_mb: int = SPLIT_MEMORY_MB

    def lambda_usd(self, seconds: float, memory_mb: int | None = None) -> float:
        """Dollars for `seconds` of Lambda duration at `memory_mb` (default: classify's)."""
        memory = self.memory_mb if memory_mb is None else memory_mb
        return seconds * memory / 1024 * self.lambda_gb_s

    def split_usd(self, lines: int) -> float:
        """Dollars of Split compute for `lines` manifest lines at the measured rate."""
        return self.lambda_usd(lines / SPLIT_LINES_PER_S, self.split_memory_mb)


def sqs_units(message_bytes: int) -> int:
    """Requests SQS bills for one send (or receive) of a message this big."""
    return max(1, math.ceil(message_bytes / SQS_BILLING_UNIT_BYTES))


def split_passes(lines: int) -> int:
    """Split invocations (state-machine loops) a manifest of `lines` needs at the measured rate."""
    return max(1, math.ceil(lines / SPLIT_LINES_PER_S / SPLIT_PASS_S))


def transitions(*, split_passes: int, wall_s: float = 0.0, poll_s: float = 0.0) -> int:
    """Step Functions transitions of one run: Split loops, the wait, Finalize.

    `wall_s` and `poll_s` no longer change it (the execution waits in one callback task instead
    of polling); they stay accepted so callers need not change.
    """
    del wall_s, poll_s
    return TRANSITIONS_PER_SPLIT_PASS * split_passes + TRANSITIONS_WAIT + TRANSITIONS_FIXED
