"""The classify handler says when a chunk comes again: an earlier delivery died or was lost.

On AWS a chunk whose delivery crashed, ran out of time or memory, or whose receive was lost
comes back after the visibility timeout with a higher receive count, and nothing else says so.

The warnings are read from the log records, formatted by the handler's own JSON formatter: the
Powertools logger every handler shares writes to the stdout of whichever test created it first,
so reading `capsys` passed or failed by the order the tests ran in.
"""

from __future__ import annotations

import importlib
import json
import logging
import uuid

import orjson
import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from pipeline.local.poller import to_lambda_record
from pipeline.manifest.reader import ManifestRecord
from pipeline.split.chunking import Chunk

pytestmark = pytest.mark.integration


def _record(chunk: Chunk, receive_count: int) -> SQSRecord:
    message = {
        "MessageId": str(uuid.uuid4()),
        "ReceiptHandle": "handle",
        "Body": orjson.dumps(chunk.to_message()).decode(),
        "Attributes": {"ApproximateReceiveCount": str(receive_count)},
    }
    return SQSRecord(to_lambda_record(message, "arn:aws:sqs:us-east-1:123456789012:work"))


def _warnings(caplog: pytest.LogCaptureFixture, logger: Logger) -> list[dict]:
    """The WARNING lines the handler's logger wrote since the last call, as its JSON says them."""
    records = [r for r in caplog.records if r.name == logger.name and r.levelno == logging.WARNING]
    caplog.clear()
    return [json.loads(logger.registered_formatter.format(record)) for record in records]


def test_a_chunk_delivered_again_is_logged_with_its_run_chunk_and_deliveries(local_stack, caplog):
    # GIVEN the classify handler, imported with its function's environment, and a run
    classify = importlib.import_module("handlers.classify")
    run = f"r{uuid.uuid4().hex[:8]}"
    classify.ledger.start_run(run, manifest="s3://in/m.csv")
    # a line naming a bucket off the allowlist: a failure record, no image read
    chunk = Chunk(run, 0, (ManifestRecord(1, f"elsewhere-{uuid.uuid4().hex[:6]}", "a.jpg"),))
    caplog.clear()
    # WHEN it gets the chunk's first delivery, then the same chunk delivered a third time
    classify.record_handler(_record(chunk, 1))
    first = _warnings(caplog, classify.logger)
    classify.record_handler(_record(chunk, 3))
    again = _warnings(caplog, classify.logger)
    # THEN only the repeat is logged, with what finds it in the logs
    assert first == []
    (warning,) = again
    assert warning["message"] == "chunk delivered again"
    assert (warning["run"], warning["chunk"], warning["deliveries"]) == (run, 0, 3)
