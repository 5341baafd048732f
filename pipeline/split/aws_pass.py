"""One Split pass against AWS: the S3, SQS and DynamoDB adapters plugged into `split_pass`.

The manifest object is read with streaming ranged GETs pinned to the ETag (or version) the run
was started for, so a manifest replaced mid-run ends the split with `ManifestChanged` instead of
resuming a checkpoint into other bytes. Checkpoint indexes live under `checkpoints/<run>/` in
the results bucket, parse failures in `failures/<run>/parse-NNNNNNNN.jsonl.gz`, chunks go to
the WorkQueue, and a pass pauses once the WorkQueue holds hours of work (`backpressure.py`).
Knows nothing of Lambda: the handler passes the clients and the budget.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.gzip.checkpoint import Checkpoint
from pipeline.gzip.index_store import S3IndexStore
from pipeline.gzip.ranged import S3ObjectReader
from pipeline.observe.tracing import span
from pipeline.s3_uri import split_s3_uri
from pipeline.split.backpressure import QueueGauge, max_waiting_chunks, sqs_depth
from pipeline.split.passes import SplitOptions, SplitOutcome, split_pass
from pipeline.split.sinks import S3ParseFailureWriter, SqsChunkSink
from pipeline.split.source import OpenReader

if TYPE_CHECKING:
    from pipeline.config import Settings
    from pipeline.ledger.table import RunLedger

CHECKPOINT_PREFIX = "checkpoints"


@dataclass(frozen=True, slots=True)
class ManifestRef:
    """The manifest object version a run splits (what the ingest event named)."""

    bucket: str
    key: str
    etag: str | None = None
    version_id: str | None = None

    @property
    def uri(self) -> str:
        """`s3://bucket/key`."""
        return f"s3://{self.bucket}/{self.key}"

    @classmethod
    def from_state(cls, manifest: Mapping[str, Any]) -> ManifestRef:
        """From the state machine's `manifest` object (bucket, key, etag, version_id)."""
        return cls(
            bucket=manifest["bucket"],
            key=manifest["key"],
            etag=manifest.get("etag") or None,
            version_id=manifest.get("version_id") or None,
        )


def s3_opener(client: Any, manifest: ManifestRef) -> OpenReader:
    """Open `s3://` locations with streaming GETs; the manifest itself pinned to its version.

    Inventory parts (other keys, same bucket: `part_source` refuses any other) are not pinned:
    an Inventory report's parts never change once written.
    """

    def open_reader(location: str) -> S3ObjectReader:
        bucket, key = split_s3_uri(location)
        is_manifest = (bucket, key) == (manifest.bucket, manifest.key)
        return S3ObjectReader(
            client,
            bucket,
            key,
            etag=manifest.etag if is_manifest else None,
            version_id=manifest.version_id if is_manifest else None,
            streaming=True,
        )

    return open_reader


@dataclass(frozen=True, slots=True)
class AwsSplit:
    """The clients and names a Split pass on AWS needs (built once per cold start)."""

    s3: Any
    sqs: Any
    ledger: RunLedger
    settings: Settings

    def run_pass(
        self,
        run: str,
        manifest: ManifestRef,
        checkpoint: Checkpoint | None,
        *,
        budget_s: float | None,
        clock: Callable[[], float] | None = None,
    ) -> SplitOutcome:
        """One pass from `checkpoint` for at most `budget_s` seconds (see `split_pass`)."""
        extra = {"clock": clock} if clock is not None else {}
        with span("split", annotations={"run": run}) as traced:
            outcome = self._split(run, manifest, checkpoint, budget_s=budget_s, extra=extra)
            traced.metadata("lines", outcome.pass_lines)
            traced.metadata("chunks", outcome.pass_chunks)
            traced.metadata("bytes_fetched", outcome.bytes_fetched)
            traced.metadata("is_done", outcome.is_done)
            traced.metadata("is_paused", outcome.is_paused)
        return outcome

    def _split(
        self,
        run: str,
        manifest: ManifestRef,
        checkpoint: Checkpoint | None,
        *,
        budget_s: float | None,
        extra: dict[str, Any],
    ) -> SplitOutcome:
        """Wire the AWS adapters into the core pass."""
        settings = self.settings
        return split_pass(
            manifest.uri,
            checkpoint,
            run=run,
            options=SplitOptions.from_settings(settings, budget_s=budget_s),
            open_reader=s3_opener(self.s3, manifest),
            sink=SqsChunkSink(self.sqs, settings.work_queue_url),
            failures=S3ParseFailureWriter(self.s3, settings.results_bucket),
            index_store=S3IndexStore(
                self.s3, settings.results_bucket, f"{CHECKPOINT_PREFIX}/{run}"
            ),
            ledger=self.ledger,
            pause=QueueGauge(
                sqs_depth(self.sqs, settings.work_queue_url), max_waiting_chunks(settings)
            ).is_full,
            **extra,
        )
