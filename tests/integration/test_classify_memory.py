"""The classify function's worst chunk fits its `MemorySize`, held to it as Lambda holds it.

A classify process fetches and decodes on 16 threads, each image up to 50 MB. Twenty 16 M-pixel
PNG photos in one chunk (scans, frames, tiles) are the worst the limits allow short of the
pixel limit's images, which are decoded alone. The chunk goes through the real worker in a
fresh process, over the wire, with the model loaded, and the process ends itself as Lambda
would end it the moment its peak memory passes the template's `MemorySize`.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import numpy as np
import pytest
from PIL import Image

from pipeline.classify.model import get_classifier
from pipeline.classify.worker import ChunkWorker, fetch_client_config
from pipeline.config import Settings
from pipeline.ledger.items import table_definition
from pipeline.ledger.table import RunLedger
from pipeline.local.memory_size import MemorySize, peak_memory_mb
from pipeline.local.template import load_sam_template
from pipeline.manifest.reader import ManifestRecord
from pipeline.split.chunking import Chunk
from tests import photos

pytestmark = pytest.mark.integration

IMAGES = 20
SIDE = 4000
_SPAWN = multiprocessing.get_context("spawn")


def _big_png() -> bytes:
    """A real photo as a 16 M-pixel RGBA PNG, with grain so it stays ~40 MB (under 50 MB)."""
    picture = photos.photo("chelsea").convert("RGB").resize((SIDE, SIDE), Image.Resampling.BILINEAR)
    grain = np.random.default_rng(7).integers(-12, 13, (SIDE, SIDE, 3), dtype=np.int16)
    pixels = np.clip(np.asarray(picture, dtype=np.int16) + grain, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).convert("RGBA").save(out, "PNG", compress_level=1)
    return out.getvalue()


def _classify_chunk(env: dict[str, str], names: dict[str, str], limit_mb: int, out: Any) -> None:
    """In a fresh process held to `limit_mb`: one chunk through the real worker."""
    os.environ.update(env)
    MemorySize("classify", limit_mb).watch(interval_s=0.01)
    settings = Settings.from_env(
        results_bucket=names["bucket"],
        source_buckets=frozenset({names["bucket"]}),
        failure_queue_url=names["queue"],
        runs_table=names["table"],
    )
    dynamodb = boto3.client("dynamodb")
    worker = ChunkWorker(
        boto3.client("s3", config=fetch_client_config(settings)),
        boto3.client("sqs"),
        RunLedger(dynamodb, names["table"]),
        get_classifier(settings),
        settings,
        ThreadPoolExecutor(settings.fetch_concurrency),
    )
    run = f"r{uuid.uuid4().hex[:8]}"
    worker.ledger.start_run(run, manifest="s3://in/m.csv")
    items = tuple(ManifestRecord(line, names["bucket"], "big.png") for line in range(1, IMAGES + 1))
    report = worker.process(Chunk(run, 0, items))
    errors = [f.error for f in report.failures]
    out.put((report.ok, errors, settings.fetch_concurrency, peak_memory_mb()))


def test_a_chunk_of_big_pngs_fits_the_classify_function_memory_size(emulator):
    # GIVEN a ~40 MB, 16 M-pixel PNG photo in a bucket, and the function's MemorySize
    limit_mb = int(load_sam_template()["Resources"]["ClassifyFunction"]["Properties"]["MemorySize"])
    png = _big_png()
    assert 30 * 2**20 < len(png) <= Settings.from_env().max_image_bytes
    name = f"mem-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="big.png", Body=png)
    boto3.client("dynamodb").create_table(**table_definition(name))
    queue = boto3.client("sqs").create_queue(QueueName=name)["QueueUrl"]
    names = {"bucket": name, "table": name, "queue": queue}
    out = _SPAWN.Queue()
    # WHEN a chunk naming it 20 times goes through the worker, held to that MemorySize
    process = _SPAWN.Process(target=_classify_chunk, args=(emulator.env, names, limit_mb, out))
    process.start()
    process.join(300)
    # THEN the process lived (it ends itself past the limit) and labelled every image
    assert process.exitcode == 0, f"the worker died ({process.exitcode}): over {limit_mb} MB?"
    ok, errors, threads, peak_mb = out.get(timeout=10)
    assert (ok, errors) == (IMAGES, [])
    assert peak_mb <= limit_mb
    assert threads >= 16  # as many decoding at once as the function would
    s3.delete_object(Bucket=name, Key="big.png")
