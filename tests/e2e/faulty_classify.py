"""The classify handler with faults a test can ask for, chosen by the chunk's image keys.

A chunk holding a key that contains `crash-once` raises on its first delivery only (the
message's ApproximateReceiveCount is 1); one holding `poison` raises on every delivery until the
test "fixes the cause" by writing `test-faults/<run>/cured`. Image GETs of keys containing
`flaky-` are answered HTTP 503 SlowDown one time in five (deterministically, by key number and
attempt) through a botocore `before-send` hook on the real handler's S3 client, and the same
faults reach the worker's lean signed GETs (`pipeline.classify.signed_get`, which skip botocore)
through a wrapper of their urllib3 pool — production code is untouched, and the SDK's adaptive
retries must absorb them (a lean GET that meets a fault fails over to the SDK's). A chunk
holding a key that contains `slow-<N>s` sleeps N seconds before it is classified (a run that
keeps its execution waiting).
Every other chunk goes to the real `handlers.classify.handler` untouched. A duplicate chunk
message a test marks `"copy": "dup"` sees GETs of `transient-` keys refused (AccessDenied), so
two copies of one chunk meet different worlds. Each injected crash leaves a
marker object `test-faults/<run>/chunk-<n>-receive-<count>` in the results bucket, so a test
can prove the crash happened (worker processes share no memory with the test).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import re
import time
from typing import Any

import boto3
import urllib3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

if "LAMBDAFLOW_RESULTS_BUCKET" in os.environ:
    # Loaded as a function's handler (the stack applied its environment): import the real one
    # now, as Lambda's cold start does, so its tracing is on before the first invocation. Tests
    # that import this module only for its constants have no such environment.
    importlib.import_module("handlers.classify")

CRASH_ONCE = "crash-once"
SLOW = re.compile(r"slow-(\d+)s")
POISON = "poison"
FLAKY = "flaky-"
TRANSIENT = "transient-"
"""Keys whose GET is refused (AccessDenied) in a duplicate copy of a chunk only: a chunk
message carrying `"copy": "dup"` (a field the worker ignores) sees another world."""
DUP = "dup"
SLOWDOWN_EVERY = 5
"""One GET attempt in five of a flaky key is answered 503 SlowDown (20 %)."""


class InjectedCrashError(RuntimeError):
    """A fault the test asked for."""


def _crash(record: dict[str, Any], why: str) -> None:
    chunk = json.loads(record["body"])
    count = record["attributes"]["ApproximateReceiveCount"]
    key = f"test-faults/{chunk['run']}/chunk-{chunk['chunk']}-receive-{count}"
    boto3.client("s3").put_object(
        Bucket=os.environ["LAMBDAFLOW_RESULTS_BUCKET"], Key=key, Body=why.encode()
    )
    raise InjectedCrashError(why)


class _Raw:
    """Just enough of urllib3's response for botocore to read a canned body."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *_: Any, **__: Any) -> Any:
        yield self._body


_attempts: dict[str, int] = {}
_copy: dict[str, str | None] = {"current": None}
"""Which copy of a chunk this process is handling (batch size 1: one chunk per invocation)."""


def _transient(request: Any, **_: Any) -> AWSResponse | None:
    """In a duplicate copy, GETs of `transient-` keys are refused: that copy fails the line."""
    if _copy["current"] != DUP or TRANSIENT not in str(request.url):
        return None
    if request.method != "GET":
        return None
    body = b"<Error><Code>AccessDenied</Code><Message>not now</Message></Error>"
    return AWSResponse(str(request.url), 403, {"Content-Type": "application/xml"}, _Raw(body))


def _slowdown(request: Any, **_: Any) -> AWSResponse | None:
    """Answer 503 SlowDown to one in five attempts of a flaky GET; leave a marker for the test."""
    url = str(request.url)
    if FLAKY not in url:
        return None
    attempt = _attempts[url] = _attempts.get(url, 0) + 1
    # Keyed on the flaky key's number, not on a hash of the (random-bucket) URL: attempt a of
    # `flaky-N` fails when (N + a) % 5 == 0, so 20 % of attempts fail and every run injects
    # some (the first attempt of flaky-4 always), however the keys are spread over workers.
    number = re.search(rf"{FLAKY}(\d+)", url)
    if number is None or (int(number.group(1)) + attempt) % SLOWDOWN_EVERY:
        return None
    marker = f"test-faults/slowdown/{hashlib.sha256(url.encode()).hexdigest()[:16]}-{attempt}"
    _marker_client().put_object(Bucket=os.environ["LAMBDAFLOW_RESULTS_BUCKET"], Key=marker)
    body = b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
    return AWSResponse(url, 503, {"Content-Type": "application/xml"}, _Raw(body))


@functools.cache
def _marker_client() -> Any:
    return boto3.client("s3")


class _Request:
    """The two fields of a request the fault hooks read."""

    def __init__(self, method: str, url: str) -> None:
        self.method, self.url = method, url


class _FaultyHttp:
    """The lean GET's urllib3 pool, answering the same faults as the botocore hooks."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        fault = _slowdown(_Request(method, url)) or _transient(_Request(method, url))
        if fault is None:
            return self._real.request(method, url, **kwargs)
        body = fault.raw._body
        headers = {"Content-Length": str(len(body)), **fault.headers}
        return urllib3.HTTPResponse(body=body, headers=headers, status=fault.status_code)


@functools.cache
def _real_handler() -> Any:
    real = importlib.import_module("handlers.classify")
    real.worker.s3.meta.events.register("before-send.s3.GetObject", _slowdown)
    real.worker.s3.meta.events.register("before-send.s3.GetObject", _transient)
    real.worker.getter._http = _FaultyHttp(real.worker.getter._http)  # the lean GETs
    return real.handler


def _is_cured(record: dict[str, Any]) -> bool:
    run = json.loads(record["body"])["run"]
    try:
        _marker_client().head_object(
            Bucket=os.environ["LAMBDAFLOW_RESULTS_BUCKET"], Key=f"test-faults/{run}/cured"
        )
    except ClientError:
        return False
    return True


def handler(event: dict[str, Any], context: Any) -> Any:
    for record in event.get("Records", []):
        body = record.get("body", "")
        if POISON in body and not _is_cured(record):
            _crash(record, "poison chunk")
        if CRASH_ONCE in body and record["attributes"].get("ApproximateReceiveCount") == "1":
            _crash(record, "crash on first delivery")
        if slow := SLOW.search(body):
            time.sleep(int(slow.group(1)))
        _copy["current"] = json.loads(body).get("copy") if body.startswith("{") else None
    return _real_handler()(event, context)
