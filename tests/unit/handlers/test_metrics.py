"""The EMF lines the classify handler prints: what CloudWatch will turn into metrics."""

from __future__ import annotations

import json

from handlers._metrics import NAMESPACE, metrics, record_chunk


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


def test_metrics_switched_off_print_nothing(capsys, monkeypatch):
    # POWERTOOLS_METRICS_DISABLED: what the local stack sets unless its logging is verbose
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    record_chunk(metrics, ok=1, failed_by_stage={"decode": 2}, seconds=1.0)
    metrics.flush_metrics()
    assert capsys.readouterr().out == ""
