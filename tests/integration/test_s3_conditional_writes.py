"""Two conditional PUTs of one key at once: one wins and the other is told, as on AWS.

moto checks a PUT's condition and stores its object later, with nothing held between; the emulator
makes the two one step (`pipeline/local/s3_conditional_writes.py`). The interleaving is forced:
the first PUT is held inside moto's store, after its check, while the second one arrives.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import boto3
import orjson
import pytest
from botocore.exceptions import ClientError
from moto.s3.models import S3Backend

from pipeline.aws.errors import error_code
from pipeline.parts.commit import PRECONDITION_CODES, prune_part

pytestmark = pytest.mark.integration

HOLD_S = 0.5
"""How long the first PUT stays inside moto's store: far longer than the second needs to arrive."""


@pytest.fixture
def first_put_held(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], threading.Event]:
    """Hold the first store of `key` for `HOLD_S`; the event is set once it is being held."""
    holding: dict[str, threading.Event] = {}
    original = S3Backend.put_object

    def held(backend, bucket_name, key_name, *args, **kwargs):
        entered = holding.get(key_name)
        if entered is not None and not entered.is_set():
            entered.set()
            time.sleep(HOLD_S)
        return original(backend, bucket_name, key_name, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "put_object", held)

    def hold(key: str) -> threading.Event:
        holding[key] = threading.Event()
        return holding[key]

    return hold


def _race(s3, bucket: str, key: str, entered: threading.Event, **condition) -> list[str]:
    """Two PUTs of `key` with `condition`: the second starts while the first is held."""

    def put(body: bytes) -> str:
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body, **condition)
        except ClientError as exc:
            return error_code(exc)
        return "ok"

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(put, b"first")
        assert entered.wait(10)
        second = pool.submit(put, b"second")
        return [first.result(), second.result()]


def test_of_two_puts_if_none_match_one_creates_the_object_and_the_other_gets_412(
    s3, bucket, first_put_held
):
    # GIVEN no object at the key, and a first PUT held after its check passed
    entered = first_put_held("parts/p-0.gz")
    # WHEN a second PUT If-None-Match: * arrives meanwhile
    outcomes = _race(s3, bucket, "parts/p-0.gz", entered, IfNoneMatch="*")
    # THEN the first created it, the second was refused, and the object is the first's
    assert outcomes[0] == "ok"
    assert outcomes[1] in PRECONDITION_CODES
    assert s3.get_object(Bucket=bucket, Key="parts/p-0.gz")["Body"].read() == b"first"


def test_of_two_puts_if_match_one_etag_one_replaces_the_object_and_the_other_gets_412(
    s3, bucket, first_put_held
):
    # GIVEN an object, and two rewrites guarded by the ETag they both read
    etag = s3.put_object(Bucket=bucket, Key="failures/p-1.gz", Body=b"original")["ETag"]
    entered = first_put_held("failures/p-1.gz")
    # WHEN the second arrives while the first is held after its check
    outcomes = _race(s3, bucket, "failures/p-1.gz", entered, IfMatch=etag)
    # THEN only the first replaced it: the second's ETag no longer matches
    assert outcomes[0] == "ok"
    assert outcomes[1] in PRECONDITION_CODES
    assert s3.get_object(Bucket=bucket, Key="failures/p-1.gz")["Body"].read() == b"first"


def test_replay_chunks_pruning_one_failure_part_at_once_each_take_their_lines_out(s3, bucket):
    # GIVEN a failure part of 16 lines, and 16 replay chunks' deliveries each pruning one
    # line of it at the same moment (each rewrite is guarded by the ETag it read)
    key = "failures/r1/part-00000000.jsonl.gz"
    rows = b"".join(orjson.dumps({"line": line}) + b"\n" for line in range(16))
    s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(rows))
    start = threading.Barrier(16)

    def prune(line: int) -> int:
        client = boto3.client("s3", endpoint_url=s3.meta.endpoint_url)
        start.wait()
        return prune_part(client, bucket, key, [line])

    # WHEN they run
    with ThreadPoolExecutor(16) as pool:
        removed = list(pool.map(prune, range(16)))
    # THEN none gave up: each took its own line out, and the part is left empty
    assert removed == [1] * 16
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert gzip.decompress(body) == b""
