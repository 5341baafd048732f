"""Read a run's result rows and failure records back, each line once, in line order.

A run's parts form a few *series* (see `pipeline/results.py`): first deliveries (`part-`), parse
failures (`parse-`) and one series per replay round (`replay-RRRR-`). Within a series, chunk
numbers follow line order (chunking is sequential, and a replay must number its chunks in line
order too), so each series is one sorted stream and a heap merges the series lazily: memory and
open GETs grow with the number of series, not with the size of the run.

Supersession, so every line comes out once:
- a result supersedes a failure for the same line (a replay that succeeded);
- among failures, the later replay round wins, then the higher `attempts`.
Within one round a chunk writes its results and failures parts together (a redelivery overwrites
both, and an empty failures part is deleted), so a line can only be in both when a replay
succeeded: the failure reader therefore anti-joins against the replay results only and never
reads the (large) first-delivery results.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import orjson
from botocore.exceptions import ClientError
from isal import igzip

from pipeline.aws_errors import error_code
from pipeline.failures import FailureRecord
from pipeline.results import PartKind, PartName, ResultRow, Series, parse_part_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any


class PartOrderError(ValueError):
    """A series of parts is not in line order: its chunks were numbered out of line order."""


@dataclass(frozen=True, slots=True)
class _Entry:
    line: int
    rank: tuple[int, int]
    is_result: bool
    row: dict[str, Any]


def list_parts(client: S3Client, bucket: str, kind: PartKind, run: str) -> list[PartName]:
    """Every part of `kind` for `run`, sorted by (series, round, chunk); other keys ignored."""
    paginator = client.get_paginator("list_objects_v2")
    parts: list[PartName] = []
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{kind.value}/{run}/"):
        for item in page.get("Contents", []):
            name = parse_part_key(item["Key"])
            if name is not None:
                parts.append(name)
    return sorted(parts, key=lambda p: (p.series.value, p.round, p.chunk))


def iter_part_rows(client: S3Client, bucket: str, key: str) -> Iterator[dict[str, Any]]:
    """Stream one part's rows; a part deleted since it was listed yields nothing."""
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as exc:
        if error_code(exc) in {"NoSuchKey", "404"}:
            return  # an empty failures part of a redelivered chunk was deleted meanwhile
        raise
    with igzip.GzipFile(fileobj=body, mode="rb") as lines:
        for line in lines:
            if line.strip():
                yield orjson.loads(line)


def _series_entries(
    client: S3Client, bucket: str, parts: list[PartName], *, is_result: bool
) -> Iterator[_Entry]:
    """One series as a line-ordered stream; raises `PartOrderError` if it is not."""
    previous = 0
    for part in parts:
        for row in iter_part_rows(client, bucket, part.key):
            line = int(row["line"])
            if line < previous:
                raise PartOrderError(
                    f"{part.key}: line {line} after line {previous}; chunks of one series must "
                    "be numbered in line order"
                )
            previous = line
            attempts = 0 if is_result else int(row.get("attempts", 1))
            yield _Entry(line, (part.round, attempts), is_result, row)


def _merged(
    client: S3Client, bucket: str, parts: Iterable[PartName], *, is_result: bool
) -> list[Iterator[_Entry]]:
    streams = []
    for _, group in groupby(parts, key=lambda p: (p.series, p.round)):
        streams.append(_series_entries(client, bucket, list(group), is_result=is_result))
    return streams


def iter_result_rows(client: S3Client, bucket: str, run: str) -> Iterator[ResultRow]:
    """Every result row of `run` in line order, each line once (the latest round wins)."""
    parts = list_parts(client, bucket, PartKind.RESULTS, run)
    streams = _merged(client, bucket, parts, is_result=True)
    for _, entries in groupby(heapq.merge(*streams, key=attrgetter("line")), attrgetter("line")):
        best = max(entries, key=attrgetter("rank"))
        yield ResultRow.from_dict(best.row)


def iter_failure_records(client: S3Client, bucket: str, run: str) -> Iterator[FailureRecord]:
    """Every line of `run` that still has no result, as its latest failure record, line order."""
    failures = list_parts(client, bucket, PartKind.FAILURES, run)
    replay_results = [
        p for p in list_parts(client, bucket, PartKind.RESULTS, run) if p.series is Series.REPLAY
    ]
    streams = _merged(client, bucket, failures, is_result=False)
    streams += _merged(client, bucket, replay_results, is_result=True)
    for _, group in groupby(heapq.merge(*streams, key=attrgetter("line")), attrgetter("line")):
        entries = list(group)
        if any(entry.is_result for entry in entries):
            continue  # a replay succeeded: the line is a result now
        best = max(entries, key=attrgetter("rank"))
        yield FailureRecord.from_dict(best.row)
