"""The EMF lines the classify handler prints: what CloudWatch will turn into metrics."""

from __future__ import annotations

import json
import warnings

import pytest

from handlers._metrics import NAMESPACE, metrics, published, record_chunk


@pytest.fixture(autouse=True)
def _no_metrics_left_over():
    """The metric set is the process's: each test starts from an empty one."""
    metrics.clear_metrics()


def _emf_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _metric_names(doc: dict) -> set[str]:
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE
    return {m["Name"] for m in directive["Metrics"]}


def test_a_chunk_emits_counts_rate_latency_and_failures_by_stage(capsys):
    # GIVEN a chunk of 100 items: 97 labelled, 2 fetch and 1 decode failures, in 4 s
    record_chunk(metrics, ok=97, failed_by_stage={"fetch": 2, "decode": 1}, seconds=4.0)
    metrics.flush_metrics()
    docs = _emf_lines(capsys.readouterr().out)
    # THEN one line per failure stage (its own dimension), then the chunk's metrics
    failures = [d for d in docs if "ItemFailures" in d]
    assert {(d["stage"], d["ItemFailures"][0]) for d in failures} == {("fetch", 2), ("decode", 1)}
    for doc in failures:
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Dimensions"] == [["service", "stage"]]
    (chunk,) = [d for d in docs if "ImagesClassified" in d]
    assert _metric_names(chunk) == {"ImagesClassified", "ChunkSeconds", "ImagesPerSecond"}
    values = (chunk["ImagesClassified"], chunk["ChunkSeconds"], chunk["ImagesPerSecond"])
    assert values == ([97], [4.0], [25.0])  # 100 items (ok + failed) in 4 s
    assert chunk["service"] == "lambdaflow"


def test_a_clean_chunk_emits_no_failure_lines(capsys):
    record_chunk(metrics, ok=10, failed_by_stage={"fetch": 0}, seconds=0.0)
    metrics.flush_metrics()
    docs = _emf_lines(capsys.readouterr().out)
    assert [_metric_names(d) for d in docs] == [{"ImagesClassified", "ChunkSeconds"}]


def test_metrics_switched_off_record_and_print_nothing(capsys, monkeypatch):
    # POWERTOOLS_METRICS_DISABLED: what the local stack sets unless its logging is verbose
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    record_chunk(metrics, ok=1, failed_by_stage={"decode": 2}, seconds=1.0)
    assert metrics.metric_set == {}
    assert capsys.readouterr().out == ""


def test_metrics_switched_off_print_nothing_over_many_invocations(capsys, monkeypatch):
    # GIVEN metrics off, as on the local stack, and a worker that lives for 150 invocations
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")

    @published
    def handler(event: dict, context: object) -> None:
        record_chunk(metrics, ok=0, failed_by_stage={"fetch": 100}, seconds=0.02)

    # WHEN each invocation records its chunk and returns
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Powertools' "No application metrics" included
        for _ in range(150):
            handler({}, None)
    # THEN nothing reached stdout (Powertools 3.37 printed a 100-value EMF line at the 100th)
    assert capsys.readouterr().out == ""


def test_metrics_on_flush_after_every_invocation(capsys, monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)

    @published
    def handler(event: dict, context: object) -> None:
        record_chunk(metrics, ok=3, failed_by_stage={}, seconds=1.0)

    for _ in range(2):
        handler({}, None)
    docs = _emf_lines(capsys.readouterr().out)
    assert [d["ImagesClassified"] for d in docs] == [[3.0], [3.0]]
