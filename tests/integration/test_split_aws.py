"""A Split run on the AWS adapters (moto): passes to the end, and a manifest replaced mid-run."""

from __future__ import annotations

import dataclasses
import gzip
import json
import uuid

import boto3
import pytest

from pipeline.config import Settings
from pipeline.gzip.checkpoint import Checkpoint
from pipeline.ledger.items import table_definition
from pipeline.ledger.table import RunLedger
from pipeline.manifest.parse import ManifestRecord
from pipeline.manifest.reader import iter_manifest
from pipeline.parts.store import iter_failure_records
from pipeline.split.aws_pass import AwsSplit, ManifestRef
from pipeline.split.chunking import Chunk

pytestmark = pytest.mark.integration

N_LINES = 2_000


@pytest.fixture
def aws(emulator, s3, bucket):
    sqs = boto3.client("sqs", endpoint_url=emulator.endpoint_url)
    queue = sqs.create_queue(QueueName=f"work-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    dynamodb = boto3.client("dynamodb", endpoint_url=emulator.endpoint_url)
    table = f"runs-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(**table_definition(table))
    settings = Settings.from_env(
        {}, results_bucket=bucket, work_queue_url=queue, runs_table=table, chunk_items=150
    )
    return AwsSplit(s3=s3, sqs=sqs, ledger=RunLedger(dynamodb, table), settings=settings)


def _put_manifest(s3, bucket: str, *, seed: int) -> ManifestRef:
    rows = [
        json.dumps({"bucket": "bkt", "key": f"img/{seed}/{i}.jpg"}) if i % 500 else "{oops"
        for i in range(1, N_LINES + 1)
    ]
    body = gzip.compress("\n".join(rows).encode(), mtime=0)
    etag = s3.put_object(Bucket=bucket, Key="in/m.jsonl.gz", Body=body)["ETag"]
    return ManifestRef(bucket, "in/m.jsonl.gz", etag=etag.strip('"'))


def _drain(sqs, queue) -> list[dict]:
    bodies = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        bodies += [json.loads(m["Body"]) for m in batch]
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        sqs.delete_message_batch(QueueUrl=queue, Entries=entries)
    return bodies


def test_passes_split_an_s3_manifest_into_the_queue_the_ledger_and_parse_parts(aws, s3, bucket):
    # GIVEN a gzip JSON Lines manifest in S3 with 4 malformed lines
    manifest = _put_manifest(s3, bucket, seed=1)
    # WHEN Split passes with no budget left run until done, as the state machine loops them
    checkpoint, outcomes = None, []
    while not outcomes or not outcomes[-1].is_done:
        outcome = aws.run_pass("run-aws", manifest, checkpoint, budget_s=0.0)
        checkpoint = Checkpoint.from_dict(json.loads(json.dumps(outcome.checkpoint.to_dict())))
        outcomes.append(outcome)
    # THEN every good line went out once, the bad ones became parse failures, the ledger knows
    bodies = _drain(aws.sqs, aws.settings.work_queue_url)
    assert len(outcomes) == len(bodies) == outcomes[-1].chunks_sent == 14
    chunks = [Chunk.from_message(body) for body in bodies]
    lines = sorted(r.line for chunk in chunks for r in chunk.items)
    # a bad line is in Split's parse part, or its chunk's (a worker's to record) if sent raw
    split_failed = [r.line for r in iter_failure_records(s3, bucket, "run-aws")]
    raw_failed = [e.line for chunk in chunks for e in chunk.parse_failures]
    failed = sorted(split_failed + raw_failed)
    assert failed == [500, 1000, 1500, 2000]
    assert sorted(lines + failed) == list(range(1, N_LINES + 1))
    state = aws.ledger.get_run("run-aws")
    assert (state.lines_split, state.chunks_sent, state.is_split_done) == (N_LINES, 14, True)
    assert state.manifest == manifest.uri
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=bucket, Prefix="checkpoints/run-aws/")["Contents"]
    ]
    assert keys and all(k.endswith(".idx.z") for k in keys)


def test_a_manifest_replaced_mid_run_ends_the_split_with_the_reason(aws, s3, bucket):
    # GIVEN a run whose first pass is done, then the manifest object is overwritten
    manifest = _put_manifest(s3, bucket, seed=1)
    first = aws.run_pass("run-changed", manifest, None, budget_s=0.0)
    assert not first.is_done
    _put_manifest(s3, bucket, seed=2)
    # WHEN the next pass resumes the first one's checkpoint
    second = aws.run_pass("run-changed", manifest, first.checkpoint, budget_s=0.0)
    # THEN it does not read the new bytes: the split ends partial, saying why
    assert second.is_done
    assert "ManifestChanged" in second.reason
    assert second.lines == first.lines
    assert aws.ledger.get_run("run-changed").reason == second.reason


def test_a_redeploy_with_another_chunk_size_mid_run_keeps_the_run_s_chunk_plan(aws, s3, bucket):
    # GIVEN a run whose first pass cut 150-line chunks
    manifest = _put_manifest(s3, bucket, seed=3)
    first = aws.run_pass("run-pinned", manifest, None, budget_s=0.0)
    # WHEN the stack is redeployed with 400-line chunks: a retried first pass and a later pass
    redeployed = AwsSplit(
        s3=aws.s3,
        sqs=aws.sqs,
        ledger=aws.ledger,
        settings=dataclasses.replace(aws.settings, chunk_items=400),
    )
    retried = redeployed.run_pass("run-pinned", manifest, None, budget_s=0.0)
    later = redeployed.run_pass("run-pinned", manifest, first.checkpoint, budget_s=0.0)
    # THEN every chunk is still cut at 150 lines: chunk numbers mean the same lines throughout
    sizes = {
        body["chunk"]: len(Chunk.from_message(body).items)
        for body in _drain(aws.sqs, aws.settings.work_queue_url)
    }
    assert sizes == {0: 150, 1: 150}
    assert (first.chunks_sent, retried.chunks_sent, later.chunks_sent) == (1, 1, 2)
    assert later.checkpoint.extra["plan"]["chunk_items"] == 150


_SHAPES = {
    # name: (file name, header, line of record i (c: the comma before an array's element i),
    # the piece form Split sends its rows as)
    "JSON Lines": ("m.jsonl.gz", "", '{{"bucket":"bkt","key":"img/é {i}.jpg"}}', "objects"),
    "JSON with a size": (
        "m.jsonl.gz",
        "",
        '{{"bucket":"bkt","key":"k{i} \\"q\\"","size":{i}}}',
        "raw_lines",
    ),
    "key,bucket": ("m.csv.gz", "key,bucket\n", "img/{i}.jpg,bkt", "raw_lines"),
    "quoted URI lines": ("m.csv.gz", "", '"s3://bkt/img/{i},x.jpg"', "raw_lines"),
    "JSON array of URIs": ("m.json.gz", "[", '{c}"s3://bkt/img/{i} [x].jpg"', "objects"),
    "JSON array with a float": (
        "m.json.gz",
        "[",
        '{c}{{"key":"img/{i} [x].jpg","bucket":"bkt","score":{i}.5}}',
        "raw_elements",
    ),
    "quoted header CSV": (
        "m.csv.gz",
        '"Bucket","Key","Size"\n',
        '"bkt","img/{i} a+b%41.jpg","{i}"',
        "csv_fields",
    ),
    "versioned rows": ("m.csv.gz", "", "bkt,img/{i}%20.jpg,v{i}", "csv_rows"),
    "uri,label": ("m.csv.gz", "uri,label\n", "s3://bkt/img/{i}.jpg,cat", "csv_rows"),
}


@pytest.mark.parametrize("shape", _SHAPES)
def test_each_piece_form_crosses_the_queue_as_the_records_the_line_parser_reads(
    aws, s3, bucket, tmp_path, shape
):
    # GIVEN a manifest of a shape Split sends as rows (or unparsed lines), not items
    name, header, row, form = _SHAPES[shape]
    rows = "\n".join(row.format(i=i, c="," if i else "") for i in range(N_LINES))  # c: , in arrays
    end = "]" if name.endswith(".json.gz") else ""
    body = gzip.compress((header + rows + "\n" + end).encode(), mtime=0)
    etag = s3.put_object(Bucket=bucket, Key=f"in/{name}", Body=body)["ETag"]
    manifest = ManifestRef(bucket, f"in/{name}", etag=etag.strip('"'))
    # WHEN split through SQS and read back as the worker reads its messages
    outcome = aws.run_pass("run-forms", manifest, None, budget_s=None)
    assert outcome.is_done
    bodies = _drain(aws.sqs, aws.settings.work_queue_url)
    # THEN the pieces are that form, and they read back to exactly the records the reference
    # line parser reads from the same bytes, each once
    assert any(form in piece for b in bodies for piece in b.get("pieces", []))
    sent = [
        r for b in sorted(bodies, key=lambda b: b["chunk"]) for r in Chunk.from_message(b).items
    ]
    local = tmp_path / name
    local.write_bytes(body)
    reference = list(iter_manifest(str(local)))
    assert all(isinstance(r, ManifestRecord) for r in reference)
    assert sent == reference
    assert len(sent) == N_LINES
