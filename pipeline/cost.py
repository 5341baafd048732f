"""Estimate what classifying a manifest will cost on AWS, before running it: pure arithmetic.

Prices are AWS list prices for us-east-1 as of 2026-11 (public pricing pages; FACTS.md "AWS
limits"), without free tiers. The one unmeasured input is `IMAGES_PER_VCPU_S`: replace it with
the classify benchmark's figure once it exists. Knows nothing of boto3 or of the clock.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

PRICES_AS_OF = "2026-11, us-east-1"

LAMBDA_ARM64_GB_S_USD = 0.0000133334
"""arm64 Lambda compute, per GB-second (first pricing tier)."""
LAMBDA_REQUEST_USD = 0.20 / 1_000_000
"""Per Lambda invocation."""
S3_GET_USD = 0.40 / 1_000_000
"""S3 Standard GET (one per image)."""
S3_PUT_USD = 5.00 / 1_000_000
"""S3 Standard PUT (one result part per chunk)."""
SQS_REQUEST_USD = 0.40 / 1_000_000
"""SQS standard queue, per request; every 64 KiB of a message bills as one more request."""
SQS_BILLING_UNIT_BYTES = 64 * 1024
SFN_TRANSITION_USD = 25.00 / 1_000_000
"""Step Functions standard workflow, per state transition."""

CLASSIFY_MEMORY_MB = 1769
"""Classify function memory: exactly one vCPU (FACTS.md: 1,769 MB = 1 vCPU)."""
IMAGES_PER_VCPU_S = 25.0
"""ASSUMED until measured: ~10 ms inference + ~20 ms draft decode + ~2 ms S3 GET CPU per image
(FACTS.md "Speed of the building blocks"), rounded down to 25 images per vCPU-second."""
SFN_TRANSITIONS_PER_RUN = 100
"""ASSUMED: Split passes, Wait/Progress polling and Finalize; a rounding error next to compute."""


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """Dollar estimate per AWS service for one manifest; `total_usd` is their sum."""

    lambda_compute_usd: float
    lambda_requests_usd: float
    s3_usd: float
    sqs_usd: float
    step_functions_usd: float
    total_usd: float
    images_per_vcpu_s: float
    prices_as_of: str = PRICES_AS_OF

    def to_dict(self) -> dict[str, float | str]:
        """JSON shape for `scan --json` and the run summary's `cost_usd`."""
        return asdict(self)


def sqs_units(message_bytes: int) -> int:
    """Requests SQS bills for one send (or receive) of a message this big."""
    return max(1, math.ceil(message_bytes / SQS_BILLING_UNIT_BYTES))


def estimate_cost(
    *,
    images: int,
    chunks: int,
    chunk_sqs_units: int,
    images_per_vcpu_s: float = IMAGES_PER_VCPU_S,
) -> CostEstimate:
    """Estimate the cost of classifying `images` sent as `chunks` messages.

    Args:
        images: Records to classify (one S3 GET and one inference each).
        chunks: Chunk messages (one invocation and one result PUT each).
        chunk_sqs_units: Sum of `sqs_units` over the chunk messages.
        images_per_vcpu_s: Classify throughput of one vCPU.
    """
    gb = CLASSIFY_MEMORY_MB / 1024
    compute = images / images_per_vcpu_s * gb * LAMBDA_ARM64_GB_S_USD
    invocations = chunks * LAMBDA_REQUEST_USD
    s3 = images * S3_GET_USD + chunks * S3_PUT_USD
    sqs = (2 * chunk_sqs_units + chunks) * SQS_REQUEST_USD  # send + receive by size, delete
    sfn = SFN_TRANSITIONS_PER_RUN * SFN_TRANSITION_USD if images else 0.0
    total = compute + invocations + s3 + sqs + sfn
    return CostEstimate(
        lambda_compute_usd=round(compute, 6),
        lambda_requests_usd=round(invocations, 6),
        s3_usd=round(s3, 6),
        sqs_usd=round(sqs, 6),
        step_functions_usd=round(sfn, 6),
        total_usd=round(total, 6),
        images_per_vcpu_s=images_per_vcpu_s,
    )
