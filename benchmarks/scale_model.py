"""The billion-line plan: wall time, dollars and the bottleneck for 10^7, 10^8, 10^9 lines.

    .venv/bin/python benchmarks/scale_model.py [--images-per-vcpu-s 66] [--get-latency-ms 30]

A model, not a run: it combines the rates measured on this machine (each with its source in
BENCHMARKS.md) with AWS's documented limits, and prints one table per concurrency. Measured
inputs (defaults come from `pipeline.observe.prices`, so the product's estimates and this plan
agree):

- Split, one stream: `SPLIT_LINES_PER_S` manifest lines/s turned into chunk messages ("Manifest
  scan": `lambdaflow scan` is the same reader + chunker), in ~12-minute passes;
- classify: `IMAGES_PER_VCPU_S` per vCPU, the whole worker ("Classify worker");
- S3 GET latency: hidden by the fetch pool; it only sets the pool width needed
  (Little's law: in flight = rate x (latency + service time));
- SQS: Split sends 10 chunk messages per SendMessageBatch; classify receives 1 per invoke.

Documented limits used: S3 5,500 GET/s per partitioned prefix; Lambda account concurrency
1,000 by default (shared by every function in the region); SQS standard queues have no
practical message-rate limit; DynamoDB 1,000 write units/s on one item's partition.
Anchors: Step Functions Distributed Map at $25 per million transitions (AWS list price) and
SageMaker Batch Transform on a 4-vCPU CPU instance (its hourly price is an input:
--sagemaker-usd-h).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from pipeline.observe import prices

S3_GETS_PER_PREFIX_S = 5500
ACCOUNT_CONCURRENCY = 1000
CHUNK_ITEMS = 500
SQS_BATCH = 10
RUN_ITEM_WCU_PER_CHUNK = 2
"""The run item (counters + breakdown maps, ~1-2 KB) updated in every chunk's transaction."""
ITEM_WCU_LIMIT_S = 1000
SCALES = (10**7, 10**8, 10**9)
CONCURRENCIES = (100, 1000)


@dataclass(frozen=True, slots=True)
class Plan:
    """One (lines, concurrency) cell of the plan."""

    lines: int
    concurrency: int
    split_s: float
    classify_s: float
    usd: float
    bottleneck: str

    @property
    def wall_s(self) -> float:
        # Classify starts on the first chunk, so the slower stream sets the pace; the faster
        # one finishes within a chunk of it.
        return max(self.split_s, self.classify_s)


def per_image_usd(images_per_vcpu_s: float) -> float:
    """All-in dollars per image at one vCPU (1,769 MB): compute, GET, per-chunk requests."""
    p = prices.Prices()
    compute = p.lambda_usd(1 / images_per_vcpu_s, prices.MB_PER_VCPU)
    per_chunk = (
        p.lambda_request
        + 2 * p.s3_put
        + 3 * p.sqs_request
        + prices.CHUNK_WRITE_UNITS * p.dynamodb_write_unit
    )
    return compute + p.s3_get + per_chunk / CHUNK_ITEMS


def plan(lines: int, concurrency: int, images_per_vcpu_s: float) -> Plan:
    classify_rate = concurrency * images_per_vcpu_s
    split_s = lines / prices.SPLIT_LINES_PER_S
    classify_s = lines / classify_rate
    passes = prices.split_passes(lines)
    steps = prices.transitions(split_passes=passes, wall_s=max(split_s, classify_s), poll_s=15.0)
    p = prices.Prices()
    usd = lines * per_image_usd(images_per_vcpu_s) + p.split_usd(lines)
    usd += steps * p.sfn_transition + passes * (p.lambda_request + 2 * p.s3_put)
    return Plan(
        lines, concurrency, split_s, classify_s, usd, bottleneck(concurrency, classify_rate)
    )


def bottleneck(concurrency: int, classify_rate: float) -> str:
    names = []
    if classify_rate < prices.SPLIT_LINES_PER_S:
        names.append(f"classify ({concurrency} x {classify_rate / concurrency:.0f} img/s)")
    else:
        names.append("the single Split stream")
    prefixes = math.ceil(classify_rate / S3_GETS_PER_PREFIX_S)
    if prefixes > 1:
        names.append(f"S3 GETs need >= {prefixes} prefix partitions")
    if concurrency >= ACCOUNT_CONCURRENCY:
        names.append("account concurrency (default 1,000)")
    wcu = classify_rate / CHUNK_ITEMS * RUN_ITEM_WCU_PER_CHUNK
    if wcu > ITEM_WCU_LIMIT_S / 2:
        names.append(f"run item {wcu:.0f} WCU/s")
    return "; ".join(names)


def hours(seconds: float) -> str:
    return f"{seconds / 3600:7.2f} h" if seconds >= 3600 else f"{seconds / 60:7.1f} min"


def print_plans(images_per_vcpu_s: float) -> None:
    print(f"{images_per_vcpu_s:.0f} img/s per vCPU, Split {prices.SPLIT_LINES_PER_S:,.0f} lines/s")
    print(f"all-in ${per_image_usd(images_per_vcpu_s) * 1e6:.3f} per million images (1,769 MB)")
    print("lines | concurrency | Split | classify | wall | $ | $/M lines | bottleneck")
    for concurrency in CONCURRENCIES:
        for lines in SCALES:
            cell = plan(lines, concurrency, images_per_vcpu_s)
            print(
                f"{lines:.0e} | {concurrency:5d} | {hours(cell.split_s)} | "
                f"{hours(cell.classify_s)} | {hours(cell.wall_s)} | {cell.usd:10,.2f} | "
                f"{cell.usd / lines * 1e6:6.3f} | {cell.bottleneck}"
            )


def print_side_rates(images_per_vcpu_s: float, get_latency_ms: float) -> None:
    service_s = 1 / images_per_vcpu_s
    in_flight = images_per_vcpu_s * (get_latency_ms / 1000 + service_s)
    print(f"\nfetch pool per vCPU at {get_latency_ms:.0f} ms GET latency: >= {in_flight:.1f} GETs")
    chunks_s = prices.SPLIT_LINES_PER_S / CHUNK_ITEMS
    print(
        f"Split sends {chunks_s:.0f} chunks/s = {chunks_s / SQS_BATCH:.0f} SendMessageBatch/s "
        "(one stream: ~25 ms each would cap it at 40/s)"
    )
    for concurrency in CONCURRENCIES:
        rate = concurrency * images_per_vcpu_s / CHUNK_ITEMS
        print(f"concurrency {concurrency}: WorkQueue {rate:.0f} receives/s + {rate:.0f} deletes/s")


def print_anchors(lines: int, images_per_vcpu_s: float, sagemaker_usd_h: float) -> None:
    ours = plan(lines, 1000, images_per_vcpu_s).usd
    per_item = lines * prices.SFN_TRANSITION_USD
    batched = lines / CHUNK_ITEMS * 3 * prices.SFN_TRANSITION_USD
    instance_h = lines / (4 * images_per_vcpu_s) / 3600
    sagemaker = instance_h * sagemaker_usd_h + lines * prices.S3_GET_USD
    print(f"\nanchors for {lines:.0e} lines")
    print(f"  lambdaflow (SQS chunks, 1 Step Functions execution): ${ours:,.0f}")
    print(f"  Distributed Map, 1 item per child, >= 1 transition each: + ${per_item:,.0f}")
    print(
        f"  Distributed Map, ItemBatcher {CHUNK_ITEMS}, ~3 transitions a batch: + ${batched:,.0f}"
    )
    print(
        f"  SageMaker Batch Transform, 4 vCPU at ${sagemaker_usd_h}/h, same img/s per vCPU, "
        f"full utilisation: ${sagemaker:,.0f} ({instance_h:,.0f} instance-hours + GETs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images-per-vcpu-s", type=float, default=prices.IMAGES_PER_VCPU_S)
    parser.add_argument("--get-latency-ms", type=float, default=30.0)
    parser.add_argument("--sagemaker-usd-h", type=float, default=0.204)
    args = parser.parse_args()
    print_plans(args.images_per_vcpu_s)
    print_side_rates(args.images_per_vcpu_s, args.get_latency_ms)
    print_anchors(10**9, args.images_per_vcpu_s, args.sagemaker_usd_h)


if __name__ == "__main__":
    main()
