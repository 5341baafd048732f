"""The resumable Split across the moto server: S3 ranged reads, SQS batches, the DynamoDB ledger."""

from __future__ import annotations

import gzip
import json
import uuid
from collections import Counter

import boto3
import pytest

from pipeline.failures import FailureRecord, Stage
from pipeline.gzip.checkpoint import Checkpoint
from pipeline.gzip.index_store import S3IndexStore
from pipeline.gzip.ranged import S3ObjectReader
from pipeline.ledger.items import table_definition
from pipeline.ledger.runs import RunStatus
from pipeline.ledger.summary import build_summary
from pipeline.ledger.table import RunLedger
from pipeline.parts.layout import parse_failures_part
from pipeline.parts.store import iter_failure_records
from pipeline.split.chunking import Chunk
from pipeline.split.passes import SplitOptions, split_pass
from pipeline.split.sinks import ChunkMessage, S3ParseFailureWriter, SqsChunkSink
from tests.checkpoint_chain import manifest_text
from tests.split_chain import SMALL_KNOBS, SinkDied, tick_clock

pytestmark = pytest.mark.integration

N_LINES = 40_000
BAD = {3, 20_001, N_LINES}
RUN = "split-s3-run"


class RangeLog(S3ObjectReader):
    """The real S3 reader, remembering where each fetched range started."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.starts: list[int] = []

    def read_range(self, start: int, end: int) -> bytes:
        self.starts.append(start)
        return super().read_range(start, end)


class DyingSink:
    """Passes chunks to the real SQS sink, then dies after `die_after` of them."""

    def __init__(self, inner: SqsChunkSink, die_after: int | None) -> None:
        self.inner, self.die_after, self.count = inner, die_after, 0

    def send(self, message: ChunkMessage) -> None:
        if self.die_after is not None and self.count >= self.die_after:
            self.inner.flush()  # what was sent is out: the retry must re-send it identically
            raise SinkDied("pass killed")
        self.count += 1
        self.inner.send(message)

    def flush(self) -> None:
        self.inner.flush()


@pytest.fixture
def world(emulator, s3, bucket):
    sqs = boto3.client("sqs", endpoint_url=emulator.endpoint_url)
    queue = sqs.create_queue(QueueName=f"work-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    dynamodb = boto3.client("dynamodb", endpoint_url=emulator.endpoint_url)
    table = f"runs-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(**table_definition(table))
    lines = manifest_text(N_LINES).split(b"\n")
    for n in BAD:
        lines[n - 1] = b"not a row"
    body = gzip.compress(b"\n".join(lines), compresslevel=6, mtime=0)
    s3.put_object(Bucket=bucket, Key="in/manifest.csv.gz", Body=body)
    return {
        "s3": s3,
        "bucket": bucket,
        "sqs": sqs,
        "queue": queue,
        "ledger": RunLedger(dynamodb, table),
        "size": len(body),
    }


def _drain(sqs, queue) -> list[dict]:
    bodies = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        bodies += [json.loads(m["Body"]) for m in batch]
        sqs.delete_message_batch(
            QueueUrl=queue,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )
    return bodies


def _run_passes(world, *, kill_pass: int, kill_after: int):
    """Split to the end with ~4 chunks a pass; pass `kill_pass` dies and is retried."""
    s3, bucket = world["s3"], world["bucket"]
    store = S3IndexStore(s3, bucket, f"checkpoints/{RUN}")
    options = SplitOptions(chunk_items=1000, budget_s=4.0, knobs=SMALL_KNOBS)
    checkpoint, readers, outcomes, pass_no = None, [], [], 0
    while True:
        reader = RangeLog(s3, bucket, "in/manifest.csv.gz", streaming=True)
        readers.append((checkpoint, reader))
        sink = SqsChunkSink(world["sqs"], world["queue"])
        try:
            outcome = split_pass(
                f"s3://{bucket}/in/manifest.csv.gz",
                checkpoint,
                run=RUN,
                options=options,
                open_reader=lambda _location, r=reader: r,
                sink=DyingSink(sink, kill_after if pass_no == kill_pass else None),
                failures=S3ParseFailureWriter(s3, bucket),
                index_store=store,
                ledger=world["ledger"],
                clock=tick_clock(),
            )
        except SinkDied:
            pass_no += 1
            continue
        pass_no += 1
        outcomes.append(outcome)
        checkpoint = Checkpoint.from_dict(json.loads(json.dumps(outcome.checkpoint.to_dict())))
        if outcome.is_done:
            return outcomes, readers


def test_killed_pass_resumes_from_its_checkpoint_without_rereading_loss_or_doubles(world):
    # GIVEN a gzip manifest in S3, split in passes to SQS; pass 6 dies after sending 3 chunks
    outcomes, readers = _run_passes(world, kill_pass=6, kill_after=3)
    # THEN the retry of the killed pass resumed at the checkpoint: no fetch started before the
    # block holding its seek point, and it fetched far less than the bytes before it
    killed_checkpoint, _ = readers[6]
    retry_checkpoint, retry_reader = readers[7]
    assert retry_checkpoint == killed_checkpoint is not None
    seek_block = retry_checkpoint.compressed_offset // SMALL_KNOBS.block_bytes
    assert retry_checkpoint.compressed_offset > 3 * SMALL_KNOBS.block_bytes
    assert min(retry_reader.starts) >= seek_block * SMALL_KNOBS.block_bytes
    for checkpoint, reader in readers[1:]:
        assert min(reader.starts) >= checkpoint.compressed_offset // SMALL_KNOBS.block_bytes * (
            SMALL_KNOBS.block_bytes
        )
    # AND every chunk number arrived, re-sent ones identical, each line in exactly one chunk
    bodies = _drain(world["sqs"], world["queue"])
    by_number: dict[int, Chunk] = {}
    for body in bodies:
        chunk = Chunk.from_message(body)
        assert by_number.setdefault(body["chunk"], chunk) == chunk
    last = outcomes[-1]
    assert len(bodies) == last.chunks_sent + 3
    assert sorted(by_number) == list(range(last.chunks_sent))
    ok_lines = [record.line for n in sorted(by_number) for record in by_number[n].items]
    assert ok_lines == sorted(set(ok_lines))
    # a bad line is in Split's parse part, or in its chunk for the worker when sent unparsed
    split_failed = [r.line for r in iter_failure_records(world["s3"], world["bucket"], RUN)]
    raw_failed = [e.line for chunk in by_number.values() for e in chunk.parse_failures]
    assert sorted(split_failed + raw_failed) == sorted(BAD)
    assert sorted(ok_lines + split_failed + raw_failed) == list(range(1, N_LINES + 1))
    assert (last.lines, last.records, sum(last.parse_failures.values())) == (
        N_LINES,
        N_LINES - len(split_failed),
        len(split_failed),
    )
    # AND the retry fetched nothing it had no use for: at most the object from its seek block on
    assert 0 < retry_reader.bytes_fetched <= world["size"] - seek_block * SMALL_KNOBS.block_bytes


def test_redelivered_chunks_count_once_in_the_ledger_and_summary(world):
    # GIVEN a split whose killed pass made SQS deliver 3 chunks twice
    outcomes, _ = _run_passes(world, kill_pass=1, kill_after=3)
    ledger = world["ledger"]
    # WHEN a worker counts every delivered message (duplicates included), the lines it was
    # sent unparsed that are no record as its parse failures
    counted = []
    for body in _drain(world["sqs"], world["queue"]):
        chunk = Chunk.from_message(body)
        errors = Counter(e.error for e in chunk.parse_failures)
        failed = len(chunk.parse_failures)
        counted.append(
            ledger.record_chunk(
                RUN,
                chunk.number,
                ok=len(chunk.items),
                failed=failed,
                failed_by_stage={Stage.PARSE.value: failed} if failed else {},
                failed_by_error=dict(errors),
                seconds=0.1,
                images=len(chunk.items),
            )
        )
    # THEN the 3 duplicates were refused, and the run adds up: ok + failed == lines
    assert counted.count(False) == 3
    state = ledger.get_run(RUN)
    assert state.is_split_done
    assert state.chunks_sent == state.chunks_done == outcomes[-1].chunks_sent
    assert (state.lines, state.ok, state.failed) == (N_LINES, N_LINES - len(BAD), len(BAD))
    summary = build_summary(state, now=state.started_at + 10)
    assert summary.status is RunStatus.SUCCEEDED
    assert summary.ok + summary.failed == summary.lines == N_LINES


def test_a_parse_part_is_stored_whole_on_close_and_never_half_on_abort(s3, bucket):
    # GIVEN a chunk's parse failures streamed in two appends, and another chunk's left open
    records = [
        FailureRecord(RUN, line, None, None, Stage.PARSE, "BadFieldCount", "m", False)
        for line in range(1, 8)
    ]
    writer = S3ParseFailureWriter(s3, bucket)
    writer.append(RUN, 4, records[:3])
    writer.append(RUN, 4, records[3:5])
    writer.close(RUN, 4)
    writer.append(RUN, 5, records[5:])
    # WHEN the pass fails and aborts
    writer.abort()
    # THEN chunk 4's part holds all five records in order; chunk 5 has no part at all
    assert [r.line for r in iter_failure_records(s3, bucket, RUN)] == [1, 2, 3, 4, 5]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == [parse_failures_part(RUN, 4).key]
