"""The cost estimate is plain arithmetic over documented prices."""

from __future__ import annotations

import pytest

from pipeline import cost


def test_a_million_images_costs_compute_plus_gets():
    est = cost.estimate_cost(images=1_000_000, chunks=2000, chunk_sqs_units=2000 * 2)
    vcpu_s = 1_000_000 / cost.IMAGES_PER_VCPU_S
    expected_compute = vcpu_s * (cost.CLASSIFY_MEMORY_MB / 1024) * cost.LAMBDA_ARM64_GB_S_USD
    assert est.lambda_compute_usd == pytest.approx(expected_compute, rel=1e-6)
    assert est.s3_usd == pytest.approx(0.40 + 2000 * 5e-6, rel=1e-6)
    assert est.sqs_usd == pytest.approx((2 * 4000 + 2000) * 0.4e-6, rel=1e-6)
    parts = (
        est.lambda_compute_usd,
        est.lambda_requests_usd,
        est.s3_usd,
        est.sqs_usd,
        est.step_functions_usd,
    )
    assert est.total_usd == pytest.approx(sum(parts), abs=1e-5)
    # FACTS.md: ~$0.0000230 per arm64 vCPU-second
    assert est.lambda_compute_usd / vcpu_s == pytest.approx(0.0000230, rel=0.01)


def test_nothing_to_classify_costs_nothing():
    assert cost.estimate_cost(images=0, chunks=0, chunk_sqs_units=0).total_usd == 0


@pytest.mark.parametrize(("size", "units"), [(0, 1), (1, 1), (65536, 1), (65537, 2), (921600, 15)])
def test_sqs_bills_every_started_64_kib(size, units):
    assert cost.sqs_units(size) == units
