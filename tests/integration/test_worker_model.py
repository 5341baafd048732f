"""The chunk worker with the Lite2 preset (260 px) and with a user's model: the decoder follows the
model's input size, and each results row carries the model's labels, name and sha256.

Real S3/SQS/DynamoDB over HTTP (the emulator), real models, the bundled photos.
"""

from __future__ import annotations

import gzip
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest

from pipeline.classify.model import get_classifier
from pipeline.classify.model_spec import PRESETS, file_sha256
from pipeline.classify.worker import ChunkWorker, fetch_client_config
from pipeline.config import Settings
from pipeline.ledger.items import table_definition
from pipeline.ledger.table import RunLedger
from pipeline.manifest.reader import ManifestRecord
from pipeline.parts.layout import PartKind, ResultRow, chunk_part
from pipeline.split.chunking import Chunk
from tests import photos

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models"
NAMES = ("coffee", "chelsea")


def _worker(bucket: str, model_env: dict[str, str]) -> tuple[ChunkWorker, ThreadPoolExecutor]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    sqs = boto3.client("sqs")
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(**table_definition(name))
    settings = Settings.from_env(
        model_env,
        results_bucket=bucket,
        source_buckets=frozenset({bucket}),
        failure_queue_url=sqs.create_queue(QueueName=name)["QueueUrl"],
        runs_table=name,
        fetch_concurrency=2,
    )
    s3 = boto3.client("s3", config=fetch_client_config(settings))
    for image in NAMES:
        s3.put_object(Bucket=bucket, Key=f"{image}.jpg", Body=photos.photo_bytes(image))
    pool = ThreadPoolExecutor(2)
    classifier = get_classifier(settings)
    return ChunkWorker(s3, sqs, RunLedger(dynamodb, name), classifier, settings, pool), pool


def _rows(worker: ChunkWorker, bucket: str) -> list[ResultRow]:
    run = f"r{uuid.uuid4().hex[:8]}"
    worker.ledger.start_run(run, manifest="s3://in/m.csv")
    items = tuple(ManifestRecord(n, bucket, f"{name}.jpg") for n, name in enumerate(NAMES, 1))
    report = worker.process(Chunk(run, 0, items))
    assert (report.ok, report.failures) == (len(NAMES), ())
    key = chunk_part(PartKind.RESULTS, run, 0).key
    body = worker.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return [ResultRow.from_dict(json.loads(x)) for x in gzip.decompress(body).splitlines()]


def test_lite2_worker_decodes_at_260_px_and_names_the_model(emulator, bucket):
    worker, pool = _worker(bucket, {"LAMBDAFLOW_MODEL": "efficientnet-lite2"})
    with pool:
        assert worker.decoder.input_size == 260
        coffee, chelsea = _rows(worker, bucket)
    assert coffee.labels[0][0] == "espresso"
    assert "cat" in chelsea.labels[0][0]
    for row in (coffee, chelsea):
        assert (row.model.name, row.model.sha256) == (
            "efficientnet-lite2",
            PRESETS["efficientnet-lite2"].sha256,
        )


def test_a_user_model_labels_rows_with_its_own_classes(emulator, bucket):
    model, labels = FIXTURES / "rgb_uint8.tflite", FIXTURES / "rgb_labels.txt"
    env = {"LAMBDAFLOW_MODEL": str(model), "LAMBDAFLOW_LABELS": str(labels)}
    worker, pool = _worker(bucket, env)
    with pool:
        assert worker.decoder.input_size == 32
        rows = _rows(worker, bucket)
    for row in rows:
        assert sorted(name for name, _ in row.labels) == ["blue", "green", "red"]
        assert (row.model.name, row.model.sha256) == (str(model), file_sha256(model))
    assert rows[0].labels[0][0] == "red"  # the coffee photo: a red-brown cup on a red saucer
