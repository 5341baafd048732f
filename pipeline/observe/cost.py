"""Estimate what classifying a manifest will cost on AWS, before running it: pure arithmetic.

`lambdaflow scan` calls `estimate_cost` with what it counted (records, chunks, message sizes).
Prices and the measured throughput come from `pipeline.observe.prices`, the one module the run
summary uses too, so the prediction and the bill after the run are the same formula over different
inputs: here the throughput is the benchmark's images per vCPU-second, there it is the
ledger's measured seconds. Knows nothing of boto3 or of the clock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pipeline.observe.prices import (
    CHUNK_WRITE_UNITS,
    CLASSIFY_MEMORY_MB,
    IMAGES_PER_VCPU_S,
    LAMBDA_ARM64_GB_S_USD,
    LAMBDA_REQUEST_USD,
    MB_PER_VCPU,
    PRICES_AS_OF,
    S3_GET_USD,
    S3_PUT_USD,
    SFN_TRANSITION_USD,
    SQS_BILLING_UNIT_BYTES,
    SQS_REQUEST_USD,
    Prices,
    split_passes,
    sqs_units,
    transitions,
)

__all__ = [
    "CLASSIFY_MEMORY_MB",
    "IMAGES_PER_VCPU_S",
    "LAMBDA_ARM64_GB_S_USD",
    "LAMBDA_REQUEST_USD",
    "PRICES_AS_OF",
    "S3_GET_USD",
    "S3_PUT_USD",
    "SFN_TRANSITION_USD",
    "SQS_BILLING_UNIT_BYTES",
    "SQS_REQUEST_USD",
    "CostEstimate",
    "estimate_cost",
    "sqs_units",
]

PROGRESS_POLL_S = 15.0
"""The template's default ProgressPollSeconds: one Wait/Progress/Choice loop per interval."""


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """Dollar estimate per AWS service for one manifest; `total_usd` is their sum."""

    lambda_compute_usd: float
    lambda_requests_usd: float
    s3_usd: float
    sqs_usd: float
    step_functions_usd: float
    dynamodb_usd: float
    total_usd: float
    images_per_vcpu_s: float
    prices_as_of: str = PRICES_AS_OF

    def to_dict(self) -> dict[str, float | str]:
        """JSON shape for `scan --json`."""
        return asdict(self)


def estimate_cost(
    *,
    images: int,
    chunks: int,
    chunk_sqs_units: int,
    images_per_vcpu_s: float = IMAGES_PER_VCPU_S,
    lines: int | None = None,
    concurrency: int = 50,
    prices: Prices | None = None,
) -> CostEstimate:
    """Estimate the cost of classifying `images` sent as `chunks` messages.

    Args:
        images: Records to classify (one S3 GET and one inference each).
        chunks: Chunk messages (one invocation, two part writes, one ledger transaction each).
        chunk_sqs_units: Sum of `sqs_units` over the chunk messages.
        images_per_vcpu_s: Classify throughput of one vCPU (measured: `IMAGES_PER_VCPU_S`).
        lines: Manifest lines Split reads (default: `images`), for Split's compute.
        concurrency: Classify functions at work (the template's ClassifyMaxConcurrency), which
            sets the wall time and so the number of progress polls.
        prices: Other prices than the us-east-1 arm64 defaults.
    """
    prices = prices or Prices()
    lines = images if lines is None else lines
    vcpus = prices.memory_mb / MB_PER_VCPU
    classify_s = images / (images_per_vcpu_s * vcpus) if images else 0.0
    compute = prices.lambda_usd(classify_s) + (prices.split_usd(lines) if images else 0.0)
    passes = split_passes(lines)
    invocations = (chunks + passes) * prices.lambda_request if images else 0.0
    s3 = images * prices.s3_get + 2 * chunks * prices.s3_put
    sqs = (2 * chunk_sqs_units + chunks) * prices.sqs_request  # send + receive by size, delete
    wall_s = classify_s / max(1, concurrency)
    steps = transitions(split_passes=passes, wall_s=wall_s, poll_s=PROGRESS_POLL_S)
    sfn = steps * prices.sfn_transition if images else 0.0
    dynamodb = CHUNK_WRITE_UNITS * chunks * prices.dynamodb_write_unit
    total = compute + invocations + s3 + sqs + sfn + dynamodb
    return CostEstimate(
        lambda_compute_usd=round(compute, 6),
        lambda_requests_usd=round(invocations, 6),
        s3_usd=round(s3, 6),
        sqs_usd=round(sqs, 6),
        step_functions_usd=round(sfn, 6),
        dynamodb_usd=round(dynamodb, 6),
        total_usd=round(total, 6),
        images_per_vcpu_s=images_per_vcpu_s,
    )
