"""Read a run's parts raw, as a query engine would: every object under the documented prefixes.

`results/<run>/*.jsonl.gz` and `failures/<run>/*.jsonl.gz`, every row of every object, no
de-duplication, no supersession — what Athena, DuckDB or Spark see. The readers in
`pipeline.parts.store` hide duplicates; these checks must not.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RawParts:
    """Every row of a run's result and failure objects, and what is left in staging."""

    results: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    staged: list[str]

    @property
    def result_lines(self) -> Counter[int]:
        return Counter(int(r["line"]) for r in self.results)

    @property
    def failure_lines(self) -> Counter[int]:
        return Counter(int(r["line"]) for r in self.failures)


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _rows(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return [json.loads(line) for line in gzip.decompress(body).splitlines() if line.strip()]


def read_raw(s3: Any, bucket: str, run: str) -> RawParts:
    """Every row under `results/<run>/` and `failures/<run>/` matching `*.jsonl.gz`."""
    found: dict[str, list[dict[str, Any]]] = {"results": [], "failures": []}
    for kind, rows in found.items():
        for key in _keys(s3, bucket, f"{kind}/{run}/"):
            if key.endswith(".jsonl.gz"):
                rows.extend(_rows(s3, bucket, key))
    return RawParts(found["results"], found["failures"], _keys(s3, bucket, f"staging/{run}/"))


def assert_exactly_once_raw(
    s3: Any, bucket: str, run: str, lines: int, summary: dict[str, Any] | None = None
) -> RawParts:
    """Read raw: each line at most once in results, exactly once in results + failures.

    With a summary, its ok and failed must equal the raw row counts too.
    """
    raw = read_raw(s3, bucket, run)
    twice = {line: n for line, n in raw.result_lines.items() if n > 1}
    assert not twice, f"result parts hold lines more than once: {twice}"
    both = raw.result_lines + raw.failure_lines
    assert sorted(both) == list(range(1, lines + 1)), f"lines missing or extra: {both}"
    assert set(both.values()) <= {1}, f"a line in results and failures, or twice: {both}"
    if summary is not None:
        assert (summary["ok"], summary["failed"]) == (len(raw.results), len(raw.failures)), (
            summary,
            len(raw.results),
            len(raw.failures),
        )
    return raw
