"""What the fault matrix rows share: dropping manifests, waiting, reading lines back, replaying.

Everything crosses the wire to the session's embedded stack (`local_stack`): the same S3 event
path a user's upload takes, the real worker processes and model, the real ledger.
"""

from __future__ import annotations

import gzip
import json
import struct
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from pipeline.failures import FailureRecord
from pipeline.ledger.ingest import ManifestObject
from pipeline.ledger.summary import read_summary
from pipeline.ledger.table import RunLedger
from pipeline.observe.trace_search import load_run_traces
from pipeline.parts.layout import ResultRow
from pipeline.parts.store import iter_failure_records, iter_result_rows
from pipeline.replay.ledger import ReplayLedger
from pipeline.replay.replayer import (
    Replayer,
    ReplayFilter,
    ReplaySource,
    ReplayTargets,
    replay_runs,
)
from tests.queues import queued_bodies
from tests.raw_parts import assert_exactly_once_raw
from tests.wait import wait_until

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "images"
RUN_TIMEOUT_S = 120


@dataclass(frozen=True, slots=True)
class Lines:
    """A run's lines as the readers return them (each line once, latest record)."""

    results: list[ResultRow]
    failures: list[FailureRecord]

    @property
    def ok(self) -> list[int]:
        return [r.line for r in self.results]

    @property
    def failed(self) -> list[int]:
        return [f.line for f in self.failures]

    def failure(self, line: int) -> FailureRecord:
        return next(f for f in self.failures if f.line == line)


@dataclass
class Matrix:
    """One stack, its clients and a fresh prefix of photos in its allowlisted images bucket."""

    stack: Any
    prefix: str = field(default_factory=lambda: f"matrix-{uuid.uuid4().hex[:8]}")

    def __post_init__(self) -> None:
        self.s3 = boto3.client("s3")
        self.sqs = boto3.client("sqs")
        self.outputs = self.stack.outputs
        self.images = self.outputs["ImagesBucketName"]
        self.results_bucket = self.outputs["ResultsBucketName"]
        dynamodb = boto3.client("dynamodb")
        self.ledger = RunLedger(dynamodb, self.outputs["RunsTableName"])
        self.replayer = Replayer(
            s3=self.s3,
            sqs=self.sqs,
            ledger=self.ledger,
            replays=ReplayLedger(dynamodb, self.outputs["RunsTableName"]),
            targets=ReplayTargets(
                results_bucket=self.results_bucket,
                work_queue_url=self.outputs["WorkQueueUrl"],
                work_dlq_url=self.outputs["WorkDLQUrl"],
                failure_queue_url=self.outputs["FailureQueueUrl"],
                chunk_items=4,
            ),
        )
        for path in sorted(PHOTOS.glob("*.jpg")):
            self.put_image(path.name, path.read_bytes())

    # -- inputs ------------------------------------------------------------------------------
    def put_image(self, name: str, body: bytes) -> str:
        """Store an image under this matrix's prefix; return its `s3://` URI."""
        self.s3.put_object(Bucket=self.images, Key=f"{self.prefix}/{name}", Body=body)
        return self.uri(name)

    def uri(self, name: str) -> str:
        return f"s3://{self.images}/{self.prefix}/{name}"

    def photo(self, name: str) -> bytes:
        return (PHOTOS / name).read_bytes()

    def good(self, count: int) -> list[str]:
        """`count` URIs of real photos (cycling through the four fixtures)."""
        names = sorted(p.name for p in PHOTOS.glob("*.jpg"))
        return [self.uri(names[i % len(names)]) for i in range(count)]

    def drop(self, body: bytes | list[str], *, suffix: str = ".csv") -> str:
        """PUT a manifest into the input bucket (the real S3 event path); return its run id."""
        if isinstance(body, list):
            body = ("\n".join(body) + "\n").encode()
        bucket, key = self.outputs["InputBucketName"], f"manifests/{uuid.uuid4().hex}{suffix}"
        etag = self.s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]
        return ManifestObject(bucket=bucket, key=key, etag=etag.strip('"')).run

    # -- outcomes ----------------------------------------------------------------------------
    def summary(self, run: str, timeout_s: float = RUN_TIMEOUT_S) -> dict[str, Any]:
        return wait_until(
            lambda: read_summary(self.s3, self.results_bucket, run),
            timeout_s,
            interval_s=0.3,
            what=f"the summary of run {run}",
        )

    def lines(self, run: str) -> Lines:
        return Lines(
            results=list(iter_result_rows(self.s3, self.results_bucket, run)),
            failures=list(iter_failure_records(self.s3, self.results_bucket, run)),
        )

    def assert_exactly_once(self, run: str, expected: int, *, results_only: bool = False) -> Lines:
        """The invariant: lines 1..expected each exactly once across results + failures.

        Checked twice: raw, as a query engine reads every object under `results/<run>/` and
        `failures/<run>/` (no de-duplication), and through the CLI's readers.
        """
        assert_exactly_once_raw(
            self.s3,
            self.results_bucket,
            run,
            expected,
            read_summary(self.s3, self.results_bucket, run),
        )
        got = self.lines(run)
        everything = Counter(got.ok + got.failed)
        assert sorted(everything) == list(range(1, expected + 1)), everything
        assert set(everything.values()) <= {1}, f"a line twice: {everything}"
        if results_only:
            assert got.failed == [], [f.to_dict() for f in got.failures]
        summary = read_summary(self.s3, self.results_bucket, run)
        assert summary is not None
        assert summary["lines"] == summary["ok"] + summary["failed"] == expected
        assert (summary["ok"], summary["failed"]) == (len(got.ok), len(got.failed))
        return got

    def replay(self, run: str, **kwargs: Any) -> Any:
        """Replay one run's failures through the same core `lambdaflow replay` calls."""
        source = kwargs.pop("source", ReplaySource.ITEMS)
        dry_run = kwargs.pop("dry_run", False)
        (report,) = replay_runs(
            self.replayer, [run], ReplayFilter(**kwargs), source=source, dry_run=dry_run
        ) or (None,)
        return report

    def queued_failures(self, run: str) -> list[dict[str, Any]]:
        """The FailureQueue's records of `run` (every message is looked at, then released)."""
        bodies = queued_bodies(self.sqs, self.outputs["FailureQueueUrl"])
        return [body for body in bodies if body.get("run") == run]

    def wait_chunk_handled(self, run: str, number: int, times: int, since: datetime) -> None:
        """Until `times` deliveries of chunk `number` of `run` have each ended their span.

        A delivery's `chunk` span closes after all of its work (parts, ledger, failures), so
        this is a positive sign that a duplicate was handled. Waiting for the WorkQueue to drain
        would also wait out the chunk a killed worker holds (the kill row's 60 s).
        """
        xray = boto3.client("xray")

        def spans() -> int:
            traces = load_run_traces(
                xray, run, start=since, end=datetime.now(UTC), is_server_filtered=False
            )
            chunk = traces.chunks.get(number)
            return chunk.stages[("chunk",)].spans if chunk and ("chunk",) in chunk.stages else 0

        wait_until(
            lambda: spans() >= times,
            RUN_TIMEOUT_S,
            interval_s=0.3,
            what=f"{times} handled deliveries of chunk {number} of run {run}",
        )

    def parked(self, run: str) -> list[dict[str, Any]]:
        """WorkDLQ chunks of `run` (looked at, then released at once)."""
        url = self.outputs["WorkDLQUrl"]
        messages = self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=5, WaitTimeSeconds=0
        ).get("Messages", [])
        for message in messages:
            self.sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        bodies = [json.loads(m["Body"]) for m in messages]
        return [b for b in bodies if b.get("run") == run]

    def execution_names(self) -> list[str]:
        sfn = boto3.client("stepfunctions")
        pages = sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.outputs["StateMachineArn"]
        )
        return [e["name"] for page in pages for e in page["executions"]]

    def fault_markers(self, prefix: str) -> list[str]:
        found = self.s3.list_objects_v2(Bucket=self.results_bucket, Prefix=prefix)
        return [o["Key"] for o in found.get("Contents", [])]


def s3_event(bucket: str, key: str, etag: str) -> str:
    """The body S3 puts on the IngestQueue for one created object (keys `quote_plus`-encoded)."""
    from urllib.parse import quote_plus  # noqa: PLC0415  # only this helper needs it

    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "s3": {
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key), "eTag": etag, "size": 1},
        },
    }
    return json.dumps({"Records": [record]})


def pixel_bomb_png(side: int = 30_000) -> bytes:
    """A tiny PNG whose header claims side x side pixels (900 M): a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (side + 1) * 64, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def gzip_bomb(before: str, after: str, line_bytes: int) -> bytes:
    """A gzip manifest: a line, one `line_bytes` line without a newline until its end, a line."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [compressor.compress(f"{before}\n".encode())]
    block = b"a" * (1024 * 1024)
    for _ in range(line_bytes // len(block)):
        out.append(compressor.compress(block))
    out.append(compressor.compress(f"\n{after}\n".encode()))
    out.append(compressor.flush())
    return b"".join(out)


def truncated_gzip(lines: list[str], keep: float) -> bytes:
    """A gzip manifest cut after `keep` of its compressed bytes (no end-of-stream marker)."""
    whole = gzip.compress(("\n".join(lines) + "\n").encode())
    return whole[: int(len(whole) * keep)]
