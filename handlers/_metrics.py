"""CloudWatch metrics of the pipeline as Embedded Metric Format lines (Powertools Metrics).

EMF is a JSON line on stdout that CloudWatch Logs turns into metrics: no PutMetricData call, no
extra latency, no IAM permission, and locally it simply prints. Powertools may only be imported
in handlers/ (ruff TID251), so this helper lives here; the core reports plain numbers.

Metrics (namespace `lambdaflow`, dimension `service`):
- `ImagesClassified` (Count) and `ItemFailures` (Count, one metric per `stage` dimension:
  parse|fetch|decode|classify|write), per chunk;
- `ImagesPerSecond` (Count/Second) of the chunk's wall time, and `ChunkSeconds` (Seconds):
  chunk latency, whose p99 tells whether the function timeout is sized right.

The classify handler wraps itself in ``@metrics.log_metrics`` (which flushes once per
invocation) and calls `record_chunk` per chunk; the failures-by-stage lines flush at once, each
with its own dimension, because one EMF document shares its dimensions across its metrics.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_lambda_powertools import Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

NAMESPACE = "lambdaflow"
SERVICE = "lambdaflow"

metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
"""The process's metrics (Powertools shares one metric set across instances)."""


def record_chunk(
    target: Metrics,
    *,
    ok: int,
    failed_by_stage: Mapping[str, int],
    seconds: float,
) -> None:
    """Add one chunk's numbers: images classified, failures by stage, rate and latency."""
    target.add_metric(name="ImagesClassified", unit=MetricUnit.Count, value=ok)
    target.add_metric(name="ChunkSeconds", unit=MetricUnit.Seconds, value=round(seconds, 3))
    items = ok + sum(failed_by_stage.values())
    if seconds > 0:
        rate = round(items / seconds, 3)
        target.add_metric(name="ImagesPerSecond", unit=MetricUnit.CountPerSecond, value=rate)
    if is_metrics_disabled():  # single_metric would print anyway (Powertools 3.37)
        return
    for stage, count in sorted(failed_by_stage.items()):
        if count <= 0:
            continue
        with single_metric(
            name="ItemFailures",
            unit=MetricUnit.Count,
            value=count,
            namespace=NAMESPACE,
            default_dimensions={"service": SERVICE},
        ) as metric:
            metric.add_dimension(name="stage", value=stage)
