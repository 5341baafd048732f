"""CloudWatch metrics of the pipeline as Embedded Metric Format lines (Powertools Metrics).

EMF is a JSON line on stdout that CloudWatch Logs turns into metrics: no PutMetricData call, no
extra latency, no IAM permission, and locally it simply prints. Powertools may only be imported
in handlers/ (ruff TID251), so this helper lives here; the core reports plain numbers.

Metrics (namespace `lambdaflow`, dimension `service`):
- `ImagesClassified` (Count) and `ItemFailures` (Count, one metric per `stage` dimension:
  parse|fetch|decode|classify|write), per chunk;
- `ImagesPerSecond` (Count/Second) of the chunk's wall time, and `ChunkSeconds` (Seconds):
  chunk latency, whose p99 tells whether the function timeout is sized right.

The classify handler wraps itself in ``@published`` (Powertools' ``@metrics.log_metrics``, which
flushes once per invocation, when metrics are on) and calls `record_chunk` per chunk; the
failures-by-stage lines flush at once, each with its own dimension, because one EMF document
shares its dimensions across its metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aws_lambda_powertools import Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

NAMESPACE = "lambdaflow"
SERVICE = "lambdaflow"

metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
"""The process's metrics (Powertools shares one metric set across instances)."""

HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])


def published(handler: HandlerT) -> HandlerT:
    """`handler` with its metrics flushed after every invocation; as it is when metrics are off.

    With POWERTOOLS_METRICS_DISABLED (the local stack, unless its logging is verbose) Powertools
    3.37's flush neither prints nor clears: values piled up across invocations until its
    100-values-a-metric guard printed them anyway, a 100-chunk EMF line on the terminal of
    `lambdaflow run`, and the next flush warned "No application metrics to publish". Off, nothing
    is recorded (`record_chunk`), so there is nothing to flush.
    """
    if is_metrics_disabled():
        return handler
    return metrics.log_metrics(handler)


def record_chunk(
    target: Metrics,
    *,
    ok: int,
    failed_by_stage: Mapping[str, int],
    seconds: float,
) -> None:
    """Add one chunk's numbers: images classified, failures by stage, rate and latency."""
    if is_metrics_disabled():  # off: kept values would pile up (`published`), single_metric prints
        return
    target.add_metric(name="ImagesClassified", unit=MetricUnit.Count, value=ok)
    target.add_metric(name="ChunkSeconds", unit=MetricUnit.Seconds, value=round(seconds, 3))
    items = ok + sum(failed_by_stage.values())
    if seconds > 0:
        rate = round(items / seconds, 3)
        target.add_metric(name="ImagesPerSecond", unit=MetricUnit.CountPerSecond, value=rate)
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
