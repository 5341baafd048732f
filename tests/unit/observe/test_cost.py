"""The cost estimate is plain arithmetic over the documented prices in `pipeline.observe.prices`."""

from __future__ import annotations

import pytest

from pipeline.observe import cost, prices


def test_a_million_images_costs_compute_plus_gets():
    est = cost.estimate_cost(images=1_000_000, chunks=2000, chunk_sqs_units=2000 * 2)
    vcpu_s = 1_000_000 / prices.IMAGES_PER_VCPU_S
    classify = vcpu_s * (prices.CLASSIFY_MEMORY_MB / 1024) * prices.LAMBDA_ARM64_GB_S_USD
    split = 1_000_000 / prices.SPLIT_LINES_PER_S * prices.SPLIT_MEMORY_MB / 1024
    expected_compute = classify + split * prices.LAMBDA_ARM64_GB_S_USD
    assert est.lambda_compute_usd == pytest.approx(expected_compute, rel=1e-5)
    assert est.s3_usd == pytest.approx(0.40 + 2 * 2000 * 5e-6, rel=1e-6)
    assert est.sqs_usd == pytest.approx((2 * 4000 + 2000) * 0.4e-6, rel=1e-6)
    assert est.dynamodb_usd == pytest.approx(4 * 2000 * 0.625e-6, rel=1e-6)
    parts = (
        est.lambda_compute_usd,
        est.lambda_requests_usd,
        est.s3_usd,
        est.sqs_usd,
        est.step_functions_usd,
        est.dynamodb_usd,
    )
    assert est.total_usd == pytest.approx(sum(parts), abs=1e-5)
    # AWS list price: ~$0.0000230 per arm64 vCPU-second
    assert classify / vcpu_s == pytest.approx(0.0000230, rel=0.01)


def test_a_million_images_stays_under_a_dollar_at_the_measured_rate():
    est = cost.estimate_cost(images=1_000_000, chunks=2000, chunk_sqs_units=2000)
    assert est.total_usd < 1.0
    assert est.images_per_vcpu_s == prices.IMAGES_PER_VCPU_S


def test_more_memory_costs_the_same_compute_per_image():
    small = cost.estimate_cost(images=10_000, chunks=20, chunk_sqs_units=20)
    big = cost.estimate_cost(
        images=10_000, chunks=20, chunk_sqs_units=20, prices=prices.Prices(memory_mb=2 * 1769)
    )
    assert big.lambda_compute_usd == pytest.approx(small.lambda_compute_usd, rel=1e-3)


def test_nothing_to_classify_costs_nothing():
    assert cost.estimate_cost(images=0, chunks=0, chunk_sqs_units=0).total_usd == 0


@pytest.mark.parametrize(("size", "units"), [(0, 1), (1, 1), (65536, 1), (65537, 2), (921600, 15)])
def test_sqs_bills_every_started_64_kib(size, units):
    assert cost.sqs_units(size) == units


@pytest.mark.parametrize(
    ("lines", "passes"), [(1, 1), (150_000_000, 1), (151_200_001, 2), (10**9, 7)]
)
def test_split_passes_follow_the_measured_rate(lines, passes):
    assert prices.split_passes(lines) == passes
